"""The sans-IO leaf protocol pieces against what nats-server 2.15.1 sends."""

import base64
import json

import nkeys
import pytest
from pluggy_nats_plugins.leafnode import creds
from pluggy_nats_plugins.leafnode import protocol as p


def hub_info(**kw):
    args = dict(server_id="NHUB", server_name="hub", version="2.15.1", go="py", host="h",
                port=7422, max_payload=1048576, ip="127.0.0.1:7422", client_id=6,
                nonce="abc", leafnode_urls=["127.0.0.1:7422"])
    args.update(kw)
    return p.hub_info(**args)


def test_leaf_hub_info_fields_in_go_order_without_compression():
    info = hub_info()
    assert list(info) == ["server_id", "server_name", "version", "proto", "go", "host", "port",
                          "headers", "auth_required", "max_payload", "ip", "client_id",
                          "nonce", "info_on_connect", "leafnode_urls"]
    assert info["proto"] == 3 and info["client_id"] == 6 and "compression" not in info
    with pytest.raises(ValueError):
        hub_info(client_id=0)  # a Go leaf would take it for a client port


def test_leaf_second_info_binds_the_account():
    info = p.connect_info(hub_info(), account_name="A", is_system=False,
                          permissions={"import": {"deny": ["x"]}, "export": None})
    assert info["connect_info"] is True and info["remote_account"] == "A"
    assert "nonce" not in info and info["import"] == {"deny": ["x"]} and "export" not in info
    assert list(info).index("connect_info") < list(info).index("leafnode_urls")


def test_leaf_connect_as_go_sends_it():
    connect = p.leaf_connect(version="2.15.1", server_id="NLEAF", name="leafA",
                             cluster="leafA", user="u", password="p")
    assert json.dumps(connect, separators=(",", ":")) == (
        '{"version":"2.15.1","user":"u","pass":"p","server_id":"NLEAF","name":"leafA",'
        '"cluster":"leafA","headers":true,"remote_account":"$G","protocol":3}')
    token = p.leaf_connect(version="2.15.1", server_id="N", name="n", cluster="n", user="tok",
                           deny_pub=["a.>"], is_hub=True)
    assert token["auth_token"] == "tok" and "pass" not in token
    assert token["deny_pub"] == ["a.>"] and token["is_hub"] is True


@pytest.mark.parametrize("connect, err", [
    ({"lang": "go"}, "attempted to connect to leaf node port"),
    ({"gateway": "B"}, 'Rejecting connection from gateway "B" on the leafnode port'),
    ({"cluster": "a b"}, "cluster name cannot contain spaces"),
    ({"cluster": "hubc"}, "remote leafnode has same cluster name"),
    ({"cluster": "x", "version": "2.9.1"},
     'connection rejected since minimum version required is "2.10.0"'),
    ({"cluster": "x", "version": "2.10.0"}, None),
])
def test_leaf_hub_checks_connect(connect, err):
    assert p.check_connect(connect, hub_cluster="hubc", min_version="2.10.0") == err


def test_leaf_loop_error_text_and_delays():
    text = p.loop_error("$G")
    assert text == 'Loop detected for leafnode account="$G". ' \
                   "Delaying attempt to reconnect for 30s"
    assert p.reconnect_delay(text) == 30.0
    assert p.reconnect_delay("remote leafnode has same cluster name") == 30.0
    assert p.reconnect_delay("Permissions Violation for Publish to \"x\"") == 30.0
    assert p.reconnect_delay("Authorization Violation") is None
    assert p.lds_subject("abc") == b"$LDS.abc" and p.is_unchecked(b"$LDS.abc")
    assert p.is_unchecked(b"_GR_.x.y") and not p.is_unchecked(b"app.x")


def test_leaf_interest_verbs():
    assert p.parse_ls_plus([b"foo"]) == (b"foo", None, 1)
    assert p.parse_ls_plus([b"foo", b"q", b"3"]) == (b"foo", b"q", 3)
    for bad in ([], [b"foo", b"q"], [b"foo", b"q", b"x"], [b"a", b"b", b"c", b"d"]):
        with pytest.raises(p.LeafProtocolError):
            p.parse_ls_plus(bad)
    assert p.parse_ls_minus([b"foo", b"q"]) == (b"foo", b"q")
    with pytest.raises(p.LeafProtocolError):
        p.parse_ls_minus([])
    assert p.encode_sub(b"foo") == b"LS+ foo\r\n"
    assert p.encode_sub(b"foo", b"q", 2) == b"LS+ foo q 2\r\n"
    assert p.encode_unsub(b"foo", b"q") == b"LS- foo q\r\n"


def test_leaf_creds_sign_the_nonce(tmp_path):
    kp = nkeys.from_seed(bytearray(nkeys.encode_seed(bytes(range(32)), nkeys.PREFIX_BYTE_USER)))
    seed = kp.seed.decode()
    path = tmp_path / "u.creds"
    path.write_text("-----BEGIN NATS USER JWT-----\neyJhbGciOi.fake.jwt\n------END NATS USER "
                    "JWT------\n\n************************* IMPORTANT *************************\n"
                    "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n" % seed)
    jwt, got_seed = creds.read_creds(str(path))
    assert jwt == "eyJhbGciOi.fake.jwt" and got_seed == seed
    sig = creds.sign_nonce(seed, "nonce123")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    assert kp.verify(b"nonce123", raw)
    with pytest.raises(creds.CredentialsError):
        creds.read_creds(str(tmp_path / "missing.creds"))
