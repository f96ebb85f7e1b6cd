"""Super-cluster topologies: a gateway peer killed and restarted (interest
rebuilt, nothing duplicated), implicit discovery from one seed URL (across a
Go cluster too), three clusters with a queue group served exactly once, and
``$SYS`` server pings answered by every server."""

import asyncio
import json

import nats
import pytest

from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for_mesh
from pluggy_nats.testing.supercluster import gatewayz

pytestmark = pytest.mark.interop


def test_supercluster_peer_restart_rebuilds_interest(make_supercluster, launcher):
    sc = make_supercluster({"A": 1, "B": 1}, go={"A": "all"})  # A Go, B ours
    a, b = sc["A"][0], sc["B"][0]
    b.stop()
    b.start()  # same config file, same gateway port
    wait_for_mesh([a, b], timeout=30)

    async def main():
        pub = await nats.connect(a.url, allow_reconnect=False)
        sub_nc = await nats.connect(b.url, allow_reconnect=False)
        sub = await sub_nc.subscribe("after.restart")
        await sub_nc.flush()
        got = []
        for _ in range(100):  # interest crosses within a moment
            await pub.publish("after.restart", b"probe")
            await pub.flush()
            try:
                got.append(await sub.next_msg(timeout=0.1))
                break
            except nats.errors.TimeoutError:
                continue
        assert got, "interest not rebuilt after the restart"
        await asyncio.sleep(0.2)
        while True:  # drain late probes
            try:
                await sub.next_msg(timeout=0.2)
            except nats.errors.TimeoutError:
                break
        for i in range(50):
            await pub.publish("after.restart", b"%d" % i)
        await pub.flush()
        received = [int((await sub.next_msg(timeout=5)).data) for _ in range(50)]
        assert received == list(range(50))
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.3)  # nothing twice
        await pub.close()
        await sub_nc.close()

    run(main())


@pytest.mark.parametrize("spec, go", [
    ({"A": 1, "B": 1, "C": 1}, {}),
    ({"A": 1, "B": 1, "C": 1}, {"A": "all"}),
    ({"A": 1, "B": 1, "C": 1}, {"B": "all"}),
    ({"A": 2, "B": 2}, {"A": (1,), "B": (0,)}),
], ids=["ours", "go_seed", "go_joiner", "mixed_clusters_over_routes"])
def test_supercluster_implicit_discovery(make_supercluster, spec, go):
    """Every cluster but A names only A's first server; the others are found
    by gossip on gateways and over routes (wait_for_mesh inside the fixture
    proves every pair of servers), and show as implicit in /gatewayz."""
    sc = make_supercluster(spec, go=go, seed_only=True, args=("-m", "-1"), timeout=40)
    assert len(sc.servers) == sum(spec.values())
    for name, servers in sc.clusters.items():
        for server in servers:
            gz = gatewayz(server)
            remotes = sorted(gz["outbound_gateways"])
            assert remotes == sorted(n for n in spec if n != name), (server.name, remotes)
            if name == "A":  # A named nobody: every outbound was discovered
                assert not any(g["configured"] for g in gz["outbound_gateways"].values())


def test_supercluster_three_clusters_queue_served_once(make_supercluster):
    sc = make_supercluster({"A": 1, "B": 1, "C": 1}, go={"C": "all"})
    a, b, c = sc["A"][0], sc["B"][0], sc["C"][0]

    async def main():
        pub = await nats.connect(a.url, allow_reconnect=False)
        counts = {"B": 0, "C": 0}
        members = []
        for name, server in (("B", b), ("C", c)):
            nc = await nats.connect(server.url, allow_reconnect=False)
            members.append(nc)

            async def cb(msg, name=name):
                counts[name] += 1
            await nc.subscribe("jobs", queue="workers", cb=cb)
            await nc.flush()
        await asyncio.sleep(0.5)
        for i in range(200):
            await pub.publish("jobs", b"%d" % i)
        await pub.flush()
        for _ in range(100):
            if sum(counts.values()) >= 200:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert sum(counts.values()) == 200, counts  # each message to one cluster only
        for nc in members + [pub]:
            await nc.close()

    run(main())


SYS_CONF = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  APP: { users: [{user: app, password: app}] }
}
system_account: SYS
no_auth_user: app
"""


def test_supercluster_sys_ping_answered_by_every_server(make_supercluster):
    sc = make_supercluster({"A": 2, "B": 1}, go={"B": "all"}, config=SYS_CONF)
    a = sc["A"][0]

    async def main():
        nc = await nats.connect(a.url.replace("nats://", "nats://sys:sys@"),
                                allow_reconnect=False)

        async def ask(subject):
            answers = {}
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.flush()
            await nc.publish(subject, b"", reply=inbox)
            await nc.flush()
            while True:
                try:
                    # all three in: wait a little longer only for a duplicate
                    msg = await sub.next_msg(timeout=0.5 if len(answers) == 3 else 2)
                except nats.errors.TimeoutError:
                    break
                data = json.loads(msg.data)
                name = data["server"]["name"]
                # exactly once: a mapped reply never also travels by plain
                # interest, a pinned account's interest never rides the pool
                assert name not in answers, "%s answered twice to %s" % (name, subject)
                answers[name] = data
            await sub.unsubscribe()
            return answers

        servers = {"py-A-0", "py-A-1", "go-B-0"}
        assert set(await ask("$SYS.REQ.SERVER.PING")) == servers
        # statsz counts routes, gateways and servers as nats-server does
        for _ in range(40):  # every server has heard every other's STATSZ
            ping = await ask("$SYS.REQ.SERVER.PING")
            if all(p["statsz"].get("active_servers") == 3 for p in ping.values()):
                break
        else:
            raise AssertionError({n: p["statsz"].get("active_servers") for n, p in ping.items()})
        varz = {n: v["data"] for n, v in (await ask("$SYS.REQ.SERVER.PING.VARZ")).items()}
        go_stats = ping["go-B-0"]["statsz"]
        assert go_stats["gateways"][0]["inbound_connections"] == 2  # one per A server
        inbound = 0
        for name in ("py-A-0", "py-A-1"):
            stats = ping[name]["statsz"]
            assert set(go_stats) - set(stats) <= {"jetstream", "gomemlimit"}, name
            assert {r["name"] for r in stats["routes"]} == servers - {name, "go-B-0"}
            assert len(stats["routes"]) == varz[name]["routes"]  # route connections
            assert varz[name]["remotes"] == 1  # route peers (servers)
            assert set(stats["routes"][0]) == set(go_stats["gateways"][0]) - {
                "gwid", "inbound_connections"} | {"rid", "pending"}
            [gateway] = stats["gateways"]
            assert set(gateway) == set(go_stats["gateways"][0]) and gateway["name"] == "B"
            inbound += gateway["inbound_connections"]
            assert stats["received"]["msgs"] >= stats["received_from_clients"]["msgs"]
        assert inbound == 1  # go-B-0 has one outbound to cluster A
        gatewayz = await ask("$SYS.REQ.SERVER.PING.GATEWAYZ")
        assert set(gatewayz) == {"py-A-0", "py-A-1", "go-B-0"}
        assert {name: answer["data"]["name"] for name, answer in gatewayz.items()} == \
            {"py-A-0": "A", "py-A-1": "A", "go-B-0": "B"}
        await nc.close()

    run(main())
