"""SIGHUP reloads the configuration file: reloadable options change in place,
a bad file or a change that needs a restart leaves everything as it was."""

import json
import signal
import urllib.request

from pluggy_nats.testing.raw import wait_for


def _varz(server):
    with urllib.request.urlopen("http://127.0.0.1:%d/varz" % server.http_port, timeout=5) as r:
        return json.load(r)


def _reload(server, text, path):
    with open(path, "w") as f:
        f.write(text)
    before = server.logs().count("reload")
    server.signal(signal.SIGHUP)
    wait_for(lambda: server.logs().count("reload") > before, message="reload logged")


def test_operability_reload_applies_reloadable_options(make_server, tmp_path, raw_client):
    server = make_server("-m", "-1", config="max_connections: 100\nping_max: 2\n")
    conf = tmp_path / ("%s.conf" % server.name)
    assert _varz(server)["max_connections"] == 100
    _reload(server, "max_connections: 7\nping_max: 5\nmax_payload: 2048\n", conf)
    varz = _varz(server)
    assert (varz["max_connections"], varz["ping_max"], varz["max_payload"]) == (7, 5, 2048)
    assert raw_client(server).info["max_payload"] == 2048  # new connections see it
    assert "config_reloaded" in server.logs()


def test_operability_reload_refuses_bad_files_and_restart_only_changes(make_server, tmp_path):
    server = make_server("-m", "-1", config="max_connections: 100\n")
    conf = tmp_path / ("%s.conf" % server.name)
    _reload(server, "max_connections: [oops\n", conf)  # syntax error
    assert "config_reload_failed" in server.logs()
    assert _varz(server)["max_connections"] == 100
    _reload(server, "max_connections: 5\nserver_name: renamed\n", conf)  # needs a restart
    assert "server_name changed" in server.logs()
    assert _varz(server)["max_connections"] == 100  # all or nothing
    _reload(server, "max_connections: 5\nnot_an_option: 1\n", conf)
    assert "not_an_option" in server.logs()
    assert _varz(server)["max_connections"] == 100


def test_operability_signal_command_uses_the_pid_file(make_server, tmp_path):
    """`pluggy-nats serve --signal reload -P FILE` and `--signal ldm=PID`."""
    import subprocess
    import sys

    pidfile = tmp_path / "server.pid"
    server = make_server("-P", str(pidfile), config="max_connections: 10\n")
    wait_for(lambda: pidfile.exists(), message="pid file")
    cli = [sys.executable, "-m", "pluggy_nats", "serve"]
    out = subprocess.run(cli + ["--signal", "reload", "-P", str(pidfile)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: "config_reloaded" in server.logs(), message="reload via --signal")
    bad = subprocess.run(cli + ["--signal", "bogus=%d" % server.pid], capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 1 and "unknown signal" in bad.stderr
    out = subprocess.run(cli + ["--signal", "quit=%d" % server.pid], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0
    assert server.proc.wait(timeout=10) == 0
