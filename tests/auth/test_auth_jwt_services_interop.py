"""Differential tests of service imports, activation tokens and per-user
limits in operator mode: the same operator, accounts and users for the Go
nats-server and ours; the answers must be identical.

* requests through JWT service imports (plain, with ``local_subject``, a
  wildcard export), and ``token_req`` exports imported with a valid
  activation, none, another account's, an expired one, one for another
  subject, and one signed by the exporter's signing key;
* a user JWT's ``subs``/``payload`` limits (and an account whose limits are
  lower): the same ``-ERR``s, the same closing.
"""

import json
import re

import nats
import pytest

from pluggy_nats import jwt as natsjwt
from pluggy_nats.testing.operator import Trust, connect_fields, now
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop


def _service_trust(trust):
    """The exporter A (a responder answering with the subject it saw) and one
    importing account per case: (case name, account, local subject)."""
    sk = natsjwt.new_keypair("A")
    a = trust.account("A", signing_keys=[sk.public_key.decode()], exports=[
        Trust.service_export("echo.>"),
        Trust.service_export("priv", token_req=True),
        Trust.service_export("stream", response_type="Stream")])
    cases = []

    def importer(name, *imports):
        acc = trust.account(name)
        trust.account_jwt(acc, imports=list(imports))
        return acc

    b = importer("B", Trust.service_import(a, "echo.one"),
                 Trust.service_import(a, "echo.two", local_subject="two"),
                 Trust.service_import(a, "stream", local_subject="st"),
                 Trust.service_import(a, "nope"))
    cases += [("plain", b, "echo.one"), ("local_subject", b, "two"),
              ("streamed", b, "st"), ("not exported", b, "nope")]
    ok = trust.account("OK")
    trust.account_jwt(ok, imports=[Trust.service_import(
        a, "priv", token=trust.activation(a, ok, "priv"))])
    cases.append(("valid activation", ok, "priv"))
    none = importer("NONE", Trust.service_import(a, "priv"))
    cases.append(("no activation", none, "priv"))
    other = importer("OTHER", Trust.service_import(
        a, "priv", token=trust.activation(a, ok, "priv")))
    cases.append(("activation for another account", other, "priv"))
    old = trust.account("OLD")
    trust.account_jwt(old, imports=[Trust.service_import(
        a, "priv", token=trust.activation(a, old, "priv", exp=now() - 10))])
    cases.append(("expired activation", old, "priv"))
    wrong = trust.account("WRONG")
    trust.account_jwt(wrong, imports=[Trust.service_import(
        a, "priv", token=trust.activation(a, wrong, "other"))])
    cases.append(("activation for another subject", wrong, "priv"))
    signed = trust.account("SIGNED")
    trust.account_jwt(signed, imports=[Trust.service_import(
        a, "priv", local_subject="p", token=trust.activation(a, signed, "priv", signer=sk))])
    cases.append(("activation by signing key", signed, "p"))
    rogue = trust.account("ROGUE")
    trust.account_jwt(rogue, imports=[Trust.service_import(
        a, "priv", token=trust.activation(a, rogue, "priv",
                                          signer=natsjwt.new_keypair("A")))])
    cases.append(("activation by a stranger's key", rogue, "priv"))
    return a, cases


async def _requests(srv, responder_creds, cases):
    responder = await nats.connect(srv.url, user_credentials=responder_creds,
                                   allow_reconnect=False)

    async def answer(msg):
        info = json.loads((msg.headers or {}).get("Nats-Request-Info", "{}"))
        await msg.respond(("%s from %s" % (msg.subject, info.get("acc") is not None)).encode())
        if msg.subject == "stream":
            await msg.respond(b"second")

    for subject in ("echo.>", "priv", "stream", "nope"):
        await responder.subscribe(subject, cb=answer)
    await responder.flush()
    got = []
    for name, creds, subject in cases:
        try:
            nc = await nats.connect(srv.url, user_credentials=creds, allow_reconnect=False)
        except nats.errors.Error as exc:
            got.append((name, "connect: %s" % exc))
            continue
        try:
            if name == "streamed":
                inbox = nc.new_inbox()
                sub = await nc.subscribe(inbox)
                await nc.publish(subject, b"q", reply=inbox)
                answer_ = [(await sub.next_msg(timeout=3)).data.decode() for _ in range(2)]
            else:
                answer_ = (await nc.request(subject, b"q", timeout=3)).data.decode()
        except nats.errors.NoRespondersError:
            answer_ = "no responders"
        except nats.errors.TimeoutError:
            answer_ = "timeout"
        got.append((name, answer_))
        await nc.close()
    await responder.close()
    return got


def test_jwt_interop_service_imports_and_activations(tmp_path, make_server, go_nats_server):
    trust = Trust(tmp_path)
    a, cases = _service_trust(trust)
    conf = trust.config()
    responder = trust.user_creds(a, "responder")
    cases = [(name, trust.user_creds(acc, "r"), subject) for name, acc, subject in cases]
    want = run(_requests(go_nats_server(config=conf), responder, cases))
    # the reference both serves and refuses
    assert ("valid activation", "priv from True") in want, want
    assert ("no activation", "no responders") in want, want
    got = run(_requests(make_server(config=conf), responder, cases))
    assert got == want, (want, got)


def _limit_script(raw_client, server, token, kp, script):
    """The frames the server sends for ``script`` after CONNECT, and whether
    it then closed the connection."""
    c = raw_client(server)
    connect = dict(connect_fields(token, kp, c.info), verbose=False, pedantic=False)
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    c.expect(rb"PONG\r\n", timeout=5.0)
    c.send(script + b"PING\r\n")
    data = c.expect(rb"(.*?)(PONG\r\n|-ERR 'Maximum Payload Violation'\r\n)",
                    timeout=5.0)
    frames = re.findall(rb"MSG [^\r]*\r\n[^\r]*\r\n|[^\r]*\r\n", data.group(0))
    frames = [f for f in frames if not f.startswith(b"INFO ")]
    closed = "open"
    if data.group(2) != b"PONG\r\n":
        c.expect_closed(timeout=5.0)
        closed = "closed"
    c.close()
    return frames, closed


LIMIT_SCRIPT = (b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 4\r\nfour\r\n"
                b"PUB b 10\r\n0123456789\r\nPUB a 11\r\n0123456789x\r\n")


def test_jwt_interop_user_limits(tmp_path, make_server, go_nats_server, raw_client):
    trust = Trust(tmp_path)
    a = trust.account("A")
    low = trust.account("LOW", limits={"subs": 1, "payload": 4})
    users = {
        "user limits": trust.user_jwt(a, "u", subs=2, payload=10),
        "unlimited user": trust.user_jwt(a, "v"),
        "account lower": trust.user_jwt(low, "w", subs=5, payload=100),
    }
    conf = trust.config()
    go, ours = go_nats_server(config=conf), make_server(config=conf)
    for name, (token, kp) in users.items():
        want = _limit_script(raw_client, go, token, kp, LIMIT_SCRIPT)
        got = _limit_script(raw_client, ours, token, kp, LIMIT_SCRIPT)
        assert got == want, (name, want, got)
    want = _limit_script(raw_client, go, *users["user limits"], LIMIT_SCRIPT)
    assert b"-ERR 'maximum subscriptions exceeded'\r\n" in want[0], want
    assert want[1] == "closed"
