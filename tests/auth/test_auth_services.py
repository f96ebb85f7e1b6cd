"""Service exports/imports: request/reply across accounts with the real nats-py
client (singleton and streamed responses, headers, wildcard imports, chains,
no responders), isolation of the accounts around them, and the config errors."""

import asyncio
import json

import nats
import nats.errors
import pluggy_nats_plugins.auth as auth_plugin
import pytest

from pluggy_nats import Server
from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError, Options
from pluggy_nats.testing.plugin import run

CONF = """
accounts {
  A: {
    users: [{user: a, password: a}]
    exports: [
      {service: "svc.>"}
      {service: "strm.>", response_type: stream, threshold: "1s"}
      {service: "priv.x", accounts: [C]}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "svc.x"}, to: "local.x"}
      {service: {account: A, subject: "strm.x"}}
      {service: {account: A, subject: "svc.wild.*"}, to: "w.*"}
    ]
  }
  C: {
    users: [{user: c, password: c}]
    exports: [{service: "chain.>"}]
    imports: [
      {service: {account: A, subject: "priv.x"}}
      {service: {account: A, subject: "svc.c"}, to: "chain.x"}
    ]
  }
  D: {
    users: [{user: d, password: d}]
    imports: [{service: {account: C, subject: "chain.x"}}]
  }
  E: { users: [{user: e, password: e}] }
}
"""


async def settle(nc):
    """Everything sent so far has been processed by the server (see
    test_auth_accounts.settle: give nats-py's flusher a turn first)."""
    await asyncio.sleep(0.01)
    await nc.flush()


async def _conn(server, user):
    return await nats.connect(server.url, user=user, password=user, allow_reconnect=False)


async def _drain(sub, quiet=0.3):
    out = []
    while True:
        try:
            msg = await sub.next_msg(timeout=quiet)
        except nats.errors.TimeoutError:
            return out
        out.append(msg)


async def _responder(nc, subject, count=1, seen=None):
    """Answer each request ``count`` times with ``re:<subject>:<data>:<i>``."""

    async def handler(msg):
        if seen is not None:
            seen.append(msg)
        for i in range(count):
            await nc.publish(msg.reply, b"re:%s:%s:%d" % (msg.subject.encode(), msg.data, i),
                             headers={"Resp": str(i)})

    sub = await nc.subscribe(subject, cb=handler)
    await settle(nc)
    return sub


def test_auth_services_singleton_request_reply(make_server):
    server = make_server(config=CONF)

    async def main():
        a, b = await _conn(server, "a"), await _conn(server, "b")
        seen = []
        await _responder(a, "svc.>", count=2, seen=seen)
        reply = await b.request("local.x", b"hi", timeout=5, headers={"X-Req": "7"})
        # a singleton route is gone after one response: the second is dropped
        inbox = await b.subscribe("my.inbox")
        await settle(b)
        await b.publish("local.x", b"again", reply="my.inbox")
        got = await _drain(inbox)
        wild = await b.request("w.foo", b"w", timeout=5)
        await a.close()
        await b.close()
        return reply, got, seen, wild

    reply, got, seen, wild = run(main())
    assert reply.data == b"re:svc.x:hi:0"
    assert reply.headers == {"Resp": "0"}
    assert [m.data for m in got] == [b"re:svc.x:again:0"]
    # the responder saw A's subject, a _R_ reply, the requester's headers and
    # the requesting account in Nats-Request-Info
    first = seen[0]
    assert first.subject == "svc.x"
    assert first.reply.startswith("_R_.")
    assert first.headers["X-Req"] == "7"
    assert json.loads(first.headers["Nats-Request-Info"])["acc"] == "B"
    assert wild.data == b"re:svc.wild.foo:w:0"


def test_auth_services_streamed_responses_until_threshold(make_server):
    server = make_server(config=CONF)

    async def main():
        a, b = await _conn(server, "a"), await _conn(server, "b")
        held = []
        await _responder(a, "strm.>", count=3, seen=held)
        inbox = await b.subscribe("my.inbox")
        await settle(b)
        await b.publish("strm.x", b"s", reply="my.inbox")
        streamed = await _drain(inbox)
        # the route lives for the export's threshold (1s here), then is gone
        await asyncio.sleep(1.3)
        await a.publish(held[0].reply, b"late")
        await settle(a)
        late = await _drain(inbox)
        await a.close()
        await b.close()
        return streamed, late

    streamed, late = run(main())
    assert [m.data for m in streamed] == [b"re:strm.x:s:%d" % i for i in range(3)]
    assert late == []


def test_auth_services_no_responders_and_isolation(make_server):
    server = make_server(config=CONF)

    async def main():
        a, b, e = await _conn(server, "a"), await _conn(server, "b"), await _conn(server, "e")
        watch_e = await e.subscribe(">")
        watch_b = await b.subscribe("svc.>")
        await settle(e)
        await settle(b)
        errors = []
        try:
            await b.request("local.x", b"nobody", timeout=5)
        except nats.errors.NoRespondersError:
            errors.append("no responders")
        await _responder(a, "svc.>")
        await b.request("local.x", b"hi", timeout=5)
        await a.publish("svc.x", b"direct in A")  # an import is not a stream of A's messages
        await e.publish("local.x", b"E has no import")
        await settle(a)
        await settle(e)
        got_e = await _drain(watch_e)
        got_b = await _drain(watch_b)
        for nc in (a, b, e):
            await nc.close()
        return errors, got_e, got_b

    errors, got_e, got_b = run(main())
    assert errors == ["no responders"]
    assert [(m.subject, m.data) for m in got_e] == [("local.x", b"E has no import")]
    assert got_b == []


def test_auth_services_chain_and_restricted_export(make_server):
    server = make_server(config=CONF)

    async def main():
        a, c, d = await _conn(server, "a"), await _conn(server, "c"), await _conn(server, "d")
        # nobody serves svc.c yet: the 503 travels back through both hops
        try:
            await d.request("chain.x", b"early", timeout=5)
            early = "answered"
        except nats.errors.NoRespondersError:
            early = "no responders"
        seen = []
        await _responder(a, "priv.x", seen=seen)
        await _responder(a, "svc.c", seen=seen)
        via_c = await c.request("priv.x", b"p", timeout=5)
        via_chain = await d.request("chain.x", b"ch", timeout=5)
        for nc in (a, c, d):
            await nc.close()
        return early, via_c, via_chain, seen

    early, via_c, via_chain, seen = run(main())
    assert early == "no responders"
    assert via_c.data == b"re:priv.x:p:0"
    assert via_chain.data == b"re:svc.c:ch:0"
    # the first hop's account is kept; the chained hop names the service account
    assert json.loads(seen[0].headers["Nats-Request-Info"])["acc"] == "C"
    info = json.loads(seen[1].headers["Nats-Request-Info"])
    assert (seen[1].subject, info["acc"], info["svc"]) == ("svc.c", "D", "C")


def _configure(text):
    return Server(Options(conf=loads(text)), plugins=[auth_plugin], autoload=False)


@pytest.mark.parametrize("conf,message", [
    ('accounts { A: { exports: [{service: "svc.>", accounts: [C]}] }, '
     'B: { imports: [{service: {account: A, subject: "svc.x"}}] }, C: {} }',
     'Error adding service import "svc.x": service import not authorized'),
    ('accounts { A: { exports: [{stream: "s.>", accounts: [C]}] }, '
     'B: { imports: [{stream: {account: A, subject: "s.x"}}] }, C: {} }',
     'Error adding stream import "s.x": stream import not authorized'),
    ('accounts { A: { exports: [{service: "x"}] }, B: { imports: [{service: {account: A, '
     'subject: "y"}}] } }', 'Error adding service import "y": service import not authorized'),
    ('accounts { A: { exports: [{service: "x"}], imports: [{service: {account: B, subject: '
     '"x"}}] }, B: { exports: [{service: "x"}], imports: [{service: {account: A, subject: '
     '"x"}}] } }', 'Error adding service import "x": import forms a cycle'),
    ('accounts { A: { exports: [{service: "x", accounts: [Z]}] } }',
     '"Z" account not defined for service export'),
    ('accounts { A: { exports: [{service: "x", response_type: bogus}] } }',
     'Unknown response type: "bogus"'),
    ('accounts { A: { exports: [{stream: "x", response_type: stream}] } }',
     "Detected response directive on non-service"),
    ('accounts { A: { exports: [{service: "x"}] }, B: { imports: ['
     '{service: {account: A, subject: "x"}}, {service: {account: A, subject: "x"}}] } }',
     'Duplicate service import subject "x", previously used in import for account "A", '
     'subject "x"'),
])
def test_auth_services_config_errors(conf, message):
    with pytest.raises(ConfigError) as info:
        _configure(conf)
    assert message in str(info.value)


def test_auth_services_config_no_warning():
    server = _configure(CONF)
    assert not [w for w in server.options.warnings if "service" in w]
