"""A leaf extending its hub's JetStream (same domain, shared system account),
as nats-server does it (docs/architecture.md section 16,
plugins/jetstream/cluster/extend.py): the leaf has two remotes, one bound
to the system account and one to the client account A; its meta node joins
the hub's meta group ``_pn_meta_`` as an observer (never leads), a stream
created from a leaf client lands on the leaf and is used from the hub, a
stream in the hub is used from the leaf, all through plain ``$JS.API``."""

import asyncio
import time

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig, Placement

from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.leaf import wait_leafs
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.raw import wait_for

from .helpers import connect, until
from .helpers import create_stream as _create

FAST_RAFT = {"PLUGGY_NATS_RAFT_SCALE": "0.1"}  # Go's timers x 0.1

ACCOUNTS = """
accounts {
  A: { jetstream: enabled, users: [ {user: a, password: a} ] }
  SYS: { users: [ {user: s, password: s} ] }
}
system_account: SYS
"""


def hub_conf(name, store, cluster_port, routes, domain=""):
    return ACCOUNTS + """
server_name: %s
jetstream { store_dir: "%s" %s }
cluster { name: HUB, listen: "127.0.0.1:%d", routes: [%s] }
leafnodes { listen: "127.0.0.1:-1" }
""" % (name, store, (", domain: %s" % domain) if domain else "", cluster_port,
       ", ".join('"nats-route://127.0.0.1:%d"' % p for p in routes))


def leaf_conf(name, store, hubs, hint="will_extend", domain="", sys_remote=""):
    urls = lambda user: ", ".join('"nats-leaf://%s:%s@127.0.0.1:%d"' % (user, user, h.leaf_port)
                                  for h in hubs)
    return ACCOUNTS + """
server_name: %s
jetstream { store_dir: "%s" %s %s }
leafnodes { remotes: [ { urls: [%s], account: A },
                       { urls: [%s], account: SYS %s } ] }
""" % (name, store, (", extension_hint: %s" % hint) if hint else "",
       (", domain: %s" % domain) if domain else "", urls("a"), urls("s"), sys_remote)


def start(launcher, name, conf, timeout=20.0, command=None):
    return launcher.start(command or pluggy_nats_command(), ["-m", "-1"], config=conf,
                          name=name, timeout=timeout, env=FAST_RAFT)


def hub_cluster(launcher, tmp_path, n):
    ports = [free_port() for _ in range(n)]
    return [start(launcher, "hub%d" % i, hub_conf("hub%d" % i, tmp_path / ("hub%d" % i),
                                                  ports[i], ports))
            for i in range(n)]


def meta(server):
    return server.monitor("jsz").get("meta_cluster") or {}


def raft_meta(server):
    groups = server.monitor("raftz").get("SYS") or {}
    return groups.get("_pn_meta_") or {}


def wait_member(hubs, leaf, timeout=20.0):
    """Until the leaf is a voting member of the hub's meta group (as its
    leader sees it) and knows that leader."""
    def joined():
        leader = meta(hubs[0]).get("leader")
        server = next((h for h in hubs if h.name == leader), None)
        if server is None:
            return False
        peers = raft_meta(server).get("peers") or {}
        voter = any(p["name"] == leaf.name and p.get("known") for p in peers.values())
        return voter and meta(leaf).get("leader") == leader
    wait_for(joined, timeout=timeout, message="%s in the hub's meta group" % leaf.name)


async def _ready(js, subject, stream):
    """Until the stream leader's subject interest has crossed the link: one
    probe stored, then purged."""
    async def stored():
        try:
            await js.publish(subject, b"probe", timeout=1)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError):
            return False
        await js.purge_stream(stream)
        return True
    await until(stored, timeout=15, message="the stream taking publishes")


async def _use_from(js, subject, stream, count, durable):
    """Publish ``count`` messages, then fetch and ack them all."""
    await _ready(js, subject, stream)
    acks = await asyncio.gather(*[js.publish(subject, b"%d" % i) for i in range(count)])
    assert len({a.seq for a in acks}) == count and all(a.stream == stream for a in acks)
    sub = await js.pull_subscribe(subject, durable, config=ConsumerConfig(ack_wait=30))
    got = []
    while len(got) < count:
        for msg in await sub.fetch(count - len(got), timeout=5):
            got.append(int(msg.data))
            await msg.ack()
    assert sorted(got) == list(range(count))


def test_extend_one_hub_server(launcher, tmp_path):
    """One hub server (Go's smallest clustered setup: a route to itself)
    and one leaf with ``extension_hint: will_extend``: the leaf's meta is
    an observer in the hub's group and never leads; a stream created from
    the leaf lands on the leaf and is used from the hub (DIRECT.GET
    included); a stream in the hub is used from the leaf."""
    port = free_port()
    hub = start(launcher, "hub", hub_conf("hub", tmp_path / "hub", port, [port]))
    leaf = start(launcher, "leaf", leaf_conf("leaf", tmp_path / "leaf", [hub]))
    wait_leafs(hub, 2)
    wait_member([hub], leaf)
    assert meta(hub)["leader"] == "hub" and meta(leaf)["leader"] == "hub"
    assert "Observer Mode on" in leaf.logs()

    async def body():
        nch, ncl = await connect(hub, user="a", password="a"), \
            await connect(leaf, user="a", password="a")
        jsh, jsl = nch.jetstream(), ncl.jetstream()
        edge = await _create(jsl, name="EDGE", subjects=["edge.>"], allow_direct=True)
        assert edge.cluster.name == "leaf" and edge.cluster.leader == "leaf"
        central = await _create(jsh, name="CENTRAL", subjects=["central.>"], allow_direct=True)
        assert central.cluster.name == "HUB" and central.cluster.leader == "hub"
        # each side sees both through its own $JS.API
        assert (await jsh.stream_info("EDGE")).cluster.leader == "leaf"
        assert (await jsl.stream_info("CENTRAL")).cluster.leader == "hub"
        assert sorted(await jsl.streams_info(), key=lambda s: s.config.name)[0] \
            .config.name == "CENTRAL"
        await _use_from(jsh, "edge.x", "EDGE", 20, "hubwork")
        await _use_from(jsl, "central.x", "CENTRAL", 20, "leafwork")
        # DIRECT.GET handed across the link to the stream's leader
        first = await jsh.get_msg("EDGE", seq=2, direct=True)
        assert (first.seq, first.data) == (2, b"0")
        last = await jsh.get_last_msg("EDGE", "edge.x", direct=True)
        assert (last.seq, last.data) == (21, b"19")
        last = await jsl.get_last_msg("CENTRAL", "central.x", direct=True)
        assert (last.seq, last.data) == (21, b"19")
        with pytest.raises(nats.js.errors.NotFoundError):
            await jsh.get_last_msg("EDGE", "edge.none", direct=True)
        info = await jsl.stream_info("EDGE")
        assert info.state.messages == 20
        await nch.close()
        await ncl.close()

    run(body(), timeout=60)
    assert meta(leaf)["leader"] == "hub"
    # restarted, the leaf remembers the contact (Go's domainExt) and is back
    # in the hub's group as an observer with its stream
    leaf.stop()
    leaf.start(timeout=20)
    assert "Keeping JetStream metadata controller Observer Mode on - due to previous " \
        "contact" in leaf.logs()
    wait_leafs(hub, 2)
    wait_member([hub], leaf)

    async def after():
        nch = await connect(hub, user="a", password="a")
        info = await until(lambda: nch.jetstream().stream_info("EDGE"), timeout=15,
                           message="EDGE from the hub after the restart")
        assert info.cluster.leader == "leaf" and info.state.messages == 20
        await nch.close()

    run(after(), timeout=30)
    assert raft_meta(leaf).get("state") != "LEADER"
    # both sides ours: no "another JetStream" notice on either
    assert "runs another JetStream" not in hub.logs() + leaf.logs()


def test_extend_hub_cluster_leader_killed(launcher, tmp_path):
    """A 3-server hub cluster and a leaf observer: killing the hub's meta
    leader elects another hub server, never the leaf (4 voters, the leaf's
    vote counts); the leaf's stream and an R3 hub stream stay usable from
    both sides."""
    hubs = hub_cluster(launcher, tmp_path, 3)
    leaf = start(launcher, "leaf", leaf_conf("leaf", tmp_path / "leaf", hubs))
    wait_member(hubs, leaf)
    names = {h.name for h in hubs}

    async def create():
        ncl = await connect(leaf, user="a", password="a")
        jsl = ncl.jetstream()
        edge = await _create(jsl, name="EDGE", subjects=["edge.>"], allow_direct=True)
        assert edge.cluster.leader == "leaf"
        central = await _create(jsl, name="CENTRAL", subjects=["central.>"], num_replicas=3,
                                placement=Placement(cluster="HUB"))
        assert central.cluster.name == "HUB" and central.cluster.leader in names
        await ncl.close()

    run(create(), timeout=60)
    first = meta(leaf)["leader"]
    assert first in names
    victim = next(h for h in hubs if h.name == first)
    victim.kill()
    alive = [h for h in hubs if h is not victim]
    wait_for(lambda: meta(leaf).get("leader") in names - {first}, timeout=20,
             message="a new hub meta leader")
    assert meta(alive[0])["leader"] == meta(leaf)["leader"]
    assert raft_meta(leaf).get("state") != "LEADER" and "leaf" not in \
        {meta(h).get("leader") for h in alive}

    async def use():
        nch = await connect(alive[0], user="a", password="a")
        ncl = await connect(leaf, user="a", password="a")
        await _use_from(nch.jetstream(), "edge.y", "EDGE", 10, "fromhub")
        await _use_from(ncl.jetstream(), "central.y", "CENTRAL", 10, "fromleaf")
        await nch.close()
        await ncl.close()

    run(use(), timeout=60)
    assert meta(leaf)["leader"] in names - {first}


@pytest.mark.parametrize("hint", ["no_extend", ""])
def test_standalone_leaf_without_will_extend_keeps_its_own(launcher, tmp_path, hint):
    """A standalone leaf (no cluster) extends only with ``extension_hint:
    will_extend`` (Go: "Standalone server started in clustered mode do not
    support extending domains"): with ``no_extend`` or no hint it keeps its
    own JetStream, and the hub's plain $JS.API never sees its streams."""
    port = free_port()
    hub = start(launcher, "hub", hub_conf("hub", tmp_path / "hub", port, [port]))
    leaf = start(launcher, "leaf", leaf_conf("leaf", tmp_path / "leaf", [hub], hint=hint))
    wait_leafs(hub, 2)

    async def body():
        ncl = await connect(leaf, user="a", password="a")
        info = await ncl.jetstream().add_stream(name="OWN", subjects=["own.>"])
        assert info.cluster is None or not info.cluster.leader  # not clustered
        await ncl.close()
        nch = await connect(hub, user="a", password="a")
        with pytest.raises((nats.js.errors.NotFoundError, nats.js.errors.ServiceUnavailableError,
                            nats.errors.TimeoutError)):
            await nch.jetstream(timeout=2).stream_info("OWN")
        await nch.close()

    run(body(), timeout=40)
    assert "do not support extending domains" in leaf.logs()
    assert not leaf.monitor("jsz").get("meta_cluster", {}).get("leader")
    time.sleep(0.5)
    assert "leaf" not in {r.get("name") for r in meta(hub).get("replicas", [])}


BAD = [
    ("jetstream { store_dir: %(store)s, extension_hint: maybe }\n"
     "cluster { name: C, listen: \"127.0.0.1:-1\", routes: [\"nats://127.0.0.1:1\"] }\n",
     "expected 'no_extend' for string value, got 'maybe'"),
    ("jetstream { store_dir: %(store)s, extension_hint: 5 }\n",
     "interface conversion: interface {} is int64, not string"),
    ("leafnodes { remotes: [ { url: \"nats://127.0.0.1:1\", jetstream_cluster_migrate: yes1 }"
     " ] }\n", "Expected boolean or map for jetstream_cluster_migrate, got string"),
    ("leafnodes { remotes: [ { url: \"nats://127.0.0.1:1\", js_cluster_migrate: 1 } ] }\n",
     "Expected boolean or map for jetstream_cluster_migrate, got int64"),
    ("leafnodes { remotes: [ { url: \"nats://127.0.0.1:1\", jetstream_cluster_migrate: "
     "{ leader_migrate_delay: bad } } ] }\n",
     'error parsing leader_migrate_delay: time: invalid duration "bad"'),
]


@pytest.mark.parametrize("index", range(len(BAD)))
def test_extension_config_errors_as_go(tmp_path, index):
    """``extension_hint`` and ``jetstream_cluster_migrate`` refused with Go's
    words (Go 2.15.1 checked here too when its binary is installed)."""
    import subprocess

    from pluggy_nats.testing.launch import go_nats_server_command

    text, expected = BAD[index]
    conf = tmp_path / "bad.conf"
    conf.write_text("server_name: x\n" + text % {"store": '"%s"' % (tmp_path / "js")})
    commands = [("ours", pluggy_nats_command())]
    go = go_nats_server_command()
    if go:
        commands.append(("go", go))
    else:
        print("Go nats-server not installed: only ours checked")
    for who, command in commands:
        out = subprocess.run(list(command) + ["-p", "-1", "-c", str(conf)], timeout=20,
                             capture_output=True, text=True)
        assert out.returncode != 0, who
        assert expected in out.stdout + out.stderr, (who, (out.stdout + out.stderr)[-800:])


def test_will_extend_leaf_with_another_domain_runs_its_own(launcher, tmp_path):
    """Domains differ: the link carries Go's denies for the system account
    too, the leaf turns its observer off (logged, remembered) and founds
    its own meta group; the hub reaches it by its domain only."""
    port = free_port()
    hub = start(launcher, "hub", hub_conf("hub", tmp_path / "hub", port, [port], domain="hub"))
    leaf = start(launcher, "leaf", leaf_conf("leaf", tmp_path / "leaf", [hub], domain="edge"))
    wait_leafs(hub, 2)
    wait_for(lambda: meta(leaf).get("leader") == "leaf", timeout=20,
             message="the leaf's own meta leader")
    assert "Observer Mode off" in leaf.logs()
    assert "leaf" not in {r.get("name") for r in meta(hub).get("replicas", [])}

    async def body():
        ncl = await connect(leaf, user="a", password="a")
        info = await _create(ncl.jetstream(), name="OWN", subjects=["own.>"])
        assert info.cluster.leader == "leaf"
        await ncl.close()
        nch = await connect(hub, user="a", password="a")
        edge = nch.jetstream(domain="edge")
        got = await until(lambda: edge.stream_info("OWN"), timeout=15, message="edge API")
        assert got.config.name == "OWN"
        # the lone hub server's meta group (size 2, as Go's with a route to
        # itself) has no second voter now: 10008; never the leaf's stream
        with pytest.raises((nats.js.errors.NotFoundError, nats.errors.TimeoutError,
                            nats.js.errors.ServiceUnavailableError)):
            await nch.jetstream(timeout=2).stream_info("OWN")
        await nch.close()

    run(body(), timeout=40)
    with open(tmp_path / "leaf" / "jetstream" / "$SYS" / "_js_" / "_pn_meta_" /
              "extension.json") as f:
        assert "not_extended" in f.read()


@pytest.mark.parametrize("go_side", ["hub", "leaf"])
def test_mixed_extension_with_go_is_explained(launcher, tmp_path, go_side):
    """Our meta group and Go's never mix (docs/architecture.md section 16),
    so a same-domain system-account link between ours and Go extends
    nothing. Ours says so once in its log instead of leaving a silent
    10008: our leaf under a Go hub (and how to get out of it), our hub
    under a Go leaf."""
    go = require_go_nats_server()
    port = free_port()
    hub = start(launcher, "hub", hub_conf("hub", tmp_path / "hub", port, [port]),
                command=go if go_side == "hub" else None)
    leaf = start(launcher, "leaf", leaf_conf("leaf", tmp_path / "leaf", [hub]),
                 command=go if go_side == "leaf" else None)
    wait_leafs(hub, 2)
    ours, other = (leaf, "hub") if go_side == "hub" else (hub, "leaf")
    line = "leaf server %s shares the system account and domain but runs another " \
        "JetStream" % other
    wait_for(lambda: line in ours.logs(), timeout=20, message="the log line")
    assert ours.logs().count(line) == 1
    assert ("waits for a meta leader (10008)" in ours.logs()) == (go_side == "hub")
