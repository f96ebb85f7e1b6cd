"""Super-clusters for tests: clusters joined by gateways, each server ours or
the Go nats-server (GATEWAY.md).

``build_supercluster(launcher, {"A": 2, "B": 1}, go={"B": "all"})`` starts
cluster A (two of our servers) and cluster B (one Go server), every server
with a ``gateway {}`` block, and returns once a message published on any
server reaches a subscriber on every other one. Gateway ports are picked
before the servers start, since every server's ``gateways`` list names them.
"""

import json
import urllib.request

from .launch import free_port
from .raw import wait_for_mesh


class SuperCluster:
    """``clusters``: name -> list of ServerProcess, in start order."""

    def __init__(self, clusters):
        self.clusters = clusters

    def __getitem__(self, name):
        return self.clusters[name]

    @property
    def servers(self):
        return [s for servers in self.clusters.values() for s in servers]

    def names(self):
        return list(self.clusters)


def _is_go(go, cluster, index):
    chosen = go.get(cluster, ()) if isinstance(go, dict) else ()
    return chosen == "all" or index in chosen


def gateway_block(name, port, remotes, extra=""):
    """The ``gateway {}`` text: ``remotes`` maps cluster name -> URL list."""
    entries = "\n".join('    {name: "%s", urls: [%s]}' % (
        remote, ", ".join('"%s"' % u for u in urls)) for remote, urls in remotes.items())
    return ('gateway {\n  name: "%s"\n  listen: "127.0.0.1:%d"\n  gateways: [\n%s\n  ]\n%s\n}\n'
            % (name, port, entries, extra))


def build_supercluster(launcher, spec, go=None, seed_only=False, config="", gateway_extra="",
                       args=(), go_command=None, our_command=None, timeout=30.0,
                       jetstream=False, env=None):
    """Start the clusters of ``spec`` (name -> number of servers, in order).

    ``go`` maps a cluster name to ``"all"`` or the indices of its servers that
    run the Go nats-server. ``seed_only``: every cluster but the first names
    only the first cluster's first server (implicit discovery does the rest),
    and the first names nobody. ``config`` is added to every server's file
    (a function ``config(cluster, index)`` gives each server its own text),
    ``gateway_extra`` inside every ``gateway {}`` block, ``args`` to every
    command line (``("-m", "-1")`` for monitoring). ``jetstream``: clustered
    JetStream, one meta group over the super-cluster: each server gets a
    store directory and names its whole cluster in ``routes`` (itself
    included, as Go needs configured routes); ``env`` is extra environment
    (``PLUGGY_NATS_RAFT_SCALE``).
    """
    for attempt in range(3):
        started = len(launcher.processes)
        try:
            clusters = _start_clusters(launcher, spec, go or {}, seed_only, config,
                                       gateway_extra, args, go_command, our_command,
                                       jetstream, env)
            break
        except RuntimeError as exc:
            # A gateway port picked free was taken before the server bound it
            # (other tests run beside us): stop what started, pick again.
            for proc in launcher.processes[started:]:
                proc.stop()
            del launcher.processes[started:]
            if attempt == 2 or "gateway" not in str(exc).lower():
                raise
    supercluster = SuperCluster(clusters)
    wait_for_mesh(supercluster.servers, timeout=timeout)
    return supercluster


def _start_clusters(launcher, spec, go, seed_only, config, gateway_extra, args, go_command,
                    our_command, jetstream=False, env=None):
    ports = {name: [free_port() for _ in range(n)] for name, n in spec.items()}
    route_ports = {name: [free_port() for _ in range(n)] for name, n in spec.items()}
    urls = {name: ["nats://127.0.0.1:%d" % p for p in plist] for name, plist in ports.items()}
    first = next(iter(spec))
    clusters = {}
    for name, n in spec.items():
        if seed_only:
            remotes = {} if name == first else {first: urls[first][:1]}
        else:
            remotes = {other: urls[other] for other in spec if other != name}
        servers = []
        for i in range(n):
            is_go = _is_go(go, name, i)
            command = go_command if is_go else our_command
            server_name = "%s-%s-%d" % ("go" if is_go else "py", name, i)
            own = config(name, i) if callable(config) else config
            text = own + "\n" + gateway_block(name, ports[name][i], remotes, gateway_extra)
            if jetstream:
                flags = ["-n", server_name]
                text += _jetstream_block(launcher, name, server_name, route_ports[name], i)
            else:
                flags = ["--cluster", "nats://127.0.0.1:-1", "--cluster_name", name,
                         "-n", server_name]
                if i:
                    flags += ["--routes", servers[0].route_url]
            flags += list(args)
            servers.append(launcher.start(command, flags, config=text,
                                          name="%s-node%d" % (name, i), env=env))
        clusters[name] = servers
    return clusters


def _jetstream_block(launcher, cluster, server_name, route_ports, i):
    """``cluster {}`` naming every server of the cluster (itself too) and
    ``jetstream { store_dir }`` under the launcher's directory."""
    import os

    store = os.path.join(launcher.workdir, server_name, "store")
    os.makedirs(store, exist_ok=True)
    routes = ", ".join('"nats://127.0.0.1:%d"' % p for p in route_ports)
    return ('cluster {\n  name: "%s"\n  listen: "127.0.0.1:%d"\n  routes: [%s]\n}\n'
            'jetstream {\n  store_dir: "%s"\n}\n' % (cluster, route_ports[i], routes, store))


def gatewayz(server, query=""):
    """A server's ``/gatewayz`` (started with ``-m -1``), e.g. ``"?accs=1"``."""
    url = "http://127.0.0.1:%d/gatewayz%s" % (server.http_port, query)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())
