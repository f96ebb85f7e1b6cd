"""Interest modes on the wire, against a fake peer cluster "B" on a raw socket
(GATEWAY.md section 5), for Go and for us:

* a peer that does not offer interest-only (no ``gateway_iom``) gets messages
  optimistically until it says ``RS-``/``A-``, and again after ``RS+``/``A+``;
* a peer that offers it gets nothing before its ``gateway_cmd`` 2/3 bracket;
* the acceptor's side: a message for an account nobody has gets ``A-``.
"""

import json
import re
import socket
import time

import pytest

from pluggy_nats.testing.raw import RawClient

pytestmark = pytest.mark.interop

CONF = """
server_name: srv-%s
gateway {
  name: "A"
  listen: "127.0.0.1:-1"
  gateways: [ {name: "B", url: "nats://127.0.0.1:%d"} ]
}
"""

_RMSG = re.compile(rb"RMSG (\S+) (\S+) (?:(\S+) )?(\d+)\r\n")


class FakePeer:
    """Cluster B's side of our server's outbound: accepts it, says INFO, then
    reads what arrives (answering PINGs) and sends interest verbs."""

    def __init__(self, listener, iom):
        listener.settimeout(10)
        self.sock, _ = listener.accept()
        info = {"server_id": "NFAKEB", "server_name": "fake-b", "version": "2.15.1",
                "proto": 3, "go": "", "host": "127.0.0.1", "port": 1, "headers": True,
                "max_payload": 1048576, "gateway": "B", "gateway_urls": ["127.0.0.1:1"],
                "gateway_url": "127.0.0.1:1", "gateway_nrp": True}
        if iom:
            info["gateway_iom"] = True
        self.sock.sendall(b"INFO %s\r\n" % json.dumps(info).encode())
        self.buf = b""
        self.read(until=rb"CONNECT (\{.*?\})\r\n")
        self.read(until=rb"INFO (\{.*?\})\r\n")

    def read(self, until=None, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            if until is not None:
                m = re.search(until, self.buf)
                if m:
                    return m
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if until is not None:
                    raise AssertionError("expected %r, got %r" % (until, self.buf[-500:]))
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError("peer closed the gateway")
            self.buf += data
            if b"PING\r\n" in data:
                self.sock.sendall(b"PONG\r\n")

    def sync(self):
        """Our verbs before this are processed (a PING's PONG comes after)."""
        self.buf = b""
        self.sock.sendall(b"PING\r\n")
        self.read(until=rb"PONG\r\n")
        self.buf = b""

    def subjects(self, timeout=0.5):
        """Subjects of the $G messages that arrived within ``timeout``."""
        self.read(timeout=timeout)
        got = [m.group(2).decode() for m in _RMSG.finditer(self.buf) if m.group(1) == b"$G"]
        self.buf = b""
        return got

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


@pytest.fixture(params=["go", "ours"])
def server_and_listener(request, make_server, go_nats_server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    start = go_nats_server if request.param == "go" else make_server
    server = start(config=CONF % (request.param, listener.getsockname()[1]))
    yield server, listener
    listener.close()


def publisher(server):
    client = RawClient("127.0.0.1", server.port)
    client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    client.expect(rb".*PONG\r\n")

    def publish(*subjects):
        client.send(b"".join(b"PUB %s 1\r\nx\r\n" % s.encode() for s in subjects) +
                    b"PING\r\n")
        client.expect(rb".*PONG\r\n")
    return publish


def test_supercluster_optimistic_peer_is_told_what_not_to_send(server_and_listener):
    server, listener = server_and_listener
    peer = FakePeer(listener, iom=False)
    publish = publisher(server)
    publish("opt.a", "opt.b")
    assert peer.subjects() == ["opt.a", "opt.b"]  # optimistic: sent without interest
    peer.send(b"RS- $G opt.a\r\n")
    peer.sync()
    publish("opt.a", "opt.b")
    assert peer.subjects() == ["opt.b"]
    peer.send(b"RS+ $G opt.a\r\n")
    peer.sync()
    publish("opt.a")
    assert peer.subjects() == ["opt.a"]
    peer.send(b"A- $G\r\n")
    peer.sync()
    publish("opt.c", "opt.a")
    assert peer.subjects() == []
    peer.send(b"A+ $G\r\n")
    peer.sync()
    publish("opt.c")
    assert peer.subjects() == ["opt.c"]
    peer.close()


def test_supercluster_interest_only_peer_needs_the_bracket(server_and_listener):
    server, listener = server_and_listener
    peer = FakePeer(listener, iom=True)
    publish = publisher(server)
    publish("io.a")
    assert peer.subjects() == []
    peer.send(b"RS+ $G io.a\r\n")  # before cmd 2: ignored
    peer.sync()
    publish("io.a")
    assert peer.subjects() == []
    cmd = {"gateway": "B", "gateway_cmd_payload": "JEc="}
    peer.send(b"INFO %s\r\nRS+ $G io.a\r\nRS+ $G io.w.*\r\nINFO %s\r\n" % (
        json.dumps(dict(cmd, gateway_cmd=2)).encode(),
        json.dumps(dict(cmd, gateway_cmd=3)).encode()))
    peer.sync()
    publish("io.a", "io.b", "io.w.1")
    assert peer.subjects() == ["io.a", "io.w.1"]
    peer.send(b"RS- $G io.a\r\n")
    peer.sync()
    publish("io.a", "io.w.2")
    assert peer.subjects() == ["io.w.2"]
    peer.close()
