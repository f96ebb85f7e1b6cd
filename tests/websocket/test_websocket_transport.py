"""The socket look-alike that carries link traffic over WebSocket (leaf
remotes with ws:// URLs): dialled against ours and the Go server, it carries
a NATS session both ways, masked as a client must be, and unmasked when the
server agrees to Nats-No-Masking."""

import pytest
from pluggy_nats_plugins.websocket.transport import WebSocketError, frame, ws_dial

CONFIG = "websocket { listen: 127.0.0.1:-1, no_tls: true }\n"


def _session(stream):
    """INFO in; CONNECT, SUB, PUB, PING out; the MSG and PONG back."""
    data = b""
    while b"\r\n" not in data:
        data += stream.recv(65536)
    assert data.startswith(b"INFO ")
    payload = bytes(range(256)) * 300  # 75 KiB: 64-bit frame lengths, masked by words
    stream.sendall(b'CONNECT {"verbose":false}\r\nSUB t 1\r\nPUB t %d\r\n%s\r\nPING\r\n'
                   % (len(payload), payload))
    got = b""
    while b"PONG\r\n" not in got:
        chunk = stream.recv(1 << 20)
        assert chunk, got[-200:]
        got += chunk
    assert b"MSG t 1 %d\r\n%s\r\n" % (len(payload), payload) in got


@pytest.mark.parametrize("impl", ["ours", pytest.param("go", marks=pytest.mark.interop)])
@pytest.mark.parametrize("no_masking", [False, True])
def test_websocket_transport_carries_a_session(make_server, go_nats_server, impl, no_masking):
    server = (make_server if impl == "ours" else go_nats_server)(config=CONFIG)
    stream = ws_dial("ws://127.0.0.1:%d/" % server.ws_port, no_masking=no_masking)
    try:
        assert stream.mask is not no_masking  # both servers agree to no-masking
        _session(stream)
    finally:
        stream.close()


def test_websocket_transport_refused_upgrade_is_an_error(make_server):
    server = make_server(config=CONFIG)
    with pytest.raises(WebSocketError, match="404"):
        ws_dial("ws://127.0.0.1:%d/mqtt" % server.ws_port)


def test_frame_masking_round_trips():
    payload = bytes(range(256)) * 3 + b"tail"
    masked = frame(2, payload, mask=True)
    assert masked[1] & 0x80 and masked[1] & 0x7F == 126
    key, body = masked[4:8], masked[8:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == payload
    assert frame(2, payload, mask=False)[4:] == payload
