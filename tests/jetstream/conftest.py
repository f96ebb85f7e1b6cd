"""JetStream test helpers: a server with ``-js`` on a temporary store directory."""

import json

import nats
import pytest


@pytest.fixture
def js_server(make_server, tmp_path):
    """Start a JetStream server; ``js_server(*extra_args, config=None)``."""
    def make(*args, config=None, name=None):
        store = tmp_path / ("store-%s" % (name or "js"))
        return make_server("-js", "-sd", str(store), *args, config=config, name=name)
    return make


async def connect(server, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats.connect(server.url, **kw)


async def api(nc, subject, body=None, timeout=2.0):
    """A raw JetStream API request -> decoded JSON response."""
    payload = b"" if body is None else (body if isinstance(body, bytes)
                                        else json.dumps(body).encode())
    msg = await nc.request(subject, payload, timeout=timeout)
    return json.loads(msg.data)
