"""Operator mode (decentralized JWT auth) with the real nats-py client and
``.creds`` files minted in the test (:mod:`pluggy_nats.testing.operator`).

Accepted and refused users, permissions from the user JWT, isolation between
two JWT accounts, stream imports declared in account JWTs, and the full
directory resolver taking account JWTs over ``$SYS.REQ.CLAIMS.UPDATE``.
"""

import asyncio
import json
import os

import nats
import pluggy_nats_plugins.auth as auth_plugin
import pytest

from pluggy_nats import Options, Server
from pluggy_nats import jwt as natsjwt
from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError
from pluggy_nats.testing.operator import Trust, now
from pluggy_nats.testing.plugin import run

AUTH_VIOLATION = "nats: 'Authorization Violation'"


async def _attempt(url, **kwargs):
    """'ok' or the error text of a nats-py connect."""

    async def error_cb(exc):
        pass

    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=3,
                                error_cb=error_cb, **kwargs)
    except Exception as exc:
        return str(exc)
    await nc.flush()
    await nc.close()
    return "ok"


def _attempts(url, creds_files):
    async def main():
        return [await _attempt(url, user_credentials=c) for c in creds_files]

    return run(main())


def _write_creds(trust, name, token, seed):
    path = os.path.join(trust.dir, name + ".creds")
    with open(path, "w") as f:
        f.write(natsjwt.creds(token, seed))
    return path


def test_jwt_users_accepted_and_refused(tmp_path, make_server):
    trust = Trust(tmp_path)
    a = trust.account("A")
    sk = natsjwt.new_keypair("A")
    signed = trust.account("SIGNED", signing_keys=[sk.public_key.decode()])
    old = trust.account("OLD", exp=now() - 10)
    unknown = trust.account("UNKNOWN")
    revoked_kp = natsjwt.new_keypair("U")
    rev = trust.account("REV", revocations={revoked_kp.public_key.decode(): now() + 5})
    rogue_op = natsjwt.new_keypair("O")
    rogue = trust.account("ROGUE")
    trust.account_jwt(rogue, signer=rogue_op)  # an account of an untrusted operator
    server = make_server(config=trust.config(preload=[trust.system, a, signed, old, rev,
                                                      rogue]))

    good_jwt, good_kp = trust.user_jwt(a, "good")
    foreign_jwt, _ = trust.user_jwt(a, "foreign", signer=natsjwt.new_keypair("A"))
    cases = [
        ("good user", trust.user_creds(a, "alice"), "ok"),
        ("wrong seed", _write_creds(trust, "wrongseed", good_jwt,
                                    natsjwt.new_keypair("U").seed), AUTH_VIOLATION),
        ("right seed", _write_creds(trust, "rightseed", good_jwt, good_kp.seed), "ok"),
        ("user of a signing key", trust.user_creds(signed, "s", signer=sk), "ok"),
        ("signed by a foreign account key", _write_creds(trust, "foreign", foreign_jwt,
                                                          natsjwt.new_keypair("U").seed),
         AUTH_VIOLATION),
        ("expired user", trust.user_creds(a, "late", exp=now() - 5), AUTH_VIOLATION),
        ("not yet valid user", trust.user_creds(a, "early", nbf=now() + 3600),
         AUTH_VIOLATION),
        ("user valid for an hour", trust.user_creds(a, "hour", exp=now() + 3600), "ok"),
        ("expired account", trust.user_creds(old, "o"), AUTH_VIOLATION),
        ("unknown account", trust.user_creds(unknown, "u"), AUTH_VIOLATION),
        ("revoked user", trust.user_creds(rev, "r", kp=revoked_kp), AUTH_VIOLATION),
        ("another user of that account", trust.user_creds(rev, "r2"), "ok"),
        ("revoked key, JWT issued after the revocation",
         trust.user_creds(rev, "r3", kp=revoked_kp, issued_at=now() + 60), "ok"),
        ("account of an untrusted operator", trust.user_creds(rogue, "x"), AUTH_VIOLATION),
        ("system account user", trust.user_creds(trust.system, "sys"), "ok"),
    ]
    got = _attempts(server.url, [c[1] for c in cases])
    assert list(zip([c[0] for c in cases], got, strict=True)) == [(c[0], c[2]) for c in cases]


def test_jwt_wildcard_revocation_and_operator_signing_key(tmp_path, make_server):
    trust = Trust(tmp_path, operator_signing_key=True)  # accounts signed by the op's key
    a = trust.account("A", revocations={"*": now() - 100})
    server = make_server(config=trust.config())
    got = _attempts(server.url, [trust.user_creds(a, "old", issued_at=now() - 200),
                                 trust.user_creds(a, "new")])
    assert got == [AUTH_VIOLATION, "ok"]


def test_jwt_bearer_token_and_missing_signature(tmp_path, make_server, raw_client):
    trust = Trust(tmp_path)
    a = trust.account("A")
    server = make_server(config=trust.config())
    bearer, _ = trust.user_jwt(a, "b", bearer_token=True)
    plain, _ = trust.user_jwt(a, "p")
    for token, expected in ((bearer, b"PONG\r\n"),
                            (plain, b"-ERR 'Authorization Violation'\r\n")):
        c = raw_client(server)
        assert c.info["nonce"]
        c.send(b"CONNECT " + json.dumps({"jwt": token, "verbose": False}).encode()
               + b"\r\nPING\r\n")
        assert c.expect(rb"PONG\r\n|-ERR '[^']*'\r\n").group(0) == expected
    # nats-py with only the bearer JWT (no seed): accepted
    assert run(_attempt(server.url, user_jwt_cb=lambda: bearer.encode(),
                        signature_cb=lambda nonce: b"")) == "ok"


def test_jwt_permissions_enforced(tmp_path, make_server):
    trust = Trust(tmp_path)
    a = trust.account("A")
    scoped = natsjwt.new_keypair("A")
    s = trust.account("S", signing_keys=[{
        "kind": "user_scope", "key": scoped.public_key.decode(), "role": "r",
        "template": {"pub": {"allow": ["scoped.>"]}, "sub": {"allow": ["scoped.>"]}}}])
    server = make_server(config=trust.config())
    limited = trust.user_creds(a, "limited", pub={"allow": ["ok.>"], "deny": ["ok.no"]},
                               sub={"allow": ["ok.>", "_INBOX.>"]})
    scoped_user = trust.user_creds(s, "sc", signer=scoped, bare=True)
    scoped_with_own = trust.user_creds(s, "sc2", signer=scoped, bare=True,
                                       pub={"allow": [">"]})

    async def main():
        errors = []

        async def error_cb(exc):
            errors.append(str(exc).lower())

        nc = await nats.connect(server.url, user_credentials=limited, error_cb=error_cb,
                                allow_reconnect=False)
        sub = await nc.subscribe("ok.>")
        await nc.subscribe("secret")
        await nc.publish("ok.yes", b"1")
        await nc.publish("ok.no", b"2")
        await nc.publish("other", b"3")
        msg = await sub.next_msg(timeout=3)
        await nc.flush()
        for _ in range(50):
            if len(errors) >= 3:
                break
            await asyncio.sleep(0.1)
        await nc.close()
        nc2 = await nats.connect(server.url, user_credentials=scoped_user, error_cb=error_cb,
                                 allow_reconnect=False)
        await nc2.publish("elsewhere", b"x")
        await nc2.flush()
        for _ in range(50):
            if len(errors) >= 4:
                break
            await asyncio.sleep(0.1)
        await nc2.close()
        return msg.subject, errors, await _attempt(server.url, user_credentials=scoped_with_own)

    subject, errors, own = run(main())
    assert subject == "ok.yes"
    assert sorted(errors) == sorted([
        "nats: permissions violation for subscription to \"secret\"",
        "nats: permissions violation for publish to \"ok.no\"",
        "nats: permissions violation for publish to \"other\"",
        "nats: permissions violation for publish to \"elsewhere\""])
    assert own == AUTH_VIOLATION  # a scoped key's user may not bring permissions


def test_jwt_accounts_isolated_and_stream_import(tmp_path, make_server):
    trust = Trust(tmp_path)
    a = trust.account("A", exports=[{"name": "news", "subject": "news.>", "type": "stream"}])
    b = trust.account("B", imports=[{"name": "news", "subject": "news.>", "account": a.pubkey,
                                     "type": "stream"},
                                    {"name": "secret", "subject": "secret.>",
                                     "account": a.pubkey, "type": "stream"}])
    server = make_server(config=trust.config())
    ca, cb = trust.user_creds(a, "a"), trust.user_creds(b, "b")

    async def main():
        na = await nats.connect(server.url, user_credentials=ca, allow_reconnect=False)
        nb = await nats.connect(server.url, user_credentials=cb, allow_reconnect=False)
        in_a = await na.subscribe(">")
        in_b = await nb.subscribe(">")
        await na.flush()
        await nb.flush()
        await nb.publish("from.b", b"b")  # must never reach A
        await na.publish("secret.x", b"s")  # not exported: never reaches B
        await na.publish("news.1", b"n")
        await na.flush()
        await nb.flush()
        got_b = sorted([(await in_b.next_msg(timeout=3)).subject for _ in range(2)])
        got_a = [(await in_a.next_msg(timeout=3)).subject for _ in range(2)]
        with pytest.raises(nats.errors.TimeoutError):
            await in_a.next_msg(timeout=0.3)
        with pytest.raises(nats.errors.TimeoutError):
            await in_b.next_msg(timeout=0.3)
        await na.close()
        await nb.close()
        return got_b, got_a

    got_b, got_a = run(main())
    assert got_b == ["from.b", "news.1"]  # its own (echo) and the import
    assert got_a == ["secret.x", "news.1"]


def test_jwt_full_resolver_push_lookup_revoke(tmp_path, make_server, wait_for):
    trust = Trust(tmp_path)
    a = trust.account("A")
    server = make_server(config=trust.config(resolver="full", preload=[trust.system]))
    jwt_dir = os.path.join(str(tmp_path), "jwt")
    assert os.listdir(jwt_dir) == [trust.system.pubkey + ".jwt"]
    sys_creds = trust.user_creds(trust.system, "admin")
    user_kp = natsjwt.new_keypair("U")
    user_creds = trust.user_creds(a, "u", kp=user_kp)
    other_creds = trust.user_creds(a, "other")
    b = trust.account("B")
    b_jwt = b.jwt

    async def main():
        before = await _attempt(server.url, user_credentials=user_creds)
        sysc = await nats.connect(server.url, user_credentials=sys_creds,
                                  allow_reconnect=False)
        pushed = json.loads((await sysc.request("$SYS.REQ.CLAIMS.UPDATE", a.jwt.encode(),
                                                timeout=3)).data)
        wrong = json.loads((await sysc.request("$SYS.REQ.ACCOUNT.%s.CLAIMS.UPDATE" % a.pubkey,
                                               b_jwt.encode(), timeout=3)).data)
        garbage = json.loads((await sysc.request("$SYS.REQ.CLAIMS.UPDATE", b"not a jwt",
                                                 timeout=3)).data)
        lookup = (await sysc.request("$SYS.REQ.ACCOUNT.%s.CLAIMS.LOOKUP" % a.pubkey, b"",
                                     timeout=3)).data.decode()
        after = await _attempt(server.url, user_credentials=user_creds)
        # a connected user is cut off when an update revokes it
        closed = asyncio.Event()
        errors = []

        async def error_cb(exc):
            errors.append(str(exc).lower())

        async def closed_cb():
            closed.set()

        nu = await nats.connect(server.url, user_credentials=user_creds, error_cb=error_cb,
                                closed_cb=closed_cb, allow_reconnect=False)
        no = await nats.connect(server.url, user_credentials=other_creds,
                                allow_reconnect=False)
        trust.account_jwt(a, revocations={user_kp.public_key.decode(): now() + 5})
        revoked = json.loads((await sysc.request(
            "$SYS.REQ.ACCOUNT.%s.CLAIMS.UPDATE" % a.pubkey, a.jwt.encode(), timeout=3)).data)
        await asyncio.wait_for(closed.wait(), 5)
        errors.append(str(nu.last_error).lower())  # nats-py keeps fatal -ERRs there
        await no.flush()  # the other user of the account stays connected
        await no.close()
        again = await _attempt(server.url, user_credentials=user_creds)
        await sysc.close()
        return before, pushed, wrong, garbage, lookup, after, revoked, errors, again

    before, pushed, wrong, garbage, lookup, after, revoked, errors, again = run(main())
    assert before == AUTH_VIOLATION  # not in the empty directory yet
    assert pushed["data"] == {"account": a.pubkey, "code": 200, "message": "jwt updated"}
    assert pushed["server"]["id"]
    assert wrong["error"]["code"] == 500
    assert wrong["error"]["description"] == ("jwt update resulted in error - subject does "
                                             "not match jwt content")
    assert garbage["error"]["account"] == "n/a"
    assert garbage["error"]["description"].startswith("jwt update resulted in error - ")
    assert after == "ok"
    assert revoked["data"]["message"] == "jwt updated"
    assert errors == ["nats: user authentication revoked"]
    assert again == AUTH_VIOLATION
    with open(os.path.join(jwt_dir, a.pubkey + ".jwt")) as f:
        assert f.read() == a.jwt
    assert lookup.startswith("eyJ")


def test_jwt_claims_update_only_from_system_account(tmp_path, make_server):
    """$SYS.REQ subjects live in the system account: another account's user
    publishing there reaches nothing."""
    trust = Trust(tmp_path)
    a = trust.account("A")
    server = make_server(config=trust.config(resolver="full", preload=[trust.system, a]))
    creds = trust.user_creds(a, "a")
    b = trust.account("B")

    async def main():
        nc = await nats.connect(server.url, user_credentials=creds, allow_reconnect=False)
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("$SYS.REQ.CLAIMS.UPDATE", b.jwt.encode(), timeout=2)
        await nc.close()

    run(main())
    assert not os.path.exists(os.path.join(str(tmp_path), "jwt", b.pubkey + ".jwt"))


def test_jwt_limits_written_to_account(tmp_path):
    """Account JWT limits land in account.limits (the core enforces them)."""
    trust = Trust(tmp_path)
    a = trust.account("A", limits={"conn": 3, "subs": 10, "payload": 512})
    server = _configure(trust.config())
    manager = server.pluginmanager.get_plugin("auth-manager")
    acc = manager.operator.account(a.pubkey)
    assert acc.account.limits == {"max_connections": 3, "max_subscriptions": 10,
                                  "max_payload": 512}
    assert server.accounts.get(a.pubkey) is acc.account
    # an update re-applies them
    manager.operator.update(a.pubkey, trust.account_jwt(a, limits={"conn": 1}))
    assert acc.account.limits == {"max_connections": 1}
    # and the system account comes from the operator JWT
    assert server.accounts.system_account.name == trust.system.pubkey


def _configure(text):
    return Server(Options(conf=loads(text)), plugins=[auth_plugin], autoload=False)


def _config_cases(trust):
    op = trust.write_operator()
    head = 'operator: "%s"\n' % op
    preload = "resolver_preload: { %s: %s }\n" % (trust.system.pubkey, trust.system.jwt)
    return [
        (head + preload, "operators require an account resolver to be configured"),
        (head + "resolver: MEMORY\naccounts { X: {} }\n",
         "operators do not allow Accounts to be configured directly"),
        (head + "resolver: MEMORY\nauthorization { users: [{user: a, password: b}] }\n",
         "operators do not allow users to be configured directly"),
        (head + "resolver: URL(http://127.0.0.1:9090/jwt/v1/accounts/)\n", "not supported"),
        (head + "resolver { type: cache, dir: x }\n", "not supported"),
        (head + "resolver: MEMORY\nsystem_account: %s\n" % trust.accounts["A"].pubkey,
         "system_account in config and operator JWT must be identical"),
        ('operator: "%s"\nresolver: MEMORY\n' % os.path.join(trust.dir, "missing.jwt"),
         "error parsing operator JWT"),
        ("operator: eyJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.AAAA\nresolver: MEMORY\n",
         "error parsing operator JWT"),
        (head + "resolver: MEMORY\nresolver_preload: { %s: eyJhbGci.e30.AAAA }\n"
         % trust.accounts["A"].pubkey,
         "invalid account JWT"),
    ]


def test_jwt_config_errors(tmp_path):
    trust = Trust(tmp_path)
    trust.account("A")
    for conf, message in _config_cases(trust):
        with pytest.raises(ConfigError) as info:
            _configure(conf)
        assert message in str(info.value), (conf, str(info.value))


def test_jwt_config_inline_operator_and_decorated_file(tmp_path):
    trust = Trust(tmp_path)
    inline = _configure("operator: %s\nresolver: MEMORY\n" % trust.operator_jwt)
    assert inline.auth_required
    path = os.path.join(str(tmp_path), "decorated.jwt")
    with open(path, "w") as f:
        f.write("-----BEGIN NATS OPERATOR JWT-----\n%s\n------END NATS OPERATOR JWT------\n"
                % trust.operator_jwt)
    assert _configure('operator: ["%s"]\nresolver: MEMORY\n' % path).auth_required


@pytest.mark.parametrize("which", ["user", "account"])
def test_jwt_expiry_closes_connection(tmp_path, make_server, which):
    """A connected user is cut off when its JWT (or its account's) expires,
    with nats-server's ``-ERR 'User|Account Authentication Expired'``."""
    trust = Trust(tmp_path)
    # the account JWT is minted before the server starts (a loaded machine may
    # take a while), the user JWT just before connecting
    a = trust.account("A", **({"exp": now() + 8} if which == "account" else {}))
    server = make_server(config=trust.config())
    creds = trust.user_creds(a, "brief", **({"exp": now() + 3} if which == "user" else {}))

    async def main():
        closed = asyncio.Event()

        async def closed_cb():
            closed.set()

        nc = await nats.connect(server.url, user_credentials=creds, closed_cb=closed_cb,
                                allow_reconnect=False)
        await nc.flush()
        await asyncio.wait_for(closed.wait(), 20)
        return str(nc.last_error).lower()

    assert run(main()) == "nats: %s authentication expired" % which


def test_jwt_allow_responses(tmp_path, make_server):
    """A user JWT with ``resp`` may answer requests it received (once, the
    default max) though it may publish nothing else; the requester connected
    before the responder's first login still gets its answer."""
    trust = Trust(tmp_path)
    a = trust.account("A")
    server = make_server(config=trust.config())
    requester = trust.user_creds(a, "requester")
    responder = trust.user_creds(a, "responder", sub={"allow": ["svc"]},
                                 resp={"max": 1, "ttl": 0})

    async def main():
        errors = []

        async def error_cb(exc):
            errors.append(str(exc).lower())

        req = await nats.connect(server.url, user_credentials=requester, allow_reconnect=False)
        await req.flush()
        rsp = await nats.connect(server.url, user_credentials=responder, error_cb=error_cb,
                                 allow_reconnect=False)

        async def answer(msg):
            await msg.respond(b"answer")
            await rsp.publish(msg.reply, b"twice")  # beyond max: refused

        await rsp.subscribe("svc", cb=answer)
        await rsp.flush()
        reply = await req.request("svc", b"q", timeout=3)
        await rsp.publish("svc.other", b"x")
        await rsp.flush()
        for _ in range(50):
            if len(errors) >= 2:
                break
            await asyncio.sleep(0.1)
        await req.close()
        await rsp.close()
        return reply.data, errors

    data, errors = run(main())
    assert data == b"answer"
    assert len(errors) == 2 and all(e.startswith("nats: permissions violation for publish to")
                                    for e in errors), errors
    assert errors[-1] == 'nats: permissions violation for publish to "svc.other"'


def test_jwt_export_withdrawn_by_update(tmp_path, make_server):
    """When the exporter's JWT update drops a stream export, the importing
    account stops receiving it."""
    trust = Trust(tmp_path)
    a = trust.account("A", exports=[{"name": "news", "subject": "news.>", "type": "stream"}])
    b = trust.account("B", imports=[{"name": "news", "subject": "news.>", "account": a.pubkey,
                                     "type": "stream", "to": "a"}])
    server = make_server(config=trust.config(resolver="full"))
    ca, cb = trust.user_creds(a, "a"), trust.user_creds(b, "b")
    sys_creds = trust.user_creds(trust.system, "admin")
    withdrawn = trust.account_jwt(a)

    async def main():
        na = await nats.connect(server.url, user_credentials=ca, allow_reconnect=False)
        nb = await nats.connect(server.url, user_credentials=cb, allow_reconnect=False)
        sub = await nb.subscribe(">")
        await nb.flush()
        await na.publish("news.1", b"1")
        first = (await sub.next_msg(timeout=3)).subject
        sysc = await nats.connect(server.url, user_credentials=sys_creds,
                                  allow_reconnect=False)
        await sysc.request("$SYS.REQ.CLAIMS.UPDATE", withdrawn.encode(), timeout=3)
        await na.publish("news.2", b"2")
        await na.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
        for c in (na, nb, sysc):
            await c.close()
        return first

    assert run(main()) == "a.news.1"  # v2 "to" on a stream import is a prefix
