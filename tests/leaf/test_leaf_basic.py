"""A hub and a leaf, each ours or the Go nats-server (all four pairings):
pub/sub both ways with headers, request/reply across the link, queue groups
(local member first), unsubscribe removes interest."""

import asyncio
import collections

import pytest
from leaf_helpers import PAIRINGS, connect, drain, until_delivered

from pluggy_nats.testing.leaf import leaf_interest
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop


@pytest.fixture(params=sorted(PAIRINGS))
def topology(request, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[request.param]
    hub = make_hub(go=hub_go)
    leaf = make_leaf(hub, go=leaf_go)
    return hub, leaf


def test_leaf_pub_sub_both_ways(topology):
    hub, leaf = topology

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        on_leaf = await nl.subscribe("down.>")
        on_hub = await nh.subscribe("up.>")
        await until_delivered(nh, "down.probe", on_leaf)
        await until_delivered(nl, "up.probe", on_hub)
        for i in range(50):
            await nh.publish("down.%d" % i, b"d%d" % i, headers={"N": str(i)})
            await nl.publish("up.%d" % i, b"u%d" % i)
        await nh.flush()
        await nl.flush()
        down = [await on_leaf.next_msg(timeout=3) for _ in range(50)]
        up = [await on_hub.next_msg(timeout=3) for _ in range(50)]
        assert [m.data for m in down] == [b"d%d" % i for i in range(50)]
        assert [m.headers["N"] for m in down] == [str(i) for i in range(50)]
        assert [m.subject for m in up] == ["up.%d" % i for i in range(50)]
        assert await drain(on_leaf) == [] and await drain(on_hub) == []  # nothing twice
        # unsubscribing removes the interest across the link
        assert leaf_interest(hub, "down.>")
        await on_leaf.unsubscribe()
        await nl.flush()
        wait_for(lambda: not leaf_interest(hub, "down.>"), message="LS- down.>")
        await nh.close()
        await nl.close()

    run(main())


def test_leaf_request_reply_both_ways(topology):
    hub, leaf = topology

    async def main():
        nh, nl = await connect(hub), await connect(leaf)

        async def on_leaf(msg):
            await msg.respond(b"leaf:" + msg.data)

        async def on_hub(msg):
            await msg.respond(b"hub:" + msg.data)

        await nl.subscribe("svc.leaf", cb=on_leaf)
        await nh.subscribe("svc.hub", cb=on_hub)
        await nl.flush()
        await nh.flush()
        probe_l = await nl.subscribe("probe.l")
        probe_h = await nh.subscribe("probe.h")
        await until_delivered(nh, "probe.l", probe_l)
        await until_delivered(nl, "probe.h", probe_h)
        for i in range(20):
            assert (await nh.request("svc.leaf", b"%d" % i, timeout=3)).data == b"leaf:%d" % i
            assert (await nl.request("svc.hub", b"%d" % i, timeout=3)).data == b"hub:%d" % i
        await nh.close()
        await nl.close()

    run(main())


def test_leaf_queue_groups_prefer_local(topology):
    """nats-server 2.15.1 on the wire: 2 members on the hub, 1 on the leaf; hub
    publishes reach hub members only, leaf publishes the leaf member only;
    without a local member the other side's get everything, each message once."""
    hub, leaf = topology

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        counts = collections.defaultdict(collections.Counter)  # phase -> member -> n

        def member(name):
            async def cb(msg):
                counts[msg.data.split(b":")[0]][name] += 1
            return cb

        async def publish(nc, phase, n=100):
            for i in range(n):
                await nc.publish("work", b"%s:%d" % (phase, i))
            await nc.flush()
            for _ in range(200):
                if sum(counts[phase].values()) >= n:
                    break
                await asyncio.sleep(0.025)
            await asyncio.sleep(0.2)
            assert sum(counts[phase].values()) == n, counts[phase]  # each exactly once
            return set(counts[phase])

        async def until_reaches(nc, phase, names):
            for i in range(200):
                await nc.publish("work", b"%s:%d" % (phase, i))
                await nc.flush()
                if set(counts[phase]) & names:
                    return
                await asyncio.sleep(0.025)
            raise AssertionError("no queue delivery to %s" % names)

        h1 = await nh.subscribe("work", queue="q", cb=member("h1"))
        h2 = await nh.subscribe("work", queue="q", cb=member("h2"))
        l1 = await nl.subscribe("work", queue="q", cb=member("l1"))
        await nh.flush()
        await nl.flush()
        probe_l = await nl.subscribe("probe.l")
        probe_h = await nh.subscribe("probe.h")
        await until_delivered(nh, "probe.l", probe_l)
        await until_delivered(nl, "probe.h", probe_h)
        wait_for(lambda: leaf_interest(hub, "work") and leaf_interest(leaf, "work"),
                 message="queue interest both ways")

        assert await publish(nh, b"hub") == {"h1", "h2"}
        assert await publish(nl, b"leaf") == {"l1"}
        # the leaf's member is gone: leaf publishes go to the hub's members
        await l1.unsubscribe()
        await nl.flush()
        await until_reaches(nl, b"warm1", {"h1", "h2"})
        assert await publish(nl, b"leaf2") <= {"h1", "h2"}
        # and without hub members, hub publishes reach a leaf member
        await h1.unsubscribe()
        await h2.unsubscribe()
        await nh.flush()
        await nl.subscribe("work", queue="q", cb=member("l2"))
        await nl.flush()
        await until_reaches(nh, b"warm2", {"l2"})
        assert await publish(nh, b"hub2") == {"l2"}
        await nh.close()
        await nl.close()

    run(main())


def test_leaf_fixture_reports_link(topology):
    """make_leaf returned: both sides list the link in /leafz with the peer's
    name and the bound account; the leaf side is the spoke."""
    from pluggy_nats.testing.leaf import leafz, wait_leafs

    hub, leaf = topology
    wait_leafs(hub, 1)
    on_leaf = leafz(leaf)["leafs"][0]
    on_hub = leafz(hub)["leafs"][0]
    assert on_leaf["is_spoke"] is True and on_hub.get("is_spoke", False) is False
    assert on_leaf["account"] == "$G" and on_hub["account"] == "$G"
    assert on_leaf["name"] == hub.name and on_hub["name"] == leaf.name


@pytest.mark.parametrize("hub_go", [False, True], ids=["py-hub_go-leaf", "go-hub_py-leaf"])
def test_leaf_compression_negotiated_off(hub_go, make_hub, make_leaf):
    """A Go side asking for S2 (the hub's block or the leaf's remote) still gets a
    working plain link with ours: we never name an S2 mode, so it stays off."""
    hub = make_hub(go=hub_go, leafnodes="compression: s2_fast" if hub_go else "")
    leaf = make_leaf(hub, go=not hub_go, remote="" if hub_go else "compression: s2_best")
    from pluggy_nats.testing.leaf import leafz

    assert leafz(leaf)["leafs"][0].get("compression", "off") in ("off", "not supported")

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        sub = await nl.subscribe("z.>")
        await nl.flush()
        await until_delivered(nh, "z.probe", sub)
        payload = bytes(range(256)) * 64  # 16 KiB: would show any framing mix-up
        for _ in range(20):
            await nh.publish("z.big", payload)
        await nh.flush()
        got = await drain(sub, quiet=0.5)
        assert len(got) == 20 and all(m.data == payload for m in got)
        await nh.close()
        await nl.close()

    run(main())
