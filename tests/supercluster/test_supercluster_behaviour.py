"""Super-cluster behaviour (GATEWAY.md), the same tests over every topology:
all Go (checks the fixture and the tests themselves), all ours, one cluster
of each, and clusters mixing both kinds of server.

Each test counts what crossed with the ``/gatewayz`` counters where the point
is what did NOT cross."""

import asyncio
import collections
import json
import urllib.request

import nats
import pytest

from pluggy_nats.testing.launch import Launcher, pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.supercluster import build_supercluster, gatewayz

pytestmark = pytest.mark.interop

# cluster spec, which servers run Go
TOPOLOGIES = {
    "go": ({"A": 1, "B": 1}, {"A": "all", "B": "all"}),
    "ours": ({"A": 1, "B": 1}, {}),
    "ours_to_go": ({"A": 1, "B": 1}, {"B": "all"}),
    "go_to_ours": ({"A": 1, "B": 1}, {"A": "all"}),
    "mixed_clusters": ({"A": 2, "B": 2}, {"A": (1,), "B": (0,)}),
}


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def supercluster(request, tmp_path_factory):
    """One super-cluster per topology for the whole module (each test uses its
    own subjects), stopped by PID at the end."""
    spec, go = TOPOLOGIES[request.param]
    launcher = Launcher(str(tmp_path_factory.mktemp("sc-" + request.param)))
    try:
        yield build_supercluster(launcher, spec, go=go, args=("-m", "-1"),
                                 go_command=require_go_nats_server() if go else None,
                                 our_command=pluggy_nats_command())
    finally:
        launcher.close()


def outbound_msgs(server, remote):
    out = gatewayz(server)["outbound_gateways"].get(remote)
    return out["connection"]["out_msgs"] if out else 0


async def settle(*clients):
    for nc in clients:
        await nc.flush()
    await asyncio.sleep(0.3)  # interest crosses the gateway (RS+ on the inbound)


def test_supercluster_messages_cross_exactly_once_in_order(supercluster):
    a, b = supercluster["A"][0], supercluster["B"][0]

    async def main():
        pub = await nats.connect(a.url, allow_reconnect=False)
        sub_nc = await nats.connect(b.url, allow_reconnect=False)
        sub = await sub_nc.subscribe("orders.>")
        await settle(sub_nc)
        for i in range(200):
            await pub.publish("orders.%d" % (i % 7), b"%d" % i)
        await pub.flush()
        got = [int((await sub.next_msg(timeout=5)).data) for _ in range(200)]
        assert got == list(range(200))
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.3)
        # and back the other way, with headers
        back = await pub.subscribe("back")
        await settle(pub)
        await sub_nc.publish("back", b"b", headers={"K": "v"})
        msg = await back.next_msg(timeout=5)
        assert msg.data == b"b" and msg.headers == {"K": "v"}
        await pub.close()
        await sub_nc.close()

    run(main())


def test_supercluster_no_message_crosses_without_interest(supercluster):
    a, b = supercluster["A"][0], supercluster["B"][0]

    async def main():
        pub = await nats.connect(a.url, allow_reconnect=False)
        sub_nc = await nats.connect(b.url, allow_reconnect=False)
        wanted = await sub_nc.subscribe("wanted")
        await settle(sub_nc)
        before = outbound_msgs(a, "B")
        for i in range(500):
            await pub.publish("unwanted.%d" % i, b"x")
        await pub.publish("wanted", b"w")
        await pub.flush()
        assert (await wanted.next_msg(timeout=5)).data == b"w"
        crossed = outbound_msgs(a, "B") - before
        # the wanted message, plus at most a couple of $SYS statsz updates
        assert 1 <= crossed <= 3, crossed
        await pub.close()
        await sub_nc.close()

    run(main())


def test_supercluster_request_reply_and_no_responders(supercluster):
    a, b = supercluster["A"][0], supercluster["B"][0]

    async def main():
        requester = await nats.connect(a.url, allow_reconnect=False)
        responder = await nats.connect(b.url, allow_reconnect=False)

        async def answer(msg):
            await msg.respond(b"re:" + msg.data)

        await responder.subscribe("svc", cb=answer)
        await settle(responder)
        # nats-py makes a fresh inbox per request here (old style): its
        # interest has not crossed yet when the request does (the _GR_ case)
        for i in range(5):
            reply = await requester.request("svc", b"%d" % i, timeout=5, old_style=True)
            assert reply.data == b"re:%d" % i
        for i in range(5):
            assert (await requester.request("svc", b"n%d" % i, timeout=5)).data == b"re:n%d" % i
        with pytest.raises(nats.errors.NoRespondersError):
            await requester.request("nobody.home", b"", timeout=5)
        await requester.close()
        await responder.close()

    run(main())


def test_supercluster_queue_group_stays_local_then_moves(supercluster):
    a, b = supercluster["A"][0], supercluster["B"][0]

    async def main():
        pub = await nats.connect(a.url, allow_reconnect=False)
        local = await nats.connect(a.url, allow_reconnect=False)
        remote = await nats.connect(b.url, allow_reconnect=False)
        counts = collections.Counter()

        def member(name):
            async def cb(msg):
                counts[name] += 1
            return cb

        local_sub = await local.subscribe("work", queue="q", cb=member("A"))
        await remote.subscribe("work", queue="q", cb=member("B"))
        await settle(local, remote)
        for i in range(100):
            await pub.publish("work", b"%d" % i)
        await pub.flush()
        await asyncio.sleep(0.5)
        assert counts == {"A": 100}
        await local_sub.unsubscribe()
        await settle(local)
        for i in range(100):
            await pub.publish("work", b"%d" % i)
        await pub.flush()
        for _ in range(100):
            if counts["B"] == 100:
                break
            await asyncio.sleep(0.05)
        assert counts == {"A": 100, "B": 100}
        for nc in (pub, local, remote):
            await nc.close()

    run(main())


def test_supercluster_gatewayz_shape(supercluster):
    a = supercluster["A"][0]
    gz = gatewayz(a, "?accs=1")
    assert gz["name"] == "A"
    out = gz["outbound_gateways"]["B"]
    assert out["configured"] is True
    assert out["connection"]["name"]  # the peer's server id
    accounts = {acc["name"]: acc for acc in out["accounts"]}
    assert accounts["$G"]["interest_mode"] == "Interest-Only"
    # each server of B dials one server of A: some server of A has B inbound
    assert any("B" in gatewayz(s)["inbound_gateways"] for s in supercluster["A"])
    only = gatewayz(a, "?gw_name=B")
    assert list(only["outbound_gateways"]) == ["B"]
    one = gatewayz(a, "?acc_name=$G")["outbound_gateways"]["B"]["accounts"]
    assert [acc["name"] for acc in one] == ["$G"]
    with urllib.request.urlopen("http://127.0.0.1:%d/varz" % a.http_port, timeout=5) as r:
        varz = json.loads(r.read())
    assert varz["gateway"]["name"] == "A"
    assert [g["name"] for g in varz["gateway"]["gateways"]] == ["B"]
