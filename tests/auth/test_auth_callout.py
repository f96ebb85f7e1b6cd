"""Auth callout: a real nats-py callout service (callout_service.py) decides
who gets in, for our server and for the Go nats-server with the same config
and the same service code; both must give the same answers, and the Go
server's requests must decode with our JWT codec."""

import asyncio
import json
import re

import nats
import pluggy_nats_plugins.auth as auth_plugin
import pytest
from callout_service import ISSUER_PUB, POLICY, SERVICE_XKEY, CalloutService

from pluggy_nats import Options, Server
from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError
from pluggy_nats.testing.plugin import run

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"

CONFIG = """
accounts {
  AUTH { users: [{user: auth, password: auth-pw}] }
  APP {}
}
authorization {
  auth_callout {
    issuer: %s
    auth_users: [auth]
    account: AUTH
  }
}
""" % ISSUER_PUB

# the same, with the exchange sealed to the service's curve key
XKEY_CONFIG = CONFIG.replace("account: AUTH", "account: AUTH\n    xkey: %s"
                             % SERVICE_XKEY.public_key)

# user -> accept/refuse, as the service's POLICY means it
EXPECTED = {"alice": "accept", "bob": "accept", "gina": "accept", "rita": "accept",
            "erin": "refuse",
            "ivan": "refuse", "nick": "refuse", "una": "refuse", "sam": "refuse",
            "eve": "refuse", "gary": "refuse", "uma": "refuse", "rex": "refuse",
            "mallory": "refuse"}


@pytest.fixture
def callout():
    services = []

    def start(server):
        service = CalloutService().start(server.url)
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


def _attempt(raw_client, server, user, password):
    """'accept' (PONG) or 'refuse' (the exact -ERR, then closed)."""
    c = raw_client(server, timeout=10.0)
    connect = {"verbose": False, "pedantic": False, "user": user, "pass": password,
               "name": "cli-%s" % user, "lang": "raw", "version": "1.0"}
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    m = c.expect(rb"(PONG\r\n|-ERR '[^']*'\r\n)", timeout=10.0)
    if m.group(1) == b"PONG\r\n":
        return "accept"
    assert m.group(1) == AUTH_VIOLATION
    c.expect_closed(timeout=5.0)
    return "refuse"


def _answers(raw_client, server):
    out = {}
    for user in EXPECTED:
        password = POLICY.get(user, ("whatever",))[0]
        out[user] = _attempt(raw_client, server, user, password)
    # the right user with a wrong password: the service refuses
    out["alice-wrong-pw"] = _attempt(raw_client, server, "alice", "nope")
    return out


def _expected():
    return dict(EXPECTED, **{"alice-wrong-pw": "refuse"})


def test_auth_callout_accepts_and_refuses(make_server, raw_client, callout):
    server = make_server(config=CONFIG)
    service = callout(server)
    assert _answers(raw_client, server) == _expected()
    assert not service.errors
    req = next(r for r in service.requests if r["nats"]["connect_opts"].get("user") == "alice")
    assert req["aud"] == "nats-authorization-request"
    assert req["sub"] == ISSUER_PUB
    assert req["iss"] == req["nats"]["server_id"]["id"] and req["iss"].startswith("N")
    assert req["nats"]["client_info"]["name"] == "cli-alice"
    assert req["nats"]["client_info"]["kind"] == "Client"
    assert req["nats"]["connect_opts"]["pass"] == "alice-pw"
    assert req["nats"]["user_nkey"].startswith("U")
    assert req["exp"] > req["iat"]


def test_auth_callout_auth_users_skip_it(make_server, raw_client, callout):
    server = make_server(config=CONFIG)
    service = callout(server)
    assert _attempt(raw_client, server, "auth", "auth-pw") == "accept"
    assert _attempt(raw_client, server, "auth", "wrong") == "refuse"
    assert all(r["nats"]["connect_opts"].get("user") != "auth" for r in service.requests)


@pytest.mark.parametrize("impl", ["ours", pytest.param("go", marks=pytest.mark.interop)])
def test_auth_callout_permissions_and_account(make_server, go_nats_server, callout, impl):
    """alice lands in APP with the JWT's permissions; bob (APP, no limits)
    sees her messages; gina ($G) does not; rita may answer one reply per
    request (resp) and publish nothing else."""
    server = (make_server if impl == "ours" else go_nats_server)(config=CONFIG)
    callout(server)

    async def main():
        errors = []

        async def error_cb(exc):
            errors.append(str(exc))

        alice = await nats.connect(server.url, user="alice", password="alice-pw",
                                   error_cb=error_cb, allow_reconnect=False)
        bob = await nats.connect(server.url, user="bob", password="bob-pw",
                                 allow_reconnect=False)
        gina = await nats.connect(server.url, user="gina", password="gina-pw",
                                  error_cb=error_cb, allow_reconnect=False)
        bob_sub = await bob.subscribe(">")
        gina_sub = await gina.subscribe(">")
        await bob.flush()
        await gina.flush()
        await alice.publish("app.hello", b"1")
        await alice.publish("other.hello", b"2")  # denied: pub allow is app.>
        await alice.subscribe("other.>")  # denied: sub allow is app.>, _INBOX.>
        await gina.publish("secret.x", b"3")  # denied by gina's pub deny
        await alice.flush()
        await gina.flush()
        msg = await bob_sub.next_msg(timeout=5)
        got = [(msg.subject, msg.data)]
        for _ in range(20):
            if len(errors) >= 3:
                break
            await alice.flush()
        try:
            extra = await bob_sub.next_msg(timeout=0.3)
            got.append((extra.subject, extra.data))
        except nats.errors.TimeoutError:
            pass
        gina_got = []
        try:
            m = await gina_sub.next_msg(timeout=0.3)
            gina_got.append(m.subject)
        except nats.errors.TimeoutError:
            pass

        rita = await nats.connect(server.url, user="rita", password="rita-pw",
                                  error_cb=error_cb, allow_reconnect=False)

        async def answer_twice(msg):
            await msg.respond(b"first")
            await msg.respond(b"second")  # over resp max 1: refused

        await rita.subscribe("svc.req", cb=answer_twice)
        await rita.flush()
        inbox = bob.new_inbox()
        replies = await bob.subscribe(inbox)
        await bob.flush()  # the inbox is registered before the request goes out
        await bob.publish("svc.req", b"?", reply=inbox)
        first = await replies.next_msg(timeout=5)
        answers = [first.data]
        try:
            answers.append((await replies.next_msg(timeout=0.5)).data)
        except nats.errors.TimeoutError:
            pass
        await rita.publish("other", b"x")  # no publish permission besides replies
        await rita.flush()
        for _ in range(50):
            if len(errors) >= 5:
                break
            await asyncio.sleep(0.02)
        for nc in (alice, bob, gina, rita):
            await nc.close()
        errors.append(("answers", answers, inbox))
        return got, gina_got, errors

    got, gina_got, errors = run(main())
    _, answers, inbox = errors.pop()
    assert answers == [b"first"]
    # (nats-py lowercases the error text)
    assert "nats: permissions violation for publish to \"%s\"" % inbox.lower() in errors
    assert "nats: permissions violation for publish to \"other\"" in errors
    assert got == [("app.hello", b"1")]
    assert gina_got == []
    assert "nats: permissions violation for publish to \"other.hello\"" in errors
    assert "nats: permissions violation for subscription to \"other.>\"" in errors
    assert "nats: permissions violation for publish to \"secret.x\"" in errors


def test_auth_callout_waits_do_not_block_others(make_server, raw_client, callout):
    """While a callout request waits (sam: no answer), other clients connect."""
    server = make_server(config=CONFIG)
    callout(server)
    c = raw_client(server, timeout=10.0)
    c.send(b'CONNECT {"verbose":false,"user":"sam","pass":"sam-pw"}\r\nPING\r\n')
    assert _attempt(raw_client, server, "bob", "bob-pw") == "accept"
    assert _attempt(raw_client, server, "auth", "auth-pw") == "accept"
    c.expect(re.escape(AUTH_VIOLATION), timeout=10.0)


def test_auth_callout_config_errors():
    def errors(block):
        try:
            Server(Options(conf=loads("authorization { users: [{user: a, password: b}]\n"
                                      " auth_callout { %s } }" % block)),
                   plugins=[auth_plugin], autoload=False)
        except ConfigError as exc:
            return str(exc)
        return ""

    assert "Expected callout user to be a valid public account nkey" in errors(
        "issuer: UBAD, auth_users: [a]")
    assert "Authorization callouts require an issuer to be specified" in errors(
        "auth_users: [a]")
    assert "Authorization callouts require authorized users to be specified" in errors(
        "issuer: %s" % ISSUER_PUB)
    assert 'Unknown field "foo" parsing authorization callout' in errors(
        "issuer: %s, auth_users: [a], foo: 1" % ISSUER_PUB)
    assert "Expected callout xkey to be a valid public xkey" in errors(
        "issuer: %s, auth_users: [a], xkey: XBAD" % ISSUER_PUB)
    assert errors("issuer: %s, auth_users: [a], xkey: %s"
                  % (ISSUER_PUB, SERVICE_XKEY.public_key)) == ""
    assert errors("issuer: %s, auth_users: [a]" % ISSUER_PUB) == ""


def test_auth_callout_xkey(make_server, raw_client, callout):
    server = make_server(config=XKEY_CONFIG)
    service = callout(server)
    assert _answers(raw_client, server) == _expected()
    assert not service.errors
    assert service.sealed and all(service.sealed)
    assert all(r["nats"]["server_id"]["xkey"].startswith("X") for r in service.requests)


@pytest.mark.interop
@pytest.mark.parametrize("config", [CONFIG, XKEY_CONFIG], ids=["plain", "xkey"])
def test_auth_callout_same_answers_as_go(make_server, go_nats_server, raw_client, callout,
                                         config):
    ours = make_server(config=config)
    go = go_nats_server(config=config)
    ours_service, go_service = callout(ours), callout(go)
    ours_answers = _answers(raw_client, ours)
    go_answers = _answers(raw_client, go)
    assert go_answers == _expected()
    assert ours_answers == go_answers
    assert not go_service.errors and not ours_service.errors
    assert ours_service.sealed == go_service.sealed
    # The Go server's request decoded with our codec: the same claims, but for
    # what differs by nature (keys, ids, times).
    go_req = next(r for r in go_service.requests
                  if r["nats"]["connect_opts"].get("user") == "alice")
    our_req = next(r for r in ours_service.requests
                   if r["nats"]["connect_opts"].get("user") == "alice")
    assert _shape(our_req) == _shape(go_req)
    assert our_req["nats"]["type"] == "authorization_request"


def _shape(req):
    req = json.loads(json.dumps(req))
    for key in ("iss", "jti", "iat", "exp"):
        req.pop(key)
    nats_claims = req["nats"]
    nats_claims.pop("user_nkey")
    nats_claims["client_info"].pop("id")
    server_id = nats_claims["server_id"]
    for key in ("id", "name", "xkey"):
        assert server_id.pop(key, "X")[:1] in ("N", "X"), key
    return req


SYS_CONFIG = CONFIG.replace("  APP {}", "  APP {}\n  SYS { users: [{user: sys, password: sys-pw}] }"
                            ).replace("auth_users: [auth]", "auth_users: [auth, sys]"
                                      ) + "system_account: SYS\n"


@pytest.mark.parametrize("impl", ["ours", pytest.param("go", marks=pytest.mark.interop)])
def test_auth_callout_refusal_is_an_auth_error_event(make_server, go_nats_server, raw_client,
                                                     callout, impl):
    server = (make_server if impl == "ours" else go_nats_server)(config=SYS_CONFIG)
    callout(server)

    async def main():
        sys_nc = await nats.connect(server.url, user="sys", password="sys-pw",
                                    allow_reconnect=False)
        errs = await sys_nc.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR")
        await sys_nc.flush()
        assert _attempt(raw_client, server, "erin", "erin-pw") == "refuse"
        event = json.loads((await errs.next_msg(timeout=5)).data)
        await sys_nc.close()
        return event

    event = run(main())
    assert event["reason"] == "Authentication Failure"
    assert event["client"]["user"] == "erin" and event["client"]["name"] == "cli-erin"
