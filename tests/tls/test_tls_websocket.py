"""WebSocket over TLS (wss://): nats-py through TLS, ours and the Go server
with the same certificates and config; a plaintext upgrade is refused."""

import nats
import pytest

from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.wsraw import WSRawClient


def _config(certs):
    return "websocket { listen: 127.0.0.1:-1, %s }\n" % certs.tls_block()


@pytest.mark.parametrize("impl", ["ours", pytest.param("go", marks=pytest.mark.interop)])
def test_tls_websocket_nats_py_over_wss(make_server, go_nats_server, certs, impl):
    start = make_server if impl == "ours" else go_nats_server
    server = start(config=_config(certs))
    assert server.ws_port, server.logs()[-2000:]

    async def body():
        nc = await nats.connect("wss://127.0.0.1:%d" % server.ws_port,
                                tls=certs.client_context())
        sub = await nc.subscribe("secure")
        await nc.publish("secure", b"over wss", headers={"K": "v"})
        msg = await sub.next_msg(timeout=2)
        assert msg.data == b"over wss" and msg.headers["K"] == "v"
        await nc.close()

    run(body())


def test_tls_websocket_plaintext_upgrade_gets_nothing(make_server, certs):
    server = make_server(config=_config(certs))
    c = WSRawClient(server.ws_port, timeout=3)
    response = c.upgrade()
    assert not response.startswith(b"HTTP/1.1 101")
    c.close()
