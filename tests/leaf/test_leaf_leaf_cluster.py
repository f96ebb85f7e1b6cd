"""A leaf cluster: two leaf servers routed together (one cluster name), each
with its own link to the same hub. Messages never come back into the leaf
cluster through the hub (nats-server's same-cluster rule), so every
subscriber gets each message once, wherever it was published."""

import pytest
from leaf_helpers import connect, exactly_once, until_delivered

from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for_mesh

pytestmark = pytest.mark.interop

LAYOUTS = {"py-hub_py-leafs": (False, False), "go-hub_py-leafs": (True, False),
           "py-hub_go-leafs": (False, True)}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_leaf_cluster_of_leafs_gets_each_message_once(layout, make_hub, make_leaf):
    hub_go, leafs_go = LAYOUTS[layout]
    hub = make_hub(go=hub_go)
    cluster = ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", "edge"]
    l1 = make_leaf(hub, go=leafs_go, args=cluster, name="l1")
    l2 = make_leaf(hub, go=leafs_go, args=cluster + ["--routes", l1.route_url], name="l2")
    wait_for_mesh([l1, l2])

    async def main():
        nh, n1, n2 = await connect(hub), await connect(l1), await connect(l2)
        on_l1, on_hub = await n1.subscribe("edge.x"), await nh.subscribe("edge.up")
        await n1.flush()
        await nh.flush()
        await until_delivered(nh, "edge.x", on_l1)
        await until_delivered(n2, "edge.up", on_hub)
        await exactly_once(n2, "edge.x", on_l1)   # l2 -> l1: over the route only
        await exactly_once(nh, "edge.x", on_l1)   # hub -> l1: its own link only
        await exactly_once(n2, "edge.up", on_hub)  # l2 -> hub: once
        await exactly_once(n1, "edge.up", on_hub)  # l1 -> hub: once
        for nc in (nh, n1, n2):
            await nc.close()

    run(main())
