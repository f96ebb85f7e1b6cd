"""The ``gateway {}`` block: nats-server's keys, errors (with file:line:col)
and reload rule; ``check-config`` reports them like every other error."""

import subprocess
import sys

import pytest
from pluggy_nats_plugins.gateway import config as gwconfig

from pluggy_nats.conf import ConfigError, loads


def parse(text, cluster_name=None):
    conf = loads(text, "gw.conf")
    cfg = gwconfig.parse_gateway(conf["gateway"], conf.position("gateway"))
    gwconfig.validate(cfg, cluster_name)
    return cfg


def errors_of(text, cluster_name=None):
    with pytest.raises(ConfigError) as exc:
        parse(text, cluster_name)
    return [(str(pos) if pos else None, msg) for pos, msg in exc.value.errors]


def test_full_block():
    cfg = parse("""
gateway {
  name: "A"
  listen: "127.0.0.1:7222"
  advertise: "gw.example.com:7222"
  authorization { user: gw, password: pw, timeout: 3 }
  connect_retries: 2
  connect_backoff: true
  reject_unknown_cluster: true
  write_deadline: "3s"
  gateways: [
    {name: "A", url: "nats://127.0.0.1:7222"}
    {name: "B", url: "nats://u:p@127.0.0.1:7223", urls: ["nats://127.0.0.1:7224"]}
    {name: "C", urls: ["nats://127.0.0.1:7225", "nats://127.0.0.1:7226"]}
  ]
}""")
    assert (cfg.name, cfg.host, cfg.port, cfg.advertise) == ("A", "127.0.0.1", 7222,
                                                            "gw.example.com:7222")
    assert (cfg.user, cfg.password, cfg.auth_timeout) == ("gw", "pw", 3.0)
    assert cfg.connect_retries == 2 and cfg.connect_backoff and cfg.reject_unknown
    assert cfg.write_deadline == 3.0
    # our own entry is left out, its URLs kept; "urls" replaces what "url" gave
    assert [g.name for g in cfg.gateways] == ["B", "C"]
    assert cfg.own_urls == ["nats://127.0.0.1:7222"]
    assert cfg.remote("C").urls == ["nats://127.0.0.1:7225", "nats://127.0.0.1:7226"]


def test_url_appends_when_after_urls():
    cfg = parse('gateway { name: A, port: -1, gateways: [{name: B, urls: ["nats://h:1"], '
                'url: "nats://h:2"}] }')
    assert cfg.remote("B").urls == ["nats://h:1", "nats://h:2"]


def test_parse_errors_have_positions():
    errs = errors_of('gateway {\n  name: "A b"\n  port: -1\n  foo: 1\n'
                     '  authorization { users: [{user: a, password: b}] }\n'
                     '  gateways: [ {name: B, url: "nats://h:1", bar: 2} ]\n}')
    assert ("gw.conf:2:3", "gateway name cannot contain spaces") in errs
    assert ("gw.conf:4:3", 'unknown field "foo"') in errs
    assert ("gw.conf:5:3", "Gateway authorization does not allow multiple users") in errs
    assert any(pos and pos.startswith("gw.conf:6:") and msg == 'unknown field "bar"'
               for pos, msg in errs)


@pytest.mark.parametrize("text, message", [
    ('gateway { name: "A" }', 'gateway "A" has no port specified (select -1 for random port)'),
    ("gateway { port: -1 }", "gateway has no name"),
    ('gateway { name: A, port: -1, gateways: [{name: B}] }', 'gateway "B" has no URL'),
    ('gateway { name: A, port: -1, gateways: [{url: "nats://h:1"}] }',
     "gateway in the list 0 has no name"),
    ('gateway { name: A, port: -1, authorization { token: x } }',
     "Gateway authorization does not support tokens"),
    ('gateway { name: A, listen: "nohost" }', 'could not parse address string "nohost"'),
])
def test_validation_errors_with_go_texts(text, message):
    assert message in [msg for _pos, msg in errors_of(text)]


def test_name_must_equal_cluster_name():
    errs = errors_of('gateway {\n  name: "A"\n  port: -1\n}', cluster_name="X")
    assert errs == [("gw.conf:2:3",
                     "cluster name conflicts between cluster and gateway definitions")]
    cfg = parse('gateway { name: "A", port: -1 }')
    assert gwconfig.validate(cfg, None) == "A"  # the cluster takes the gateway's name


def test_no_block_means_disabled():
    cfg = parse("gateway { }")
    assert not cfg.enabled


def test_reload_takes_tls_only():
    old = parse('gateway { name: A, port: 1, gateways: [{name: B, url: "nats://h:1"}] }')
    same = parse('gateway { name: A, port: 1, gateways: [{name: B, url: "nats://h:1"}] }')
    assert gwconfig.reload_changes(old, same) == (False, [])
    moved = parse('gateway { name: A, port: 2, gateways: [{name: B, url: "nats://h:9"}] }')
    tls_changed, refused = gwconfig.reload_changes(old, moved)
    assert refused == ["config reload not supported for Gateway (port, gateways changed)"]


def test_check_config_reports_gateway_errors(tmp_path):
    path = tmp_path / "s.conf"
    path.write_text('cluster { name: X, port: -1 }\ngateway {\n  name: "A"\n  port: -1\n'
                    '  nope: 1\n}\n')
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "check-config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert '%s:5:3: unknown field "nope"' % path in out.stderr
    path.write_text('cluster { name: X, port: -1 }\ngateway {\n  name: "A"\n  port: -1\n}\n')
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "check-config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert "%s:3:3: cluster name conflicts between cluster and gateway definitions" % path \
        in out.stderr
