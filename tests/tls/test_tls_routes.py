"""Route TLS (``cluster { tls {} }``): the handshake comes first on both sides,
before INFO/CONNECT (as nats-server 2.15.1 on the wire), and peers are always
verified. Two of ours, and mixed clusters with the Go nats-server."""

import json
import socket
import ssl
import time
import urllib.request

import nats
import pytest

from pluggy_nats.testing.plugin import run


def cluster_conf(certs, routes=()):
    conf = "cluster { name: c1, listen: 127.0.0.1:-1, %s" % certs.tls_block()
    if routes:
        conf += " routes: [%s]" % ", ".join(routes)
    return conf + " }\n"


async def crosses(a_url, b_url):
    """A message published on each side reaches a subscriber on the other."""
    a = await nats.connect(a_url, allow_reconnect=False)
    b = await nats.connect(b_url, allow_reconnect=False)
    try:
        sa = await a.subscribe("to.a")
        sb = await b.subscribe("to.b")
        await a.flush()
        await b.flush()
        for pub, sub, subject in ((b, sa, "to.a"), (a, sb, "to.b")):
            # Until the interest has crossed the route: TLS route setup takes
            # seconds on a loaded machine, so the bound is time, not attempts.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await pub.publish(subject, b"hello " + subject.encode())
                await pub.flush()
                try:
                    msg = await sub.next_msg(timeout=0.1)
                    break
                except nats.errors.TimeoutError:
                    pass
            else:
                raise AssertionError("nothing crossed the route to %s in 30 s" % subject)
            assert msg.data == b"hello " + subject.encode()
        big = b"x" * 300000
        await b.publish("to.a", big)
        await b.flush()
        for _ in range(20):
            msg = await sa.next_msg(timeout=3)
            if msg.data == big:
                break
        else:
            raise AssertionError("large message did not cross")
    finally:
        await a.close()
        await b.close()


async def nothing_crosses(a_url, b_url, seconds):
    """For ``seconds``, nothing published on b reaches a subscriber on a."""
    a = await nats.connect(a_url, allow_reconnect=False)
    b = await nats.connect(b_url, allow_reconnect=False)
    try:
        sub = await a.subscribe("x")
        await a.flush()
        deadline = time.monotonic() + seconds
        while True:
            await b.publish("x", b"leak")
            await b.flush()
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.25)
            if time.monotonic() > deadline:
                break
    finally:
        await a.close()
        await b.close()


def test_tls_routes_two_of_ours(make_server, certs):
    seed = make_server("-m", "-1", config=cluster_conf(certs))
    joiner = make_server(config=cluster_conf(certs, [seed.route_url]))
    run(crosses(seed.url, joiner.url))
    assert "tls_handshake_failed" not in seed.logs() + joiner.logs()
    with urllib.request.urlopen("http://127.0.0.1:%d/varz" % seed.http_port, timeout=5) as r:
        cluster = json.load(r)["cluster"]
    assert (cluster["tls_required"], cluster["tls_verify"], cluster["tls_timeout"]) == (
        True, True, 2.0)


@pytest.mark.parametrize("go_solicits", [True, False], ids=["go_dials_us", "we_dial_go"])
def test_tls_routes_mixed_cluster(make_server, go_nats_server, certs, go_solicits):
    if go_solicits:
        ours = make_server(config=cluster_conf(certs))
        go = go_nats_server(config=cluster_conf(certs, [ours.route_url]))
    else:
        go = go_nats_server(config=cluster_conf(certs))
        ours = make_server(config=cluster_conf(certs, [go.route_url]))
    run(crosses(ours.url, go.url))
    assert "TLS route handshake error" not in go.logs()


def test_tls_routes_handshake_first_and_verified(make_server, certs):
    srv = make_server(config=cluster_conf(certs))
    # Nothing in plaintext: the accepting side waits for a ClientHello.
    sock = socket.create_connection(("127.0.0.1", srv.cluster_port), timeout=0.5)
    with pytest.raises(socket.timeout):
        sock.recv(4096)
    sock.close()
    # A peer with a certificate gets INFO (tls_required, tls_verify) over TLS.
    ctx = ssl.create_default_context(cafile=certs.ca)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.cluster_port), timeout=3),
                         server_hostname="127.0.0.1") as tls_sock:
        data = tls_sock.recv(4096)
        assert data.startswith(b"INFO ") and b'"tls_required": true' in data.replace(
            b'":true', b'": true')
    # Without a certificate the peer is refused (verify is implied for routes).
    ctx = ssl.create_default_context(cafile=certs.ca)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.cluster_port),
                                                      timeout=3),
                             server_hostname="127.0.0.1") as tls_sock:
            tls_sock.recv(4096)


def test_tls_routes_plain_peer_does_not_join(make_server, certs):
    """A peer without route TLS never forms a route with a TLS cluster."""
    srv = make_server(config=cluster_conf(certs))
    plain = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1",
                        "--routes", srv.route_url)

    run(nothing_crosses(srv.url, plain.url, seconds=0.5))


def mapped_cluster_conf(certs, user, routes=()):
    """Route TLS with verify_and_map: the peer's certificate (DNS name
    "localhost") must name the cluster authorization user."""
    conf = ("cluster { name: c1, listen: 127.0.0.1:-1, authorization { user: %s }, %s"
            % (user, certs.tls_block(extra="verify_and_map: true")))
    if routes:
        conf += " routes: [%s]" % ", ".join(routes)
    return conf + " }\n"


@pytest.mark.parametrize("go_accepts", [True, False], ids=["go_accepts", "we_accept"])
def test_tls_routes_verify_and_map_mixed_cluster(make_server, go_nats_server, certs,
                                                 go_accepts):
    """The accepting side maps the dialler's certificate to the cluster user."""
    if go_accepts:
        go = go_nats_server(config=mapped_cluster_conf(certs, "localhost"))
        ours = make_server(config=mapped_cluster_conf(certs, "localhost", [go.route_url]))
    else:
        ours = make_server(config=mapped_cluster_conf(certs, "localhost"))
        go = go_nats_server(config=mapped_cluster_conf(certs, "localhost", [ours.route_url]))
    run(crosses(ours.url, go.url))


@pytest.mark.parametrize("impl", ["ours", "go"])
def test_tls_routes_verify_and_map_other_user_refused(make_server, go_nats_server, certs, impl):
    """A certificate that does not name the cluster user forms no route."""
    start = make_server if impl == "ours" else go_nats_server
    seed = start(config=mapped_cluster_conf(certs, "someone-else"))
    joiner = make_server(config=mapped_cluster_conf(certs, "someone-else", [seed.route_url]))
    run(nothing_crosses(seed.url, joiner.url, seconds=3))  # time a route would take
