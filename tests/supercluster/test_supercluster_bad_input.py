"""Bad input on the gateway port: a client or a broken peer gets nats-server's
answer (an -ERR where Go sends one, a close where Go only logs), and the
server keeps serving clients and other gateways. Run against Go too, which is
how the expected answers were found."""

import json

import pytest

from pluggy_nats.testing.raw import RawClient

pytestmark = pytest.mark.interop

CONF = """
server_name: %s
gateway {
  name: "A"
  listen: "127.0.0.1:-1"
  authorization { user: gw, password: pw }
}
"""

PEER_INFO = {"server_id": "NFAKEPEER", "server_name": "fake", "version": "2.15.1", "proto": 3,
             "go": "", "host": "127.0.0.1", "port": 1, "headers": True,
             "max_payload": 1048576, "gateway": "B", "gateway_urls": ["127.0.0.1:1"],
             "gateway_url": "127.0.0.1:1", "gateway_nrp": True, "gateway_iom": True}


@pytest.fixture(params=["go", "ours"])
def gateway_server(request, make_server, go_nats_server):
    start = go_nats_server if request.param == "go" else make_server
    return start(config=CONF % ("gw-" + request.param))


def peer(server, user="gw", password="pw"):
    """A fake cluster B dialling server's gateway port, handshake done."""
    raw = RawClient("127.0.0.1", server.gateway_port)
    assert raw.info["gateway"] == "A" and raw.info["gateway_iom"] is True
    assert raw.info["auth_required"] is True
    connect = {"echo": False, "verbose": False, "pedantic": False, "user": user,
               "pass": password, "tls_required": False, "headers": False,
               "name": "NFAKEPEER", "cluster": "", "gateway": "B"}
    raw.send(b"CONNECT %s\r\nINFO %s\r\n" % (json.dumps(connect).encode(),
                                            json.dumps(PEER_INFO).encode()))
    return raw


def still_serving(server):
    client = RawClient("127.0.0.1", server.port)
    client.send(b'CONNECT {"verbose":false}\r\nSUB ok 1\r\nPUB ok 2\r\nhi\r\nPING\r\n')
    client.expect(rb"MSG ok 1 2\r\nhi\r\nPONG\r\n")
    client.close()
    # and a well-behaved gateway peer is still taken
    good = peer(server)
    good.send(b"PING\r\n")
    good.expect(rb".*PONG\r\n")
    good.close()


def test_supercluster_client_on_gateway_port(gateway_server):
    raw = RawClient("127.0.0.1", gateway_server.gateway_port)
    # a client with the right credentials, but a client: no "gateway" field
    raw.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"gw","pass":"pw"}\r\nPING\r\n')
    raw.expect(rb"-ERR 'attempted to connect to gateway port'\r\n")
    raw.expect_closed()
    still_serving(gateway_server)


def test_supercluster_wrong_credentials(gateway_server):
    raw = peer(gateway_server, password="nope")
    raw.expect(rb"-ERR 'Authorization Violation'\r\n")
    raw.expect_closed()
    still_serving(gateway_server)


def test_supercluster_anything_before_connect(gateway_server):
    raw = RawClient("127.0.0.1", gateway_server.gateway_port)
    raw.send(b"PING\r\n")
    raw.expect(rb"-ERR 'Authorization Violation'\r\n")
    raw.expect_closed()
    still_serving(gateway_server)


@pytest.mark.parametrize("line, err", [
    (b"FOO bar\r\n", b"-ERR 'Unknown Protocol Operation'\r\n"),
    (b"RS+ $G foo\r\n", b""),  # interest verbs never come on an inbound
    (b"RMSG $G\r\n", b""),  # processRoutedMsgArgs Parse Error
    (b"RMSG $G foo x\r\n", b""),  # Bad or Missing Size
])
def test_supercluster_bad_verb_closes_only_that_gateway(gateway_server, line, err):
    raw = peer(gateway_server)
    raw.send(b"PING\r\n")
    raw.expect(rb".*PONG\r\n")  # registered: interest and PONG arrived
    raw.read_all(timeout=0.2)
    raw.send(line)
    rest = raw.expect_closed()
    assert rest.endswith(err) if err else b"-ERR" not in rest
    still_serving(gateway_server)


def test_supercluster_message_for_unknown_account_gets_a_minus(gateway_server):
    raw = peer(gateway_server)
    raw.send(b"PING\r\n")
    raw.expect(rb".*PONG\r\n")
    raw.read_all(timeout=0.2)
    raw.send(b"RMSG NOSUCH foo 1\r\nx\r\nRMSG NOSUCH bar 1\r\nx\r\nPING\r\n")
    raw.expect(rb"A- NOSUCH\r\nPONG\r\n")  # once, however many messages
    still_serving(gateway_server)


def test_supercluster_client_may_not_publish_on_gr_prefix(gateway_server):
    client = RawClient("127.0.0.1", gateway_server.port)
    client.send(b'CONNECT {"verbose":false}\r\nPUB _GR_.abcdef.ghijkl.x 1\r\nx\r\nPING\r\n')
    client.expect(rb"-ERR 'Permissions Violation for Publish to \"_GR_\.abcdef\.ghijkl\.x\"'"
                  rb"\r\nPONG\r\n")
    still_serving(gateway_server)
