"""kill -9 of a leaf and of its hub: the link comes back, interest is complete
again within seconds, and nothing is delivered twice (all four pairings)."""

import pytest
from leaf_helpers import (
    PAIRINGS,
    assert_hub_reaches_leaf,
    connect,
    exactly_once,
    until_delivered,
)

from pluggy_nats.testing.launch import free_port
from pluggy_nats.testing.leaf import leaf_interest, leafz, wait_leafs
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("pairing", sorted(PAIRINGS))
def test_leaf_kill_leaf_and_restart(pairing, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[pairing]
    hub = make_hub(go=hub_go)
    leaf = make_leaf(hub, go=leaf_go)

    async def subscribe_on_leaf():
        nl = await connect(leaf)
        await nl.subscribe("fault.>")
        await nl.flush()
        return nl

    async def first():
        nl = await subscribe_on_leaf()
        wait_for(lambda: leaf_interest(hub, "fault.>"), message="leaf interest on the hub")
        await nl.close()

    run(first())
    leaf.kill()  # SIGKILL: no goodbye on the link
    wait_for(lambda: leafz(hub)["leafnodes"] == 0, timeout=10, message="hub drops the link")
    assert not leaf_interest(hub, "fault.>")
    leaf.start()
    wait_leafs(leaf, 1)

    assert_hub_reaches_leaf(hub, leaf, "fault")


@pytest.mark.parametrize("pairing", sorted(PAIRINGS))
def test_leaf_kill_hub_and_restart(pairing, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[pairing]
    hub = make_hub(go=hub_go, leaf_port=free_port())
    leaf = make_leaf(hub, go=leaf_go)

    async def main():
        nl = await connect(leaf)
        sub = await nl.subscribe("fault.>")  # stays subscribed through the outage
        await nl.flush()
        nh = await connect(hub)
        await until_delivered(nh, "fault.probe", sub)
        await nh.close()
        hub.kill()
        wait_for(lambda: leafz(leaf)["leafnodes"] == 0, timeout=10, message="leaf sees it")
        hub.start()
        wait_leafs(leaf, 1, timeout=15)
        nh = await connect(hub)
        # the leaf re-sent its interest on reconnect: the hub reaches it again
        await until_delivered(nh, "fault.probe2", sub)
        await exactly_once(nh, "fault.y", sub)
        # and the other way
        back = await nh.subscribe("back.>")
        await nh.flush()
        await until_delivered(nl, "back.probe", back)
        await exactly_once(nl, "back.z", back)
        await nh.close()
        await nl.close()

    run(main())
