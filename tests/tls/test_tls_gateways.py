"""Gateway TLS (``gateway { tls {} }``): the handshake comes first, before the
acceptor's INFO, peers are always verified; two of ours, and ours with Go."""

import pytest

from pluggy_nats.testing.supercluster import gatewayz


@pytest.mark.parametrize("go", [{}, {"B": "all"}], ids=["ours", "ours_and_go"])
def test_tls_gateways(make_supercluster, certs, go):
    sc = make_supercluster({"A": 1, "B": 1}, go=go, gateway_extra=certs.tls_block(),
                           args=("-m", "-1"), timeout=40)
    out = gatewayz(sc["A"][0])["outbound_gateways"]["B"]["connection"]
    assert out.get("tls_version"), out  # the link runs over TLS
