"""Account limits (``accounts { A: { limits { ... } } }``) enforced by the core,
and per-account subject mappings, with nats-py and raw sockets."""

import asyncio

import nats

from pluggy_nats.testing.plugin import run

CONF = """
accounts {
  L: {
    users: [{user: l, password: l}]
    limits: {max_connections: 2, max_subscriptions: 2, max_payload: 10}
  }
  M: {
    users: [{user: m, password: m}]
    mappings: {"in.*": "out.$1"}
  }
  N: { users: [{user: n, password: n}] }
}
"""

CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s","protocol":1}\r\n'


def _login(raw_client, server, user):
    c = raw_client(server)
    c.send(CONNECT % (user, user) + b"PING\r\n")
    c.expect(rb"PONG\r\n")
    return c


def test_auth_limits_subscriptions_keep_the_connection(make_server, raw_client):
    server = make_server(config=CONF)
    c = _login(raw_client, server, b"l")
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB c 1\r\nx\r\nPUB a 1\r\ny\r\nPING\r\n")
    c.expect(rb"(INFO [^\r]*\r\n)?-ERR 'maximum subscriptions exceeded'\r\n"
             rb"MSG a 1 1\r\ny\r\nPONG\r\n")


def test_auth_limits_payload_closes_and_info_shows_it(make_server, raw_client):
    server = make_server(config=CONF)
    c = _login(raw_client, server, b"l")
    # the INFO after the first PONG of a protocol-1 client has the account's limit
    m = c.expect(rb'INFO (\{.*\}) \r\n')
    assert b'"max_payload":10,' in m.group(1)
    c.send(b"SUB a 1\r\nPUB a 10\r\n0123456789\r\nPING\r\n")
    c.expect(rb"MSG a 1 10\r\n0123456789\r\nPONG\r\n")
    c.send(b"PUB a 11\r\n01234567890\r\n")
    c.expect(rb"-ERR 'Maximum Payload Violation'\r\n")
    c.expect_closed()
    # another account keeps the server's limit
    n = _login(raw_client, server, b"n")
    n.send(b"PUB a 11\r\n01234567890\r\nPING\r\n")
    n.expect(rb"(INFO [^\r]*\r\n)?PONG\r\n")


def test_auth_limits_connections(make_server, raw_client, wait_for):
    server = make_server(config=CONF)
    first = _login(raw_client, server, b"l")
    _login(raw_client, server, b"l")
    third = raw_client(server)
    third.send(CONNECT % (b"l", b"l") + b"PING\r\n")
    third.expect(rb"-ERR 'maximum account active connections exceeded'\r\n")
    third.expect_closed()
    # other accounts are not counted
    _login(raw_client, server, b"n")
    # a slot frees when a connection of the account closes
    first.close()

    def fourth_gets_in():
        c = raw_client(server)
        c.send(CONNECT % (b"l", b"l") + b"PING\r\n")
        try:
            c.expect(rb"PONG\r\n", timeout=1.0)
            return True
        except AssertionError:
            return False

    wait_for(fourth_gets_in, timeout=10.0, message="a free connection slot")


def test_auth_account_mappings_apply_in_their_account_only(make_server):
    server = make_server(config=CONF)

    async def main():
        m = await nats.connect(server.url, user="m", password="m", allow_reconnect=False)
        n = await nats.connect(server.url, user="n", password="n", allow_reconnect=False)
        sub_m = await m.subscribe(">")
        sub_n = await n.subscribe(">")
        for nc in (m, n):
            await asyncio.sleep(0.01)
            await nc.flush()
        await m.publish("in.x", b"1")
        await n.publish("in.x", b"2")
        for nc in (m, n):
            await asyncio.sleep(0.01)
            await nc.flush()
        got_m = await sub_m.next_msg(timeout=5)
        got_n = await sub_n.next_msg(timeout=5)
        await m.close()
        await n.close()
        return got_m.subject, got_n.subject

    assert run(main()) == ("out.x", "in.x")
