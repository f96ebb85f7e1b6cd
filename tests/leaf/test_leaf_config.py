"""The leafnodes {} block: what nats-server accepts, and its errors at file:line:col."""

import pytest
from pluggy_nats_plugins.leafnode import _known_accounts
from pluggy_nats_plugins.leafnode.config import parse_leafnodes

from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError


def parse(text):
    conf = loads(text, filename="t.conf")
    return parse_leafnodes(conf["leafnodes"], _known_accounts(conf), False,
                           conf.position("leafnodes"))


def errors(text):
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


def test_leaf_config_full_block():
    cfg = parse("""
accounts { A: {}, B: {} }
leafnodes {
  listen: "127.0.0.1:7500"
  advertise: "edge.example:7500"
  no_advertise: true
  reconnect: "2s"
  min_version: "2.9.0"
  compression: s2_fast
  isolate_leafnode_interest: true
  authorization { users: [ {user: a, password: pa, account: A}, {user: b, password: pb} ] }
  remotes: [
    { urls: ["nats-leaf://u:p@127.0.0.1:7422", "nats-leaf://127.0.0.1:7423"], account: A,
      deny_imports: ["secret.>"], deny_exports: "private.*", hub: true,
      first_info_timeout: "3s", no_randomize: true }
    { url: "tls://127.0.0.1:7424", local: B, compression: off, request_isolation: true }
  ]
}
""")
    assert (cfg.host, cfg.port, cfg.advertise, cfg.no_advertise) == \
        ("127.0.0.1", 7500, "edge.example:7500", True)
    assert cfg.reconnect == 2.0 and cfg.min_version == "2.9.0" and cfg.isolate
    assert [(u.user, u.account) for u in cfg.auth.users] == [("a", "A"), ("b", None)]
    first, second = cfg.remotes
    assert first.urls == ["nats-leaf://u:p@127.0.0.1:7422", "nats-leaf://127.0.0.1:7423"]
    assert (first.account, first.deny_imports, first.deny_exports, first.hub) == \
        ("A", ["secret.>"], ["private.*"], True)
    assert first.first_info_timeout == 3.0 and first.no_randomize
    assert (second.account, second.compression, second.request_isolation) == ("B", "off", True)


def test_leaf_config_port_minus_one_is_any_free_port():
    assert parse("leafnodes { port: -1 }").port == 0


@pytest.mark.parametrize("text, message", [
    ("leafnodes { bogus: 1 }", 't.conf:1:13: unknown field "bogus"'),
    ("leafnodes { remotes: [ { bogus: 1, url: \"nats-leaf://127.0.0.1:1\" } ] }",
     't.conf:1:26: unknown field "bogus"'),
    ("leafnodes { authorization { bogus: 1 } }", 't.conf:1:29: unknown field "bogus"'),
    ("leafnodes { remotes: \"x\" }",
     "t.conf:1:13: Expected remotes field to be an array, got string"),
    ("leafnodes { min_version: \"2.7.0\" }",
     "t.conf:1:13: the minimum version should be at least 2.8.0"),
    ("leafnodes { port: \"abc\" }",
     "t.conf:1:13: interface conversion: interface {} is string, not int64"),
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\", deny_imports: \"foo..bar\" } ] }",
     't.conf:1:58: subject "foo..bar" is not a valid subject'),
    ("leafnodes { authorization { user: a, password: b, users: [ {user: c, password: d} ] } }",
     "t.conf:1:13: can not have a single user/pass and a users array"),
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\", account: \"A\" } ] }",
     'cannot find local account "A" specified in leafnode remote'),
    ("leafnodes { authorization { users: [ {user: c, password: d, account: NOPE} ] } }",
     'cannot find local account "NOPE" specified in leafnode authorization'),
    ("leafnodes { remotes: [ { urls: [\"nats-leaf://127.0.0.1:1\", \"ws://127.0.0.1:2\"] } ] }",
     "remote leaf node configuration cannot have a mix of websocket and non-websocket urls"),
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\", compression: \"bogus\" } ] }",
     'unsupported compression mode "bogus"'),
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\" }, "
     "{ url: \"nats-leaf://127.0.0.1:1\" } ] }",
     'duplicate remote urls=["nats-leaf://127.0.0.1:1"], account="$G"'),
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\", nkey: \"SUAxxx\" } ] }",
     'Remote leafnode nkey is not a valid seed: "SUAxxx"'),
    # not built yet: refused, never silently ignored
    ("leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:1\", proxy: { url: x } } ] }",
     "leafnodes.remotes.proxy is not supported yet"),
])
def test_leaf_config_errors_as_nats_server(text, message):
    assert message in errors(text)


def test_leaf_config_every_error_reported_at_once():
    text = errors("leafnodes {\n  bogus: 1\n  remotes: [ { url: \"x://h:1\", nope: 2 } ]\n}\n")
    assert 't.conf:2:3: unknown field "bogus"' in text
    assert 't.conf:3:32: unknown field "nope"' in text
    assert 'unsupported url scheme "x"' in text


def test_leaf_config_server_refuses_to_start(make_server):
    with pytest.raises(RuntimeError) as info:
        make_server(config="leafnodes {\n  remotes: [ { url: \"nats-leaf://127.0.0.1:1\","
                           " account: NOPE } ]\n}\n", timeout=10)
    assert 'cannot find local account "NOPE" specified in leafnode remote' in str(info.value)
