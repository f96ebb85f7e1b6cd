"""One server over a raw socket: errors, limits, liveness, and bad input."""

import asyncio
import json
import os
import socket
import time
import urllib.request

import nats

from pluggy_nats.testing.plugin import run

CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'


def test_client_info_on_accept(server, raw_client):
    c = raw_client(server)
    info = c.info
    assert info["proto"] == 1 and info["headers"] is True
    assert info["max_payload"] == 1048576
    assert info["port"] == server.port
    assert info["version"].startswith("2.")
    assert "pluggy_nats" in info
    assert len(info["server_id"]) == 56 and info["server_id"].startswith("N")


def test_client_ping_pong_before_and_after_connect(server, raw_client):
    c = raw_client(server)
    c.send(b"PING\r\n")
    c.expect(rb"PONG\r\n")
    c.send(CONNECT + b"ping\r\n")
    c.expect(rb"PONG\r\n")
    # a protocol-1 client gets an INFO confirming its connection after the first PONG
    c.expect(rb'INFO \{.*"connect_info":true.*\} \r\n')


def test_client_verbose_and_pedantic(server, raw_client):
    c = raw_client(server)
    c.send(b'CONNECT {"verbose":true,"pedantic":true}\r\n')
    c.expect(rb"\+OK\r\n")
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\n")
    c.expect(rb"\+OK\r\n\+OK\r\nMSG foo 1 2\r\nhi\r\n")  # +OK precedes delivery
    c.send(b"PUB foo.* 1\r\nx\r\nSUB a..b 2\r\nPING\r\n")
    c.expect(rb"-ERR 'Invalid Publish Subject'\r\n\+OK\r\n-ERR 'Invalid Subject'\r\nPONG\r\n")


def test_client_unknown_op_closes_only_that_connection(server, raw_client):
    bystander = raw_client(server)
    bystander.send(CONNECT + b"SUB x 1\r\nPING\r\n")
    bystander.expect(rb"PONG\r\n")
    bad = raw_client(server)
    bad.send(b"GARBAGE\r\n")
    bad.expect(rb"-ERR 'Unknown Protocol Operation'\r\n")
    bad.expect_closed()
    pub = raw_client(server)
    pub.send(CONNECT + b"PUB x 2\r\nok\r\n")
    bystander.expect(rb"(INFO .*?\r\n)?MSG x 1 2\r\nok\r\n")


def test_client_max_payload_violation_closes(make_server, raw_client):
    server = make_server("--max_payload", "100")
    c = raw_client(server)
    assert c.info["max_payload"] == 100
    c.send(CONNECT + b"PUB foo 101\r\n")
    c.expect(rb"-ERR 'Maximum Payload Violation'\r\n")
    c.expect_closed()


def test_client_control_line_limit(server, raw_client):
    c = raw_client(server)
    c.send(CONNECT + b"PUB " + b"a" * 5000 + b" 1\r\n")
    c.expect(rb"-ERR 'maximum control line exceeded'\r\n")
    c.expect_closed()


def test_client_garbage_never_hurts_others(server, raw_client):
    """Random bytes from many connections; the server keeps serving a good client."""
    good = raw_client(server)
    good.send(CONNECT + b"SUB ok 1\r\nPING\r\n")
    good.expect(rb"PONG\r\n")
    rng = __import__("random").Random(1234)
    for i in range(40):
        bad = raw_client(server)
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        if i % 3 == 0:
            blob = CONNECT + blob
        try:
            bad.send(blob)
        except OSError:
            pass
        bad.read_all(timeout=0.05)
        bad.close()
    good.send(b"PUB ok 3\r\nyes\r\nPING\r\n")
    good.expect(rb"(INFO .*?\r\n)?MSG ok 1 3\r\nyes\r\nPONG\r\n")


def test_client_stale_connection(make_server, raw_client):
    server = make_server("--ping_interval", "0.2", "--ping_max", "2")
    c = raw_client(server)
    c.send(CONNECT)
    c.expect(rb"PING\r\n", timeout=3)
    c.expect(rb"PING\r\n", timeout=3)
    c.expect(rb"-ERR 'Stale Connection'\r\n", timeout=3)
    c.expect_closed()


def test_client_answering_pings_stays_connected(make_server, raw_client):
    server = make_server("--ping_interval", "0.1", "--ping_max", "1")
    c = raw_client(server)
    c.send(CONNECT)
    for _ in range(5):
        c.expect(rb"PING\r\n", timeout=3)
        c.send(b"PONG\r\n")
    c.send(b"PING\r\n")
    c.expect(rb"(PING\r\n)*PONG\r\n")


def test_client_slow_consumer_is_cut_off(make_server, raw_client, wait_for):
    """A subscriber that never reads is closed once max_pending is exceeded
    (the reason shows in /connz); the publisher and other clients carry on."""
    server = make_server("--max_pending", "262144", "--max_payload", "65536", "-m", "-1")
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(CONNECT + b"SUB flood 1\r\nPING\r\n")
    time.sleep(0.2)
    pub = raw_client(server)
    pub.send(CONNECT)
    payload = os.urandom(32768)
    frame = b"PUB flood %d\r\n%s\r\n" % (len(payload), payload)
    for _ in range(512):  # 16 MiB: more than max_pending plus the kernel's buffers
        pub.send(frame)
    pub.send(b"PING\r\n")
    pub.expect(rb"(INFO .*?\r\n)?PONG\r\n", timeout=10)

    def closed_reasons():
        url = "http://127.0.0.1:%d/connz?state=closed" % server.http_port
        with urllib.request.urlopen(url, timeout=5) as resp:
            return [c.get("reason") for c in json.load(resp)["connections"]]

    assert wait_for(lambda: "Slow Consumer (Pending Bytes)" in closed_reasons())
    slow.close()
    other = raw_client(server)
    other.send(CONNECT + b"PING\r\n")
    other.expect(rb"PONG\r\n")


def test_client_max_connections(make_server, raw_client):
    server = make_server(config="max_connections: 2\n")
    a = raw_client(server)
    b = raw_client(server)
    c = raw_client(server)
    c.expect(rb"-ERR 'maximum connections exceeded'\r\n")
    c.expect_closed()
    a.send(b"PING\r\n")
    a.expect(rb"PONG\r\n")
    b.send(b"PING\r\n")
    b.expect(rb"PONG\r\n")


def test_client_bad_connect_json_closes_cleanly(server, raw_client):
    c = raw_client(server)
    c.send(b"CONNECT {not json\r\n")
    c.expect_closed()
    c2 = raw_client(server)
    c2.send(b'CONNECT {"protocol":7}\r\n')
    c2.expect(rb"-ERR 'invalid client protocol'\r\n")
    c2.expect_closed()
    c3 = raw_client(server)
    c3.send(b'CONNECT {"no_responders":true}\r\n')
    c3.expect(rb"-ERR 'no responders requires headers support'\r\n")
    c3.expect_closed()


def test_client_graceful_shutdown_on_sigterm(make_server):
    server = make_server()

    async def main():
        closed = asyncio.Event()

        async def on_closed():
            closed.set()

        nc = await nats.connect(server.url, allow_reconnect=False, closed_cb=on_closed)
        sub = await nc.subscribe("x")
        await nc.publish("x", b"before")
        assert (await sub.next_msg(timeout=2)).data == b"before"
        code = await asyncio.get_running_loop().run_in_executor(None, server.stop)
        await asyncio.wait_for(closed.wait(), 5)
        return code

    assert run(main()) == 0
    assert "Server Exiting" in server.logs()
