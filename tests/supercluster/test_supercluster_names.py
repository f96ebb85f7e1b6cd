"""Names across a super-cluster: a server name used in two clusters closes
the gateway ("Duplicate Server Name", as nats-server #2923), and
``reject_unknown_cluster`` refuses a cluster it was not told about."""

import pytest

from pluggy_nats.testing.launch import free_port
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

CONF = """
server_name: %s
gateway {
  name: "%s"
  listen: "127.0.0.1:%d"
  %s
  gateways: [ %s ]
}
"""


def remote(name, port):
    return '{name: "%s", url: "nats://127.0.0.1:%d"}' % (name, port)


@pytest.mark.parametrize("b_is_go", [False, True], ids=["ours", "go_peer"])
def test_supercluster_duplicate_server_name(make_server, go_nats_server, b_is_go):
    pa, pb = free_port(), free_port()
    a = make_server(config=CONF % ("same", "A", pa, "", remote("B", pb)), name="a")
    start_b = go_nats_server if b_is_go else make_server
    b = start_b(config=CONF % ("same", "B", pb, "", remote("A", pa)), name="b")
    wait_for(lambda: "Duplicate Server Name" in a.logs() or "duplicate_server_name" in a.logs(),
             timeout=15, message="our server refusing the duplicate name")
    assert b.proc.poll() is None and a.proc.poll() is None


def test_supercluster_reject_unknown_cluster(make_server, go_nats_server):
    pa, pb, pc = free_port(), free_port(), free_port()
    # A knows B only; C dials A anyway.
    a = make_server(config=CONF % ("a0", "A", pa, "reject_unknown_cluster: true",
                                   remote("B", pb)), name="a")
    c = go_nats_server(config=CONF % ("c0", "C", pc, "", remote("A", pa)), name="c")
    wait_for(lambda: 'Connection to gateway "A" rejected' in c.logs(), timeout=15,
             message="C refused by A")
    assert "gateway_refused" in a.logs()
