"""Loop detection as nats-server does it: two servers each dialling the other
keep one link and deliver once; a triangle of leafs is found by the $LDS.
subject coming back, refused with Go's error text and a 30 s redial delay."""

import time

import pytest
from leaf_helpers import connect, drain, until_delivered

from pluggy_nats.testing.launch import free_ports
from pluggy_nats.testing.leaf import leafz
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

LOOP_TEXT = 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s'


def config(name, listen, dial):
    return ('server_name: %s\nleafnodes { listen: "127.0.0.1:%d", remotes: [ '
            '{ url: "nats-leaf://127.0.0.1:%d" } ] }\n' % (name, listen, dial))


def ring(starters):
    """Servers ``[(name, start)]``, each listening for leafs and dialling the
    next one (the last dials the first). Ports are picked before the servers
    start, so another process may take one meanwhile: then try again."""
    for _attempt in range(3):
        ports = free_ports(len(starters))
        servers = []
        try:
            for i, (name, start) in enumerate(starters):
                dial = ports[(i + 1) % len(ports)]
                servers.append(start("-m", "-1", config=config(name, ports[i], dial), name=name))
            return servers
        except RuntimeError as exc:
            if "already in use" not in str(exc):
                raise
            for server in servers:
                server.stop()
    raise AssertionError("no free ports for the ring after 3 attempts")


@pytest.mark.parametrize("go", ["go", "py", "mixed"])
def test_leaf_mutual_remotes_keep_one_link(go, make_server, go_nats_server):
    start_a = go_nats_server if go in ("go", "mixed") else make_server
    start_b = go_nats_server if go == "go" else make_server
    a, b = ring([("A", start_a), ("B", start_b)])
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
    2.15.1 cuts one or two of the three links this way (the loop may be found
    from several ends at once, by timing), so do we; with a Go server in the
    middle all three may go. The loop is broken (at most two links stay) and
    nobody redials at once."""
    ours = go_nats_server if go == "go" else make_server
    middle = go_nats_server if go == "mixed" else ours
    servers = dict(zip("ABC", ring([("A", ours), ("B", middle), ("C", ours)]), strict=True))
    logs = lambda: "".join(s.logs() for s in servers.values())  # noqa: E731
    wait_for(lambda: LOOP_TEXT in logs(), timeout=15, message="the loop error")
    wait_for(lambda: sum(leafz(s)["leafnodes"] for s in servers.values()) <= 4, timeout=10,
             message="the loop broken: at most two of the three links (four ends) left")
    left = sum(leafz(s)["leafnodes"] for s in servers.values())
    time.sleep(1.5)  # longer than the reconnect interval: the 30 s delay holds
    assert sum(leafz(s)["leafnodes"] for s in servers.values()) == left
