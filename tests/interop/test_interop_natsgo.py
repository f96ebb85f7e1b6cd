"""The nats.go client (Debian's golang-github-nats-io-go-nats-dev, built offline)
against our server and, as a control, against the Go nats-server."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def natsgo_client(tmp_path_factory):
    go = shutil.which("go")
    have_lib = os.path.isdir(os.path.join(GOPATH, "src/github.com/nats-io/nats.go"))
    if not (go and have_lib):
        reason = "needs Go and nats.go: apt-get install golang-go golang-github-nats-io-go-nats-dev"
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs them)")
        pytest.skip(reason)
    out = str(tmp_path_factory.mktemp("natsgo") / "natsgo-client")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="", GOPROXY="off",
               CGO_ENABLED="0", GOCACHE=str(tmp_path_factory.mktemp("gocache")))
    build = subprocess.run([go, "build", "-o", out, "."], cwd=os.path.join(HERE, "natsgo"),
                           env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    return out


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
