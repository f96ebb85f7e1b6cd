"""``tls { verify_and_map: true }``: the client certificate (email or DNS SAN,
or the subject DN) names the user in ``authorization { users }``; no match is
``Authorization Violation``. Real nats-py over TLS with certificates made for
each case, against our server and the Go nats-server with the same config.

Which user a client became is proven by its permissions: user ``<tag>`` may
only publish to ``who.<tag>``."""

import asyncio
import ssl

import nats
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pluggy_nats.conf import loads
from pluggy_nats.options import Options
from pluggy_nats.testing.plugin import run
from pluggy_nats.tls import parse_tls

IMPLS = ("ours", "go")


def _name(*pairs):
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


# case -> (subject, SANs, the user it should map to or None)
CASES = {
    "email": (_name((NameOID.COMMON_NAME, "mail-user")),
              [x509.RFC822Name("alice@example.com")], "alice@example.com"),
    "dns": (_name((NameOID.COMMON_NAME, "svc")), [x509.DNSName("svc.example.com")],
            "svc.example.com"),
    "dn": (_name((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Acme"),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, "Eng"), (NameOID.COMMON_NAME, "carol")),
           [], "CN=carol,OU=Eng,O=Acme,C=US"),
    "dn-reordered": (_name((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Acme"),
                           (NameOID.COMMON_NAME, "dave")), [], "O=Acme, CN=dave, C=US"),
    "dn-escaped": (_name((NameOID.COMMON_NAME, "Smith, John")), [], "CN=Smith\\, John"),
    "dc": (_name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.DOMAIN_COMPONENT, "example"),
                 (NameOID.COMMON_NAME, "erin")), [], "CN=erin,DC=example,DC=org"),
    "email-unknown-falls-to-dn": (_name((NameOID.COMMON_NAME, "frank")),
                                  [x509.RFC822Name("nobody@example.com")], "CN=frank"),
    "unknown": (_name((NameOID.COMMON_NAME, "mallory")), [], None),
    "password-user": (_name((NameOID.COMMON_NAME, "pw-user")), [], "CN=pw-user"),
}


def _tag(user):
    return "u%d" % sorted(c[2] for c in CASES.values() if c[2]).index(user)


def _config(certs):
    users = []
    for _, _, user in CASES.values():
        if user is None:
            continue
        extra = ", password: secret" if user == "CN=pw-user" else ""
        users.append('    {user: "%s"%s, permissions: {publish: "who.%s"}}'
                     % (user.replace("\\", "\\\\"), extra, _tag(user)))
    return certs.tls_block(extra="verify_and_map: true") + (
        "authorization {\n  users: [\n%s\n  ]\n}\n" % "\n".join(users))


async def _who(url, ctx, tag, **kwargs):
    """'ok' when the client is the user ``tag`` (publishes to who.<tag> pass
    and who.wrong is refused), else the error text."""
    errors = []

    async def error_cb(exc):
        errors.append(str(exc))

    try:
        nc = await nats.connect(url, tls=ctx, tls_hostname="localhost", allow_reconnect=False,
                                max_reconnect_attempts=0, connect_timeout=5,
                                error_cb=error_cb, **kwargs)
    except Exception as exc:
        return str(exc)
    await nc.publish("who.%s" % tag, b"x")
    await nc.publish("who.wrong", b"x")
    await nc.flush()
    for _ in range(100):
        if errors:
            break
        await asyncio.sleep(0.02)
    await nc.close()
    expected = ['nats: permissions violation for publish to "who.wrong"']
    return "ok" if errors == expected else "wrong user: %r" % errors


def _answers(server, certs, with_password=False):
    url = "tls://127.0.0.1:%d" % server.port

    async def main():
        out = {}
        for case, (_, _, user) in CASES.items():
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certs.ca)
            ctx.load_cert_chain(*certs.issue("map-" + case, CASES[case][0], CASES[case][1]))
            kwargs = {}
            if case == "password-user" and with_password:
                kwargs = {"user": "ignored", "password": "secret"}
            out[case] = await _who(url, ctx, _tag(user) if user else "none", **kwargs)
        return out

    return run(main())


def _expected(go_answers):
    return {case: "ok" if CASES[case][2] and case != "password-user" else go_answers[case]
            for case in CASES}


@pytest.mark.parametrize("impl", IMPLS)
def test_tls_verify_and_map(start, certs, impl):
    server = start(impl, _config(certs))
    got = _answers(server, certs)
    assert {c: got[c] for c in CASES if CASES[c][2] and c != "password-user"} == {
        c: "ok" for c in CASES if CASES[c][2] and c != "password-user"}
    assert got["unknown"] == "nats: 'Authorization Violation'"
    # a mapped user with a password still needs it (nats-server comparePasswords)
    assert got["password-user"] == "nats: 'Authorization Violation'"
    assert _answers(server, certs, with_password=True)["password-user"] == "ok"


@pytest.mark.interop
def test_tls_verify_and_map_same_as_go(start, certs):
    ours = _answers(start("ours", _config(certs)), certs)
    go = _answers(start("go", _config(certs)), certs)
    assert ours == go


def test_tls_verify_and_map_config(certs):
    opts = Options(conf=loads(certs.tls_block(extra="verify_and_map: true")))
    assert opts.tls.verify and opts.tls.verify_and_map
    # routes: the peer certificate must name the cluster authorization user
    block = loads(certs.tls_block(extra="verify_and_map: true"))["tls"]
    cfg = parse_tls(block, "cluster.tls", force_verify=True, client_side=True)
    assert cfg.verify and cfg.verify_and_map
