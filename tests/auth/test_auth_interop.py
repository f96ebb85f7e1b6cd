"""Differential tests: the same configuration and the same credentials against
the Go nats-server and ours must get the same answer.

* accept = ``PONG`` after ``CONNECT {...}\\r\\nPING\\r\\n``;
* refuse = ``-ERR 'Authorization Violation'`` and the connection closed.

Then, for permissions, the same protocol script from an authorized user must get
the same replies (the ``-ERR 'Permissions Violation ...'`` lines and the
messages delivered) from both servers.
"""

import base64
import json
import re

import bcrypt
import nkeys
import pytest

pytestmark = pytest.mark.interop

PING = b"PING\r\n"


def _nkey(seed_byte):
    seed = nkeys.encode_seed(bytes([seed_byte]) * 32, nkeys.PREFIX_BYTE_USER)
    kp = nkeys.from_seed(bytearray(seed))
    return kp, kp.public_key.decode()


NK1, NK1_PUB = _nkey(1)
NK2, NK2_PUB = _nkey(2)  # not configured anywhere
ALICE_HASH = bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(4)).decode()
TOKEN_HASH = bcrypt.hashpw(b"s3cr3t-token", bcrypt.gensalt(4)).decode()


def _signed(kp, encode=base64.urlsafe_b64encode, strip=True, pub=None, **extra):
    """Credentials that sign the INFO nonce with ``kp`` (as nats clients do)."""

    def creds(info):
        sig = encode(kp.sign(info["nonce"].encode()))
        if strip:
            sig = sig.rstrip(b"=")
        return dict(extra, nkey=pub or kp.public_key.decode(), sig=sig.decode())

    return creds


def _attempt(raw_client, server, creds):
    """'accept' or 'refuse' (anything else fails the test with what was seen)."""
    c = raw_client(server)
    connect = {"verbose": False, "pedantic": False}
    connect.update(creds(c.info) if callable(creds) else creds)
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" + PING)
    m = c.expect(rb"(PONG\r\n|-ERR '[^']*'\r\n)", timeout=5.0)
    line = m.group(1)
    if line == b"PONG\r\n":
        return "accept"
    assert line == b"-ERR 'Authorization Violation'\r\n", line
    c.expect_closed(timeout=5.0)
    return "refuse"


USERS_CONF = """
no_auth_user: guest
authorization {
  users: [
    {user: alice, password: "%s"}
    {user: bob, password: bob-pw}
    {user: guest, password: guest-pw, permissions: {publish: "public.>"}}
    {nkey: %s}
  ]
}
""" % (ALICE_HASH, NK1_PUB)

USERS_CASES = [
    ("alice bcrypt ok", {"user": "alice", "pass": "alice-pw"}, "accept"),
    ("alice wrong", {"user": "alice", "pass": "alice-pw2"}, "refuse"),
    ("alice with the hash itself", {"user": "alice", "pass": ALICE_HASH}, "refuse"),
    ("bob ok", {"user": "bob", "pass": "bob-pw"}, "accept"),
    ("bob wrong", {"user": "bob", "pass": "bob-pwx"}, "refuse"),
    ("bob no password", {"user": "bob"}, "refuse"),
    ("unknown user", {"user": "mallory", "pass": "bob-pw"}, "refuse"),
    ("no credentials -> no_auth_user", {}, "accept"),
    ("password only", {"pass": "guest-pw"}, "refuse"),
    ("token only", {"auth_token": "bob-pw"}, "refuse"),
    ("nkey raw-url sig", _signed(NK1), "accept"),
    ("nkey std base64 sig", _signed(NK1, base64.b64encode, strip=False), "accept"),
    ("nkey without sig", {"nkey": NK1_PUB}, "refuse"),
    ("nkey bad sig", {"nkey": NK1_PUB, "sig": "AAAA"}, "refuse"),
    ("nkey signed by another key", _signed(NK2, pub=NK1_PUB), "refuse"),
    ("unknown nkey", _signed(NK2), "refuse"),
    ("nkey plus a wrong user/pass", _signed(NK1, user="bob", **{"pass": "x"}), "accept"),
]

TOKEN_CONF = 'authorization { token: "%s", timeout: 3 }' % TOKEN_HASH
TOKEN_CASES = [
    ("token ok", {"auth_token": "s3cr3t-token"}, "accept"),
    ("token wrong", {"auth_token": "s3cr3t-tokem"}, "refuse"),
    ("token is the hash", {"auth_token": TOKEN_HASH}, "refuse"),
    ("no token", {}, "refuse"),
    ("user/pass instead", {"user": "s3cr3t-token", "pass": "s3cr3t-token"}, "refuse"),
]

SINGLE_CONF = "authorization { user: admin, password: adm1n }"
SINGLE_CASES = [
    ("ok", {"user": "admin", "pass": "adm1n"}, "accept"),
    ("wrong password", {"user": "admin", "pass": "adm1N"}, "refuse"),
    ("wrong user", {"user": "Admin", "pass": "adm1n"}, "refuse"),
    ("no credentials", {}, "refuse"),
    ("token", {"auth_token": "adm1n"}, "refuse"),
]

ACCOUNTS_CONF = """
accounts {
  A: { users: [{user: a, password: a-pw}] }
  B: { users: [{user: b, password: b-pw}, {nkey: %s}] }
}
authorization { users: [{user: g, password: g-pw}] }
""" % NK1_PUB
ACCOUNTS_CASES = [
    ("account A user", {"user": "a", "pass": "a-pw"}, "accept"),
    ("account B user", {"user": "b", "pass": "b-pw"}, "accept"),
    ("A's user with B's password", {"user": "a", "pass": "b-pw"}, "refuse"),
    ("global user", {"user": "g", "pass": "g-pw"}, "accept"),
    ("account nkey", _signed(NK1), "accept"),
    ("nothing (no no_auth_user)", {}, "refuse"),
]

CONFIGS = {
    "users": (USERS_CONF, USERS_CASES),
    "token": (TOKEN_CONF, TOKEN_CASES),
    "single": (SINGLE_CONF, SINGLE_CASES),
    "accounts": (ACCOUNTS_CONF, ACCOUNTS_CASES),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_auth_interop_accept_refuse(name, make_server, go_nats_server, raw_client):
    conf, cases = CONFIGS[name]
    go = go_nats_server(config=conf)
    ours = make_server(config=conf)
    assert go.port and ours.port
    seen = []
    for label, creds, _expected in cases:
        got_go = _attempt(raw_client, go, creds)
        got_ours = _attempt(raw_client, ours, creds)
        seen.append((label, got_go, got_ours))
    # the Go server is the reference; our server must agree, and the table
    # must describe what Go does (so a wrong expectation fails too)
    assert [(label, g) for label, g, _ in seen] == [(c[0], c[2]) for c in cases]
    assert [(label, o) for label, _, o in seen] == [(label, g) for label, g, _ in seen]


def test_auth_interop_info_fields(make_server, go_nats_server, raw_client):
    """``nonce`` only with nkey users; no ``auth_required`` with a no_auth_user."""
    cases = ((USERS_CONF, True, None), (SINGLE_CONF, False, True), (TOKEN_CONF, False, True),
             (ACCOUNTS_CONF, True, True))
    for conf, has_nonce, auth_required in cases:
        for srv in (go_nats_server(config=conf), make_server(config=conf)):
            info = raw_client(srv).info
            assert info.get("auth_required") is auth_required, (srv.name, conf, info)
            assert ("nonce" in info) is has_nonce, (srv.name, conf, info)
    # a fresh nonce per connection
    srv = make_server(config=USERS_CONF)
    assert raw_client(srv).info["nonce"] != raw_client(srv).info["nonce"]


# -- permissions: the same script, the same replies ---------------------------------------

PERMS_CONF = """
authorization {
  users: [
    {user: p, password: p, permissions: {
      publish: {allow: ["pub.>", "both.*"], deny: ["pub.secret", "both.x"]}
      subscribe: {allow: ["sub.>", "both.*", "qonly.* workers", "wq.> w.*"],
                  deny: ["sub.secret", "sub.q.* badq"]}
    }}
    {user: d, password: d, permissions: {publish: {deny: ">"}, subscribe: {deny: "x.>"}}}
    {user: l, password: l, permissions: {publish: ["a", "b.*"], subscribe: "a"}}
    {user: open, password: open}
  ]
}
"""

SCRIPTS = {
    "p": b"SUB sub.a 1\r\nSUB sub.secret 2\r\nSUB sub.* 3\r\nSUB sub.> 4\r\nSUB > 5\r\n"
         b"SUB sub.a.* 17\r\nSUB sub.a.> 18\r\n"
         b"SUB both.y 6\r\nSUB both.* 7\r\nSUB both.> 8\r\nSUB qonly.a 9\r\n"
         b"SUB qonly.a workers 10\r\nSUB qonly.a other 11\r\nSUB wq.a w.1 12\r\n"
         b"SUB wq.a x 13\r\nSUB sub.q.a badq 14\r\nSUB sub.q.a goodq 15\r\nSUB other 16\r\n"
         b"PUB pub.a 1\r\n1\r\nPUB pub.secret 1\r\n2\r\nPUB both.y 1\r\n3\r\n"
         b"PUB both.x 1\r\n4\r\nPUB sub.a 1\r\n5\r\nPUB pub 1\r\n6\r\nPUB pub.a.b 1\r\n7\r\n",
    "d": b"SUB a 1\r\nSUB x.y 2\r\nSUB x 3\r\nSUB x.> 4\r\nPUB a 1\r\n1\r\n",
    "l": b"SUB a 1\r\nSUB b 2\r\nPUB a 1\r\n1\r\nPUB b 1\r\n2\r\nPUB b.c 1\r\n3\r\n"
         b"PUB b.c.d 1\r\n4\r\n",
    "open": b"SUB > 1\r\nPUB anything.at.all 1\r\nz\r\n",
}


def _script(raw_client, server, user):
    """The replies to ``SCRIPTS[user]`` as a list of frames. Runs of MSG frames
    are sorted: the order in which one connection's overlapping subscriptions
    get a message is the subject index's business, not the permissions'."""
    c = raw_client(server)
    connect = {"verbose": False, "pedantic": False, "user": user, "pass": user}
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" + SCRIPTS[user] + PING)
    data = c.expect(rb"(.*?)PONG\r\n", timeout=5.0).group(1)
    frames = []
    run = []
    for frame in re.findall(rb"MSG [^\r]*\r\n[^\r]*\r\n|[^\r]*\r\n", data):
        if frame.startswith(b"MSG "):
            run.append(frame)
            continue
        frames += sorted(run) + [frame]
        run = []
    return frames + sorted(run)


def test_auth_interop_permissions(make_server, go_nats_server, raw_client):
    go = go_nats_server(config=PERMS_CONF)
    ours = make_server(config=PERMS_CONF)
    for user in SCRIPTS:
        want = _script(raw_client, go, user)
        got = _script(raw_client, ours, user)
        assert got == want, (user, want, got)
    # and the reference really says something (the test would catch a no-op)
    p = b"".join(_script(raw_client, go, "p"))
    assert b"Permissions Violation for Publish to \"pub.secret\"" in p
    assert b"Permissions Violation for Subscription to \"sub.secret\"" in p
    assert b"MSG both.y 6 1\r\n3\r\n" in p and b"MSG both.x" not in p
    assert b'Subscription to "qonly.a" using queue "other"' in p


OVERLAP_CONF = """
authorization { users: [
  {user: pub, password: pub}
  {user: sub, password: sub, permissions: {subscribe: {allow: ">", deny: ["foo.bar", "x.*.z"]}}}
] }
"""
OVERLAP_SCRIPT = b"SUB foo.* 1\r\nSUB > 2\r\nSUB x.y.* 3\r\nSUB foo.baz 4\r\n"


def _overlap(raw_client, server):
    sub = _login(raw_client, server, "sub")
    sub.send(OVERLAP_SCRIPT)
    errs = _sync(sub)
    pub = _login(raw_client, server, "pub")
    pub.send(b"PUB foo.bar 1\r\n1\r\nPUB foo.baz 1\r\n2\r\nPUB x.y.z 1\r\n3\r\n"
             b"PUB x.y.w 1\r\n4\r\n")
    _sync(pub)
    msgs = re.findall(rb"MSG [^\r]*\r\n[^\r]*\r\n", _sync(sub))
    return errs, b"".join(sorted(msgs))  # (the order among one client's subs is not ours)


def test_auth_interop_wildcard_sub_overlapping_deny(make_server, go_nats_server, raw_client):
    """A wildcard subscription that also covers denied subjects is accepted, and
    the denied messages are dropped at delivery (nats-server's "mperms")."""
    want = _overlap(raw_client, go_nats_server(config=OVERLAP_CONF))
    got = _overlap(raw_client, make_server(config=OVERLAP_CONF))
    assert got == want
    errs, msgs = want
    assert errs == b"" and b"MSG foo.bar" not in msgs and b"MSG x.y.z" not in msgs
    assert b"MSG foo.baz 4 1\r\n2\r\n" in msgs and b"MSG x.y.w 3 1\r\n4\r\n" in msgs


# -- two connections: replies under allow_responses, stream imports ----------------------------

FLOW_CONF = """
accounts {
  A: {
    users: [
      {user: req, password: req}
      {user: resp, password: resp, permissions: {
        subscribe: "svc.>", allow_responses: {max: 2}
      }}
    ]
    exports: [{stream: "ev.>"}]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [{stream: {account: A, subject: "ev.>"}, prefix: imp}]
  }
}
"""


def _login(raw_client, server, user):
    c = raw_client(server)
    c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}\r\n'
           % (user.encode(), user.encode()))
    return c


def _sync(c):
    c.send(PING)
    return c.expect(rb"(.*?)PONG\r\n", timeout=5.0).group(1)


def _flow(raw_client, server):
    """What each connection sees in a short request/reply + import exchange."""
    req = _login(raw_client, server, "req")
    resp = _login(raw_client, server, "resp")
    b = _login(raw_client, server, "b")
    req.send(b"SUB _R.> 1\r\n")
    resp.send(b"SUB svc.> 1\r\n")
    b.send(b"SUB > 1\r\n")
    for c in (req, resp, b):
        _sync(c)
    req.send(b"PUB svc.a _R.1 1\r\nq\r\nPUB ev.x 1\r\ne\r\nPUB other 1\r\no\r\n")
    _sync(req)
    seen = {"resp1": _sync(resp)}
    resp.send(b"PUB _R.1 1\r\n1\r\nPUB _R.1 1\r\n2\r\nPUB _R.1 1\r\n3\r\n"
              b"PUB _R.2 1\r\n4\r\nPUB svc.a 1\r\n5\r\n")
    seen["resp2"] = _sync(resp)
    seen["req"] = _sync(req)
    seen["b"] = _sync(b)
    return seen


def test_auth_interop_responses_and_imports(make_server, go_nats_server, raw_client):
    want = _flow(raw_client, go_nats_server(config=FLOW_CONF))
    got = _flow(raw_client, make_server(config=FLOW_CONF))
    assert got == want
    assert want["b"] == b"MSG imp.ev.x 1 1\r\ne\r\n"
    assert want["req"] == b"MSG _R.1 1 1\r\n1\r\nMSG _R.1 1 1\r\n2\r\n"


NO_AUTH_USER_CONF = 'authorization { users: [{user: a, password: b}] }\nno_auth_user: a\n'


@pytest.mark.parametrize("script", [
    b"SUB x 1\r\nPUB x 1\r\na\r\nPING\r\n",  # no CONNECT at all: bound to no_auth_user
    b'CONNECT {"user":"a","pass":1}\r\nPING\r\n',  # wrong JSON type: closed, no -ERR
    b'CONNECT {"verbose":false}\r\nSUB x 1\r\nPUB x 1\r\nb\r\nPING\r\n',
])
def test_auth_interop_no_auth_user_and_connect_types(make_server, go_nats_server, raw_client,
                                                     script):
    def run(server):
        c = raw_client(server)
        c.send(script)
        return c.read_all(timeout=0.5) + (b"<closed>" if c.closed else b"")

    assert run(make_server(config=NO_AUTH_USER_CONF)) == run(
        go_nats_server(config=NO_AUTH_USER_CONF))
