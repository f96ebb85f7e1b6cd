"""The nats.go JetStream client (Debian's golang-github-nats-io-go-nats-dev, built
offline): streams, consumers, ordered consumers, KV and object store, against our
server and, as a control, the Go nats-server."""

import os
import subprocess

import pytest

from pluggy_nats.testing.natsgo import build_natsgo_client

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def natsgo_js_client(tmp_path_factory):
    return build_natsgo_client(os.path.join(HERE, "natsgo"), tmp_path_factory, "natsgo-js-client")


@pytest.mark.parametrize("kind", ["pluggy-nats", "nats-server"])
def test_jetstream_natsgo_client(natsgo_js_client, js_server, go_nats_server, tmp_path, kind):
    if kind == "pluggy-nats":
        server = js_server()
    else:
        server = go_nats_server("-js", "-sd", str(tmp_path / "go-store"))
    run = subprocess.run([natsgo_js_client, server.url], capture_output=True, text=True,
                         timeout=90)
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout + run.stderr
