"""Other shapes: a daisy chain (A <- B <- C) with C killed and restarted (the
interest must come back without touching B, nats-server #2448), a remote with
``hub: true`` (roles swapped), and ``isolate_leafnode_interest`` on a hub."""

import pytest
from leaf_helpers import connect, drain, exactly_once, until_delivered

from pluggy_nats.testing.leaf import leafz, wait_leafs
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("middle_go", [False, True], ids=["py-middle", "go-middle"])
def test_leaf_daisy_chain_restart_the_end(middle_go, make_hub, make_leaf):
    a = make_hub(name="A")
    b = make_leaf(a, go=middle_go, name="B", leafnodes='listen: "127.0.0.1:-1",')
    c = make_leaf(b, name="C")

    async def both_ways():
        na, nc = await connect(a), await connect(c)
        on_c, on_a = await nc.subscribe("chain.down"), await na.subscribe("chain.up")
        await nc.flush()
        await na.flush()
        await until_delivered(na, "chain.down", on_c, timeout=15)
        await until_delivered(nc, "chain.up", on_a, timeout=15)
        await exactly_once(na, "chain.down", on_c)
        await exactly_once(nc, "chain.up", on_a)
        await na.close()
        await nc.close()

    run(both_ways())
    c.kill()
    wait_leafs(b, 1)  # B still has its link to A
    wait_for_count(b, 1)
    c.start()
    wait_leafs(c, 1)
    run(both_ways())


def wait_for_count(server, n):
    from pluggy_nats.testing.raw import wait_for

    wait_for(lambda: leafz(server)["leafnodes"] == n, timeout=10,
             message="%s has %d leaf links" % (server.name, n))


@pytest.mark.parametrize("go", [False, True], ids=["py", "go"])
def test_leaf_remote_with_hub_true_swaps_roles(go, make_hub, make_leaf):
    """The dialler says hub: true: it acts as the hub, the acceptor as the spoke."""
    acceptor = make_hub(go=go, name="acceptor")
    dialler = make_leaf(acceptor, go=go, remote="hub: true", name="dialler")
    wait_leafs(acceptor, 1)
    assert leafz(acceptor)["leafs"][0]["is_spoke"] is True
    assert leafz(dialler)["leafs"][0]["is_spoke"] is False

    async def main():
        n1, n2 = await connect(acceptor), await connect(dialler)
        s1, s2 = await n1.subscribe("x.>"), await n2.subscribe("y.>")
        await n1.flush()
        await n2.flush()
        await until_delivered(n2, "x.p", s1)
        await until_delivered(n1, "y.p", s2)
        await n1.close()
        await n2.close()

    run(main())


@pytest.mark.parametrize("go", [False, True], ids=["py", "go"])
@pytest.mark.parametrize("isolate", [False, True], ids=["open", "isolated"])
def test_leaf_isolated_hub_keeps_leafs_apart(go, isolate, make_hub, make_leaf):
    """isolate_leafnode_interest: the hub does not tell a leaf what other leafs
    want, so leaf-to-leaf traffic stops at the hub; hub-to-leaf still flows."""
    hub = make_hub(go=go, leafnodes="isolate_leafnode_interest: %s" % str(isolate).lower())
    l1 = make_leaf(hub, go=go, name="l1")
    l2 = make_leaf(hub, go=go, name="l2")

    async def main():
        n1, n2, nh = await connect(l1), await connect(l2), await connect(hub)
        s1 = await n1.subscribe("iso.x")
        await n1.flush()
        await until_delivered(nh, "iso.x", s1)  # the hub always reaches its leafs
        if isolate:
            for _ in range(5):
                await n2.publish("iso.x", b"from l2")
            await n2.flush()
            assert await drain(s1, quiet=0.5) == []
            assert "iso.x" not in (leafz(l2, "?subs=1")["leafs"][0].get("subscriptions_list")
                                   or [])
        else:
            await until_delivered(n2, "iso.x", s1)
        for nc in (n1, n2, nh):
            await nc.close()

    run(main())
