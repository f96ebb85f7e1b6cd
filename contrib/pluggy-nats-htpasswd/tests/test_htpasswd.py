"""The htpasswd plugin with a real pluggy-nats server process (the
``pluggy_nats.testing`` fixtures) and the real nats-py client.

Installed (``tox`` here), the plugin loads through its entry point; not
installed (the top-level suite runs this file too), the server gets
``--plugin pluggy_nats_htpasswd`` with this package on PYTHONPATH.
"""

import base64
import hashlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys

import bcrypt
import nats
import pytest

from pluggy_nats import Options, Server
from pluggy_nats.conf import loads
from pluggy_nats.options import ConfigError
from pluggy_nats.testing.plugin import run

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
AUTH_VIOLATION = "nats: 'Authorization Violation'"


def _installed():
    return any(ep.name == "htpasswd" and ep.value == "pluggy_nats_htpasswd"
               for ep in importlib.metadata.entry_points(group="pluggy_nats"))


@pytest.fixture
def plugin_args(monkeypatch):
    """Server flags that load the plugin whether or not it is installed."""
    if _installed():
        return []
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE_DIR) + (os.pathsep + path if path else ""))
    monkeypatch.syspath_prepend(str(PACKAGE_DIR))
    return ["--plugin", "pluggy_nats_htpasswd"]


@pytest.fixture
def htpasswd_file(tmp_path):
    alice = bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(4)).decode()
    alice = "$2y$" + alice[4:]  # as Apache's htpasswd -B writes it
    bob = "{SHA}" + base64.b64encode(hashlib.sha1(b"bob-pw").digest()).decode()
    path = tmp_path / "users.htpasswd"
    path.write_text("# test users\nalice:%s\n\nbob:%s\n" % (alice, bob))
    return path


async def _attempt(url, user, password):
    try:
        nc = await nats.connect(url, user=user, password=password, allow_reconnect=False,
                                connect_timeout=5)
    except Exception as exc:
        return str(exc)
    sub = await nc.subscribe("hello")
    await nc.publish("hello", b"hi")
    msg = await sub.next_msg(timeout=5)
    await nc.close()
    return "ok" if msg.data == b"hi" else "no echo"


def _attempts(url, cases):
    async def main():
        return [await _attempt(url, user, password) for user, password in cases]

    return run(main())


def test_htpasswd_flag(make_server, raw_client, plugin_args, htpasswd_file):
    server = make_server(*plugin_args, "--htpasswd", str(htpasswd_file))
    assert raw_client(server).info["auth_required"] is True
    assert _attempts(server.url, [("alice", "alice-pw"), ("bob", "bob-pw"),
                                  ("alice", "wrong"), ("bob", "alice-pw"),
                                  ("nobody", "x"), ("", "")]) == [
        "ok", "ok", AUTH_VIOLATION, AUTH_VIOLATION, AUTH_VIOLATION, AUTH_VIOLATION]


def test_htpasswd_beside_authorization_users(make_server, plugin_args, htpasswd_file):
    """``None`` for users it does not know: the built-in auth plugin still
    decides for its own users."""
    server = make_server(*plugin_args, config="htpasswd: %r\nauthorization { users: ["
                         "{user: carol, password: carol-pw}] }\n" % str(htpasswd_file))
    assert _attempts(server.url, [("carol", "carol-pw"), ("alice", "alice-pw"),
                                  ("carol", "alice-pw"), ("alice", "carol-pw")]) == [
        "ok", "ok", AUTH_VIOLATION, AUTH_VIOLATION]


def test_htpasswd_config_errors(tmp_path, plugin_args):
    import pluggy_nats_htpasswd

    bad = tmp_path / "bad.htpasswd"
    bad.write_text("dave:$apr1$abc$def\n")
    for conf, message in [
        ("htpasswd: %r" % str(bad), "unsupported hash for user 'dave'"),
        ("htpasswd: %r" % str(tmp_path / "missing"), "No such file"),
        ("htpasswd: 42", "expected a file name"),
    ]:
        with pytest.raises(ConfigError) as info:
            Server(Options(conf=loads(conf)), plugins=[pluggy_nats_htpasswd],
                   autoload=False)
        assert message in str(info.value)


def test_htpasswd_listed_as_plugin(plugin_args):
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "plugins"] + plugin_args,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(line for line in out.splitlines() if "htpasswd" in line)
    assert "nats_addoption" in line and "nats_configure" in line
