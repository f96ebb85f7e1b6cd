"""RouteManager: what is route-specific on top of the link layer: the cluster
listener and solicitors (pool connections, pinned accounts, implicit routes),
the cluster name, client URLs and gossip. Accepting, dialling, duplicate
rules, interest propagation and messages are the layer's (pluggy_nats.links)."""

from urllib.parse import urlsplit

import structlog

from pluggy_nats import __version__, hookimpl
from pluggy_nats.connection import CLIENT, ClosedReason
from pluggy_nats.links import KEEP_SOLICITED_BY_SMALLER_ID, PeerTable, Solicitor, run_link, use_tls
from pluggy_nats.options import ConfigError
from pluggy_nats.server import NATS_COMPAT_VERSION

from .connection import ROUTE_KIND, RouteConnection


def fnv32a(data):
    """FNV-1a, 32 bit: nats-server's account -> pool index hash."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def _dialable(url):
    """A gossiped route URL with a host and a valid port (a peer's INFO may
    carry anything; nats-server refuses what url.Parse refuses)."""
    try:
        parts = urlsplit(url if "://" in url else "nats-route://" + url)
        return bool(parts.hostname) and parts.hostname != "none" and 0 < (parts.port or 6222)
    except ValueError:
        return False


class RouteManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.name = config.name  # None until learned when dynamic
        self.log = structlog.get_logger("pluggy_nats.route")
        # server_id -> Peer; slots ("pool", idx) and ("account", name)
        self.peers = PeerTable(server.server_id, KEEP_SOLICITED_BY_SMALLER_ID,
                               ClosedReason.DUPLICATE_ROUTE)
        self._pool_index = {}  # account name -> pool index (fnv32a is slow in Python)
        self.listener = None
        self.port = None
        self.url_peers = {}  # solicited URL -> server_id connected through it
        self.self_urls = set()
        self._implicit_pending = set()  # gossiped URLs being dialled
        self._explicit = {}  # configured route URL -> its Solicitor
        perms = config.permissions.compile() if config.permissions is not None else None
        # import -> which of our interest peers hear; export -> which of theirs we take
        self.advertise_filter = perms.publish_allowed if perms and perms.restricts_publish \
            else None
        self.accept_filter = (lambda subject: perms.subscribe_allowed(subject)) \
            if perms and (perms.sub_allow is not None or perms.sub_deny is not None) else None
        server.links.register_kind(ROUTE_KIND)

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        self.listener = server.listen(cfg.host, cfg.port, self._accept, "route")
        self.port = self.listener.address[1]
        self.log.info("Listening for route connections on %s:%d" % (cfg.host, self.port))
        if cfg.tls is not None:
            self.log.info("TLS required for route connections")
        if cfg.compression not in ("off", "accept"):
            self.log.warning("route_compression_unsupported", requested=cfg.compression,
                             note="routes stay uncompressed; peers fall back to off")
        server.connect_urls = [self._client_url()]
        for url in cfg.routes:
            self._solicit(url, True)

    @hookimpl
    def nats_reload_block(self, server, key, old, new):
        """The ``cluster {}`` block may change its ``routes`` while running (as
        nats-server: new URLs are dialled, removed ones closed); anything else
        needs a restart."""
        if key.lower() != "cluster":
            return None
        from . import parse_cluster

        if new is None or old is None:
            return ["the cluster block was added or removed: needs a restart"]
        try:
            fresh = parse_cluster(new, None)
        except ConfigError as exc:
            return [text for _pos, text in exc.errors]
        others = {k.lower(): v for k, v in old.items() if k.lower() != "routes"}
        new_others = {k.lower(): v for k, v in new.items() if k.lower() != "routes"}
        differ = sorted(set(others) ^ set(new_others) |
                        {k for k in others if k in new_others and others[k] != new_others[k]})
        if differ:
            return ["%s changed: needs a restart" % ", ".join(differ)]
        return lambda: self._reload_routes(fresh.routes)

    def _reload_routes(self, routes):
        old = list(self.config.routes)
        self.config.routes = list(routes)
        for url in routes:
            if url not in old:
                self._solicit(url, True)
        for url in old:
            if url in routes:
                continue
            solicitor = self._explicit.pop(url, None)
            if solicitor is not None:
                solicitor.stop()
            for peer in self.peers:
                for conn in peer.links():
                    if conn.url == url:
                        conn.close(ClosedReason.ROUTE_REMOVED)
        self.log.info("routes_reloaded", added=[u for u in routes if u not in old],
                      removed=[u for u in old if u not in routes])

    @hookimpl
    def nats_varz(self, server, varz):
        varz["cluster"] = {"name": self.name or "", "addr": self.config.host,
                           "cluster_port": self.port or 0,
                           "urls": list(self.config.routes),
                           "pool_size": self.config.pool_size}
        if self.config.tls is not None:
            varz["cluster"].update(tls_required=True, tls_verify=True,
                                   tls_timeout=self.config.tls.timeout)
        varz["routes"] = sum(len(p.slots) for p in self.peers)  # connections
        varz["remotes"] = len(self.peers.peers)  # servers (nats-server numRemotes)

    @hookimpl
    def nats_statsz(self, server, statsz):
        # nats-server routeStat: one entry per route connection, pool or pinned
        routes = [{"rid": conn.cid, "name": conn.remote_name,
                   "sent": {"msgs": conn.out_msgs, "bytes": conn.out_bytes},
                   "received": {"msgs": conn.in_msgs, "bytes": conn.in_bytes},
                   "pending": conn.pending_bytes}
                  for peer in self.peers for conn in peer.links()]
        if routes:
            statsz["routes"] = routes

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/routez", self.routez)

    # -- accounts -> connections -----------------------------------------------

    def conn_for(self, peer, account_name):
        """The connection to ``peer`` carrying ``account_name``: its pinned
        route, else the pool connection nats-server's hash picks."""
        slots = peer.slots
        conn = slots.get(("account", account_name))
        if conn is not None:
            return conn
        idx = self._pool_index.get(account_name)
        if idx is None:
            if len(self._pool_index) > 4096:
                self._pool_index.clear()
            # An account with a pinned route is never carried by the pool, not
            # even before its route is up (nats-server accDedicatedRoute): its
            # interest sent on both would deliver its messages twice.
            pinned = account_name in self.config.pinned_accounts(self.server)
            idx = self._pool_index[account_name] = -1 if pinned else \
                fnv32a(account_name.encode()) % max(self.config.pool_size, 1)
        return slots.get(("pool", idx))

    def carrier(self, conn, account_name):
        """Does ``conn`` carry ``account_name`` to its peer?"""
        if conn.pinned is not None:
            return conn.pinned.name == account_name
        peer = self.peers.get(conn.remote_id)
        return peer is not None and self.conn_for(peer, account_name) is conn

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
        if conn.url:
            self.url_peers[conn.url] = server_id
        slot = ("account", conn.pinned.name) if conn.pinned is not None else ("pool", conn.pool_idx)
        if self.peers.claim(conn, slot, info) is None:
            return  # a duplicate: the link already there stays
        conn.log.info("route_connected", peer=conn.remote_name, peer_id=server_id,
                      pool_idx=conn.pool_idx, account=conn.pinned.name if conn.pinned else None,
                      solicited=conn.solicited)
        self.server.links.link_up(conn)
        self._learn_client_urls(info)
        if conn.solicited and conn.pool_idx == 0 and conn.pinned is None:
            self._open_rest_of_pool(conn)
        if not conn.solicited:
            self._gossip(conn, info)

    def _open_rest_of_pool(self, first):
        """The first solicited connection found the peer: open the other pool
        connections and the pinned ones to the same URL."""
        for idx in range(1, self.config.pool_size):
            self._solicit(first.url, False, idx, None, first.remote_id)
        for name in self.config.pinned_accounts(self.server):
            self._solicit(first.url, False, 0, name, first.remote_id)

    def link_closed(self, conn, reason):
        peer = self.peers.release(conn)
        if peer is None:
            return
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
        if info.get("gateway"):
            # Gateway gossip ("GW" + the sender's id): the gateway plugin reads
            # it (nats_link_info_received); it never names a route to dial.
            if self.server.pluginmanager.get_plugin("gateway-manager") is None:
                conn.log.warning("gateway_info_without_gateway", gateway=info["gateway"],
                                 note="gateway is not configured on this server")
            return
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
        for peer in self.peers:
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
        if url in self.url_peers or url in self._implicit_pending or not _dialable(url):
            return
        self._implicit_pending.add(url)
        self._solicit(url, False, 0, None, None, self.config.connect_retries)

    # -- accepting and soliciting --------------------------------------------------------

    def _accept(self, sock, addr):
        conn = RouteConnection(self.server, sock, addr, self)
        self._setup(conn, server_side=True)
        run_link(self.server, conn)

    def _setup(self, conn, server_side, hostname=None):
        # Route TLS comes first, before INFO/CONNECT, on both sides (as
        # nats-server 2.15.1 on the wire).
        use_tls(conn, self.config.tls, server_side, first=True, hostname=hostname)
        conn.accept_filter = self.accept_filter
        conn.advertise_filter = self.advertise_filter

    def _solicit(self, url, explicit, pool_idx=0, account=None, expect_id=None, retries=None):
        """Dial ``url`` and keep the route up: explicit routes retry forever,
        implicit ones ``retries`` times; extra pool connections stop once the
        peer is gone."""
        pinned = self.server.accounts.get_or_create(account) if account else None
        solicitor = None

        def connect(sock, addr):
            conn = RouteConnection(self.server, sock, addr, self, solicited=True,
                                   pool_idx=pool_idx, pinned=pinned, url=url)
            self._setup(conn, server_side=False, hostname=addr[0])
            if solicitor.username:
                self.config.user = solicitor.username
                self.config.password = solicitor.password or ""
            return conn

        def finished():
            return url in self.self_urls or (expect_id is not None and expect_id not in self.peers)

        def should_dial():
            # The first pool connection pauses while the peer is connected
            # (perhaps by the peer dialling us).
            peer_id = self.url_peers.get(url)
            peer = self.peers.get(peer_id) if peer_id else None
            return not (peer is not None and pool_idx == 0 and account is None
                        and ("pool", 0) in peer.slots)

        def after(conn):
            return not explicit and (retries is not None or expect_id is not None) and \
                conn.closed_reason == ClosedReason.DUPLICATE_ROUTE

        solicitor = Solicitor(self.server, url, connect, scheme="nats-route", default_port=6222,
                              retries=retries, finished=finished, should_dial=should_dial,
                              after=after, label="route",
                              on_give_up=lambda: self._implicit_pending.discard(url))
        if explicit and pool_idx == 0 and account is None:
            self._explicit[url] = solicitor
        self.server.links.solicit(solicitor)

    # -- monitoring ------------------------------------------------------------------------

    def routez(self, server, query):
        from pluggy_nats_plugins.monitor.endpoints import rtt_string

        routes = []
        subs = query.get("subs") in ("1", "true", "detail")
        for peer in self.peers:
            for conn in peer.links():
                entry = {
                    "rid": conn.cid, "remote_id": conn.remote_id, "remote_name": conn.remote_name,
                    "did_solicit": conn.solicited, "is_configured": conn.url in self.config.routes,
                    "ip": conn.host, "port": conn.port, "rtt": rtt_string(conn.rtt),
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
