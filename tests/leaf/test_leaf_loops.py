"""Loop detection as nats-server does it: two servers each dialling the other
keep one link and deliver once; a triangle of leafs is found by the $LDS.
subject coming back, refused with Go's error text and a 30 s redial delay."""

import socket
import time

import pytest
from leaf_helpers import connect, drain, until_delivered

from pluggy_nats.testing.leaf import leafz
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

LOOP_TEXT = 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s'


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def config(name, listen, dial):
    return ('server_name: %s\nleafnodes { listen: "127.0.0.1:%d", remotes: [ '
            '{ url: "nats-leaf://127.0.0.1:%d" } ] }\n' % (name, listen, dial))


@pytest.mark.parametrize("go", ["go", "py", "mixed"])
def test_leaf_mutual_remotes_keep_one_link(go, make_server, go_nats_server):
    pa, pb = free_ports(2)
    start_a = go_nats_server if go in ("go", "mixed") else make_server
    start_b = go_nats_server if go == "go" else make_server
    a = start_a("-m", "-1", config=config("A", pa, pb), name="A")
    b = start_b("-m", "-1", config=config("B", pb, pa), name="B")
    wait_for(lambda: leafz(a)["leafnodes"] >= 1 and leafz(b)["leafnodes"] >= 1, timeout=15,
             message="a link between A and B")
    # the second link closes the loop: refused, with Go's text on both sides
    wait_for(lambda: LOOP_TEXT in a.logs() + b.logs(), timeout=15, message="the loop error")

    async def main():
        na, nb = await connect(a), await connect(b)
        sub = await nb.subscribe("x")
        await nb.flush()
        await until_delivered(na, "x", sub)
        for i in range(20):
            await na.publish("x", b"%d" % i)
        await na.flush()
        got = [m.data for m in await drain(sub, quiet=0.5)]
        assert got == [b"%d" % i for i in range(20)]  # once each
        await na.close()
        await nb.close()

    run(main())
    assert leafz(a)["leafnodes"] == 1 and leafz(b)["leafnodes"] == 1


@pytest.mark.parametrize("go", ["go", "py", "mixed"])
def test_leaf_triangle_loop_detected(go, make_server, go_nats_server):
    """A -> B -> C -> A: $LDS. subjects come back around; the links that see
    their own are refused with Go's text and their diallers wait 30 s. Go
    2.15.1 cuts two of the three links this way (the loop is found from
    several ends at once), so do we; with a Go server in the middle all three
    may go. At most one link stays, and nobody redials at once."""
    pa, pb, pc = free_ports(3)
    ours = go_nats_server if go == "go" else make_server
    start = {"A": ours, "B": go_nats_server if go == "mixed" else ours, "C": ours}
    servers = {}
    for name, listen, dial in (("A", pa, pb), ("B", pb, pc), ("C", pc, pa)):
        servers[name] = start[name]("-m", "-1", config=config(name, listen, dial), name=name)
    logs = lambda: "".join(s.logs() for s in servers.values())  # noqa: E731
    wait_for(lambda: LOOP_TEXT in logs(), timeout=15, message="the loop error")
    wait_for(lambda: sum(leafz(s)["leafnodes"] for s in servers.values()) <= 2, timeout=10,
             message="at most one link (two ends) left")
    left = sum(leafz(s)["leafnodes"] for s in servers.values())
    time.sleep(1.5)  # longer than the reconnect interval: the 30 s delay holds
    assert sum(leafz(s)["leafnodes"] for s in servers.values()) == left
