"""Build a nats.go test client offline: Debian's golang-github-nats-io-go-nats-dev
in GOPATH mode, no network. Skips (saying why) without Go or the library; in CI
that is a failure, since the interop tests are the point there."""

import os
import shutil
import subprocess

import pytest

GOPATH = "/usr/share/gocode"


def build_natsgo_client(src_dir, tmp_path_factory, name="natsgo-client", timeout=600):
    """``go build`` the ``main`` package in ``src_dir``; returns the binary's path."""
    go = shutil.which("go")
    have_lib = os.path.isdir(os.path.join(GOPATH, "src/github.com/nats-io/nats.go"))
    if not (go and have_lib):
        reason = "needs Go and nats.go: apt-get install golang-go golang-github-nats-io-go-nats-dev"
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs them)")
        pytest.skip(reason)
    out = str(tmp_path_factory.mktemp(name) / name)
    # one build cache per test session: the second client reuses compiled nats.go
    cache = tmp_path_factory.getbasetemp() / "gocache"
    cache.mkdir(exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="", GOPROXY="off",
               CGO_ENABLED="0", GOCACHE=str(cache))
    build = subprocess.run([go, "build", "-o", out, "."], cwd=src_dir, env=env,
                           capture_output=True, text=True, timeout=timeout)
    assert build.returncode == 0, build.stderr
    return out
