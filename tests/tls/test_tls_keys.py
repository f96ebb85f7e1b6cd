"""The tls {} keys beyond the basics, on our server and the Go nats-server with
the same block: ``pinned_certs`` (SHA-256 of the peer certificate's
SubjectPublicKeyInfo; a client with another certificate is refused),
``cipher_suites`` (Go names, TLS 1.2), ``curve_preferences``, the HTTPS
monitor, and the keys still refused, by name."""

import hashlib
import json
import socket
import ssl
import urllib.request

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError, Options
from pluggy_nats.testing.plugin import run

IMPLS = ("ours", "go")


def key_id(cert_path):
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


async def attempt(url, ctx):
    """"ok" after a round trip, else "refused"."""
    try:
        nc = await nats.connect(url, tls=ctx, tls_hostname="localhost", allow_reconnect=False,
                                max_reconnect_attempts=0, connect_timeout=3)
    except (OSError, nats.errors.Error, TimeoutError):
        return "refused"
    try:
        await nc.flush(timeout=2)
        return "ok"
    except (OSError, nats.errors.Error, TimeoutError):
        return "refused"
    finally:
        await nc.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_pinned_certs_admit_only_the_pinned_client(start, certs, impl):
    pinned = certs.tls_block(verify=True, extra="pinned_certs: [\"%s\"]"
                             % key_id(certs.client_cert).upper())
    srv = start(impl, pinned)
    assert run(attempt(srv.url, certs.client_context(with_cert=True))) == "ok"
    other = certs.tls_block(verify=True, extra="pinned_certs: [\"%s\"]" % ("ab" * 32))
    srv = start(impl, other)
    assert run(attempt(srv.url, certs.client_context(with_cert=True))) == "refused"


@pytest.mark.parametrize("impl", IMPLS)
def test_cipher_suites_limit_tls12(start, certs, impl):
    srv = start(impl, certs.tls_block(extra='min_version: "1.2", cipher_suites: '
                                            '["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"], '
                                            'curve_preferences: ["CurveP256", "X25519"]'))
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")  # not in the server's list
    assert run(attempt(srv.url, ctx)) == "refused"
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert run(attempt(srv.url, ctx)) == "ok"


@pytest.mark.parametrize("impl", IMPLS)
def test_https_monitor_serves_varz(start, certs, impl):
    srv = start(impl, certs.tls_block() + 'https: "127.0.0.1:-1"\n')
    ctx = ssl.create_default_context(cafile=certs.ca)
    url = "https://localhost:%d/varz" % srv.http_port
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
        varz = json.loads(resp.read())
    assert varz["https_port"] == -1 and varz["http_port"] == 0  # as configured


def check(text):
    opts = Options(conf=loads(text, "t.conf"))
    from pluggy_nats.server import Server

    try:
        Server(opts, autoload=True)
    except ConfigError as exc:
        return str(exc)
    return ""


def test_tls_key_values_checked_as_go(certs):
    block = certs.tls_block(extra="%s")
    assert "unrecognized cipher TLS_NOPE" in check(block % 'cipher_suites: ["TLS_NOPE"]')
    assert "'cipher_suites' cannot be empty" in check(block % "cipher_suites: []")
    assert "unrecognized curve preference P999" in check(block % 'curve_preferences: ["P999"]')
    assert "does not look like hex-encoded sha256" in check(block % 'pinned_certs: ["abc"]')
    assert "cert_store not compatible with current operating system" in check(
        block % 'cert_store: "WindowsCurrentUser"')
    assert "tls.ocsp_peer is not supported yet" in check(block % "ocsp_peer: true")
    assert check(block % 'curve_preferences: ["X25519MLKEM768", "CurveP384"]') == ""


@pytest.mark.parametrize("impl", IMPLS)
def test_allow_non_tls_takes_both_kinds_of_client(start, certs, impl):
    srv = start(impl, certs.tls_block() + "allow_non_tls: true\n")
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    info = json.loads(sock.recv(4096).split(b"\r\n")[0][5:])
    assert info.get("tls_available") is True and "tls_required" not in info
    sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')  # plaintext: served
    data = b""
    while b"PONG" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed"
        data += chunk
    sock.close()
    assert run(attempt(srv.url, certs.client_context())) == "ok"  # TLS: served too
