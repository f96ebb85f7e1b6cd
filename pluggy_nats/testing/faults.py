"""Fault injection for cluster tests (loopback only): kill -9 and restart a
server on the same ports with the same store, pause it (SIGSTOP/SIGCONT),
and cut, heal or delay the route between two chosen servers.

Every route goes through a :class:`TcpProxy` the test controls. Server ``j``
dials each lower-numbered server ``i`` through the proxy of the pair (i, j);
servers advertise an address nobody listens on, so gossip cannot open a
direct route around a proxy. Pytest fixture: ``make_fault_cluster`` (see
:mod:`pluggy_nats.testing.plugin`)::

    cluster = make_fault_cluster(3)
    cluster.link(0, 1).cut()         # 0 and 1 no longer talk (2 still relays nothing)
    cluster.link(0, 1).heal()
    cluster.link(1, 2).delay(200)    # 200 ms each way
    cluster.link(0, 2).blackhole()   # open but silent
    cluster.link(0, 2).stall()       # open, reads nothing (writers block)
    cluster.kill(0); cluster.restart(0)
    cluster.pause(2); cluster.resume(2)

``make_fault_cluster(3, jetstream=True)`` runs clustered JetStream (a string
instead of True adds its lines to the ``jetstream`` block, e.g.
``"sync_interval: always"``): each
server gets ``jetstream { store_dir }`` (``store_dir(i)``), a monitor port
(``http_ports[i]``) and every other server in its ``routes`` (Go refuses
clustered JetStream without configured routes). ``conf(i)`` (a function of
the server index) adds top-level configuration and ``js_conf(i)`` lines inside
the ``jetstream`` block, e.g. ``server_tags``, ``accounts`` or ``unique_tag``.
"""

import collections
import itertools
import os
import queue
import signal
import socket
import threading
import time

from .launch import HOST, ServerProcess, free_port, pluggy_nats_command

# Advertised to peers instead of the real route port: gossip-learnt routes
# dial here and fail, so every route stays on its proxy.
UNREACHABLE = "127.0.0.1:1"


class _Pipe:
    """One direction of a proxied connection: a reader thread and a writer
    thread, with a queue between them that holds chunks for the delay."""

    def __init__(self, proxy, src, dst):
        self.proxy, self.src, self.dst = proxy, src, dst
        self.chunks = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self):
        try:
            while True:
                while self.proxy.is_stalled:  # read nothing: the sender's socket fills up
                    time.sleep(0.02)
                data = self.src.recv(65536)
                if not data:
                    break
                if self.proxy._swallowed(self.src):
                    continue  # the connection stays up, silent
                self.chunks.put((time.monotonic() + self.proxy.delay_s, data))
        except OSError:
            pass
        self.chunks.put((0.0, None))

    def _write(self):
        try:
            while True:
                due, data = self.chunks.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
        except OSError:
            pass
        self.proxy._drop((self.src, self.dst))


class TcpProxy:
    """A loopback TCP proxy to ``target_port``: ``cut()`` closes every
    connection through it and refuses new ones until ``heal()``;
    ``blackhole()`` keeps them open but drops every byte; ``stall()`` stops
    reading (a peer that takes nothing: the sender's writes block);
    ``delay(ms)`` holds each chunk that long in each direction."""

    def __init__(self, target_port, name="proxy"):
        self.name = name
        self.target_port = target_port
        self.delay_s = 0.0
        self.is_cut = False
        self.is_blackholed = False
        self.is_stalled = False
        self.connections = 0     # accepted and forwarded, ever
        self._lock = threading.Lock()
        self._pairs = set()
        self._lossy = set()      # sockets whose bytes a blackhole swallowed
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "nats-route://%s:%d" % (HOST, self.port)

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.is_cut:
                _close(client)
                continue
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.add((client, upstream))
                self.connections += 1
            _Pipe(self, client, upstream)
            _Pipe(self, upstream, client)

    def _drop(self, pair):
        a, b = pair
        with self._lock:
            self._pairs.discard((a, b))
            self._pairs.discard((b, a))
        _close(a)
        _close(b)

    def cut(self):
        """Partition: close the connections now and refuse new ones."""
        self.is_cut = True
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for a, b in pairs:
            _close(a)
            _close(b)

    def blackhole(self):
        """Partition without closing: connections stay open and every byte
        is dropped (no RST, as with a pulled cable; the ends must notice by
        their own timeouts). ``heal()`` closes the connections that lost
        bytes: TCP never delivers a stream with a hole in it, and a route
        that resumed mid-frame would misread what follows (a payload length
        from a lost control line can swallow its PINGs for minutes)."""
        self.is_blackholed = True

    def stall(self):
        """Stop reading from both ends: connections stay open and nothing is
        lost, but nothing moves either, so a writer's socket buffer fills and
        its writes block (a stalled peer; its write deadline must cut it)."""
        self.is_stalled = True

    def _swallowed(self, src):
        """Whether a blackhole drops what was just read from ``src``."""
        with self._lock:
            if self.is_blackholed:
                self._lossy.add(src)
            return self.is_blackholed

    def heal(self):
        self.is_cut = False
        self.is_stalled = False
        self.delay_s = 0.0
        with self._lock:
            self.is_blackholed = False
            lossy = [pair for pair in self._pairs
                     if pair[0] in self._lossy or pair[1] in self._lossy]
            self._lossy.clear()
        for pair in lossy:
            self._drop(pair)

    def delay(self, ms):
        self.delay_s = ms / 1000.0

    def close(self):
        self._closed = True
        _close(self._listener)
        self.cut()


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class FaultCluster:
    """``n`` servers of one cluster with proxied routes. ``command`` starts a
    server (ours by default); the indices in ``go`` run ``go_command`` (the Go
    nats-server) instead. ``args`` are extra flags for our servers and ``env``
    extra environment. Each server gets its own store directory
    ``<workdir>/<name>/store`` (``store_dir(i)``), kept across restarts."""

    def __init__(self, workdir, n=3, name="fc", args=(), command=None, env=None, go=(),
                 go_command=None, jetstream=False, conf=None, js_conf=None):
        self.workdir = workdir
        self.n = n
        self.name = name
        self.args = list(args)
        self.command = list(command or pluggy_nats_command())
        self.go = set(go)  # indices that run the Go nats-server (``go_command``)
        self.go_command = list(go_command or ())
        self.env = env
        self.jetstream = jetstream
        self.conf = conf or (lambda i: "")
        self.js_conf = js_conf or (lambda i: "")
        self.names = ["%s-%d" % (name, i) for i in range(n)]
        self.ports = [free_port() for _ in range(n)]
        self.route_ports = [free_port() for _ in range(n)]
        self.http_ports = [free_port() for _ in range(n)] if jetstream else []
        self.links = {pair: TcpProxy(self.route_ports[pair[0]], "%d-%d" % pair)
                      for pair in itertools.combinations(range(n), 2)}
        self.servers = [None] * n
        self._starts = collections.Counter()

    # -- topology ---------------------------------------------------------------------

    def link(self, i, j):
        """The proxy carrying the route between servers ``i`` and ``j``."""
        return self.links[(min(i, j), max(i, j))]

    def partition(self, group_a, group_b, blackhole=False):
        """Cut (or blackhole) every route between two groups of server indices."""
        for i in group_a:
            for j in group_b:
                link = self.link(i, j)
                link.blackhole() if blackhole else link.cut()

    def heal_all(self):
        for proxy in self.links.values():
            proxy.heal()

    def store_dir(self, i):
        return os.path.join(self.workdir, self.names[i], "store")

    def _config(self, i):
        # clustered JetStream needs every server to name the whole cluster (Go
        # refuses it without configured routes): k > i are proxies back to i,
        # a self-route each server ignores
        others = range(self.n) if self.jetstream else range(i)
        routes = ", ".join('"%s"' % self.link(k, i).url for k in others if k != i)
        conf = ("server_name: %s\ncluster {\n  name: %s\n  listen: \"%s:%d\"\n"
                "  advertise: \"%s\"\n  routes: [%s]\n}\n"
                % (self.names[i], self.name, HOST, self.route_ports[i], UNREACHABLE, routes))
        if self.jetstream:
            extra = self.jetstream if isinstance(self.jetstream, str) else ""
            conf += "jetstream {\n  store_dir: \"%s\"\n  %s\n%s\n}\nhttp: \"%s:%d\"\n" % (
                self.store_dir(i), extra, self.js_conf(i), HOST, self.http_ports[i])
        return conf + self.conf(i) + "\n"

    # -- servers ------------------------------------------------------------------------

    def start(self, timeout=20.0):
        for i in range(self.n):
            self._launch(i, timeout)
        return self

    def _launch(self, i, timeout=20.0):
        os.makedirs(self.store_dir(i), exist_ok=True)
        conf = os.path.join(self.workdir, "%s.conf" % self.names[i])
        with open(conf, "w") as f:
            f.write(self._config(i))
        self._starts[i] += 1
        log = os.path.join(self.workdir, "%s.%d.log" % (self.names[i], self._starts[i]))
        go = i in self.go
        args = ["-a", HOST, "-p", str(self.ports[i]), "-c", conf] + ([] if go else self.args)
        command = self.go_command if go else self.command
        self.servers[i] = ServerProcess(command, args, log, self.names[i], self.env)
        return self.servers[i].start(timeout)

    def kill(self, i):
        """kill -9: no shutdown path runs."""
        self.servers[i].kill()

    def restart(self, i, timeout=20.0):
        """Start server ``i`` again: same name, ports and store directory."""
        self.servers[i].kill()
        return self._launch(i, timeout)

    def pause(self, i):
        self.servers[i].signal(signal.SIGSTOP)

    def resume(self, i):
        self.servers[i].signal(signal.SIGCONT)

    def close(self):
        for proc in self.servers:
            if proc is not None:
                proc.signal(signal.SIGCONT)
                proc.stop()
        for proxy in self.links.values():
            proxy.close()

