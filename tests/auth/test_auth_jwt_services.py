"""Operator mode service imports, activation tokens and per-user limits with
the real nats-py client and ``.creds`` files (ours only; the differential
tests are in test_auth_jwt_services_interop.py).
"""

import asyncio
import json

import nats

from pluggy_nats.testing.operator import Trust, now
from pluggy_nats.testing.plugin import run


async def _responder(url, creds, *subjects):
    """A client of the exporting account answering ``<subject>|<acc>`` (the
    requesting account from Nats-Request-Info)."""
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False)

    async def answer(msg):
        info = json.loads((msg.headers or {}).get("Nats-Request-Info", "{}"))
        await msg.respond(("%s|%s" % (msg.subject, info.get("acc"))).encode())

    for subject in subjects:
        await nc.subscribe(subject, cb=answer)
    await nc.flush()
    return nc


async def _ask(url, creds, subject):
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False)
    try:
        return (await nc.request(subject, b"q", timeout=3)).data.decode()
    except nats.errors.NoRespondersError:
        return "no responders"
    finally:
        await nc.close()


def test_jwt_service_import_request_reply(tmp_path, make_server):
    """A request in B on an imported subject (plain, wildcard, local_subject)
    reaches A's responder, names B as the requesting account, and the answer
    comes back; an import of something A does not export gets no responders,
    and A's own subjects stay invisible to B."""
    trust = Trust(tmp_path)
    a = trust.account("A", exports=[Trust.service_export("svc.>"),
                                    Trust.service_export("time")])
    b = trust.account("B", imports=[Trust.service_import(a, "svc.*"),
                                    Trust.service_import(a, "time", local_subject="clock"),
                                    Trust.service_import(a, "secret")])
    server = make_server(config=trust.config())
    ca, cb = trust.user_creds(a, "a"), trust.user_creds(b, "b")

    async def main():
        responder = await _responder(server.url, ca, "svc.>", "time", "secret", "internal")
        got = [await _ask(server.url, cb, s)
               for s in ("svc.x", "clock", "time", "secret", "internal")]
        await responder.close()
        return got

    assert run(main()) == ["svc.x|%s" % b.pubkey, "time|%s" % b.pubkey, "no responders",
                           "no responders", "no responders"]


def test_jwt_activation_tokens(tmp_path, make_server):
    """A token_req export answers only the import with a valid activation
    (from the exporter or its signing key); a missing, expired or untrusted
    one leaves the import out; a token for another account invalidates the
    importing account's JWT (its users are refused)."""
    from pluggy_nats import jwt as natsjwt

    trust = Trust(tmp_path)
    sk = natsjwt.new_keypair("A")
    a = trust.account("A", signing_keys=[sk.public_key.decode()],
                      exports=[Trust.service_export("priv", token_req=True),
                               Trust.service_export("s.>", token_req=True, type="stream")])
    accs = {name: trust.account(name) for name in ("OK", "SK", "NONE", "OLD", "ROGUE", "BAD")}
    tokens = {
        "OK": trust.activation(a, accs["OK"], "priv"),
        "SK": trust.activation(a, accs["SK"], "priv", signer=sk),
        "NONE": None,
        "OLD": trust.activation(a, accs["OLD"], "priv", exp=now() - 5),
        "ROGUE": trust.activation(a, accs["ROGUE"], "priv", signer=natsjwt.new_keypair("A")),
        "BAD": trust.activation(a, accs["OK"], "priv"),
    }
    for name, token in tokens.items():
        extra = {"token": token} if token else {}
        trust.account_jwt(accs[name], imports=[Trust.service_import(a, "priv", **extra)])
    # a stream import of a token_req stream export, with its activation
    trust.account_jwt(accs["OK"], imports=[
        Trust.service_import(a, "priv", token=tokens["OK"]),
        {"name": "s", "subject": "s.>", "account": a.pubkey, "type": "stream",
         "token": trust.activation(a, accs["OK"], "s.>", kind="stream")}])
    server = make_server(config=trust.config())
    ca = trust.user_creds(a, "a")
    creds = {name: trust.user_creds(acc, "u") for name, acc in accs.items()}

    async def main():
        responder = await _responder(server.url, ca, "priv")
        got = {}
        for name, c in creds.items():
            try:
                got[name] = await _ask(server.url, c, "priv")
            except nats.errors.Error as exc:
                got[name] = str(exc)
        # the stream import delivers
        nok = await nats.connect(server.url, user_credentials=creds["OK"],
                                 allow_reconnect=False)
        sub = await nok.subscribe("s.>")
        await nok.flush()
        await responder.publish("s.1", b"x")
        got["stream"] = (await sub.next_msg(timeout=3)).subject
        await nok.close()
        await responder.close()
        return got

    got = run(main())
    assert got == {"OK": "priv|%s" % accs["OK"].pubkey, "SK": "priv|%s" % accs["SK"].pubkey,
                   "NONE": "no responders", "OLD": "no responders",
                   "ROGUE": "no responders", "BAD": "nats: 'Authorization Violation'",
                   "stream": "s.1"}


def test_jwt_service_import_rewired_on_update(tmp_path, make_server):
    """An exporter's update that adds token_req cuts the tokenless importer
    off; the importer's update carrying an activation brings it back."""
    trust = Trust(tmp_path)
    a = trust.account("A", exports=[Trust.service_export("q")])
    b = trust.account("B", imports=[Trust.service_import(a, "q")])
    server = make_server(config=trust.config(resolver="full"))
    ca, cb = trust.user_creds(a, "a"), trust.user_creds(b, "b")
    sys_creds = trust.user_creds(trust.system, "admin")
    private = trust.account_jwt(a, exports=[Trust.service_export("q", token_req=True)])
    activated = trust.account_jwt(b, imports=[Trust.service_import(
        a, "q", token=trust.activation(a, b, "q"))])

    async def main():
        responder = await _responder(server.url, ca, "q")
        sysc = await nats.connect(server.url, user_credentials=sys_creds,
                                  allow_reconnect=False)
        got = [await _ask(server.url, cb, "q")]
        await sysc.request("$SYS.REQ.CLAIMS.UPDATE", private.encode(), timeout=3)
        got.append(await _ask(server.url, cb, "q"))
        await sysc.request("$SYS.REQ.CLAIMS.UPDATE", activated.encode(), timeout=3)
        got.append(await _ask(server.url, cb, "q"))
        await sysc.close()
        await responder.close()
        return got

    answer = "q|%s" % b.pubkey
    assert run(main()) == [answer, "no responders", answer]


def test_jwt_user_limits(tmp_path, make_server):
    """A user JWT's subs and payload limit that user's connections only: the
    third subscription gets 'maximum subscriptions exceeded', a publish over
    8 bytes 'Maximum Payload Violation' (nats-py closes on either, and no
    error_cb sees them); a user
    without limits does both."""
    trust = Trust(tmp_path)
    a = trust.account("A")
    server = make_server(config=trust.config())
    limited = trust.user_creds(a, "l", subs=2, payload=8)
    free = trust.user_creds(a, "f")

    async def session(creds, subjects, payloads, closes):
        errors = []
        closed = asyncio.Event()

        async def error_cb(exc):
            errors.append(str(exc))

        async def closed_cb():
            closed.set()

        nc = await nats.connect(server.url, user_credentials=creds, error_cb=error_cb,
                                closed_cb=closed_cb, allow_reconnect=False)
        echo = await nc.subscribe("echo")
        for s in subjects:
            await nc.subscribe(s)
        await nc.flush()
        # nats-py checks only the first INFO's max_payload: the server judges
        got = []
        for p in payloads:
            await nc.publish("echo", p)
            try:
                got.append(len((await echo.next_msg(timeout=2)).data))
            except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError):
                break
        if closes:  # nats-py closes on the server's -ERR and keeps it as last_error
            await asyncio.wait_for(closed.wait(), timeout=5)
            errors.append(str(nc.last_error))
        else:
            await nc.close()
        return errors, got

    async def main():
        return [await session(limited, ("a", "b"), (), True),
                await session(limited, (), (b"12345678", b"123456789"), True),
                await session(free, ("a", "b"), (b"12345678", b"123456789"), False)]

    assert run(main()) == [(["nats: maximum subscriptions exceeded"], []),
                           (["nats: maximum payload violation"], [8]),  # nats-py's wording
                           ([], [8, 9])]
