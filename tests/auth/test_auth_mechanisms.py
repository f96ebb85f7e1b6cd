"""Authentication: each mechanism accepted and refused, with the real nats-py
client (and raw sockets where the wire matters), against our server started
with flags or a config file."""

import base64
import json
import subprocess
import sys
import time

import bcrypt
import nats
import nkeys
import pluggy_nats_plugins.auth as auth_plugin
import pytest

from pluggy_nats import Options, Server
from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError
from pluggy_nats.testing.plugin import run

AUTH_VIOLATION = "nats: 'Authorization Violation'"


async def _attempt(url, **kwargs):
    """'ok' or the error text of a nats-py connect."""

    async def error_cb(exc):
        pass

    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=3,
                                error_cb=error_cb, **kwargs)
    except Exception as exc:  # nats.errors.Error and friends
        return str(exc)
    await nc.flush()
    await nc.close()
    return "ok"


def _attempts(url, cases):
    async def main():
        return [await _attempt(url, **kw) for kw in cases]

    return run(main())


def _seed(n):
    return nkeys.encode_seed(bytes([n]) * 32, nkeys.PREFIX_BYTE_USER).decode()


def _public(seed):
    return nkeys.from_seed(bytearray(seed.encode())).public_key.decode()


def test_auth_user_pass_flags(make_server, raw_client):
    server = make_server("--user", "alice", "--pass", "s3cret")
    assert raw_client(server).info["auth_required"] is True
    got = _attempts(server.url, [
        dict(user="alice", password="s3cret"),
        dict(user="alice", password="s3cre"),
        dict(user="bob", password="s3cret"),
        dict(token="s3cret"),
        {},
    ])
    # the client never learns which part was wrong
    assert got == ["ok"] + [AUTH_VIOLATION] * 4
    logs = server.logs()
    assert "password mismatch" in logs or "user/password mismatch" in logs
    assert "s3cre" not in logs.replace("s3cret", "")  # the tried password is not logged


def test_auth_token_flag(make_server):
    server = make_server("--auth", "t0ken")
    got = _attempts(server.url, [dict(token="t0ken"), dict(token="t0ke"),
                                 dict(user="t0ken", password="t0ken"), {}])
    assert got == ["ok", AUTH_VIOLATION, AUTH_VIOLATION, AUTH_VIOLATION]


def test_auth_no_credentials_configured_is_open(make_server, raw_client):
    server = make_server()
    assert "auth_required" not in raw_client(server).info
    assert _attempts(server.url, [{}, dict(user="x", password="y")]) == ["ok", "ok"]


def test_auth_bcrypt_password_and_token(make_server):
    pw_hash = bcrypt.hashpw(b"hunter2", bcrypt.gensalt(4)).decode()
    tok_hash = bcrypt.hashpw(b"tok-tok", bcrypt.gensalt(4)).decode()
    users = make_server(config="""
authorization { users: [
  {user: hashed, password: "%s"}
  {user: plain, password: "%s"}
] }""" % (pw_hash, "plain-pw"), name="users")
    got = _attempts(users.url, [
        dict(user="hashed", password="hunter2"),
        dict(user="hashed", password="hunter3"),
        dict(user="hashed", password=pw_hash),  # the hash is not the password
        dict(user="plain", password="plain-pw"),
        dict(user="plain", password="plain-p"),
    ])
    assert got == ["ok", AUTH_VIOLATION, AUTH_VIOLATION, "ok", AUTH_VIOLATION]
    assert "Plaintext passwords detected" in users.logs()
    token = make_server(config='authorization { token: "%s" }' % tok_hash, name="token")
    assert _attempts(token.url, [dict(token="tok-tok"), dict(token=tok_hash)]) == [
        "ok", AUTH_VIOLATION]
    assert "Plaintext passwords detected" not in token.logs()


def test_auth_single_user_in_config(make_server):
    server = make_server(config="authorization { user: admin, password: pw, timeout: 2 }")
    assert _attempts(server.url, [dict(user="admin", password="pw"),
                                  dict(user="admin", password="PW"),
                                  dict(user="Admin", password="pw")]) == [
        "ok", AUTH_VIOLATION, AUTH_VIOLATION]


def test_auth_flags_override_config(make_server):
    server = make_server("--user", "cli", "--pass", "cli-pw",
                         config="authorization { user: file, password: file-pw }")
    assert _attempts(server.url, [dict(user="cli", password="cli-pw"),
                                  dict(user="file", password="file-pw")]) == [
        "ok", AUTH_VIOLATION]


def test_auth_nkeys(make_server, raw_client):
    good, other = _seed(7), _seed(8)
    server = make_server(config="""
authorization { users: [
  {nkey: %s}
  {user: u, password: p}
] }""" % _public(good))
    info = raw_client(server).info
    assert len(info["nonce"]) >= 11
    got = _attempts(server.url, [
        dict(nkeys_seed_str=good),
        dict(nkeys_seed_str=other),
        dict(user="u", password="p"),
        {},
    ])
    assert got == ["ok", AUTH_VIOLATION, "ok", AUTH_VIOLATION]
    # a signature of another connection's nonce does not work here
    kp = nkeys.from_seed(bytearray(good.encode()))
    first = raw_client(server)
    stale_sig = kp.sign(first.info["nonce"].encode())
    second = raw_client(server)
    assert second.info["nonce"] != first.info["nonce"]
    connect = {"verbose": False, "nkey": _public(good),
               "sig": base64.urlsafe_b64encode(stale_sig).decode().rstrip("=")}
    second.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    second.expect(rb"-ERR 'Authorization Violation'\r\n")
    second.expect_closed()
    first.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    first.expect(rb"PONG\r\n")


def test_auth_no_auth_user(make_server, raw_client):
    server = make_server(config="""
no_auth_user: guest
authorization { users: [
  {user: guest, password: guest-pw, permissions: {publish: "public.>", subscribe: "public.>"}}
  {user: admin, password: admin-pw}
] }""")
    got = _attempts(server.url, [{}, dict(user="admin", password="admin-pw"),
                                 dict(user="admin", password="nope"),
                                 dict(user="guest", password="nope")])
    assert got == ["ok", "ok", AUTH_VIOLATION, AUTH_VIOLATION]
    # the anonymous connection really is the guest: its permissions apply
    c = raw_client(server)
    c.send(b'CONNECT {"verbose":false}\r\nSUB public.x 1\r\nSUB private.x 2\r\n'
           b"PUB public.x 1\r\na\r\nPUB private.x 1\r\nb\r\nPING\r\n")
    c.expect(rb"-ERR 'Permissions Violation for Subscription to \"private.x\"'\r\n"
             rb"MSG public.x 1 1\r\na\r\n"
             rb"-ERR 'Permissions Violation for Publish to \"private.x\"'\r\nPONG\r\n")


def test_auth_timeout(make_server, raw_client):
    server = make_server(config="authorization { user: a, password: b, timeout: 0.5 }")
    idle = raw_client(server)
    start = time.monotonic()
    idle.expect(rb"-ERR 'Authentication Timeout'\r\n", timeout=3)
    idle.expect_closed(timeout=2)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.5, elapsed  # the configured 0.5 s, not the 2 s default
    # a client that authenticates in time stays
    ok = raw_client(server)
    ok.send(b'CONNECT {"verbose":false,"user":"a","pass":"b"}\r\nPING\r\n')
    ok.expect(rb"PONG\r\n")
    time.sleep(0.8)
    ok.send(b"PING\r\n")
    ok.expect(rb"PONG\r\n")


def test_auth_ops_before_connect_are_violations(make_server, raw_client):
    server = make_server("--auth", "tok")
    c = raw_client(server)
    c.send(b"SUB foo 1\r\n")
    c.expect(rb"-ERR 'Authorization Violation'\r\n")
    c.expect_closed()


CONFIG_ERRORS = [
    ("authorization { user: a, password: b, token: c }", "Cannot have a user/pass and token"),
    ("authorization { user: a, users: [{user: b, password: c}] }",
     "Can not have a single user/pass and a users array"),
    ("authorization { token: t, users: [{user: b, password: c}] }",
     "Can not have a token and a users array"),
    ("authorization { users: [{user: a, password: b}, {user: a, password: c}] }",
     "Duplicate user"),
    ("authorization { users: [{password: x}] }", "User entry requires a user"),
    ("authorization { users: [{nkey: UABC}] }", "Not a valid public nkey for a user"),
    ("authorization { users: [{user: a, password: b, permissions: {publish: \"a..b\"}}] }",
     "is not a valid subject"),
    ("authorization { users: [{user: a, password: b, permissions: {bogus: x}}] }",
     "Unknown field 'bogus' parsing permissions"),
    ("authorization { xyz: 1 }", "unknown field 'xyz'"),
    ("authorization { timeout: true, user: a }", "'timeout' wrong type"),
    ("no_auth_user: zz\nauthorization { users: [{user: a, password: b}] }",
     "not present as user or nkey"),
    ("no_auth_user: zz", "users/nkeys are not defined"),
    ("accounts { $G: {} }", "Reserved Account"),
    ("accounts { A: { bogus: 1 } }", "unknown field 'bogus'"),
    ("accounts { A: {}, B: { imports: [{stream: {account: C, subject: x}}] } }",
     "account not defined for stream import"),
    ("accounts { A: { exports: [{stream: \"x.>\"}] }, "
     "B: { imports: [{stream: {account: A, subject: y}}] } }", "stream import not authorized"),
    ("system_account: NOPE", "error resolving system account"),
]


def _configure(text):
    """Build (not start) a server with only the auth plugin; ConfigError if bad."""
    return Server(Options(conf=loads(text)), plugins=[auth_plugin], autoload=False)


@pytest.mark.parametrize("conf,message", CONFIG_ERRORS)
def test_auth_config_errors(conf, message):
    """Bad configurations are refused with nats-server's messages."""
    with pytest.raises(ConfigError) as info:
        _configure(conf)
    assert message in str(info.value)


@pytest.mark.parametrize("conf", [
    "authorization { users: [{user: a, password: b, permissions: {publish: {allow: [], deny: "
    "\"x\"}, subscribe: \"a b\", allow_responses: {max: 2, expires: \"1s\"}}}] }",
    "system_account: SYS\naccounts { SYS: { users: [{user: s, password: s}] } }",
    "authorization { password: only }",
])
def test_auth_config_valid(conf):
    server = _configure(conf)
    assert server.pluginmanager.get_plugin("auth-manager") is not None


def test_auth_config_check_flag(tmp_path):
    """``serve -t`` reports auth errors with the file position and fails."""
    path = tmp_path / "bad.conf"
    path.write_text("port: 4222\nauthorization {\n  users: [{user: a, password: b, "
                    "permissions: {publish: \"a..b\"}}]\n}\n")
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "serve", "-t", "-c", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "bad.conf:3:" in out.stderr and "is not a valid subject" in out.stderr
