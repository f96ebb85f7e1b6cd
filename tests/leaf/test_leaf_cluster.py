"""A leaf on a hub cluster: it reaches subscribers on every node through the
node it dialled, learns the other nodes' leafnode URLs (route gossip), and
fails over to another node when its node dies (kill -9). Clusters of ours,
of Go, and a leaf of ours on a Go cluster."""

import pytest
from leaf_helpers import connect, exactly_once, until_delivered

from pluggy_nats.testing.leaf import leafz, wait_leafs
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for, wait_for_mesh

pytestmark = pytest.mark.interop

LAYOUTS = {  # (hub cluster nodes run Go, leaf runs Go)
    "py-cluster_py-leaf": (False, False),
    "go-cluster_py-leaf": (True, False),
    "py-cluster_go-leaf": (False, True),
    "mixed-cluster_py-leaf": ("mixed", False),
}


def hub_cluster(make_hub, go, n=3):
    nodes = []
    for i in range(n):
        node_go = go if go != "mixed" else i == 1
        args = ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", "hubc"]
        if nodes:
            args += ["--routes", nodes[0].route_url]
        nodes.append(make_hub(go=node_go, args=args, name="hub%d" % i))
    wait_for_mesh(nodes)
    return nodes


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_leaf_on_a_hub_cluster_reaches_every_node_and_fails_over(layout, make_hub, make_leaf):
    cluster_go, leaf_go = LAYOUTS[layout]
    nodes = hub_cluster(make_hub, cluster_go)
    leaf = make_leaf(nodes[0], go=leaf_go)  # one URL: the others come by gossip
    assert leafz(nodes[0])["leafnodes"] == 1

    async def across(hub_node):
        nl, nh = await connect(leaf), await connect(hub_node)
        on_leaf = await nl.subscribe("down.>")
        on_hub = await nh.subscribe("up.>")
        await nl.flush()
        await nh.flush()
        await until_delivered(nh, "down.probe", on_leaf)
        await until_delivered(nl, "up.probe", on_hub)
        await exactly_once(nh, "down.x", on_leaf)
        await exactly_once(nl, "up.x", on_hub)

        async def responder(msg):
            await msg.respond(b"leaf")

        await nl.subscribe("svc.leaf", cb=responder)
        await nl.flush()
        for _ in range(100):
            try:
                reply = await nh.request("svc.leaf", b"", timeout=0.3)
                break
            except Exception:
                continue
        assert reply.data == b"leaf"
        await nl.close()
        await nh.close()

    for node in nodes:  # every node, the one it dialled and the others, both ways
        run(across(node))
    wait_for(lambda: len(leaf_urls_known(leaf, nodes)) == 3 or leaf_go, timeout=10,
             message="the leaf learns every hub node's leafnode URL")
    nodes[0].kill()
    wait_for(lambda: sum(leafz(n)["leafnodes"] for n in nodes[1:]) == 1, timeout=20,
             message="the leaf fails over to another hub node")
    wait_leafs(leaf, 1)
    run(across(nodes[2]))


def leaf_urls_known(leaf, nodes):
    """The hub nodes whose leafnode port appears in the leaf's log of
    discovered URLs (ours logs them; Go's leaf does not say)."""
    text = leaf.logs()
    return [n for n in nodes if "127.0.0.1:%d" % n.leaf_port in text]
