"""The composed super-cluster (examples/composed/) with JetStream: a central
JetStream leaf (Go, domain ``central``) on cluster A and an edge leaf (ours,
domain ``edge``) on cluster B. The edge mirrors the centre's ORDERS and the
centre sources the edge's LOCAL back; the edge's link is cut in the middle of
the traffic. Afterwards the mirror equals ORDERS sequence by sequence and
COLLECT holds every LOCAL message once, in order.

    cluster A: A0 ours, A1 Go, A2 ours  <= gateways =>  cluster B: B0 Go, B1 ours, B2 Go
    CJS (Go, central) -> A0                             EDGE (ours, edge) -> proxy -> B2
"""

import asyncio

import pytest
from nats.js import api as jsapi

from pluggy_nats.testing.faults import TcpProxy
from pluggy_nats.testing.plugin import run

from .helpers import connect, js_conf, retrying
from .test_jslinks_faults import _check, _publish_steadily, _Via

pytestmark = pytest.mark.interop

CLUSTER_CONFIG = """
accounts { T: {}, SYS: {} }
system_account: SYS
leafnodes {
  listen: "127.0.0.1:-1"
  authorization { users: [ {user: leaf, password: pleaf} ] }
}
"""


def test_composed_edge_mirrors_centre_and_sources_back_with_a_cut(make_supercluster,
                                                                    make_leaf, tmp_path):
    sc = make_supercluster({"A": 3, "B": 3}, go={"A": (1,), "B": (0, 2)},
                           config=CLUSTER_CONFIG)
    cjs = make_leaf(sc["A"][0], user="leaf", password="pleaf", go=True, name="CJS",
                    config=js_conf("central", tmp_path / "cjs"))
    proxy = TcpProxy(sc["B"][2].leaf_port, name="edgelink")
    edge = make_leaf(_Via(proxy.port), user="leaf", password="pleaf", name="EDGE",
                     config=js_conf("edge", tmp_path / "edge"),
                     remote="ignore_discovered_servers: true")
    try:
        async def main():
            nc, ne = await connect(cjs), await connect(edge)
            central, local = nc.jetstream(), ne.jetstream()
            await central.add_stream(name="ORDERS", subjects=["orders.>"])
            await local.add_stream(name="LOCAL", subjects=["edge.>"])
            await retrying(lambda: ne.jetstream(domain="central").stream_info("ORDERS"),
                           tries=200)
            await local.add_stream(name="ORDERS_MIRROR", mirror=jsapi.StreamSource(
                name="ORDERS", external=jsapi.ExternalStream(api="$JS.central.API")))
            await retrying(lambda: nc.jetstream(domain="edge").stream_info("LOCAL"),
                           tries=200)
            await central.add_stream(name="COLLECT", sources=[jsapi.StreamSource(
                name="LOCAL", external=jsapi.ExternalStream(api="$JS.edge.API"))])
            pubs = asyncio.gather(_publish_steadily(central, "orders.new", 300, 0.005),
                                  _publish_steadily(local, "edge.reading", 300, 0.005))
            await asyncio.sleep(0.4)
            proxy.cut()  # the edge's leaf link, in the middle of the traffic
            await asyncio.sleep(2.0)
            proxy.heal()
            await pubs
            await _check(central, local, 300, origin="ORDERS", mirror="ORDERS_MIRROR",
                         agg="COLLECT", filt="edge.>")
            await nc.close()
            await ne.close()

        run(main(), timeout=150)
    finally:
        proxy.close()
