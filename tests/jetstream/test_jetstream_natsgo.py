"""The nats.go JetStream client (Debian's golang-github-nats-io-go-nats-dev, built
offline): streams, consumers, ordered consumers, KV and object store, against our
server and, as a control, the Go nats-server."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def natsgo_js_client(tmp_path_factory):
    go = shutil.which("go")
    have_lib = os.path.isdir(os.path.join(GOPATH, "src/github.com/nats-io/nats.go"))
    if not (go and have_lib):
        reason = "needs Go and nats.go: apt-get install golang-go golang-github-nats-io-go-nats-dev"
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs them)")
        pytest.skip(reason)
    out = str(tmp_path_factory.mktemp("natsgojs") / "natsgo-js-client")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="", GOPROXY="off",
               CGO_ENABLED="0", GOCACHE=str(tmp_path_factory.mktemp("gocache")))
    build = subprocess.run([go, "build", "-o", out, "."], cwd=os.path.join(HERE, "natsgo"),
                           env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    return out


@pytest.mark.parametrize("kind", ["pluggy-nats", "nats-server"])
def test_jetstream_natsgo_client(natsgo_js_client, js_server, go_nats_server, tmp_path, kind):
    if kind == "pluggy-nats":
        server = js_server()
    else:
        server = go_nats_server("-js", "-sd", str(tmp_path / "go-store"))
    run = subprocess.run([natsgo_js_client, server.url], capture_output=True, text=True,
                         timeout=90)
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout + run.stderr
