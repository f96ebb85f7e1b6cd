"""Client TLS (PROTOCOL.md A9): INFO in plaintext with ``tls_required``, then the
client's handshake; ``verify`` requires a client certificate; a client that
never handshakes, or speaks plaintext, is closed. Checked against the Go
nats-server with the same configuration where the behaviour is observable."""

import json
import socket
import ssl
import time

import nats
import pytest

from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError, Options
from pluggy_nats.testing.plugin import run
from pluggy_nats.tls import parse_tls

IMPLS = ("ours", "go")


def read_info(port, timeout=3.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    while b"\r\n" not in buf:
        data = sock.recv(4096)
        assert data, "closed before INFO"
        buf += data
    line = buf.split(b"\r\n", 1)[0]
    assert line.startswith(b"INFO ")
    return sock, json.loads(line[5:])


def closed_within(sock, timeout):
    """Seconds until the server closed ``sock`` (EOF or reset), failing after timeout."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            assert b"PONG" not in data, data
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail("connection still open after %.1fs" % timeout)
    return time.monotonic() - started


async def roundtrip(url, ctx, **kwargs):
    nc = await nats.connect(url, tls=ctx, tls_hostname="localhost", allow_reconnect=False,
                            max_reconnect_attempts=0, connect_timeout=3, **kwargs)
    try:
        sub = await nc.subscribe("tls.>")
        await nc.flush()
        big = bytes(range(256)) * 1024  # 256 KiB: the writer path, many TLS records
        for i in range(50):
            await nc.publish("tls.%d" % i, b"m%d" % i)
        await nc.publish("tls.big", big)
        await nc.flush()
        got = [(await sub.next_msg(timeout=3)).data for _ in range(51)]
        assert got[:50] == [b"m%d" % i for i in range(50)] and got[50] == big
        return nc.connected_server_version
    finally:
        await nc.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_client_accepted_with_ca(start, certs, impl):
    srv = start(impl, certs.tls_block())
    sock, info = read_info(srv.port)  # INFO comes in plaintext
    sock.close()
    assert info["tls_required"] is True
    assert "tls_verify" not in info
    run(roundtrip(srv.url, certs.client_context()))


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_client_plaintext_refused(start, certs, impl):
    srv = start(impl, certs.tls_block())
    sock, _info = read_info(srv.port)
    sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert closed_within(sock, 3.0) < 2.0  # no PONG: closed at the failed handshake
    sock.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_client_untrusted_server_refused_by_client(start, certs, impl):
    srv = start(impl, certs.tls_block())

    async def main():
        with pytest.raises(ssl.SSLCertVerificationError):
            await nats.connect(srv.url, tls=ssl.create_default_context(), allow_reconnect=False,
                               max_reconnect_attempts=0, connect_timeout=2)

    run(main())


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_client_verify(start, certs, impl):
    srv = start(impl, certs.tls_block(verify=True))
    sock, info = read_info(srv.port)
    sock.close()
    assert info["tls_required"] is True and info["tls_verify"] is True
    run(roundtrip(srv.url, certs.client_context(with_cert=True)))

    async def without_cert():
        # The TLS 1.3 "certificate required" alert, or (depending on timing) a
        # reset or broken pipe: with Go as with us.
        with pytest.raises((OSError, nats.errors.Error)):
            nc = await nats.connect(srv.url, tls=certs.client_context(), tls_hostname="localhost",
                                    allow_reconnect=False, max_reconnect_attempts=0,
                                    connect_timeout=2)
            # TLS 1.3: the refusal of a missing certificate may arrive after
            # the client's side of the handshake finished.
            await nc.flush(timeout=2)

    run(without_cert())


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_client_handshake_timeout(start, certs, impl):
    srv = start(impl, certs.tls_block(extra='timeout: "500ms"'))
    sock, _info = read_info(srv.port)
    took = closed_within(sock, 3.0)  # we never start the handshake
    sock.close()
    assert 0.3 < took < 2.0, took


def test_tls_client_handshake_first(make_server, certs):
    srv = make_server(config=certs.tls_block(extra="handshake_first: true"))
    run(roundtrip(srv.url, certs.client_context(), tls_handshake_first=True))
    # No plaintext INFO: the server waits for a ClientHello.
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=0.5)
    with pytest.raises(socket.timeout):
        sock.recv(4096)
    sock.close()


def test_tls_client_cli_flags(make_server, certs):
    srv = make_server("--tlsverify", "--tlscert", certs.server_cert, "--tlskey",
                      certs.server_key, "--tlscacert", certs.ca)
    sock, info = read_info(srv.port)
    sock.close()
    assert info["tls_required"] is True and info["tls_verify"] is True
    run(roundtrip(srv.url, certs.client_context(with_cert=True)))


def test_tls_client_flags_over_block(certs):
    opts = Options(conf=loads(certs.tls_block()))
    assert opts.tls is not None and not opts.tls.verify and opts.tls.timeout == 2.0

    class Args:
        tls = tlscert = tlskey = tlscacert = None
        tlsverify = True

    opts = Options(conf=loads(certs.tls_block()), args=Args())
    assert opts.tls.verify and opts.tls.ca_file == certs.ca
    opts.check()
    assert Options().tls is None


def test_tls_config_errors_have_positions(certs):
    text = ('tls {\n  cert_file: "%s"\n  timeout: "soon"\n  verify: 3\n  color: blue\n'
            '  min_version: "1.0"\n}\n' % certs.server_cert)
    opts = Options(conf=loads(text, filename="t.conf"))
    with pytest.raises(ConfigError) as info:
        opts.check()
    messages = {(pos.line if pos else None): msg for pos, msg in info.value.errors}
    assert "timeout" in messages[3]
    assert "verify" in messages[4]
    assert "unknown field 'color'" in messages[5]
    assert "min_version" in messages[6]
    assert any("missing 'key_file'" in msg for msg in messages.values())


def test_tls_config_values(certs):
    cfg = parse_tls(loads(certs.tls_block(extra="timeout: 1.5, min_version: \"1.3\""))["tls"])
    assert cfg.timeout == 1.5 and cfg.min_version == ssl.TLSVersion.TLSv1_3
    assert cfg.server_context().minimum_version == ssl.TLSVersion.TLSv1_3
    cfg = parse_tls(loads(certs.tls_block(extra='timeout: "250ms"'))["tls"], force_verify=True)
    assert cfg.timeout == 0.25 and cfg.verify
    with pytest.raises(ConfigError) as info:
        parse_tls({"cert_file": "/nonexistent.pem", "key_file": "/nonexistent.pem"})
    assert "error loading certificates" in str(info.value)


def test_tls_client_handshake_first_with_fallback(make_server, certs):
    """``handshake_first: "300ms"``: a ClientHello within the delay gets TLS
    first; a client silent that long gets the plaintext INFO, then TLS."""
    srv = make_server(config=certs.tls_block(extra='handshake_first: "300ms"'))
    run(roundtrip(srv.url, certs.client_context(), tls_handshake_first=True))
    started = time.monotonic()
    sock, info = read_info(srv.port)
    sock.close()
    assert info["tls_required"] is True and time.monotonic() - started >= 0.25
    run(roundtrip(srv.url, certs.client_context()))
