"""The nats.go client (Debian's golang-github-nats-io-go-nats-dev, built offline)
against our server and, as a control, against the Go nats-server."""

import os
import subprocess

import pytest

from pluggy_nats.testing.natsgo import build_natsgo_client

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def natsgo_client(tmp_path_factory):
    return build_natsgo_client(os.path.join(HERE, "natsgo"), tmp_path_factory, "natsgo-client")


@pytest.mark.parametrize("kind", ["pluggy-nats", "nats-server"])
def test_interop_natsgo_client(natsgo_client, make_server, go_nats_server, kind):
    server = make_server() if kind == "pluggy-nats" else go_nats_server()
    run = subprocess.run([natsgo_client, server.url], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize("kind", ["pluggy-nats", "nats-server"])
def test_interop_natsgo_client_v1_creds(natsgo_client, make_server, go_nats_server, kind,
                                        tmp_path):
    """Operator mode with JWTs minted the old way (v1, "alg": "ed25519"): nats.go
    logs in with the .creds file and runs the same checks."""
    from pluggy_nats.testing.operator import Trust

    trust = Trust(tmp_path, v1=True)
    creds = trust.user_creds(trust.account("A"), "old")
    config = trust.config()
    server = make_server(config=config) if kind == "pluggy-nats" else go_nats_server(
        config=config)
    run = subprocess.run([natsgo_client, server.url, creds], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout + run.stderr
