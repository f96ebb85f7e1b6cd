"""Accounts: users bound to their account, full isolation between accounts,
and stream exports/imports (with prefix, renaming, restricted exports, chains
that loop)."""

import asyncio

import nats
import nkeys

from pluggy_nats.testing.plugin import run

SEED = nkeys.encode_seed(bytes([42]) * 32, nkeys.PREFIX_BYTE_USER).decode()
PUB = nkeys.from_seed(bytearray(SEED.encode())).public_key.decode()

CONF = """
accounts {
  A: {
    users: [{user: a, password: a}, {user: a2, password: a2}]
    exports: [{stream: "events.>"}, {stream: "private.>", accounts: [C]}]
  }
  B: {
    users: [{user: b, password: b}, {nkey: %s}]
    imports: [{stream: {account: A, subject: "events.>"}, prefix: from_a}]
  }
  C: {
    users: [{user: c, password: c}]
    imports: [
      {stream: {account: A, subject: "private.x"}}
      {stream: {account: A, subject: "events.one"}, to: renamed.one}
    ]
  }
  D: {
    users: [{user: d, password: d}]
    exports: [{stream: "loop.>"}]
    imports: [{stream: {account: E, subject: "loop.>"}}]
  }
  E: {
    users: [{user: e, password: e}]
    exports: [{stream: "loop.>"}]
    imports: [{stream: {account: D, subject: "loop.>"}}]
  }
}
authorization { users: [{user: g, password: g}] }
""" % PUB

async def settle(nc):
    """A real barrier: everything sent so far has been processed by the server.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, so it can
    overtake SUB/PUB commands still queued for the client's flusher task (and
    return before the server saw them). Give the flusher a turn first."""
    await asyncio.sleep(0.01)
    await nc.flush()


async def _conn(server, user, **kwargs):
    if not kwargs:
        kwargs = dict(user=user, password=user)
    return await nats.connect(server.url, allow_reconnect=False, **kwargs)


async def _drain(sub, quiet=0.3):
    """Every message that arrives until ``quiet`` seconds pass without one."""
    out = []
    while True:
        try:
            msg = await sub.next_msg(timeout=quiet)
        except nats.errors.TimeoutError:
            return out
        out.append((msg.subject, msg.data))


def test_auth_accounts_isolation(make_server, raw_client):
    server = make_server(config=CONF)

    async def main():
        conns = {u: await _conn(server, u) for u in ("a", "a2", "b", "g")}
        conns["b-nkey"] = await _conn(server, None, nkeys_seed_str=SEED)
        subs = {}
        for name, nc in conns.items():
            subs[name] = await nc.subscribe(">")
            await settle(nc)
        await conns["b"].publish("shared.subject", b"from-b")
        await conns["g"].publish("shared.subject", b"from-g")
        await conns["a2"].publish("shared.subject", b"from-a2")
        for nc in conns.values():
            await settle(nc)
        got = {name: await _drain(sub) for name, sub in subs.items()}
        for nc in conns.values():
            await nc.close()
        return got

    got = run(main())
    assert got["a"] == [("shared.subject", b"from-a2")]
    assert got["a2"] == [("shared.subject", b"from-a2")]
    assert got["b"] == [("shared.subject", b"from-b")]
    assert got["b-nkey"] == [("shared.subject", b"from-b")]  # the nkey user is in B too
    assert got["g"] == [("shared.subject", b"from-g")]
    # the protocol-1 INFO after the first PONG names the account
    c = raw_client(server)
    c.send(b'CONNECT {"verbose":false,"protocol":1,"user":"b","pass":"b"}\r\nPING\r\n')
    c.expect(rb'PONG\r\nINFO \{.*"remote_account":"B".*\} \r\n')


def test_auth_accounts_stream_imports(make_server):
    server = make_server(config=CONF)

    async def main():
        a, b, c, g = [await _conn(server, u) for u in ("a", "b", "c", "g")]
        sub_a = await a.subscribe(">")
        sub_b = await b.subscribe(">")
        sub_c = await c.subscribe(">")
        sub_g = await g.subscribe(">")
        for nc in (a, b, c, g):
            await settle(nc)
        await a.publish("events.x", b"1")
        await a.publish("events.one", b"2", headers={"K": "v"})
        await a.publish("private.x", b"3")
        await a.publish("private.y", b"4")  # exported to C, but C imports only private.x
        await a.publish("other", b"5")
        await b.publish("events.y", b"6")  # B's own events.y stays in B
        await settle(a)
        await settle(b)
        got_b = await _drain(sub_b)
        got_c = await _drain(sub_c)
        got_a = await _drain(sub_a)
        got_g = await _drain(sub_g)
        # headers and reply subjects travel with an imported message
        inbox = await b.subscribe("from_a.events.req")
        await settle(b)
        await a.publish("events.req", b"r", reply="reply.to", headers={"H": "1"})
        msg = await inbox.next_msg(timeout=5)
        for nc in (a, b, c, g):
            await nc.close()
        return got_a, got_b, got_c, got_g, msg

    got_a, got_b, got_c, got_g, msg = run(main())
    assert got_a == [("events.x", b"1"), ("events.one", b"2"), ("private.x", b"3"),
                     ("private.y", b"4"), ("other", b"5")]
    # (B's own publish and A's imported ones come from two connections: no order)
    assert sorted(got_b) == [("events.y", b"6"), ("from_a.events.one", b"2"),
                             ("from_a.events.x", b"1")]
    assert got_c == [("renamed.one", b"2"), ("private.x", b"3")]
    assert got_g == []
    assert msg.reply == "reply.to" and msg.headers == {"H": "1"} and msg.data == b"r"


def test_auth_accounts_import_cycle_delivers_once(make_server):
    server = make_server(config=CONF)

    async def main():
        d, e = await _conn(server, "d"), await _conn(server, "e")
        sub_d = await d.subscribe("loop.>")
        sub_e = await e.subscribe("loop.>")
        await settle(d)
        await settle(e)
        await d.publish("loop.1", b"from-d")
        await e.publish("loop.2", b"from-e")
        await settle(d)
        await settle(e)
        got = (await _drain(sub_d), await _drain(sub_e))
        await d.close()
        await e.close()
        return got

    got_d, got_e = run(main())
    assert sorted(got_d) == [("loop.1", b"from-d"), ("loop.2", b"from-e")]
    assert sorted(got_e) == [("loop.1", b"from-d"), ("loop.2", b"from-e")]


def test_auth_accounts_wrong_account_password(make_server):
    server = make_server(config=CONF)

    async def main():
        out = []
        for user, password in (("a", "a"), ("a", "b"), ("b", "a"), ("zz", "zz")):
            try:
                nc = await nats.connect(server.url, user=user, password=password,
                                        allow_reconnect=False, error_cb=_ignore)
                await nc.close()
                out.append("ok")
            except nats.errors.Error as exc:
                out.append(str(exc))
        return out

    assert run(main()) == ["ok"] + ["nats: 'Authorization Violation'"] * 3


async def _ignore(exc):
    pass
