"""Auth callout over TLS: the request's ``client_tls`` carries the TLS version,
cipher and the client's verified certificate, for our server and the Go
nats-server with the same config and the same callout service."""

import pathlib
import ssl
import sys

import gevent.ssl
import nats
import pytest

from pluggy_nats.testing.plugin import run

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "auth"))
from callout_service import ISSUER_PUB, CalloutService  # noqa: E402

CONFIG = """
accounts {
  AUTH { users: [{user: auth, password: auth-pw}] }
  APP {}
}
authorization { auth_callout { issuer: %s, auth_users: [auth], account: AUTH } }
""" % ISSUER_PUB


def _request(server, certs):
    url = "tls://127.0.0.1:%d" % server.port
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certs.ca)
    ctx.load_cert_chain(certs.client_cert, certs.client_key)
    service = CalloutService(tls=ctx, tls_hostname="localhost").start(url)
    try:
        async def main():
            nc = await nats.connect(url, tls=ctx, tls_hostname="localhost", user="alice",
                                    password="alice-pw", allow_reconnect=False)
            await nc.close()

        run(main())
    finally:
        service.stop()
    assert not service.errors
    return service.requests[-1]["nats"]


@pytest.mark.parametrize("impl", ["ours", pytest.param("go", marks=pytest.mark.interop)])
def test_tls_callout_client_tls(make_server, go_nats_server, certs, impl):
    config = certs.tls_block(verify=True) + CONFIG
    server = (make_server if impl == "ours" else go_nats_server)(config=config)
    req = _request(server, certs)
    tls = req["client_tls"]
    assert tls["version"] == "1.3"
    assert tls["cipher"].startswith("TLS_")
    with open(certs.client_cert) as f:
        client_pem = f.read()
    chain = tls["verified_chains"][0]
    assert ssl.PEM_cert_to_DER_cert(chain[0]) == ssl.PEM_cert_to_DER_cert(client_pem)
    # Go sends the whole verified chain (leaf, CA); Python gives it to us only
    # from 3.13 (SSLSocket.get_verified_chain), before that the leaf alone.
    ours_has_chain = hasattr(gevent.ssl.SSLSocket, "get_verified_chain")
    expected = 2 if impl == "go" or ours_has_chain else 1
    assert len(chain) == expected

