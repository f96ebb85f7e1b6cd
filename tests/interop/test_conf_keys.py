"""Differential test of nats-server's top-level keys (server/opts.go): the same
config file checked (``-t``) and started by the Go nats-server and by ours.

* ``conf_corpus/keys/*.conf``: Go accepts and starts every file. Ours does the
  same, except the ``unsupported_<key>.conf`` files, which use a feature not
  built yet: ours refuses them at ``-t`` and at start, naming ``<key>`` with
  "is not supported yet" (never an "unknown field", never silently ignored).
* ``conf_corpus/keys_bad/*.conf``: a bad value for one of these keys; both
  refuse it at ``-t`` (status 1).

Started = the client port (given with ``-p``) accepts a connection within
15 s; each process is stopped by its PID.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server

pytestmark = pytest.mark.interop

CORPUS = Path(__file__).parent / "conf_corpus"
GOOD = sorted((CORPUS / "keys").glob("*.conf"))
BAD = sorted((CORPUS / "keys_bad").glob("*.conf"))
UNSUPPORTED = "unsupported_"


@pytest.fixture(scope="module")
def commands():
    return {"go": [require_go_nats_server()[0]], "py": pluggy_nats_command()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    out = dict(os.environ)
    out["CORPUS_STORE_DIR"] = str(tmp_path_factory.mktemp("store"))
    return out


def check(command, path, env):
    proc = subprocess.run(command + ["-t", "-c", str(path)], env=env, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def start(command, path, env, tmp_path):
    """("started", "") when the client port accepts, else ("exited N", output)."""
    port = free_port()
    log = tmp_path / ("%s.log" % path.stem)
    with open(log, "wb") as out:
        proc = subprocess.Popen(command + ["-a", "127.0.0.1", "-p", str(port), "-c", str(path)],
                                env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return "exited %d" % proc.returncode, log.read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return "started", ""
            except OSError:
                time.sleep(0.05)
        return "not ready", log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_corpus_is_there():
    assert len(GOOD) >= 10 and len(BAD) >= 8
    assert any(p.name.startswith(UNSUPPORTED) for p in GOOD)


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_key_corpus_verdicts(commands, env, path, tmp_path):
    go_code, go_out = check(commands["go"], path, env)
    assert go_code == 0, "nats-server refuses %s:\n%s" % (path.name, go_out)
    assert start(commands["go"], path, env, tmp_path)[0] == "started"
    our_code, our_out = check(commands["py"], path, env)
    if path.stem.startswith(UNSUPPORTED):
        key = path.stem[len(UNSUPPORTED):]
        assert our_code == 1, our_out
        assert "%s is not supported yet" % key in our_out, our_out
        assert "unknown field" not in our_out, our_out
        assert start(commands["py"], path, env, tmp_path)[0] == "exited 1"
    else:
        assert our_code == 0, "we refuse %s:\n%s" % (path.name, our_out)
        verdict, output = start(commands["py"], path, env, tmp_path)
        assert verdict == "started", output


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_key_values_refused_by_both(commands, env, path):
    go_code, go_out = check(commands["go"], path, env)
    assert go_code == 1, "nats-server accepts %s:\n%s" % (path.name, go_out)
    our_code, our_out = check(commands["py"], path, env)
    assert our_code == 1, "we accept %s:\n%s" % (path.name, our_out)
    assert "%s:1:1:" % path.name in our_out, our_out  # located at the key
