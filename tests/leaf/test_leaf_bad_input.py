"""Bad input on a hub's leafnode port: the same -ERR and the same close as the
Go nats-server gives (checked side by side), and a good leaf on the same hub
is not affected."""

import socket
import time

import pytest
from leaf_helpers import assert_hub_reaches_leaf

from pluggy_nats.testing.leaf import leafz

pytestmark = pytest.mark.interop

CONNECT = (b'CONNECT {"version":"2.15.1","server_id":"NRAW","name":"raw","cluster":"raw",'
           b'"headers":true,"remote_account":"$G","protocol":3}\r\n')

CASES = {
    "unknown verb": CONNECT + b"FOO bar\r\n",
    "queue without weight": CONNECT + b"LS+ a q\r\n",
    "bad size": CONNECT + b"LMSG foo x\r\nhi\r\n",
    "payload longer than its size": CONNECT + b"LMSG foo 2\r\nhiXX\r\n",
    "bad JSON": b"CONNECT {bad json\r\n",
    "a client on the leaf port": b'CONNECT {"lang":"python","version":"1"}\r\n',
    "invalid subject (stays open)": CONNECT + b"LS+ foo..bar\r\n",
    "spaces in the cluster name": CONNECT.replace(b'"cluster":"raw"', b'"cluster":"a b"'),
    "PING before CONNECT": b"PING\r\n",
    "LS+ before CONNECT": b"LS+ foo\r\n",
    "wrong password": CONNECT.replace(b'"name"', b'"user":"u","pass":"wrong","name"'),
    # the user may not publish nopub.>: a leaf sending it breaks the rules
    "publish permission violation": CONNECT.replace(b'"name"', b'"user":"u","pass":"p","name"')
    + b"LMSG nopub.x 1\r\nx\r\n",
    # nor subscribe to nosub.>: asking for a literal subject of it is refused
    "subscribe permission violation": CONNECT.replace(b'"name"',
                                                      b'"user":"u","pass":"p","name"')
    + b"LS+ nosub.x\r\n",
}
WITH_AUTH = ("wrong password", "publish permission violation", "subscribe permission violation")


def outcome(port, data):
    """What a raw peer sees after ``data``: the -ERR lines, and whether the
    hub closed the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.recv(65536)  # the INFO
        sock.sendall(data)
        deadline = time.monotonic() + 1.0
        got = b""
        closed = False
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                closed = True
                break
            got += chunk
        errs = [line.decode() for line in got.split(b"\r\n") if line.startswith(b"-ERR")]
        return errs, closed
    finally:
        sock.close()


AUTH = ('accounts { A: { users: [ {user: u, password: p, permissions: { publish: { deny: '
        '"nopub.>" }, subscribe: { deny: "nosub.>" } } } ] } }\n')


def test_leaf_bad_input_answered_as_go(make_hub, make_leaf):
    go, ours = make_hub(go=True, name="gohub"), make_hub(name="ourhub")
    go_auth = make_hub(go=True, name="goauth", config=AUTH)
    ours_auth = make_hub(name="ourauth", config=AUTH)
    leaf = make_leaf(ours, name="goodleaf")  # a good leaf on our hub throughout
    for name, data in CASES.items():
        pair = (go_auth, ours_auth) if name in WITH_AUTH else (go, ours)
        want = outcome(pair[0].leaf_port, data)
        got = outcome(pair[1].leaf_port, data)
        assert got == want, "%s: ours %r, Go %r" % (name, got, want)
        assert want[0] or not want[1] or name in ("queue without weight", "bad size",
                                                  "bad JSON"), name  # a real answer

    assert_hub_reaches_leaf(ours, leaf, "ok")
    assert leafz(ours)["leafnodes"] == 1
    assert "Traceback" not in ours.logs() + ours_auth.logs()


def test_leaf_permission_violations_close_with_go_text(make_hub):
    hub = make_hub(config=AUTH)
    errs, closed = outcome(hub.leaf_port, CASES["publish permission violation"])
    assert errs == ["-ERR 'Permissions Violation for Publish to \"nopub.x\"'"] and closed
    errs, closed = outcome(hub.leaf_port, CASES["subscribe permission violation"])
    assert errs == ["-ERR 'Permissions Violation for Subscription to \"nosub.x\"'"] and closed


def silent(port, wait=6.0):
    """Connect and say nothing: (-ERR lines, seconds until the hub closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    started = time.monotonic()
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    errs = [line.decode() for line in got.split(b"\r\n") if line.startswith(b"-ERR")]
    return errs, time.monotonic() - started


def test_leaf_silent_peer_times_out_like_go(make_hub):
    go, ours = make_hub(go=True, name="gohub"), make_hub(name="ourhub")
    want, go_took = silent(go.leaf_port)
    got, took = silent(ours.leaf_port)
    assert got == want == ["-ERR 'Authentication Timeout'"]
    assert abs(took - go_took) < 1.5, (took, go_took)


def test_leaf_min_version_refused_as_go(make_hub):
    go = make_hub(go=True, name="gohub", leafnodes='min_version: "2.10.0"')
    ours = make_hub(name="ourhub", leafnodes='min_version: "2.10.0"')
    old = CONNECT.replace(b'"version":"2.15.1"', b'"version":"2.9.0"')
    want, got = outcome(go.leaf_port, old), outcome(ours.leaf_port, old)
    assert got == want
    assert want == (["-ERR 'connection rejected since minimum version required is "
                     '"2.10.0"\''], True)
    assert outcome(ours.leaf_port, CONNECT) == ([], False)  # 2.15.1 is welcome
