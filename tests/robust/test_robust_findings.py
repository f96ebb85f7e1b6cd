"""Regression tests for the findings of issue 18 that are not plain protocol
replies (those are scripts in tests/interop/test_interop_protocol_diff.py,
checked against the Go server byte for byte: findings 6, 7, 8)."""

import contextlib
import gc
import io
import os
import subprocess
import tracemalloc

import pytest

from pluggy_nats.cli import serve
from pluggy_nats.testing import fuzz
from pluggy_nats.testing.launch import go_nats_server_command

DEEP_CONNECT = b"CONNECT " + b"[" * 1000 + b"\r\n"


# -- finding 1: traceback before authentication; the log rule ----------------------------


@pytest.mark.parametrize("kind", ["py", "go"])
def test_deep_connect_before_auth_closes_silently(kind, make_server, go_nats_server):
    start = make_server if kind == "py" else go_nats_server
    server = start("--user", "u", "--pass", "p")
    mark = fuzz.log_size(server.logfile)
    reply, _ = fuzz.exchange("127.0.0.1", server.port, DEEP_CONNECT + b"PING\r\n")
    assert reply == b""  # closed without a word, as nats-server
    assert fuzz.ping("127.0.0.1", server.port, b'CONNECT {"user":"u","pass":"p"}\r\n')
    if kind == "py":
        fuzz.check_log(server.logfile, mark, len(DEEP_CONNECT))


def test_log_rule_every_reproducer(make_server):
    """Garbage never logs a traceback and never more than it sent (here: nothing
    at the default level), with and without auth."""
    for args in ((), ("--user", "u", "--pass", "p")):
        server = make_server(*args)
        mark = fuzz.log_size(server.logfile)
        sent = 0
        for data in fuzz.CLIENT_REPRODUCERS:
            fuzz.exchange("127.0.0.1", server.port, data)
            sent += len(data)
        assert fuzz.ping("127.0.0.1", server.port, b'CONNECT {"user":"u","pass":"p"}\r\n')
        grown = fuzz.check_log(server.logfile, mark, sent)
        assert "error" not in grown.lower(), grown


# -- findings 2 and 3: the monitoring port ------------------------------------------------


@pytest.mark.parametrize("kind", ["py", "go"])
def test_monitor_follows_the_client_host(kind, make_server, go_nats_server):
    server = (make_server if kind == "py" else go_nats_server)("-m", "-1")
    assert "Starting http monitor on 127.0.0.1:%d" % server.http_port in server.logs()
    server2 = (make_server if kind == "py" else go_nats_server)(
        config='http: "0.0.0.0:-1"\n')  # set explicitly: every address
    assert "Starting http monitor on 0.0.0.0:" in server2.logs()


def test_monitor_too_many_headers_is_431_without_traceback(make_server):
    server = make_server("-m", "-1")
    mark = fuzz.log_size(server.logfile)
    request = b"GET /varz HTTP/1.1\r\n" + b"H: v\r\n" * 101 + b"\r\n"
    reply, _ = fuzz.exchange("127.0.0.1", server.http_port, request, read_info=False)
    assert reply.startswith(b"HTTP/1.1 431 "), reply
    fuzz.check_log(server.logfile, mark, 0)  # nothing logged at all
    reply, _ = fuzz.exchange("127.0.0.1", server.http_port,
                             b"GET /varz HTTP/1.1\r\nHost: x\r\n" + b"H: v\r\n" * 90 + b"\r\n",
                             read_info=False)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:100]


# -- findings 4 and 5: configuration ------------------------------------------------------


def _check(command, tmp_path, text):
    """(exit code, output) of checking ``text`` with ``-t``: ours in-process (the
    code ``serve -t`` runs, without a Python start-up per case), Go as a process."""
    path = os.path.join(str(tmp_path), "t.conf")
    with open(path, "w") as f:
        f.write(text)
    if command is OURS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = serve(["-t", "-c", path])
        return rc, out.getvalue()
    r = subprocess.run(command + ["-t", "-c", path], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


OURS = object()


@pytest.mark.parametrize("text, message", [
    ("cluster: 5\n", "Expected map to define cluster, got int64"),
    ('cluster: "x"\n', "Expected map to define cluster, got string"),
])
def test_cluster_not_a_map(tmp_path, text, message):
    rc, out = _check(OURS, tmp_path, text)
    assert rc == 1 and "t.conf:1:" in out and message in out, out
    assert "Traceback" not in out and "AttributeError" not in out, out
    go = go_nats_server_command()
    if go:
        rc, out = _check(go, tmp_path, text)
        assert rc != 0 and message in out, out


@pytest.mark.parametrize("text", [
    "cluster { authorization: 5 }\n", "cluster { authorization: { user: 5 } }\n",
    "cluster { routes: 5 }\n", "cluster { name: 1 }\n", "cluster { port: \"x\" }\n",
    "cluster { no_advertise: 5 }\n", "cluster { accounts: 5 }\n", "cluster { listen: 1.5 }\n",
    "listen: 1.5\n", "listen: 127.0.\n", "http: 1.5\n",
])
def test_config_values_go_rejects(tmp_path, text):
    rc, out = _check(OURS, tmp_path, text)
    assert rc == 1 and "t.conf:1:" in out, out
    assert "object" not in out and "Traceback" not in out, out  # no Python internals
    go = go_nats_server_command()
    if go:
        rc, go_out = _check(go, tmp_path, text)
        assert rc != 0, "Go accepts %r: %s" % (text, go_out)


# -- finding 9: the closed-connection ring ------------------------------------------------


def test_closed_ring_keeps_a_compact_record():
    import gevent.socket

    from pluggy_nats.client import ClientConnection
    from pluggy_nats.connection import ClosedReason
    from pluggy_nats.options import Options
    from pluggy_nats.server import Server

    server = Server(Options(), host="127.0.0.1", port=0, autoload=True)
    connect = (b'CONNECT {"verbose":false,"pedantic":false,"name":"n","lang":"python3",'
               b'"version":"2.9.0"}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\n')

    def one():
        ours, theirs = gevent.socket.socketpair()
        conn = ClientConnection(server, ours, ("127.0.0.1", 40000))
        server.register(conn)
        conn.parser.feed(connect)
        server.flush_touched()  # as the reader loop does after every read
        conn.close(ClosedReason.CLIENT_CLOSED)
        theirs.close()

    for _ in range(50):
        one()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            one()
        gc.collect()
        per_entry = (tracemalloc.get_traced_memory()[0] - base) / 500
    finally:
        tracemalloc.stop()
    # a whole connection was ~2.9 KB; nats-server keeps ~1.5 KB
    assert per_entry < 1000, per_entry
    record = server.closed_conns[-1]
    assert (record.name, record.lang, record.in_msgs, record.closed_reason) == (
        "n", "python3", 1, ClosedReason.CLIENT_CLOSED)
    assert not hasattr(record, "parser") and not hasattr(record, "sock")
