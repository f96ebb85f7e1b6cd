"""WebSocket clients on one server: nats-py's WebSocket transport (aiohttp),
and a raw WebSocket client for what nats-py does not do (compression,
fragments, pings, cookies, origins)."""

import asyncio
import json
import urllib.request

import nats
import pytest

from pluggy_nats.testing.launch import free_port
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.wsraw import WSRawClient, mask_frame

WS = "websocket { listen: 127.0.0.1:-1, no_tls: true %s }\n"
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'


@pytest.fixture
def ws_server(make_server):
    return make_server("-m", "-1", config=WS % "")


def test_websocket_pubsub_headers_and_requests_with_nats_py(ws_server):
    async def body():
        ws = await nats.connect(ws_server.ws_url)
        tcp = await nats.connect(ws_server.url)
        sub = await ws.subscribe("greet.*")

        async def helper(m):
            await tcp.publish(m.reply, b"answer:" + m.data)

        await tcp.subscribe("help", cb=helper)
        await tcp.flush()
        for i in range(50):
            await tcp.publish("greet.%d" % i, b"x" * i, headers={"N": str(i)})
        got = [await sub.next_msg(timeout=2) for _ in range(50)]
        assert [len(m.data) for m in got] == list(range(50))
        assert [m.headers["N"] for m in got] == [str(i) for i in range(50)]
        reply = await ws.request("help", b"me", timeout=2)
        assert reply.data == b"answer:me"
        big = bytes(range(256)) * 256  # 64 KiB: several TCP reads, one frame
        back = await ws.subscribe("big")
        await ws.publish("big", big)
        assert (await back.next_msg(timeout=2)).data == big
        await ws.close()
        await tcp.close()

    run(body())


def test_websocket_client_reconnects_after_server_restart(make_server, launcher):
    port = free_port()
    config = "websocket { listen: 127.0.0.1:%d, no_tls: true }\n" % port
    first = make_server(config=config, name="first")

    async def body():
        reconnected = asyncio.Event()

        async def on_reconnect():
            reconnected.set()

        nc = await nats.connect("ws://127.0.0.1:%d" % port, reconnected_cb=on_reconnect,
                                reconnect_time_wait=0.2, max_reconnect_attempts=50)
        await nc.flush()
        first.kill()
        make_server(config=config, name="second")
        await asyncio.wait_for(reconnected.wait(), 15)
        sub = await nc.subscribe("after")
        await nc.publish("after", b"restart")
        assert (await sub.next_msg(timeout=2)).data == b"restart"
        await nc.close()

    run(body())


def test_websocket_varz_and_connz(ws_server):
    async def body():
        nc = await nats.connect(ws_server.ws_url, name="browser-ish")
        await nc.flush()
        base = "http://127.0.0.1:%d" % ws_server.http_port
        varz = json.load(urllib.request.urlopen(base + "/varz"))
        assert varz["websocket"]["port"] == ws_server.ws_port
        assert varz["websocket"]["no_tls"] is True
        connz = json.load(urllib.request.urlopen(base + "/connz"))
        kinds = {c.get("name"): c["type"] for c in connz["connections"]}
        assert kinds["browser-ish"] == "websocket"
        await nc.close()

    run(body())


def test_websocket_info_names_the_websocket_port(ws_server):
    c = WSRawClient(ws_server.ws_port)
    assert c.upgrade().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    info = c.nats_bytes(until=b"\r\n")
    assert info.startswith(b"INFO ")
    fields = json.loads(info[5:info.index(b"\r\n")])
    assert fields["port"] == ws_server.ws_port and "tls_required" not in fields
    c.close()


def test_websocket_fragments_pings_and_close(ws_server):
    c = WSRawClient(ws_server.ws_port)
    c.upgrade()
    c.nats_bytes(until=b"\r\n")  # INFO
    # One NATS command cut across a first frame and two continuations.
    script = CONNECT + b"SUB f 1\r\nPUB f 5\r\nhello\r\nPING\r\n"
    c.send_raw(mask_frame(2, script[:10], fin=False) + mask_frame(0, script[10:30], fin=False)
               + mask_frame(9, b"are-you-there")  # a ping between fragments is allowed
               + mask_frame(0, script[30:]))
    frames = c.frames(until=lambda fs: b"PONG" in b"".join(p for o, p in fs if o == 2))
    assert (10, b"are-you-there") in frames
    data = b"".join(p for o, p in frames if o == 2)
    assert b"MSG f 1 5\r\nhello\r\n" in data and b"PONG\r\n" in data
    c.send_raw(mask_frame(8, b"\x03\xe8bye"))
    assert c.close_frame() == (1000, "bye")  # echoed, as Go does
    c.close()


def test_websocket_compression_both_ways(make_server):
    server = make_server(config=WS % ", compression: true")
    c = WSRawClient(server.ws_port)
    head = c.upgrade(headers=[("Sec-WebSocket-Extensions",
                               "permessage-deflate; client_max_window_bits")])
    assert b"permessage-deflate; server_no_context_takeover; client_no_context_takeover" in head
    c.nats_bytes(until=b"\r\n")  # INFO
    payload = b"compress me " * 20
    c.send(CONNECT + b"SUB z 1\r\nPUB z %d\r\n%s\r\nPING\r\n" % (len(payload), payload),
           compress=True)
    data = c.nats_bytes(until=b"PONG\r\n")
    assert b"MSG z 1 %d\r\n%s\r\n" % (len(payload), payload) in data
    c.close()


def test_websocket_own_authorization_and_cookies(make_server):
    server = make_server(config=WS % ", authorization { token: s3cret }, token_cookie: tk")

    async def body():
        with pytest.raises((nats.errors.Error, OSError)):
            await nats.connect(server.ws_url, max_reconnect_attempts=0,
                               allow_reconnect=False)
        nc = await nats.connect(server.ws_url, token="s3cret", allow_reconnect=False)
        await nc.flush()
        await nc.close()
        tcp = await nats.connect(server.url)  # the client port keeps no auth
        await tcp.close()

    run(body())
    # A browser cannot set CONNECT's token, but can send a cookie.
    c = WSRawClient(server.ws_port)
    c.upgrade(headers=[("Cookie", "other=1; tk=s3cret")])
    info = json.loads(c.nats_bytes(until=b"\r\n")[5:].split(b"\r\n")[0])
    assert info["auth_required"] is True
    c.send(CONNECT + b"PING\r\n")
    assert b"PONG\r\n" in c.nats_bytes(until=b"PONG\r\n")
    c.close()
    c = WSRawClient(server.ws_port)
    c.upgrade(headers=[("Cookie", "tk=wrong")])
    c.nats_bytes(until=b"\r\n")
    c.send(CONNECT + b"PING\r\n")
    assert b"-ERR 'Authorization Violation'" in c.nats_bytes(timeout=2, until=b"Violation")
    assert c.close_frame() == (1008, "Authentication Failure")
    c.close()


def test_websocket_origin_checks(make_server):
    server = make_server(config=WS % ', allowed_origins: ["https://good.example"]')
    ok = WSRawClient(server.ws_port)
    assert ok.upgrade(headers=[("Origin", "https://good.example")]).startswith(b"HTTP/1.1 101")
    ok.close()
    bad = WSRawClient(server.ws_port)
    assert bad.upgrade(headers=[("Origin", "https://evil.example")]).startswith(
        b"HTTP/1.1 403 Forbidden")
    bad.close()
    none = WSRawClient(server.ws_port)  # no Origin header: not a browser, accepted
    assert none.upgrade().startswith(b"HTTP/1.1 101")
    none.close()


def test_websocket_compressed_bomb_is_refused(make_server):
    """A few KiB that inflate past 8x max_payload end the connection before
    they are inflated; the server keeps serving."""
    import zlib

    server = make_server("--max_payload", "4096", config=WS % ", compression: true")
    c = WSRawClient(server.ws_port)
    assert b"permessage-deflate" in c.upgrade(headers=[("Sec-WebSocket-Extensions",
                                                          "permessage-deflate")])
    c.nats_bytes(until=b"\r\n")
    comp = zlib.compressobj(wbits=-15)
    bomb = comp.compress(b"\0" * (1 << 20)) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 4096
    c.send_raw(mask_frame(2, bomb[:-4], rsv1=True))
    assert c.close_frame(timeout=2)[0] == 1002 and c.read_body(1.0) == b""
    c.close()
    ok = WSRawClient(server.ws_port)
    ok.upgrade()
    ok.nats_bytes(until=b"\r\n")
    ok.send(CONNECT + b"PING\r\n")
    assert b"PONG" in ok.nats_bytes(until=b"PONG")
    ok.close()


def test_websocket_connect_urls_span_the_cluster(make_cluster, tmp_path, wait_for):
    """A WebSocket client learns every server's WebSocket URL (routes carry
    them as nats-server's ws_connect_urls), so it can fail over."""
    conf = tmp_path / "ws.conf"
    conf.write_text(WS % "")
    a, b = make_cluster(2, args=("-c", str(conf)))

    def info_urls():
        c = WSRawClient(a.ws_port)
        c.upgrade()
        line = c.nats_bytes(until=b"\r\n")
        c.close()
        return json.loads(line[5:line.index(b"\r\n")]).get("connect_urls", [])

    expected = {"127.0.0.1:%d" % a.ws_port, "127.0.0.1:%d" % b.ws_port}
    wait_for(lambda: set(info_urls()) == expected, timeout=10, message="both ws URLs")
