"""The write path's bookkeeping: flush_touched under re-entrancy."""

import gevent.socket

from pluggy_nats.client import ClientConnection
from pluggy_nats.server import Server


def test_flush_touched_is_reentrant_and_strands_nobody():
    """A flush that triggers another flush_touched (a close hook publishing an
    event does) must not leave any connection queued but unflushed."""
    server = Server(host="127.0.0.1", port=0, autoload=False)
    conns, peers = [], []
    for _ in range(4):
        ours, theirs = gevent.socket.socketpair()
        conn = ClientConnection(server, ours, ("127.0.0.1", 0))
        conns.append(conn)
        peers.append(theirs)
    first = conns[-1]  # popped first
    original = first.flush

    def flush_and_reenter():
        server.flush_touched()
        original()

    first.flush = flush_and_reenter
    for conn in conns:
        conn.send(b"PING\r\n")
    assert len(server.touched) == 4
    server.flush_touched()
    assert server.touched == []
    assert all(not c.flush_queued and not c.out for c in conns)
    for peer in peers:
        peer.settimeout(2)
        assert peer.recv(100) == b"PING\r\n"
