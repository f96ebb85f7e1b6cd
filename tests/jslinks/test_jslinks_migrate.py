"""``jetstream_cluster_migrate`` on leaf remotes (nats-server
``checkJetStreamMigrate`` / ``clearObserverState``; Go's tests
TestJetStreamLeafNodeJSClusterMigrateRecovery and ...WithDelay).

A 3-server leaf cluster with its own domain runs an R3 stream; each leaf
server has one remote (account A) with ``jetstream_cluster_migrate`` to a
server of a 2-server hub cluster (``ignore_discovered_servers``, else it
would fail over to the other hub server). While a leaf server cannot dial its hub,
its member of the stream is an observer (``/raftz`` ``observer``): the
stream is led from a server the hub still reaches, so a hub client keeps
publishing to it. Dialled again, the member may lead again."""

import time

import nats.errors
import nats.js.errors
import pytest

from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.leaf import wait_leafs
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.raw import wait_for

from .helpers import connect, until
from .helpers import create_stream as _create

FAST_RAFT = {"PLUGGY_NATS_RAFT_SCALE": "0.1"}  # Go's timers x 0.1
HUB_ACCOUNTS = "accounts { A: { users: [ {user: a, password: a} ] } }\n"
LEAF_ACCOUNTS = "accounts { A: { jetstream: enabled, users: [ {user: a, password: a} ] } }\n"
STREAM = "ORDERS"


def hub_conf(name, cluster_port, routes, leaf_port):
    return HUB_ACCOUNTS + """
server_name: %s
cluster { name: HUB, listen: "127.0.0.1:%d", routes: [%s] }
leafnodes { listen: "127.0.0.1:%d" }
""" % (name, cluster_port, ", ".join('"nats-route://127.0.0.1:%d"' % p for p in routes),
       leaf_port)


def leaf_conf(name, store, cluster_port, routes, hub_leaf_port, migrate="true", disabled=False):
    return LEAF_ACCOUNTS + """
server_name: %s
jetstream { store_dir: "%s", domain: leaf }
cluster { name: LEAF, listen: "127.0.0.1:%d", routes: [%s] }
leafnodes { reconnect: "1s", remotes: [ { url: "nats-leaf://a:a@127.0.0.1:%d", account: A,
                                           ignore_discovered_servers: true,
                                           jetstream_cluster_migrate: %s, disabled: %s } ] }
""" % (name, store, cluster_port, ", ".join('"nats-route://127.0.0.1:%d"' % p for p in routes),
       hub_leaf_port, migrate, "true" if disabled else "false")


def start(launcher, name, conf, command=None):
    return launcher.start(command or pluggy_nats_command(), ["-m", "-1"], config=conf,
                          name=name, timeout=20, env=FAST_RAFT)


def topology(launcher, tmp_path, hub_of_leaf, migrate="true", hub_command=None):
    """Hub servers (ours, or ``hub_command``'s), then our leaf servers;
    leaf i dials hub ``hub_of_leaf[i]``."""
    nhubs = max(hub_of_leaf) + 1
    hport, hleaf = [free_port() for _ in range(nhubs)], [free_port() for _ in range(nhubs)]
    hubs = [start(launcher, "hub%d" % i, hub_conf("hub%d" % i, hport[i], hport, hleaf[i]),
                  hub_command)
            for i in range(nhubs)]
    lport = [free_port() for _ in hub_of_leaf]
    leafs = []
    for i, h in enumerate(hub_of_leaf):
        args = ("leaf%d" % i, tmp_path / ("leaf%d" % i), lport[i], lport, hleaf[h], migrate)
        leafs.append(start(launcher, "leaf%d" % i, leaf_conf(*args)))
        leafs[-1].conf_args = args  # what a reload rewrites
    for i, hub in enumerate(hubs):
        wait_leafs(hub, hub_of_leaf.count(i))
    return hubs, leafs


def stream_group(server):
    """This server's /raftz entry for the stream's group ({} when none)."""
    groups = server.monitor("raftz").get("$SYS") or {}
    for name, group in groups.items():
        if name != "_pn_meta_":
            return group
    return {}


def observers(leafs):
    return {s.name for s in leafs if stream_group(s).get("observer")}


def meta_observers(leafs):
    return {s.name for s in leafs
            if ((s.monitor("raftz").get("$SYS") or {}).get("_pn_meta_") or {}).get("observer")}


async def publish_until_acked(js, subject, payload, timeout=20.0):
    """A PubAck, retried while the stream has no leader reachable."""
    async def once():
        try:
            return await js.publish(subject, payload, timeout=1)
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
            return None
    return await until(once, timeout=timeout, message="a PubAck for %s" % subject)


@pytest.mark.parametrize("hub", ["ours", "go"])
def test_migrate_leads_from_a_server_the_hub_reaches(launcher, tmp_path, hub):
    """Leaf0 dials hub0, leaf1 and leaf2 dial hub1. The hub server behind
    the stream's leader is killed: its leaf servers turn observers, the
    lead moves to a leaf that still reaches a hub, and a client of the
    surviving hub server publishes on. The hub restarted, the observers are
    cleared. Then both hub servers are killed: every member is an observer
    and the stream has no leader (Go's behaviour); back, it leads again with
    every message. The same with a Go hub cluster (the migration is the
    leaf's own business)."""
    hub_of_leaf = [0, 1, 1]
    hub_command = require_go_nats_server() if hub == "go" else None
    hubs, leafs = topology(launcher, tmp_path, hub_of_leaf, hub_command=hub_command)
    by_name = {s.name: s for s in leafs}

    async def setup():
        ncl = await connect(leafs[0], user="a", password="a")
        await _create(ncl.jetstream(), name=STREAM, subjects=["orders.>"], num_replicas=3)
        # the create may be answered before the group has elected (as Go)
        info = await until(lambda: _with_leader(ncl.jetstream()), timeout=20,
                           message="a stream leader")
        assert len(info.cluster.replicas) == 2
        await ncl.close()
        return info.cluster.leader

    leader = run(setup(), timeout=60)
    dead = hub_of_leaf[int(leader[-1])]
    alive = 1 - dead
    expected_observers = {"leaf%d" % i for i, h in enumerate(hub_of_leaf) if h == dead}
    assert not observers(leafs)

    async def publish(server, first, count):
        nc = await connect(server, user="a", password="a")
        js = nc.jetstream(domain="leaf")
        for i in range(first, first + count):
            ack = await publish_until_acked(js, "orders.%d" % i, b"%d" % i)
            assert ack.stream == STREAM and ack.seq == i + 1
        info = await js.stream_info(STREAM)
        await nc.close()
        return info

    run(publish(hubs[alive], 0, 20), timeout=60)
    t0 = time.monotonic()
    hubs[dead].kill()
    wait_for(lambda: observers(leafs) == expected_observers, timeout=20,
             message="observers %s" % sorted(expected_observers))
    # the leaf servers that cannot reach their hub only turn observers after
    # a failed dial and the reconnect wait (1 s) after it
    assert time.monotonic() - t0 >= 1.0
    assert not meta_observers(leafs)  # the meta group is never touched (Go neither)
    info = run(publish(hubs[alive], 20, 20), timeout=60)
    assert info.cluster.leader not in expected_observers
    assert info.state.messages == 40
    # the lead stays away from the observers
    time.sleep(1.0)
    assert stream_group(by_name[info.cluster.leader]).get("state") == "LEADER"

    hubs[dead].start(timeout=20)
    wait_for(lambda: not observers(leafs), timeout=20, message="observers cleared")
    for i, hub in enumerate(hubs):
        wait_leafs(hub, hub_of_leaf.count(i))

    # no hub at all: no member may lead (the stream waits for the hub)
    for hub in hubs:
        hub.kill()
    wait_for(lambda: observers(leafs) == {s.name for s in leafs}, timeout=20,
             message="every member an observer")
    wait_for(lambda: not any(stream_group(s).get("state") == "LEADER" for s in leafs),
             timeout=10, message="no stream leader")
    for hub in hubs:
        hub.start(timeout=20)
    wait_for(lambda: not observers(leafs), timeout=20, message="observers cleared")

    async def after():
        nc = await connect(leafs[0], user="a", password="a")
        js = nc.jetstream()
        info = await until(lambda: _with_leader(js), timeout=20, message="a stream leader")
        assert info.state.messages == 40 and info.state.last_seq == 40
        await nc.close()

    run(after(), timeout=60)
    run(publish(hubs[dead], 40, 5), timeout=60)


async def _with_leader(js):
    """The stream's info once it has a leader, else None."""
    info = await js.stream_info(STREAM)
    return info if info.cluster.leader else None


def test_migrate_waits_for_leader_migrate_delay(launcher, tmp_path):
    """``jetstream_cluster_migrate { leader_migrate_delay: 3s }``: the
    members turn observers only once the hub has been away that long. The
    remote disabled by a reload clears them (Go: a remote no longer valid),
    and a stream leader is elected with the hub still down."""
    hubs, leafs = topology(launcher, tmp_path, [0, 0, 0],
                           migrate="{ leader_migrate_delay: 3s }")

    async def setup():
        ncl = await connect(leafs[0], user="a", password="a")
        await _create(ncl.jetstream(), name=STREAM, subjects=["orders.>"], num_replicas=3)
        await ncl.close()

    run(setup(), timeout=60)
    wait_for(lambda: all(stream_group(s) for s in leafs), timeout=20, message="stream groups")
    t0 = time.monotonic()
    hubs[0].kill()
    time.sleep(1.5)
    assert not observers(leafs), "observers before leader_migrate_delay"
    wait_for(lambda: observers(leafs) == {s.name for s in leafs}, timeout=20,
             message="every member an observer")
    assert time.monotonic() - t0 >= 3.0
    for leaf in leafs:
        leaf.reload(leaf_conf(*leaf.conf_args, disabled=True))
    wait_for(lambda: not observers(leafs), timeout=20, message="observers cleared")
    wait_for(lambda: any(stream_group(s).get("state") == "LEADER" for s in leafs),
             timeout=20, message="a stream leader with the remote disabled")


def test_without_migrate_the_leader_stays(launcher, tmp_path):
    """The option off (Go's default): a leaf server that loses its hub
    keeps leading its stream."""
    hubs, leafs = topology(launcher, tmp_path, [0, 0, 0], migrate="false")

    async def setup():
        ncl = await connect(leafs[0], user="a", password="a")
        await _create(ncl.jetstream(), name=STREAM, subjects=["orders.>"], num_replicas=3)
        info = await until(lambda: _with_leader(ncl.jetstream()), timeout=20,
                           message="a stream leader")
        await ncl.close()
        return info.cluster.leader

    leader = run(setup(), timeout=60)
    hubs[0].kill()
    time.sleep(3.0)  # three failed dials
    assert not observers(leafs)
    assert stream_group(next(s for s in leafs if s.name == leader)).get("state") == "LEADER"
