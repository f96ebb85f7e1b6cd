"""RouteManager: the cluster listener, solicitors, the peer registry (with route
pooling and pinned accounts), interest propagation and gossip."""

import random
import socket
import time
from urllib.parse import urlsplit

import gevent
import gevent.server
import gevent.socket
import structlog

from pluggy_nats import __version__, hookimpl
from pluggy_nats.connection import CLIENT, ROUTE, ClosedReason
from pluggy_nats.links import InterestTable
from pluggy_nats.server import NATS_COMPAT_VERSION

from .connection import RouteConnection

RECONNECT_MIN = 0.05
RECONNECT_MAX = 2.0


def fnv32a(data):
    """FNV-1a, 32 bit: nats-server's account -> pool index hash."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


class Peer:
    """Another server of the cluster and our connections to it."""

    def __init__(self, server_id, info):
        self.server_id = server_id
        self.info = info
        self.pooled = {}  # pool index -> RouteConnection
        self.pinned = {}  # account name -> RouteConnection

    def connections(self):
        return list(self.pooled.values()) + list(self.pinned.values())


class RouteManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.name = config.name  # None until learned when dynamic
        self.log = structlog.get_logger("pluggy_nats.route")
        self.table = InterestTable()  # local interest every route is offered
        self.peers = {}  # server_id -> Peer
        self.listener = None
        self.port = None
        self.url_peers = {}  # solicited URL -> server_id connected through it
        self.self_urls = set()
        self._implicit_pending = set()  # gossiped URLs being dialled
        self._stopping = False
        perms = config.permissions.compile() if config.permissions is not None else None
        # import -> which of our interest peers hear; export -> which of theirs we take
        self.advertise_filter = perms.publish_allowed if perms and perms.restricts_publish \
            else None
        self.accept_filter = (lambda subject: perms.subscribe_allowed(subject)) \
            if perms and (perms.sub_allow is not None or perms.sub_deny is not None) else None

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        self.listener = gevent.server.StreamServer((cfg.host, max(cfg.port, 0)), self._accept,
                                                   spawn=server._client_pool)
        self.listener.init_socket()
        self.port = self.listener.address[1]
        self.listener.start()
        self.log.info("Listening for route connections on %s:%d" % (cfg.host, self.port))
        if cfg.tls is not None:
            self.log.info("TLS required for route connections")
        if cfg.compression not in ("off", "accept"):
            self.log.warning("route_compression_unsupported", requested=cfg.compression,
                             note="routes stay uncompressed; peers fall back to off")
        server.connect_urls = [self._client_url()]
        for url in cfg.routes:
            server.spawn(self._solicit, url, True)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if lame_duck:
            # Peers drop our client URLs; the routes stay up until shutdown.
            from pluggy_nats.protocol import encode

            info = self.route_info()
            info["ldm"] = True
            for peer in self.peers.values():
                conn = self.conn_for(peer, "$G")
                if conn is not None:
                    conn.send(encode.info(info))
            server.flush_touched()
            return
        self._stopping = True
        if self.listener is not None:
            self.listener.close()
        for peer in list(self.peers.values()):
            for conn in peer.connections():
                conn.close(ClosedReason.SERVER_SHUTDOWN)

    @hookimpl
    def nats_interest_changed(self, account, sub, delta, origin):
        if origin.kind == ROUTE:
            return  # split horizon: route-learned interest is never re-advertised to routes
        key = (account.name, sub.subject, sub.queue)
        weight = self.table.change(key, delta)
        if weight is None:
            return
        for peer in self.peers.values():
            conn = self.conn_for(peer, account.name)
            if conn is not None and conn.registered:
                conn.advertise(account.name, sub.subject, sub.queue, weight)

    @hookimpl
    def nats_varz(self, server, varz):
        varz["cluster"] = {"name": self.name or "", "addr": self.config.host,
                           "cluster_port": self.port or 0,
                           "urls": list(self.config.routes),
                           "pool_size": self.config.pool_size}
        if self.config.tls is not None:
            varz["cluster"].update(tls_required=True, tls_verify=True,
                                   tls_timeout=self.config.tls.timeout)
        varz["routes"] = sum(len(p.connections()) for p in self.peers.values())

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/routez", self.routez)

    # -- accounts -> connections -----------------------------------------------

    def conn_for(self, peer, account_name):
        conn = peer.pinned.get(account_name)
        if conn is not None:
            return conn
        size = max(self.config.pool_size, 1)
        return peer.pooled.get(fnv32a(account_name.encode()) % size)

    def _carries(self, conn, peer):
        """Accounts whose traffic to ``peer`` goes over ``conn``."""
        if conn.pinned is not None:
            return {conn.pinned.name}
        names = {acc.name for acc in self.server.accounts}
        names.update(key[0] for key, _ in self.table.items())
        return {n for n in names if n not in peer.pinned and self.conn_for(peer, n) is conn}

    # -- INFO / CONNECT ---------------------------------------------------------

    def _client_url(self):
        host, port = self.server.advertised_client_address()  # client_advertise wins
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return "%s:%d" % (host, port)

    def route_info(self):
        server = self.server
        info = {
            "server_id": server.server_id,
            "server_name": server.server_name,
            "version": NATS_COMPAT_VERSION,
            "proto": 3,
            "go": "pluggy-nats/" + __version__,
            "host": self.config.advertise_host or self.config.host,
            "port": self.config.advertise_port or self.port,
            "headers": True,
            "max_payload": server.options.max_payload,
            "cluster": self.name or "",
            "compression": "off",
            "lnoc": True,
            "lnocu": True,
            "route_pool_size": self.config.pool_size,
        }
        if self.name is None:
            info["cluster_dynamic"] = True
        if self.config.tls is not None:
            info["tls_required"] = True
            info["tls_verify"] = True
        if not self.config.no_advertise:
            info["connect_urls"] = list(self.server.connect_urls)
        spec = self.config.permissions
        if spec is not None:
            for field, perm in (("import", spec.publish), ("export", spec.subscribe)):
                if perm is not None:
                    info[field] = {k: v for k, v in (("allow", perm.allow), ("deny", perm.deny))
                                   if v is not None}
        return info

    def route_connect(self):
        connect = {"echo": True, "verbose": False, "pedantic": False,
                   "tls_required": self.config.tls is not None,
                   "headers": True, "name": self.server.server_id, "cluster": self.name or "",
                   "lnoc": True}
        if self.name is None:
            connect["cluster_dynamic"] = True
        if self.config.user:
            connect["user"] = self.config.user
            connect["pass"] = self.config.password
        return connect

    def accept_connect(self, conn, opts):
        """Check a peer's CONNECT (cluster name, credentials). False = closed."""
        cfg = self.config
        if cfg.tls is not None and cfg.tls.verify_and_map:
            # nats-server isRouterAuthorized: the peer's certificate must name
            # the cluster authorization user; no password is asked then
            from pluggy_nats_plugins.auth.tlsmap import mapped_user

            if not cfg.auth_user or mapped_user(conn, {cfg.auth_user: True}) is None:
                conn.close(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
                return False
        elif cfg.auth_user and not (opts.get("user") == cfg.auth_user
                                    and opts.get("pass") == cfg.auth_password):
            conn.close(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
            return False
        if not self._cluster_name_ok(conn, opts.get("cluster") or "", opts.get("cluster_dynamic")):
            return False
        return True

    def _cluster_name_ok(self, conn, remote, remote_dynamic):
        if not remote or remote == self.name:
            return True
        if self.name is None or (self.config.name is None and remote_dynamic and
                                 remote > self.name):
            self.log.info("cluster_name_adopted", name=remote)
            self.name = remote
            return True
        if remote_dynamic:
            return True  # the peer will adopt ours
        conn.log.info("cluster_name_conflict", local=self.name, remote=remote)
        conn.close(ClosedReason.CLUSTER_NAME_CONFLICT)
        return False

    # -- the registry -------------------------------------------------------------

    def register_route(self, conn, info):
        server_id = info.get("server_id")
        if not server_id:
            conn.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if server_id == self.server.server_id:
            if conn.url:
                self.self_urls.add(conn.url)
            conn.close(ClosedReason.DUPLICATE_ROUTE)
            return
        if not self._cluster_name_ok(conn, info.get("cluster") or "", info.get("cluster_dynamic")):
            return
        conn.remote_id = server_id
        conn.remote_name = info.get("server_name", "")
        conn.remote_info = info
        peer = self.peers.get(server_id)
        if peer is None:
            peer = self.peers[server_id] = Peer(server_id, info)
        slots = peer.pinned if conn.pinned is not None else peer.pooled
        slot = conn.pinned.name if conn.pinned is not None else conn.pool_idx
        existing = slots.get(slot)
        if existing is not None and not existing.closed:
            if existing.solicited == conn.solicited:
                # One side dialled twice (an explicit and a gossiped URL for the
                # same server, say): keep the connection already carrying
                # traffic; closing it would drop the messages written to it.
                keep_new = False
            else:
                # Both sides dialled: keep the connection solicited by the smaller id.
                keep_new = (self.server.server_id < server_id) == conn.solicited
            loser = existing if keep_new else conn
            if loser is conn:
                if conn.url:
                    self.url_peers[conn.url] = server_id
                conn.close(ClosedReason.DUPLICATE_ROUTE)
                return
            slots[slot] = conn
            existing.close(ClosedReason.DUPLICATE_ROUTE)
        slots[slot] = conn
        if conn.url:
            self.url_peers[conn.url] = server_id
        conn.registered = True
        conn.log.info("route_connected", peer=conn.remote_name, peer_id=server_id,
                      pool_idx=conn.pool_idx, account=conn.pinned.name if conn.pinned else None,
                      solicited=conn.solicited)
        carried = self._carries(conn, peer)
        conn.send_initial_interest(self.table, carried)
        self._learn_client_urls(info)
        if conn.solicited and conn.pool_idx == 0 and conn.pinned is None:
            self._open_rest_of_pool(conn)
        if not conn.solicited:
            self._gossip(conn, info)

    def _open_rest_of_pool(self, first):
        """The first solicited connection found the peer: open the other pool
        connections and the pinned ones to the same URL."""
        for idx in range(1, self.config.pool_size):
            self.server.spawn(self._solicit, first.url, False, idx, None, first.remote_id)
        for name in self.config.pinned_accounts(self.server):
            self.server.spawn(self._solicit, first.url, False, 0, name, first.remote_id)

    def link_closed(self, conn, reason):
        peer = self.peers.get(conn.remote_id) if conn.remote_id else None
        if peer is None:
            return
        for slots in (peer.pooled, peer.pinned):
            for key, value in list(slots.items()):
                if value is conn:
                    del slots[key]
        if not peer.connections():
            del self.peers[conn.remote_id]
            for url, sid in list(self.url_peers.items()):
                if sid == conn.remote_id:
                    del self.url_peers[url]
            self._forget_client_urls(peer.info)
            conn.log.info("route_disconnected", peer=conn.remote_name, reason=reason.value)

    # -- client URLs (connect_urls) --------------------------------------------------

    def _learn_client_urls(self, info):
        urls = [u for u in info.get("connect_urls") or [] if u not in self.server.connect_urls]
        if urls:
            self.server.connect_urls.extend(urls)
            self._push_client_info()

    def _forget_client_urls(self, info):
        gone = set(info.get("connect_urls") or [])
        if gone & set(self.server.connect_urls):
            self.server.connect_urls[:] = [u for u in self.server.connect_urls if u not in gone]
            self._push_client_info()

    def route_info_update(self, conn, info):
        """An INFO after the handshake: gossip about another server, or news
        about this peer (new client URLs, lame duck)."""
        server_id = info.get("server_id")
        if server_id and server_id != conn.remote_id:
            self._maybe_implicit_route(info)
            return
        if info.get("ldm"):
            self._forget_client_urls(conn.remote_info)
            return
        old = conn.remote_info
        conn.remote_info = info
        self._forget_client_urls(old)
        self._learn_client_urls(info)

    def _push_client_info(self):
        """Async INFO with the new connect_urls to every protocol-1 client."""
        from pluggy_nats.protocol import encode

        for conn in list(self.server.conns.values()):
            if conn.kind == CLIENT and getattr(conn, "protocol", 0) >= 1 and conn.authenticated:
                conn.send(encode.info(self.server.client_info(conn)))
        self.server.flush_touched()

    # -- gossip ------------------------------------------------------------------------

    def _gossip(self, conn, info):
        """Tell our other peers about a server that just connected to us, so they
        dial it too (implicit routes)."""
        from pluggy_nats.protocol import encode

        gossip = dict(info)
        gossip["ip"] = "nats-route://%s:%d/" % (info.get("host") or conn.host, info.get("port", 0))
        frame = encode.info(gossip)
        for peer in self.peers.values():
            if peer.server_id == conn.remote_id:
                continue
            target = self.conn_for(peer, "$G")
            if target is not None and target.registered:
                target.send(frame)
        self.server.flush_touched()

    def _maybe_implicit_route(self, info):
        server_id = info.get("server_id")
        if server_id in self.peers or server_id == self.server.server_id:
            return
        url = info.get("ip") or "nats-route://%s:%s" % (info.get("host"), info.get("port"))
        if url in self.url_peers or url in self._implicit_pending:
            return
        self._implicit_pending.add(url)
        self.server.spawn(self._solicit, url, False, 0, None, None, self.config.connect_retries)

    # -- accepting and soliciting --------------------------------------------------------

    def _accept(self, sock, addr):
        if self._stopping:
            sock.close()
            return
        conn = RouteConnection(self.server, sock, addr, self)
        self._use_tls(conn, server_side=True)
        self._run(conn)

    def _use_tls(self, conn, server_side, hostname=None):
        """Route TLS comes first, before INFO/CONNECT, on both sides (as
        nats-server 2.15.1 on the wire)."""
        tls = self.config.tls
        if tls is not None:
            conn.tls_config = tls
            conn.tls_first = True
            conn.tls_server_side = server_side
            conn.tls_hostname = hostname

    def _run(self, conn):
        conn.accept_filter = self.accept_filter
        conn.advertise_filter = self.advertise_filter
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.register(conn)
        conn.run()

    def _solicit(self, url, explicit, pool_idx=0, account=None, expect_id=None, retries=None):
        """Dial ``url`` and keep the route up: explicit routes retry forever,
        implicit ones ``retries`` times; extra pool connections stop once the
        peer is gone."""
        parts = urlsplit(url if "://" in url else "nats-route://" + url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6222
        delay = RECONNECT_MIN
        attempts = 0
        dialled = False  # has this url ever answered (reconnect_error_reports then)
        pinned = self.server.accounts.get_or_create(account) if account else None
        while not self._stopping and url not in self.self_urls:
            if expect_id is not None and expect_id not in self.peers:
                return  # an extra pool connection whose peer went away
            peer_id = self.url_peers.get(url)
            peer = self.peers.get(peer_id) if peer_id else None
            if peer is not None and pool_idx == 0 and account is None and 0 in peer.pooled:
                gevent.sleep(0.5)  # connected (perhaps by the peer dialling us)
                continue
            try:
                sock = gevent.socket.create_connection((host, port), timeout=2)
                sock.settimeout(None)
            except OSError as exc:
                attempts += 1
                # connect_error_reports / reconnect_error_reports: how often a
                # failing dial is an error in the log rather than debug
                report = self.log.error if self.server.should_report_connect_error(
                    not dialled, attempts) else self.log.debug
                report("Error trying to connect to route (attempt %d): %s" % (attempts, exc))
                if retries is not None and attempts > retries:
                    self._implicit_pending.discard(url)
                    return
                gevent.sleep(delay * (1 + random.random() * 0.2))
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            delay = RECONNECT_MIN
            attempts = 0
            dialled = True
            conn = RouteConnection(self.server, sock, (host, port), self, solicited=True,
                                   pool_idx=pool_idx, pinned=pinned, url=url)
            self._use_tls(conn, server_side=False, hostname=host)
            if parts.username:
                self.config.user = parts.username
                self.config.password = parts.password or ""
            started = time.monotonic()
            self._run(conn)  # returns when the connection closes
            if not explicit and (retries is not None or expect_id is not None) and \
                    conn.closed_reason == ClosedReason.DUPLICATE_ROUTE:
                return
            if time.monotonic() - started < RECONNECT_MIN:
                gevent.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)

    # -- monitoring ------------------------------------------------------------------------

    def routez(self, server, query):
        routes = []
        subs = query.get("subs") in ("1", "true", "detail")
        for peer in self.peers.values():
            for conn in peer.connections():
                entry = {
                    "rid": conn.cid, "remote_id": conn.remote_id, "remote_name": conn.remote_name,
                    "did_solicit": conn.solicited, "is_configured": conn.url in self.config.routes,
                    "ip": conn.host, "port": conn.port, "rtt": "0s",
                    "pending_size": len(conn.out), "in_msgs": conn.in_msgs,
                    "out_msgs": conn.out_msgs, "in_bytes": conn.in_bytes,
                    "out_bytes": conn.out_bytes, "subscriptions": len(conn.remote_subs),
                    "compression": "off", "pool_idx": conn.pool_idx,
                }
                if conn.pinned is not None:
                    entry["account"] = conn.pinned.name
                if subs:
                    entry["subscriptions_list"] = sorted(
                        s.subject.decode() for s in conn.remote_subs.values())
                routes.append(entry)
        return {"server_id": server.server_id, "server_name": server.server_name,
                "num_routes": len(routes), "routes": routes}
