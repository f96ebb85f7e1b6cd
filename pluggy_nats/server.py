"""The Server: listeners, greenlet bookkeeping, start/shutdown, and the embedding API.

Embedding in a gevent program::

    from pluggy_nats import Server
    server = Server(host="127.0.0.1", port=4222)
    server.start()          # returns once clients can connect
    ...
    server.shutdown()
"""

import collections
import ctypes
import ctypes.util
import gc
import os
import platform
import secrets
import signal
import socket
import time

import gevent
import gevent.event
import gevent.pool
import gevent.server
import nkeys
import structlog

from . import __version__
from .accounts import SYSTEM_ACCOUNT, Accounts
from .client import ClientConnection
from .closed import ClosedConn
from .connection import CLIENT, GATEWAY, LEAF, ROUTE, ClosedReason
from .links.layer import LinkLayer
from .mappings import AccountMappings
from .options import ConfigError, Options
from .plugins import make_plugin_manager

# The nats-server release whose behaviour (and -ERR texts) we follow. Clients
# read INFO "version" to gate features, so we advertise it; our own version is
# sent as INFO "pluggy_nats" and shown in /varz.
NATS_COMPAT_VERSION = "2.15.1"


# The youngest generation's collection threshold for a served process (700 by
# default). The data path makes a few short-lived containers per message (a
# read's items, payload lists) that are alive together while a read is
# handled; with the default every read paid several collections that walked
# them (~7% of a real-traffic message's instructions in the hotpath workload).
GC_GEN0_THRESHOLD = 50000


def tune_gc():
    """For a process that is a server (``pluggy-nats serve``, the hotpath
    workload), not for a program embedding one: move what start-up made
    (modules, plugins, configuration) out of the collector's sight and
    collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, second, third)


# glibc's malloc gives freed memory at the top of its heap back to the kernel
# once more than 128 KiB is free there, and takes it back on the next
# allocation, each page a fresh page fault. A read is handled with buffers of
# that size that live only until the flush (the read, every subscriber's
# framed share), so whether a run paid a brk() pair and ~60 page faults per
# read depended on where a long-lived object happened to sit in the heap:
# fanout8 16 B ran at 12M or 17M msgs/s from one start to the next. Freed
# memory up to MALLOC_TRIM_THRESHOLD stays with the process (Go's runtime keeps
# its heap too), and buffers up to MALLOC_MMAP_THRESHOLD come from the heap,
# not a fresh mapping each (setting one turns off glibc's moving thresholds).
MALLOC_TRIM_THRESHOLD = 64 << 20
MALLOC_MMAP_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc():
    """For a server process, as :func:`tune_gc`: keep freed heap memory up to
    ``MALLOC_TRIM_THRESHOLD`` instead of returning it at every flush. Returns
    whether the C library took the settings (glibc only; others keep theirs)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators differ
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)) \
        and bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD))


def new_server_keypair():
    """A fresh server nkey, as nats-server makes at start: its public key
    (56 characters starting with N) is the server id, and its seed signs what
    the server must vouch for (auth callout requests)."""
    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_SERVER)
    return nkeys.from_seed(bytearray(seed))


def parse_advertise(advertise, default_port):
    """``host``, ``host:port`` or ``[v6]:port`` -> ``(host, port)``
    (nats-server ``parseHostPort``); ValueError for a bad port."""
    text = advertise.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not port:
        return host, default_port
    value = int(port)
    return host, value if value > 0 else default_port


class StartError(OSError):
    """The server cannot start (a port in use, ...): nats-server logs the
    message at fatal level and exits with status 1; so does the CLI."""


def go_listen_error(host, port, exc):
    """An OSError from bind/listen as Go's net package words it:
    ``listen tcp HOST:PORT: bind: address already in use``."""
    code = getattr(exc, "errno", None)
    reason = os.strerror(code).lower() if code else str(exc)
    return "listen tcp %s: bind: %s" % (join_host_port(host, port), reason)


def join_host_port(host, port):
    """``host:port``, IPv6 hosts in brackets (Go ``net.JoinHostPort``)."""
    return "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)


def new_server_id():
    """A server id alone (no key kept)."""
    return new_server_keypair().public_key.decode()


class Stats:
    __slots__ = ("total_connections", "slow_consumers", "slow_by_kind", "auth_failures")

    # /varz slow_consumer_stats keys by connection kind (others count as clients)
    SLOW_KINDS = {ROUTE: "routes", GATEWAY: "gateways", LEAF: "leafs"}

    def __init__(self):
        self.total_connections = 0
        self.slow_consumers = 0
        self.slow_by_kind = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
        self.auth_failures = 0

    def slow_consumer(self, conn, again=False):
        """Count a slow consumer event of ``conn`` (nats-server
        handleWriteTimeout): the total always, a route's kind only for its
        first event in a row (``again``: it was already slow)."""
        self.slow_consumers += 1
        kind = self.SLOW_KINDS.get(conn.kind, "clients")
        if not (again and kind == "routes"):
            self.slow_by_kind[kind] += 1


class Server:
    """One NATS server. Create it, ``start()`` it, ``shutdown()`` it.

    ``options`` is an :class:`Options`; keyword ``overrides`` set core options
    directly (``Server(port=0, max_payload=1024)``). ``plugins`` are registered
    explicitly; ``autoload`` loads the ``pluggy_nats`` entry points.
    """

    def __init__(self, options=None, *, plugins=(), autoload=None, disable_plugins=(),
                 pluginmanager=None, **overrides):
        self.options = options if options is not None else Options(**overrides)
        if options is not None:
            for name, value in overrides.items():
                setattr(self.options, name, value)
        self.pluginmanager = pluginmanager or make_plugin_manager(
            plugins, autoload=autoload, disable=disable_plugins)
        self.hook = self.pluginmanager.hook
        self.log = structlog.get_logger("pluggy_nats.server")
        self.keypair = new_server_keypair()
        self.server_id = self.keypair.public_key.decode()
        self.server_name = self.options.server_name or self.server_id
        # no_system_account: no $SYS unless system_account names one (the auth plugin).
        opts = self.options
        self.accounts = Accounts(
            system_account=None if opts.no_system_account else SYSTEM_ACCOUNT,
            sublist_cache=not opts.no_sublist_cache, hook=self.hook)
        self.auth_required = False  # the auth plugin sets this in nats_configure
        self.conns = {}  # cid -> open connection of any kind
        self._num_clients = 0
        # /connz?state=closed keeps the last max_closed_clients (0: none, as Go).
        self.closed_conns = collections.deque(maxlen=max(self.options.max_closed_clients, 0))
        self.touched = []  # connections with output queued in the current batch
        self.stats = Stats()
        self.start_time = None
        self.host = self.options.host
        self.port = None
        self.listeners = []
        self.extra_info = {}  # INFO keys every client gets (plugins add here)
        self.connect_urls = []
        self._greenlets = gevent.pool.Group()
        self._client_pool = gevent.pool.Pool()
        self._shutting_down = False
        self.lame_duck = False
        self._stopped = gevent.event.Event()
        self.ready = gevent.event.Event()
        self._interest_links = False  # set once a link kind registers (links.register_kind)
        self.links = LinkLayer(self)
        self._configure_plugins()
        self.options.check()
        if self.options.mappings:
            self.set_global_mappings(self.options.mappings)
        # Data-plane hooks are wired in only when some plugin implements them.
        self.observe_publish = bool(self.hook.nats_message_published.get_hookimpls())
        self._interest_hook = bool(self.hook.nats_interest_changed.get_hookimpls())

    def set_global_mappings(self, mappings):
        """Install the subject mappings of the global account (start, reload);
        its clients re-decide whether they may take the publish fast path."""
        account = self.accounts.global_account
        account.mappings = AccountMappings(mappings) if mappings else None
        for conn in list(account.clients):
            if conn.connect_received:
                conn._update_fast_pub()

    def _configure_plugins(self):
        """Call every plugin's ``nats_configure`` in pluggy's order. A plugin
        that rejects the configuration (ConfigError) does not stop the others:
        its errors are collected, and ``Options.check`` reports them all with the
        core's, so a half-configured server never starts and the operator sees
        every problem at once."""
        pm = self.pluginmanager
        impls = self.hook.nats_configure.get_hookimpls()
        plain = [i.plugin for i in reversed(impls) if not (i.wrapper or i.hookwrapper)]
        for plugin in plain:
            # Through pluggy (tracing, wrappers), one plugin per call: a
            # subset caller that leaves out every other plain implementation
            # (wrappers stay in, so they wrap each plugin's call).
            call = pm.subset_hook_caller(
                "nats_configure", remove_plugins=[p for p in plain if p is not plugin])
            try:
                call(config=self.options, server=self)
            except ConfigError as exc:
                self.options.errors.extend(exc.errors)

    # -- greenlets ------------------------------------------------------------

    def spawn(self, fn, *args, **kwargs):
        """Start a greenlet the server tracks (and kills at shutdown)."""
        if self._shutting_down:
            raise RuntimeError("server is shutting down")
        return self._greenlets.spawn(fn, *args, **kwargs)

    def listen(self, host, port, handle, name="listener", factory=None):
        """Accept connections on (host, port) (port 0 or -1: a free one) and
        run ``handle(sock, addr)`` for each in the server's connection pool.
        For plugins (links, monitoring): the listener is bound and accepting
        when this returns (``.address[1]`` is its port), refuses connections
        once the server stops, and is closed at shutdown (lame duck keeps it).
        ``factory(address, handle, spawn=pool)`` makes another gevent server
        class instead of a StreamServer (the monitor's WSGIServer, ``handle``
        its WSGI application)."""
        return self.links.listen(host, port, handle, name, factory)

    # -- start ------------------------------------------------------------------

    def start(self):
        """Bind, run the start hooks, accept clients; returns when ready."""
        opts = self.options
        self.start_time = time.time()
        self.log.info("Starting pluggy-nats", version=__version__,
                      nats_compat=NATS_COMPAT_VERSION, name=self.server_name, id=self.server_id)
        port = opts.port if opts.port and opts.port > 0 else 0
        listener = gevent.server.StreamServer((opts.host, port), self._handle_client,
                                              spawn=self._client_pool, backlog=1024)
        try:
            listener.init_socket()
        except OSError as exc:  # nats-server's words, which launchers look for
            where = join_host_port(opts.host, port)
            raise StartError('Error listening on port: %s, "%s"'
                             % (where, go_listen_error(opts.host, port, exc))) from exc
        self.port = listener.address[1]
        self.listeners.append(listener)
        self.hook.nats_server_start(server=self)
        listener.start()
        self.log.info("Listening for client connections on %s:%d" % (opts.host, self.port))
        if opts.tls is not None:
            self.log.info("TLS required for client connections")
        if opts.pidfile:
            with open(opts.pidfile, "w") as f:
                f.write(str(os.getpid()))
        self.spawn(self._sweep)
        self.ready.set()
        self.log.info("Server is ready")
        self.hook.nats_server_ready(server=self)
        return self

    def serve_forever(self):
        """Start, stop on SIGINT/SIGTERM, return after shutdown (the CLI's loop)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(signum, self._on_stop_signal, signum)
        for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            gevent.signal_handler(signum, self._on_signal, signum)
        if not self.ready.is_set():
            self.start()
        self._stopped.wait()

    def _on_stop_signal(self, signum):
        self.log.info("Trapped signal, shutting down", signal=signal.Signals(signum).name)
        gevent.spawn(self.shutdown)

    def _on_signal(self, signum):
        if signum == signal.SIGUSR2:
            gevent.spawn(self.enter_lame_duck)
        elif signum == signal.SIGUSR1:
            from .log import reopen_logfile

            reopen_logfile()
            self.log.info("Reopened log file")
        elif signum == signal.SIGHUP:
            self.reload()

    def reload(self):
        """Re-read the config file and apply what may change while running
        (all or nothing; see :mod:`pluggy_nats.reload`). Returns the changes."""
        from .reload import ReloadRefused, reload_config

        try:
            changes = reload_config(self)
        except (ConfigError, ReloadRefused, OSError) as exc:
            self.log.error("config_reload_failed", error=str(exc))
            return None
        self.log.info("config_reloaded", changed={k: list(v) for k, v in changes.items()})
        return changes

    # -- clients ----------------------------------------------------------------

    def _handle_client(self, sock, addr):
        if self._shutting_down:
            sock.close()
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = ClientConnection(self, sock, addr)
        tls = self.options.tls
        if tls is not None:
            # INFO goes out in plaintext, then the client starts TLS (unless
            # handshake_first): nats-server 2.15.1 on the wire.
            conn.tls_config = tls
            conn.tls_first = tls.handshake_first
            conn.tls_optional = self.options.allow_non_tls
        self.register(conn)
        conn.run()

    def register(self, conn):
        self.conns[conn.cid] = conn
        if conn.kind == CLIENT:
            self._num_clients += 1
            self.stats.total_connections += 1

    def connection_limit_reached(self, conn):
        limit = self.options.max_connections
        return limit > 0 and self.num_clients() > limit

    def num_clients(self):
        return self._num_clients

    def client_info(self, conn):
        """The INFO dict for a client connection."""
        opts = self.options
        host, port = self.advertised_client_address()
        info = {
            "server_id": self.server_id,
            "server_name": self.server_name,
            "version": NATS_COMPAT_VERSION,
            "proto": 1,
            "go": "python" + platform.python_version(),
            "host": host,
            "port": port,
            "headers": not opts.no_header_support,
            "max_payload": opts.max_payload,
            "client_id": conn.cid,
            "client_ip": conn.host,
            "pluggy_nats": __version__,
        }
        if self.auth_required:
            info["auth_required"] = True
        tls = opts.tls
        if tls is not None:
            # allow_non_tls: TLS offered (tls_available), plaintext accepted
            info["tls_available" if opts.allow_non_tls else "tls_required"] = True
            if tls.verify:
                info["tls_verify"] = True
        if self.connect_urls:
            info["connect_urls"] = list(self.connect_urls)
        info.update(self.extra_info)
        self.hook.nats_info(conn=conn, info=info)
        return info

    def advertised_client_address(self):
        """``(host, port)`` clients are told to use: ``client_advertise``
        (``host`` or ``host:port``, the port defaulting to the listen port) or
        the listen address (nats-server ``setInfoHostPort``)."""
        advertise = self.options.client_advertise
        if not advertise:
            return self.options.host, self.port
        host, port = parse_advertise(advertise, self.port)
        return host, port

    def should_report_connect_error(self, first_connect, attempts):
        """Whether a failed dial (route, gateway, leaf) is logged at error level
        rather than debug: the first attempt, then every ``connect_error_reports``
        attempts before a first connection and every ``reconnect_error_reports``
        after one (nats-server ``shouldReportConnectErr``)."""
        every = (self.options.connect_error_reports if first_connect
                 else self.options.reconnect_error_reports)
        return attempts == 1 or (every > 0 and attempts % every == 0)

    def refresh_publish_observers(self):
        """Re-read whether a plugin observes publishes (one may register a
        ``nats_message_published`` implementation while running, as the auth
        callout does on its first user with ``allow_responses``) and move every
        client off or back onto the fast path accordingly."""
        self.observe_publish = bool(self.hook.nats_message_published.get_hookimpls())
        for conn in list(self.conns.values()):
            update = getattr(conn, "_update_fast_pub", None)
            if update is not None and getattr(conn, "connect_received", False):
                update()

    def auth_failed(self, conn, reason):
        self.stats.auth_failures += 1

    def connection_closed(self, conn, reason):
        if self.conns.pop(conn.cid, None) is not None:
            if conn.kind == CLIENT:
                self._num_clients -= 1
            self.closed_conns.append(ClosedConn(conn))
        kind = conn.link_kind.name if conn.is_link else "client"
        self.hook.nats_client_closed(conn=conn, reason=reason, kind=kind)

    # -- interest ---------------------------------------------------------------

    def add_subscription(self, account, sub):
        account.sublist.insert(sub)
        if self._interest_links:
            self.links.interest_changed(account, sub, 1)
        if self._interest_hook:
            self.hook.nats_interest_changed(account=account, sub=sub, delta=1, origin=sub.conn)

    def remove_subscription(self, account, sub):
        if account.sublist.remove(sub):
            sub.closed = True
            if self._interest_links:
                self.links.interest_changed(account, sub, -1)
            if self._interest_hook:
                self.hook.nats_interest_changed(account=account, sub=sub, delta=-1,
                                                origin=sub.conn)

    # -- the write path ---------------------------------------------------------

    def flush_touched(self):
        """Flush every connection that got output in this batch (once each).

        Re-entrant: a flush may close a connection whose close hooks publish
        (an internal client flushes too), so each connection is popped before
        it is flushed, and a nested call simply takes over the rest. No
        connection can be left queued with nobody to flush it.
        """
        touched = self.touched
        while touched:
            conn = touched.pop()
            conn.flush_queued = False
            conn.flush()

    # -- housekeeping -----------------------------------------------------------

    def _sweep(self):
        """One greenlet for every connection's timers: PINGs, stale peers, auth
        timeouts. A per-connection timer would cost memory on idle connections."""
        opts = self.options
        interval = max(0.02, min(1.0, opts.ping_interval / 4, opts.auth_timeout / 4))
        while not self._shutting_down:
            gevent.sleep(interval)
            now = time.monotonic()
            for conn in list(self.conns.values()):
                if conn.closed:
                    continue
                if conn.kind == CLIENT and not conn.authenticated:
                    if self.auth_required and not conn.authenticating \
                            and now - conn.start_mono >= opts.auth_timeout:
                        conn.close(ClosedReason.AUTHENTICATION_TIMEOUT, "Authentication Timeout")
                    continue
                conn.ping_check(now, opts.ping_interval, opts.ping_max)
            self.flush_touched()

    # -- stop -------------------------------------------------------------------

    def enter_lame_duck(self):
        """Lame duck mode (PROTOCOL.md 5.3): stop accepting clients, tell
        clients and peers (INFO ``ldm``), wait the grace period, then close the
        clients spread over ``lame_duck_duration`` and shut down, so clients
        reconnect elsewhere a few at a time."""
        if self.lame_duck or self._shutting_down:
            return
        self.lame_duck = True
        opts = self.options
        self.log.info("Entering lame duck mode, stop accepting new clients")
        for listener in self.listeners:
            listener.close()
        try:
            self.hook.nats_server_stop(server=self, lame_duck=True)
            self.links.stop(lame_duck=True)
        except Exception:
            self.log.exception("plugin_stop_failed")
        from .protocol import encode

        clients = [c for c in self.conns.values() if c.kind == CLIENT]
        for conn in clients:
            if getattr(conn, "protocol", 0) >= 1 and conn.authenticated:
                info = self.client_info(conn)
                info["ldm"] = True
                conn.send(encode.info(info))
        self.flush_touched()
        gevent.sleep(opts.lame_duck_grace_period)
        clients = [c for c in self.conns.values() if c.kind == CLIENT and not c.closed]
        if clients:
            self.log.info("Closing existing clients", count=len(clients))
            pause = max(opts.lame_duck_duration - opts.lame_duck_grace_period, 0) / len(clients)
            for conn in clients:
                conn.close(ClosedReason.SERVER_SHUTDOWN)
                self.flush_touched()
                if pause:
                    gevent.sleep(min(pause, 1.0))
        self.shutdown()

    def shutdown(self, timeout=5.0):
        """Stop accepting, tell plugins, flush and close every connection, stop
        every greenlet. Idempotent; returns when done."""
        if self._shutting_down:
            self._stopped.wait(timeout)
            return
        self._shutting_down = True
        self.log.info("Initiating Shutdown...")
        try:
            self.hook.nats_server_stop(server=self, lame_duck=False)
            self.links.stop(lame_duck=False)
        except Exception:
            self.log.exception("plugin_stop_failed")
        for listener in self.listeners:
            listener.close()
        conns = list(self.conns.values())
        for conn in conns:
            if conn.out and conn.writer is None:
                try:
                    with gevent.Timeout(min(1.0, timeout)):
                        conn.sock.sendall(bytes(conn.out))
                    conn.out.clear()
                except (gevent.Timeout, OSError):
                    pass
        for conn in conns:
            conn.close(ClosedReason.SERVER_SHUTDOWN)
        self._client_pool.join(timeout=timeout)
        self._client_pool.kill(timeout=1)
        self._greenlets.kill(timeout=1)
        if self.options.pidfile:
            try:
                os.unlink(self.options.pidfile)
            except OSError:
                pass
        self.log.info("Server Exiting..")
        self._stopped.set()
