"""Checking and explaining a configuration: ``pluggy-nats check-config FILE`` and
``serve -t -c FILE`` (exit status, every error with file:line:col, "did you
mean" hints), ``serve --explain-config`` (each option's value and where it came
from) and command-line flags winning over the file."""

import os
import re
import subprocess
import sys

import pytest

from pluggy_nats.cli import arg_sources, build_options, make_serve_parser
from pluggy_nats.options import Options
from pluggy_nats.plugins import make_plugin_manager


def pluggy_nats(*args, env=None, timeout=30):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PLUGGY_NATS_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "pluggy_nats"] + list(args),
                          capture_output=True, text=True, timeout=timeout, env=environ)


@pytest.fixture
def conf(tmp_path):
    def write(text, name="server.conf"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


GOOD = """
# a deployment's file, as nats-server reads it
listen: 127.0.0.1:4333
server_name: "checked"
max_payload: 2KB
ping_interval: "30s"
http: "127.0.0.1:8333"
"""

BAD = """port: "not a port"
max_payloda: 2KB
ping_interval: "soon"
listen: "127.0.0.1:http"
write_deadlin: "2s"
max_pending: 1KB
"""


def error_lines(stderr):
    return [line for line in stderr.splitlines() if not line.startswith("pluggy-nats:")]


@pytest.mark.parametrize("command", [["check-config", "{path}"], ["serve", "-t", "-c", "{path}"]])
def test_valid_file(conf, command):
    path = conf(GOOD)
    out = pluggy_nats(*[a.format(path=path) for a in command])
    assert out.returncode == 0, out.stderr
    assert re.search(r"configuration file .*server\.conf is valid \(sha256:[0-9a-f]{64}\)",
                     out.stdout)
    assert "Server is ready" not in out.stdout + out.stderr  # checked, never started


@pytest.mark.parametrize("command", [["check-config", "{path}"], ["serve", "-t", "-c", "{path}"],
                                     ["serve", "-c", "{path}"]])
def test_every_error_is_listed_with_its_position(conf, command):
    """A bad file: exit 1, every error as file:line:col: message, in file order,
    and no server started (not even with plain ``serve``)."""
    path = conf(BAD)
    out = pluggy_nats(*[a.format(path=path) for a in command])
    assert out.returncode == 1
    assert "Server is ready" not in out.stdout + out.stderr
    lines = error_lines(out.stderr)
    expected = [
        (1, "port: expected an integer"),
        (2, "unknown field \"max_payloda\" (did you mean 'max_payload'?)"),
        (3, "ping_interval"),
        (4, "listen: could not parse port"),
        (5, "unknown field \"write_deadlin\" (did you mean 'write_deadline'?)"),
        (6, "max_payload (1048576) cannot exceed max_pending (1024)"),
    ]
    assert len(lines) == len(expected), out.stderr
    for line, (lineno, text) in zip(lines, expected, strict=True):
        assert line.startswith("%s:%d:1: " % (path, lineno)), line
        assert text in line, line


def test_syntax_errors_are_listed_with_positions(conf):
    path = conf("port: 4222\nauthorization {\n  user: a\n  password: [1, 2\n")
    out = pluggy_nats("check-config", path)
    assert out.returncode == 1
    lines = error_lines(out.stderr)
    assert lines and all(re.match(re.escape(path) + r":\d+:\d+: ", line) for line in lines)


def test_unknown_key_in_a_plugin_block_fails_the_check(conf):
    path = conf("port: 4222\ncluster {\n  name: c1\n  listen: 127.0.0.1:-1\n  rouets: []\n}\n")
    out = pluggy_nats("check-config", path)
    assert out.returncode == 1
    assert "rouets" in out.stderr


def test_check_config_usage_and_missing_file(tmp_path):
    assert pluggy_nats("check-config").returncode == 2
    out = pluggy_nats("check-config", str(tmp_path / "nope.conf"))
    assert out.returncode == 1 and "nope.conf" in out.stderr


def test_explain_config_names_every_source(conf):
    path = conf(GOOD)
    out = pluggy_nats("serve", "-c", path, "-p", "-1", "--ping_interval=3", "-D",
                      "--explain-config", env={"PLUGGY_NATS_MAX_PENDING": "9999999"})
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        name, value, source = line.split(None, 2)
        rows[name] = (value, source)
    assert set(rows) == set(Options().sources)  # every core option, once
    assert rows["host"] == ('"127.0.0.1"', "%s:3:1" % path)
    assert rows["port"] == ("0", "flag -p")  # the flag wins over listen's 4333
    assert rows["max_payload"] == ("2048", "%s:5:1" % path)
    assert rows["server_name"] == ('"checked"', "%s:4:1" % path)
    assert rows["ping_interval"] == ("3.0", "flag --ping_interval")
    assert rows["max_pending"] == ("9999999", "env PLUGGY_NATS_MAX_PENDING")
    assert rows["http_port"] == ("8333", "%s:7:1" % path)
    assert rows["debug"] == ("true", "flag -D")
    assert rows["max_connections"] == ("65536", "default")
    assert rows["write_deadline"] == ("10.0", "default")


def test_flag_on_the_command_line_beats_the_file(make_server, raw_client):
    """The file says port 1 (which we could not bind) and max_payload 2KB; the
    launcher's ``-p -1`` wins for the port, the file still sets max_payload."""
    server = make_server(config="port: 1\nmax_payload: 2KB\n")
    client = raw_client(server)
    assert client.info["port"] == server.port != 1
    assert client.info["max_payload"] == 2048


def test_env_is_a_source_and_a_flag_beats_it(conf):
    path = conf("max_payload: 4KB\n")
    out = pluggy_nats("serve", "-c", path, "--max_payload", "1000", "--explain-config",
                      env={"PLUGGY_NATS_MAX_PAYLOAD": "3000", "PLUGGY_NATS_ADDR": "127.0.0.2"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"^max_payload\s+1000\s+flag --max_payload$", text, re.M)
    assert re.search(r'^host\s+"127\.0\.0\.2"\s+env PLUGGY_NATS_ADDR$', text, re.M)


# -- in process: how flag and env sources are told apart ------------------------------


@pytest.fixture(scope="module")
def parser():
    return make_serve_parser(make_plugin_manager(autoload=False))


@pytest.mark.parametrize("argv, expected", [
    (["-p", "5"], {"port": "flag -p"}),
    (["-p5"], {"port": "flag -p"}),
    (["--port=5"], {"port": "flag --port"}),
    (["--ping_int", "3"], {"ping_interval": "flag --ping_interval"}),  # argparse abbreviation
    (["-m", "-1", "-D"], {"http_port": "flag -m", "debug": "flag -D"}),
    (["-n", "-p"], {"server_name": "flag -n"}),  # "-p" is -n's value here
    (["-DV"], {"debug_trace": "flag -DV"}),
    (["--net", "::1"], {"host": "flag --net"}),
])
def test_arg_sources_flags(parser, argv, expected, monkeypatch):
    for key in list(os.environ):
        if key.startswith("PLUGGY_NATS_"):
            monkeypatch.delenv(key)
    assert arg_sources(parser, argv) == expected


def test_arg_sources_env_unless_flag(parser, monkeypatch):
    monkeypatch.setenv("PLUGGY_NATS_PORT", "7000")
    monkeypatch.setenv("PLUGGY_NATS_HTTP_PORT", "8000")
    sources = arg_sources(parser, ["-p", "5"])
    assert sources["port"] == "flag -p"
    assert sources["http_port"] == "env PLUGGY_NATS_HTTP_PORT"
    args = parser.parse_args(["-p", "5"])
    options = build_options(args, sources)
    assert (options.port, options.sources["port"]) == (5, "flag -p")
    assert (options.http_port, options.sources["http_port"]) == (8000,
                                                                "env PLUGGY_NATS_HTTP_PORT")
    assert options.sources["max_payload"] == "default"


def test_options_explain_rows():
    from pluggy_nats.conf import loads

    options = Options(conf=loads("max_payload: 1KB\n", "x.conf"), port=0,
                      override_sources={"port": "flag -p"})
    rows = {name: (value, source) for name, value, source in options.explain()}
    assert rows["max_payload"] == (1024, "x.conf:1:1")
    assert rows["port"] == (0, "flag -p")
    assert rows["host"] == ("0.0.0.0", "default")
    assert Options(port=5).sources["port"] == "argument"  # the embedding API
