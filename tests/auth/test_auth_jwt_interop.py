"""Differential tests of operator mode: one operator, its accounts and users,
the same config for the Go nats-server and ours, the same CONNECTs; the
accept/refuse answers (and the full resolver's replies) must be identical.

* accept = ``PONG`` after ``CONNECT {"jwt", "sig"}\\r\\nPING\\r\\n``;
* refuse = ``-ERR 'Authorization Violation'`` and the connection closed.
"""

import asyncio
import base64
import datetime
import json
import os
import re

import nats
import pytest

from pluggy_nats import jwt as natsjwt
from pluggy_nats.testing.operator import Trust, now
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop


def _signed(token, kp, sig=None):
    def creds(info):
        s = sig if sig is not None else base64.urlsafe_b64encode(
            kp.sign(info["nonce"].encode())).rstrip(b"=").decode()
        out = {"jwt": token}
        if s:
            out["sig"] = s
        return out

    return creds


def _attempt(raw_client, server, creds):
    c = raw_client(server)
    connect = {"verbose": False, "pedantic": False, "protocol": 1}
    connect.update(creds(c.info) if callable(creds) else creds)
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    m = c.expect(rb"(PONG\r\n|-ERR '[^']*'\r\n)", timeout=5.0)
    if m.group(1) == b"PONG\r\n":
        return "accept"
    assert m.group(1) == b"-ERR 'Authorization Violation'\r\n", m.group(1)
    c.expect_closed(timeout=5.0)
    return "refuse"


def _clock(hours):
    """HH:MM:SS (UTC) ``hours`` from now."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    return t.strftime("%H:%M:%S")


def _cases(trust):
    a = trust.account("A")
    sk = natsjwt.new_keypair("A")
    scoped = natsjwt.new_keypair("A")
    signed = trust.account("SIGNED", signing_keys=[
        sk.public_key.decode(),
        {"kind": "user_scope", "key": scoped.public_key.decode(), "role": "r",
         "template": {"pub": {"allow": ["s.>"]}, "sub": {}}}])
    old = trust.account("OLD", exp=now() - 10)
    revoked_kp = natsjwt.new_keypair("U")
    rev = trust.account("REV", revocations={revoked_kp.public_key.decode(): now() + 30})
    rogue = trust.account("ROGUE")
    trust.account_jwt(rogue, signer=natsjwt.new_keypair("O"))
    unknown = trust.account("UNKNOWN")
    nobearer = trust.account("NOBEARER", limits={"disallow_bearer": True})
    preload = [trust.system, a, signed, old, rev, rogue, nobearer]

    def user(acc, **kw):
        token, kp = trust.user_jwt(acc, "u", **kw)
        return token, kp

    good, good_kp = user(a)
    other_kp = natsjwt.new_keypair("U")
    bearer, _ = user(a, bearer_token=True)
    cases = [
        ("good user", _signed(good, good_kp), "accept"),
        ("wrong seed", _signed(good, other_kp), "refuse"),
        ("no signature", _signed(good, good_kp, sig=""), "refuse"),
        ("garbage signature", _signed(good, good_kp, sig="AAAA"), "refuse"),
        ("bearer token without signature", _signed(bearer, None, sig=""), "accept"),
        ("signing key user", _signed(*user(signed, signer=sk)), "accept"),
        ("scoped signing key user", _signed(*user(signed, signer=scoped, bare=True)),
         "accept"),
        ("scoped signing key user with default limits",
         _signed(*user(signed, signer=scoped)), "refuse"),
        ("scoped key user with its own permissions",
         _signed(*user(signed, signer=scoped, bare=True, pub={"allow": [">"]})), "refuse"),
        ("signed by a foreign account key",
         _signed(*user(a, signer=natsjwt.new_keypair("A"))), "refuse"),
        ("expired user", _signed(*user(a, exp=now() - 5)), "refuse"),
        ("user valid for an hour", _signed(*user(a, exp=now() + 3600)), "accept"),
        ("user not yet valid", _signed(*user(a, nbf=now() + 3600)), "refuse"),
        ("expired account", _signed(*user(old)), "refuse"),
        ("unknown account", _signed(*user(unknown)), "refuse"),
        ("revoked user", _signed(*user(rev, kp=revoked_kp)), "refuse"),
        ("revoked key, newer JWT", _signed(*user(rev, kp=revoked_kp, issued_at=now() + 60)),
         "accept"),
        ("untrusted operator's account", _signed(*user(rogue)), "refuse"),
        ("system account user", _signed(*user(trust.system)), "accept"),
        ("websocket-only user", _signed(*user(a, allowed_connection_types=["WEBSOCKET"])),
         "refuse"),
        ("standard-only user", _signed(*user(a, allowed_connection_types=["STANDARD"])),
         "accept"),
        ("src elsewhere", _signed(*user(a, src=["10.0.0.0/8"])), "refuse"),
        ("src loopback", _signed(*user(a, src=["127.0.0.0/8"])), "accept"),
        ("times: all day", _signed(*user(a, times=[{"start": "00:00:00",
                                                     "end": "23:59:59"}])), "accept"),
        ("times: never now", _signed(*user(a, times=[{"start": _clock(+2), "end": _clock(+3)}],
                                           times_location="UTC")), "refuse"),
        ("bearer in a disallow_bearer account", _signed(*user(nobearer, bearer_token=True),
                                                         sig=""), "refuse"),
        ("account JWT as user JWT", _signed(a.jwt, a.kp), "refuse"),
        ("garbage JWT", _signed("eyJ0eXAiOiJKV1QifQ.e30.AAAA", good_kp), "refuse"),
        ("user/password instead", {"user": "u", "pass": "p"}, "refuse"),
        ("nothing", {}, "refuse"),
    ]
    return preload, cases


def test_jwt_interop_accept_refuse(tmp_path, make_server, go_nats_server, raw_client):
    trust = Trust(tmp_path)
    preload, cases = _cases(trust)
    conf = trust.config(preload=preload)
    go = go_nats_server(config=conf)
    ours = make_server(config=conf)
    for srv in (go, ours):
        info = raw_client(srv).info
        assert info.get("auth_required") is True and info.get("nonce"), (srv.name, info)
    seen = [(label, _attempt(raw_client, go, creds), _attempt(raw_client, ours, creds))
            for label, creds, _ in cases]
    # Go is the reference, and the table must say what Go does
    assert [(label, g) for label, g, _ in seen] == [(c[0], c[2]) for c in cases]
    assert [(label, o) for label, _, o in seen] == [(label, g) for label, g, _ in seen]


def test_jwt_interop_full_resolver_replies(tmp_path, make_server, go_nats_server):
    """Push the same account JWTs to both servers' full resolvers: the same
    reply data, and the pushed account's user gets in on both."""
    answers = []
    for kind in ("go", "ours"):
        trust = Trust(tmp_path / kind)
        os.makedirs(trust.dir, exist_ok=True)
        a = trust.account("A")
        b = trust.account("B")
        conf = trust.config(resolver="full", preload=[trust.system])
        srv = (go_nats_server if kind == "go" else make_server)(config=conf)
        sys_creds = trust.user_creds(trust.system, "admin")
        user_creds = trust.user_creds(a, "u")

        async def main(srv=srv, a=a, b=b, sys_creds=sys_creds, user_creds=user_creds,
                       trust=trust):
            nc = await nats.connect(srv.url, user_credentials=sys_creds, allow_reconnect=False)
            ok = json.loads((await nc.request("$SYS.REQ.CLAIMS.UPDATE", a.jwt.encode(),
                                              timeout=3)).data)
            wrong = json.loads((await nc.request(
                "$SYS.REQ.ACCOUNT.%s.CLAIMS.UPDATE" % a.pubkey, b.jwt.encode(),
                timeout=3)).data)
            lookup = (await nc.request("$SYS.REQ.ACCOUNT.%s.CLAIMS.LOOKUP" % a.pubkey, b"",
                                       timeout=3)).data.decode()
            listed = json.loads((await nc.request("$SYS.REQ.CLAIMS.LIST", b"",
                                                  timeout=3)).data)
            await nc.close()
            user = await nats.connect(srv.url, user_credentials=user_creds,
                                      allow_reconnect=False)
            await user.flush()
            await user.close()
            # account keys differ per server: compare the shapes, keys replaced
            ok["data"]["account"] = ok["data"]["account"] == a.pubkey
            wrong["error"]["account"] = wrong["error"]["account"] == a.pubkey
            listed = sorted(listed["data"]) == sorted([a.pubkey, trust.system.pubkey])
            return ok["data"], wrong["error"], lookup == a.jwt, listed

        answers.append(run(main()))
    assert answers[0] == ({"account": True, "code": 200, "message": "jwt updated"},
                          {"account": True, "code": 500,
                           "description": "jwt update resulted in error - subject does not "
                                          "match jwt content"}, True, True)
    assert answers[1] == answers[0]


def test_jwt_interop_account_connection_limit(tmp_path, make_server, go_nats_server,
                                              raw_client):
    trust = Trust(tmp_path)
    a = trust.account("A", limits={"conn": 1})
    conf = trust.config()
    replies = []
    for srv in (go_nats_server(config=conf), make_server(config=conf)):
        token, kp = trust.user_jwt(a, "u")
        first = raw_client(srv)
        first.send(b"CONNECT " + json.dumps(dict(_signed(token, kp)(first.info),
                                                 verbose=False)).encode() + b"\r\nPING\r\n")
        first.expect(rb"PONG\r\n")
        second = raw_client(srv)
        second.send(b"CONNECT " + json.dumps(dict(_signed(token, kp)(second.info),
                                                  verbose=False)).encode() + b"\r\nPING\r\n")
        replies.append(second.expect(rb"PONG\r\n|-ERR '[^']*'\r\n").group(0))
    assert replies[0].startswith(b"-ERR"), replies
    assert replies[1] == replies[0]


# -- permissions from JWTs: the same script, the same replies -------------------------

PERM_SCRIPTS = {
    "p": b"SUB sub.a 1\r\nSUB sub.secret 2\r\nSUB sub.> 3\r\nSUB > 4\r\nSUB both.y 5\r\n"
         b"SUB q.a workers 6\r\nSUB q.a other 7\r\nSUB q.a 8\r\n"
         b"PUB pub.a 1\r\n1\r\nPUB pub.secret 1\r\n2\r\nPUB both.y 1\r\n3\r\n"
         b"PUB sub.a 1\r\n4\r\nPUB elsewhere 1\r\n5\r\n",
    "defaults": b"SUB a 1\r\nSUB b 2\r\nPUB a 1\r\n1\r\n",
    "own": b"SUB a 1\r\nSUB b 2\r\nPUB b 1\r\n1\r\nPUB a 1\r\n2\r\n",
    "resp": b"SUB a 1\r\nPUB a 1\r\n1\r\nPUB b 1\r\n2\r\n",
}


def _perm_users(trust):
    a = trust.account("A")
    d = trust.account("D", default_permissions={"pub": {"deny": [">"]},
                                                "sub": {"allow": ["a"]}})
    users = {
        "p": trust.user_jwt(a, "p", pub={"allow": ["pub.>", "both.*", "sub.a"],
                                         "deny": ["pub.secret"]},
                            sub={"allow": ["sub.>", "both.*", "q.* workers"],
                                 "deny": ["sub.secret"]}),
        "defaults": trust.user_jwt(d, "defaults"),
        "own": trust.user_jwt(d, "own", pub={"allow": ["a"]}, sub={"allow": ["b"]}),
        "resp": trust.user_jwt(a, "resp", resp={"max": 1, "ttl": 0}),
    }
    return users


def _perm_script(raw_client, server, token, kp, script):
    c = raw_client(server)
    connect = dict(_signed(token, kp)(c.info), verbose=False, pedantic=False)
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" + script + b"PING\r\n")
    data = c.expect(rb"(.*?)PONG\r\n", timeout=5.0).group(1)
    frames = re.findall(rb"MSG [^\r]*\r\n[^\r]*\r\n|[^\r]*\r\n", data)
    return sorted(f for f in frames if f.startswith(b"MSG ")), [
        f for f in frames if not f.startswith(b"MSG ")]


def test_jwt_interop_permissions(tmp_path, make_server, go_nats_server, raw_client):
    trust = Trust(tmp_path)
    users = _perm_users(trust)
    conf = trust.config()
    go, ours = go_nats_server(config=conf), make_server(config=conf)
    for name, (token, kp) in users.items():
        want = _perm_script(raw_client, go, token, kp, PERM_SCRIPTS[name])
        got = _perm_script(raw_client, ours, token, kp, PERM_SCRIPTS[name])
        assert got == want, (name, want, got)
    # the reference says something (a no-op permission engine would fail)
    msgs, errs = _perm_script(raw_client, go, *users["p"], PERM_SCRIPTS["p"])
    assert b"-ERR 'Permissions Violation for Publish to \"pub.secret\"'\r\n" in errs
    assert b"MSG both.y 5 1\r\n3\r\n" in msgs


def test_jwt_interop_full_resolver_delete(tmp_path, make_server, go_nats_server):
    """``$SYS.REQ.CLAIMS.DELETE``: refused unless allow_delete, refused for the
    system account, a foreign signer or a malformed list; otherwise the
    account's JWT goes and its connected users are cut off. The same trust
    (each server its own directory), the same replies."""
    for allow in (False, True):
        trust = Trust(tmp_path / str(allow))
        os.makedirs(trust.dir, exist_ok=True)
        a = trust.account("A")
        conf = trust.config(resolver="full", preload=[trust.system, a], allow_delete=allow)
        jwt_dir = os.path.join(trust.dir, "jwt")
        sys_creds = trust.user_creds(trust.system, "admin")
        user_creds = trust.user_creds(a, "u")
        requests = [trust.delete_request(trust.system.pubkey),
                    trust.delete_request(a.pubkey, signer=natsjwt.new_keypair("O")),
                    trust.delete_request("not-an-account"),
                    trust.delete_request(a.pubkey)]
        answers = [run(_delete_session(srv, requests, sys_creds, user_creds, allow))
                   for srv in (go_nats_server(config=conf),
                               make_server(config=conf.replace(jwt_dir, jwt_dir + "-ours")))]
        assert answers[1] == answers[0], allow
        replies, last, again = answers[0]
        if allow:
            assert replies[3] == {"data": {"code": 200, "message": "deleted 1 accounts"}}
            assert last == "nats: account authentication expired"
            assert again != "ok"
        else:
            assert replies[3]["error"]["description"].endswith(
                "delete must be enabled in server config")
            assert again == "ok"


async def _delete_session(srv, requests, sys_creds, user_creds, allow):
    closed = asyncio.Event()

    async def closed_cb():
        closed.set()

    user = await nats.connect(srv.url, user_credentials=user_creds, closed_cb=closed_cb,
                              allow_reconnect=False)
    nc = await nats.connect(srv.url, user_credentials=sys_creds, allow_reconnect=False)
    replies = []
    for token in requests:
        reply = json.loads((await nc.request("$SYS.REQ.CLAIMS.DELETE", token.encode(),
                                             timeout=3)).data)
        reply.pop("server")
        replies.append(reply)
    await nc.close()
    last = None
    if allow:
        await asyncio.wait_for(closed.wait(), 5)
        last = str(user.last_error).lower()
    else:
        await user.flush()
        await user.close()
    try:
        again = await nats.connect(srv.url, user_credentials=user_creds,
                                   allow_reconnect=False, connect_timeout=3)
        await again.close()
        again = "ok"
    except Exception as exc:
        again = str(exc)
    return replies, last, again


def test_jwt_interop_update_evicts(tmp_path, make_server, go_nats_server):
    """An account JWT update cuts off exactly the users nats-server cuts off:
    revoked users, bearer users once bearer is disallowed, users of a removed
    signing key or of a key whose scope changed; the others stay."""
    trust = Trust(tmp_path)
    a = trust.account("A")
    sk_gone, sk_scoped, sk_kept = (natsjwt.new_keypair("A") for _ in range(3))

    def keys(template):
        return [sk_kept.public_key.decode(),
                {"kind": "user_scope", "key": sk_scoped.public_key.decode(), "role": "r",
                 "template": template}]

    trust.account_jwt(a, signing_keys=keys({"pub": {"allow": [">"]}})
                      + [sk_gone.public_key.decode()])
    conf = trust.config(resolver="full", preload=[trust.system, a])
    jwt_dir = os.path.join(trust.dir, "jwt")
    revoked_kp = natsjwt.new_keypair("U")
    users = {
        "plain": trust.user_jwt(a, "plain"),
        "revoked": trust.user_jwt(a, "revoked", kp=revoked_kp),
        "bearer": trust.user_jwt(a, "bearer", bearer_token=True),
        "removed key": trust.user_jwt(a, "gone", signer=sk_gone),
        "scope changed": trust.user_jwt(a, "scoped", signer=sk_scoped, bare=True),
        "kept key": trust.user_jwt(a, "kept", signer=sk_kept),
    }
    update = trust.account_jwt(a, signing_keys=keys({"pub": {"allow": ["x"]}}),
                               limits={"disallow_bearer": True},
                               revocations={revoked_kp.public_key.decode(): now() + 30})
    sys_creds = trust.user_creds(trust.system, "admin")
    results = [run(_evict_session(srv, users, sys_creds, update))
               for srv in (go_nats_server(config=conf),
                           make_server(config=conf.replace(jwt_dir, jwt_dir + "-ours")))]
    assert results[0] == {
        "plain": "alive", "kept key": "alive",
        "revoked": "nats: user authentication revoked",
        "bearer": "nats: authorization failed",  # nats-py's text for Authorization Violation
        "removed key": "nats: unexpected eof", "scope changed": "nats: unexpected eof"
    }, results[0]
    assert results[1] == results[0]


async def _evict_session(srv, users, sys_creds, update):
    conns, closed = {}, {}
    for name, (token, kp) in users.items():
        closed[name] = asyncio.Event()

        async def closed_cb(ev=closed[name]):
            ev.set()

        sign = (lambda nonce: b"") if kp is None or "bearer" in name else (
            lambda nonce, kp=kp: base64.b64encode(kp.sign(nonce.encode())))
        conns[name] = await nats.connect(srv.url, user_jwt_cb=lambda t=token: t.encode(),
                                         signature_cb=sign, closed_cb=closed_cb,
                                         allow_reconnect=False)
    nc = await nats.connect(srv.url, user_credentials=sys_creds, allow_reconnect=False)
    reply = json.loads((await nc.request("$SYS.REQ.CLAIMS.UPDATE", update.encode(),
                                         timeout=3)).data)
    assert reply["data"]["message"] == "jwt updated", reply
    await nc.close()
    await asyncio.wait([asyncio.ensure_future(e.wait()) for e in closed.values()], timeout=3)
    out = {}
    for name, c in conns.items():
        if not closed[name].is_set():
            await c.flush()
            out[name] = "alive"
            await c.close()
        else:
            out[name] = str(c.last_error).lower() if c.last_error else "closed"
    return out


@pytest.mark.parametrize("strict", [False, True])
def test_jwt_interop_strict_signing_keys(tmp_path, make_server, go_nats_server, raw_client,
                                         strict):
    """``strict_signing_key_usage``: an account JWT signed by the operator's
    identity key is not trusted, one signed by its signing key is; the same
    for users and the account's identity and signing keys."""
    trust = Trust(tmp_path, operator_signing_key=True, strict=strict)
    sk, sk2 = natsjwt.new_keypair("A"), natsjwt.new_keypair("A")
    by_sk = trust.account("SK", signing_keys=[sk.public_key.decode()])
    by_identity = trust.account("ID", signing_keys=[sk2.public_key.decode()])
    trust.account_jwt(by_identity, signing_keys=[sk2.public_key.decode()],
                      signer=trust.operator)
    trust.account_jwt(trust.system, signing_keys=[sk.public_key.decode()])
    conf = trust.config()
    cases = [("signing key account", _signed(*trust.user_jwt(by_sk, "a", signer=sk))),
             ("identity key account", _signed(*trust.user_jwt(by_identity, "b",
                                                              signer=sk2))),
             ("user of the account identity key", _signed(*trust.user_jwt(by_sk, "c"))),
             ("system user of a signing key",
              _signed(*trust.user_jwt(trust.system, "d", signer=sk)))]
    got = [[_attempt(raw_client, srv, creds) for _, creds in cases]
           for srv in (go_nats_server(config=conf), make_server(config=conf))]
    assert got[0] == (["accept", "refuse", "refuse", "accept"] if strict
                      else ["accept"] * 4)
    assert got[1] == got[0]


def test_jwt_interop_stream_imports(tmp_path, make_server, go_nats_server):
    """Stream imports declared in account JWTs: plain, with a ``to`` prefix, with
    a literal ``local_subject``, and one the exporter never exported; the
    importer sees the same subjects on both servers."""
    trust = Trust(tmp_path)
    a = trust.account("A", exports=[{"name": "news", "subject": "news.>", "type": "stream"},
                                    {"name": "one", "subject": "one", "type": "stream"}])
    b = trust.account("B", imports=[
        {"name": "n", "subject": "news.>", "account": a.pubkey, "type": "stream", "to": "pre"},
        {"name": "o", "subject": "one", "account": a.pubkey, "type": "stream",
         "local_subject": "uno"},
        {"name": "s", "subject": "secret", "account": a.pubkey, "type": "stream"}])
    conf = trust.config()
    ca, cb = trust.user_creds(a, "a"), trust.user_creds(b, "b")

    async def main(srv):
        na = await nats.connect(srv.url, user_credentials=ca, allow_reconnect=False)
        nb = await nats.connect(srv.url, user_credentials=cb, allow_reconnect=False)
        sub = await nb.subscribe(">")
        await nb.flush()
        for subject in ("news.1", "one", "secret", "other"):
            await na.publish(subject, b"x")
        await na.flush()
        got = []
        wait = 5  # the first one may be slow on a loaded machine; then the rest come together
        while True:
            try:
                got.append((await sub.next_msg(timeout=wait)).subject)
            except nats.errors.TimeoutError:
                break
            wait = 0.5
        await na.close()
        await nb.close()
        return sorted(got)

    want = run(main(go_nats_server(config=conf)))
    assert want == ["pre.news.1", "uno"]
    assert run(main(make_server(config=conf))) == want
