"""LeafManager: the leaf links of one server on the shared link layer.

* **Binding.** A link carries one local account: the remote's ``account`` on
  the spoke, the authenticated user's account on the hub. That is the tenant
  isolation: nothing else is offered to, or reachable from, the link.
* **Roles.** A link is the hub's end (origin class ``leaf_hub``) or the
  spoke's (``leaf_spoke``); the layer's propagation and forwarding tables do
  the rest: a hub offers all of the account's interest, a spoke only its local
  interest (and that of its own spokes); a spoke never passes its hub's
  messages to its routes; a leaf's queue member serves a client's message only
  when no other member exists.
* **Handshake, auth, deny rules, loops, URL gossip, /leafz** are here; the
  wire pieces are in :mod:`.protocol`.
"""

import secrets
import string
import time

import structlog

from pluggy_nats import __version__, hookimpl
from pluggy_nats.connection import ROUTE, ClosedReason
from pluggy_nats.links import REPLACE, PeerTable, Solicitor, run_link, use_tls
from pluggy_nats.options import ConfigError
from pluggy_nats.server import NATS_COMPAT_VERSION

from . import creds as C
from . import filters as F
from . import jsdomain, monitor
from . import protocol as P
from .config import hostport, parse_leafnodes
from .connection import LEAF_KIND, LeafConnection, connect_frame
from .migrate import Migration
from .reload import plan as reload_plan
from .reload import remote_name

_NUID_CHARS = string.ascii_letters + string.digits


def _nuid():
    return "".join(secrets.choice(_NUID_CHARS) for _ in range(22))


class LeafManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.log = structlog.get_logger("pluggy_nats.leafnode")
        self.links = []  # registered LeafConnections
        self.lds = {}  # account name -> its $LDS.<nuid> subject
        self.spoke_clusters = {}  # cluster name -> count of registered spokes of that cluster
        self.discovered_urls = {}  # id(remote) -> leafnode_urls learned from its hubs
        self.route_leaf_urls = {}  # route peer id -> its leafnode_urls (hub cluster gossip)
        self.peers = PeerTable(server.server_id, REPLACE, ClosedReason.DUPLICATE_REMOTE_LEAFNODE)
        self.solicitors = {}  # id(remote) -> its Solicitor (reload stops it)
        self.migrations = {}  # id(remote) -> its jetstream_cluster_migrate state
        self.listener = None
        self.port = None
        server.links.register_kind(LEAF_KIND)

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        if cfg.port is not None:
            self.listener = server.listen(cfg.host, cfg.port, self._accept, "leafnode")
            self.port = self.listener.address[1]
            self.log.info("Listening for leafnode connections on %s:%d" % (cfg.host, self.port))
        for remote in cfg.remotes:
            if remote.urls and not remote.disabled:
                self._solicit(remote)

    @hookimpl
    def nats_link_info(self, link, info):
        """Our leafnode URL rides on route INFOs, so every node of a hub
        cluster can tell its leafs where the others are (``leafnode_urls``)."""
        if link.kind == ROUTE and self.port is not None and not self.config.no_advertise:
            info["leafnode_urls"] = self.own_leafnode_urls()

    @hookimpl
    def nats_link_info_received(self, link, info):
        if link.kind != ROUTE or "leafnode_urls" not in info:
            return
        # Keyed by the server the INFO describes: routes also gossip other
        # servers' INFOs (implicit routes).
        server_id = info.get("server_id") or link.remote_id
        if server_id == self.server.server_id:
            return
        urls = [u for u in info.get("leafnode_urls") or [] if isinstance(u, str)]
        if self.route_leaf_urls.get(server_id) != urls:
            self.route_leaf_urls[server_id] = urls
            self._push_leafnode_urls()

    @hookimpl
    def nats_client_closed(self, conn, reason, kind):
        if kind == "route" and conn.remote_id in self.route_leaf_urls and not any(
                link.remote_id == conn.remote_id and not link.closed
                for link in self.server.links.links_of("route")):
            del self.route_leaf_urls[conn.remote_id]
            self._push_leafnode_urls()

    @hookimpl
    def nats_reload_block(self, server, key, old, new):
        """What of ``leafnodes {}`` may change while running, as nats-server
        decides it (:mod:`.reload`): remotes added and removed, a remote's
        TLS, compression and ``disabled``, the listener's TLS (added, removed
        or changed). A
        changed users list, listener, authorization or anything else is
        refused (the running configuration stays)."""
        if key.lower() != "leafnodes":
            return None
        if new is None or old is None:
            return ["the leafnodes block was added or removed: needs a restart"]
        try:
            fresh = parse_leafnodes(new, {a.name for a in server.accounts}, False)
        except ConfigError as exc:
            return [text for _pos, text in exc.errors]
        refused, added, removed, kept = reload_plan(old, new, self.config, fresh)
        if refused:
            return refused

        def apply():
            cfg = self.config
            if (cfg.tls is None) != (fresh.tls is None):
                self.log.info("Reloaded: LeafNode TLS %s"
                              % ("added" if fresh.tls is not None else "removed"))
            # (as nats-server: new connections get the new TLS, open ones keep theirs)
            cfg.tls, cfg.compression = fresh.tls, fresh.compression
            for remote in removed:
                self.log.info("Reloaded: LeafNode Remote %s removed"
                              % remote_name(remote, redacted=True))
                self._stop_remote(remote)
            remotes = []
            for running, changed in kept:
                running.tls, running.compression = changed.tls, changed.compression
                if running.disabled != changed.disabled:
                    running.disabled = changed.disabled
                    self.log.info("Reloaded: LeafNode Remote %s Disabled value is: %s" % (
                        remote_name(running, redacted=True), str(running.disabled).lower()))
                    if running.disabled:
                        self._stop_remote(running)
                    elif running.urls:
                        self._solicit(running)
                remotes.append(running)
            for remote in added:
                self.log.info("Reloaded: LeafNode Remote %s added"
                              % remote_name(remote, redacted=True))
                remotes.append(remote)
                if remote.urls and not remote.disabled:
                    self._solicit(remote)
            cfg.remotes = remotes
        return apply

    def _stop_remote(self, remote):
        """A removed or disabled remote: its dialler ends, its link closes and
        is not dialled again (nats-server noReconnect)."""
        solicitor = self.solicitors.pop(id(remote), None)
        if solicitor is not None:
            solicitor.stop()
        migration = self.migrations.pop(id(remote), None)
        if migration is not None:
            migration.removed()  # Go: a remote no longer valid clears the observers
        self.discovered_urls.pop(id(remote), None)
        for link in list(self.links):
            if link.remote is remote:
                link.close(ClosedReason.CLIENT_CLOSED)
        if solicitor is not None and solicitor.link is not None:  # not registered yet
            solicitor.link.close(ClosedReason.CLIENT_CLOSED)

    @hookimpl
    def nats_varz(self, server, varz):
        monitor.varz(self, varz)

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/leafz", self.leafz)

    def leafz(self, server, query):
        return monitor.leafz(self, server, query)

    # -- accepting and dialling ------------------------------------------------------

    def _accept(self, sock, addr, websocket=False):
        conn = LeafConnection(self.server, sock, addr, self)
        tls = self.config.tls
        if tls is not None and not websocket:  # INFO in plaintext, then TLS (unless first)
            use_tls(conn, tls, server_side=True, first=tls.handshake_first)
        run_link(self.server, conn)

    @hookimpl
    def nats_link_accept(self, server, kind, sock, addr):
        """A leaf that dialled the WebSocket port's /leafnode path: the stream
        is already upgraded (and TLS, if any, is the WebSocket listener's)."""
        if kind != "leaf":
            return None
        self._accept(sock, addr, websocket=True)
        return True

    def _solicit(self, remote):
        """Keep ``remote``'s link up: its URLs and the ones its hub cluster
        gossips, in turn (shuffled unless ``no_randomize``), the reconnect
        interval plus up to as much in jitter between failed dials, and the
        delay a hub asked for (a loop: 30 s)."""
        state = {"urls": [], "i": -1}

        def next_url():
            urls = self._urls(remote)
            if urls != state["urls"]:
                state["urls"] = urls
            state["i"] = (state["i"] + 1) % len(urls)
            return urls[state["i"]]

        def connect(sock, addr):
            conn = LeafConnection(self.server, sock, addr, self, solicited=True, remote=remote,
                                  url=solicitor.url)
            if remote.tls is not None and not _is_websocket(solicitor.url):
                use_tls(conn, remote.tls, server_side=False, first=remote.tls.handshake_first,
                        hostname=solicitor.host)
            return conn

        def after(link):
            if link.retry_after:
                link.log.info("leafnode_reconnect_delayed", seconds=link.retry_after)
                return link.retry_after
            # nats-server reConnectToRemoteLeafNode: a dropped link is dialled
            # again after the reconnect interval, so a hub cluster has seen
            # the old link's node go (its routed interest, our $LDS., gone)
            return self.config.reconnect

        reconnect = self.config.reconnect
        timeout = remote.dial_timeout or self.config.dial_timeout or 1.0
        migration = self.migrations[id(remote)] = Migration(self.server, remote, self.log)
        solicitor = Solicitor(self.server, remote.urls[0], connect, scheme="nats-leaf",
                              default_port=7422, backoff_min=reconnect, backoff_max=reconnect,
                              jitter=1.0, dial_timeout=timeout, after=after, next_url=next_url,
                              label="leafnode",
                              # ws:// and wss:// go through the websocket plugin's transport,
                              # with the remote's TLS underneath the frames
                              transport_tls=remote.tls,
                              transport_options={"no_masking": remote.ws_no_masking},
                              on_dial_failed=migration.dial_failed,
                              on_dialled=migration.dialled)
        self.solicitors[id(remote)] = solicitor
        self.server.links.solicit(solicitor)

    def _urls(self, remote):
        urls = list(remote.urls)
        if not remote.no_randomize and len(urls) > 1:
            urls.sort(key=lambda u: hash((u, id(remote))))  # a stable shuffle per remote
        known = {hostport(u) for u in urls}
        for found in self.discovered_urls.get(id(remote), ()):
            if found not in known:
                urls.append(_with_userinfo(found, remote.urls[0]))
                known.add(found)
        return urls

    # -- INFO / CONNECT -----------------------------------------------------------

    def own_leafnode_urls(self):
        """Where leafs reach this server (``advertise``, else the listener)."""
        if self.port is None or self.config.no_advertise:
            return []
        if self.config.advertise:
            return [self.config.advertise]
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return ["%s:%d" % (host, self.port)]

    def leafnode_urls(self):
        """Ours and those of the other nodes of our cluster (route gossip)."""
        urls = self.own_leafnode_urls()
        if self.config.no_advertise:
            return urls
        for peer_urls in self.route_leaf_urls.values():
            urls += [u for u in peer_urls if u not in urls]
        return urls

    def _push_leafnode_urls(self):
        """Tell our spokes the hub cluster's leafnode URLs changed (async INFO)."""
        for link in list(self.links):
            if link.we_are_hub and link.first_info is not None:
                info = dict(link.first_info)
                info.pop("nonce", None)
                info["leafnode_urls"] = self.leafnode_urls()
                link.send(encode_info(info))
        self.server.flush_touched()

    def hub_info(self, conn):
        server = self.server
        conn.nonce = C.new_nonce()
        return P.hub_info(
            server_id=server.server_id, server_name=server.server_name,
            version=NATS_COMPAT_VERSION, go="pluggy-nats/" + __version__,
            host=self.config.host, port=self.port or 0,
            max_payload=server.options.max_payload,
            ip="%s:%d" % (self.config.host, self.port or 0), client_id=conn.cid,
            nonce=conn.nonce, leafnode_urls=self.leafnode_urls(),
            cluster=self.cluster_name(), tls_required=self.config.tls is not None,
            domain=jsdomain.local_jetstream(server)[1])

    def cluster_name(self):
        """Our cluster name as leafs see it: the route cluster's, else (a
        server with remotes and no cluster) the server name (``leafNoCluster``)."""
        route = self.server.pluginmanager.get_plugin("route-manager")
        if route is not None and route.name:
            return route.name
        return self.server.server_name if self.config.remotes else None

    def send_connect(self, conn, info):
        """Answer the hub's INFO with our CONNECT. False if we cannot (a bad
        credentials file: the link closes and the dialler retries)."""
        remote = conn.remote
        user, password = _userinfo(conn.url)
        try:
            signed = C.connect_credentials(remote, info.get("nonce"))
        except (C.CredentialsError, ValueError) as exc:
            self.log.error("leafnode_credentials_failed", error=str(exc))
            conn.close(ClosedReason.AUTHENTICATION_VIOLATION)
            return False
        connect = P.leaf_connect(
            version=NATS_COMPAT_VERSION, server_id=self.server.server_id,
            name=self.server.server_name,
            cluster=self.cluster_name() or self.server.server_name,
            remote_account=remote.account, user=user, password=password,
            is_hub=remote.hub, deny_pub=remote.deny_imports,
            isolate=remote.request_isolation,
            domain=jsdomain.local_jetstream(self.server)[1], **signed)
        conn.send(connect_frame(connect))
        return True

    def accept_connect(self, conn, connect):
        """The hub side of the handshake: authenticate, check, bind, answer."""
        account, perms = self.authenticate(conn, connect)
        if account is None:
            self.server.auth_failed(conn, "leafnode")
            conn.fail(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
            return
        err = P.check_connect(connect, hub_cluster=self.cluster_name(),
                              min_version=self.config.min_version)
        if err is not None:
            reason = ClosedReason.WRONG_PORT if err == P.WRONG_PORT else \
                ClosedReason.CLUSTER_NAME_CONFLICT if err == P.SAME_CLUSTER else \
                ClosedReason.PROTOCOL_VIOLATION
            conn.fail(reason, err)
            return
        limit = (account.limits or {}).get("max_leafnodes", -1)
        if limit is not None and 0 <= limit <= sum(1 for link in self.links
                                                   if link.bound_account is account):
            conn.fail(ClosedReason.MAX_ACCOUNT_CONNECTIONS_EXCEEDED,
                      "maximum account active connections exceeded")
            return
        # The dialler may act as the hub (its remote says hub: true).
        conn.take_role(hub=not connect.get("is_hub"),
                      isolated=self.config.isolate or bool(connect.get("isolate")))
        conn.remote_id = connect.get("server_id") or ""
        conn.remote_name = connect.get("name") or conn.remote_id
        conn.remote_cluster = connect.get("cluster") or ""
        if conn.remote_cluster and conn.we_are_hub:
            # the spokes of one leaf cluster: none passes messages to another
            conn.peer_group = ("leaf", account.name, conn.remote_cluster)
        conn.remote_account = connect.get("remote_account") or "$G"
        conn.remote_info = connect
        conn.headers = connect.get("headers") is True
        # The user's permissions, reversed for a link (processLeafNodeConnect):
        # what it may subscribe to is what we send it (and the literal
        # subjects it may ask for with LS+), what it may publish is what we
        # take from it; the CONNECT deny_pub (its deny_imports) is merged in.
        publish, subscribe = F.user_lists(perms)
        deny_pub = [d for d in connect.get("deny_pub") or [] if isinstance(d, str)]
        js_both, js_out = jsdomain.link_denies(self.server, account, connect.get("domain"),
                                               self.log)
        conn.out_denied, _ = F.subject_filters(subscribe.allow, (subscribe.deny or []) +
                                               deny_pub + js_both + js_out)
        conn.in_denied, _ = F.subject_filters(publish.allow, (publish.deny or []) + js_both)
        conn.ls_denied = F.literal_only(conn.out_denied)
        conn.filters_set()
        conn.perm_info = {"import": F.perm_dict(subscribe), "export": F.perm_dict(publish)}
        if self.peers.claim(conn, (conn.remote_account, account.name)) is None:
            return
        conn.bind_account(account)
        conn.send(encode_info(P.connect_info(conn.first_info, account_name=account.name,
                                             is_system=account.is_system,
                                             permissions=conn.perm_info)))
        self._finish(conn)
        conn.rtt_start = time.monotonic()  # its PONG is the link's first RTT (/leafz, /topz)
        conn.send(b"PING\r\n")

    def authenticate(self, conn, connect):
        """(account, permissions) for a dialling leaf, or (None, None).

        ``leafnodes.authorization`` first (single user, nkey, ``users``), then,
        when it is empty, the server's normal client authentication (accounts,
        nkeys, JWTs) through the ``nats_authenticate`` hook."""
        auth = self.config.auth
        accounts = self.server.accounts
        user = connect.get("user") or ""
        password = connect.get("pass") or ""
        if auth.users:
            for entry in auth.users:
                if entry.user == user and _same(entry.password, password):
                    return accounts.get_or_create(entry.account or "$G"), None
            return None, None
        if auth.user:
            if auth.user == user and _same(auth.password or "", password):
                return accounts.get_or_create(auth.account or "$G"), None
            return None, None
        if auth.nkey:
            if connect.get("nkey") == auth.nkey and C.verify_nonce(auth.nkey, conn.nonce,
                                                                   connect.get("sig")):
                return accounts.get_or_create(auth.account or "$G"), None
            return None, None
        if not self.server.auth_required:
            return accounts.global_account, None
        from pluggy_nats.auth import Allow

        decision = self.server.hook.nats_authenticate(conn=conn, connect=connect)
        if not isinstance(decision, Allow):
            return None, None
        account = decision.account
        if account is None:
            account = accounts.global_account
        elif isinstance(account, str):
            account = accounts.get_or_create(account)
        return account, decision.permissions

    def register(self, conn, info):
        """The spoke side: the hub accepted us (its second INFO, or the first
        one of a hub without ``info_on_connect``)."""
        remote = conn.remote
        conn.remote_id = info.get("server_id") or ""
        conn.remote_name = info.get("server_name") or conn.remote_id
        conn.remote_cluster = info.get("cluster") or ""
        conn.remote_account = info.get("remote_account") or ""
        conn.remote_info = info
        conn.headers = info.get("headers") is True
        if conn.remote_cluster in self.spoke_clusters and not conn.we_are_hub:
            # The cluster we dial is already one of our spokes: a loop.
            conn.retry_after = P.LOOP_DELAY
            conn.fail(ClosedReason.PROTOCOL_VIOLATION, P.loop_error(remote.account))
            return
        if remote.isolate:
            conn.take_role(hub=conn.we_are_hub, isolated=True)
        account = self.server.accounts.get_or_create(remote.account)
        # Our deny rules merged with what the hub allows us: its INFO ``export``
        # is what we may send, ``import`` what we may take.
        export, imp = F.info_lists(info.get("export")), F.info_lists(info.get("import"))
        js_both, js_out = jsdomain.link_denies(self.server, account, info.get("domain"),
                                               self.log)
        conn.out_denied, _ = F.subject_filters(export[0], export[1] + list(remote.deny_exports)
                                               + js_both + js_out)
        conn.ls_denied = F.literal_only(conn.out_denied)  # a hub's LS+ we ignore
        conn.in_denied, advertise_deny = F.subject_filters(
            imp[0], imp[1] + list(remote.deny_imports) + js_both)
        if advertise_deny is not None:
            conn.advertise_filter = lambda s: not advertise_deny(s)
        conn.filters_set()
        self._learn_urls(remote, info.get("leafnode_urls"))
        conn.bind_account(account)
        self._finish(conn)

    def info_update(self, conn, info):
        """An async INFO: the hub cluster's ``leafnode_urls`` changed."""
        if conn.remote is not None:
            self._learn_urls(conn.remote, info.get("leafnode_urls"))

    def _learn_urls(self, remote, urls):
        """The hub cluster's leafnode URLs: dialled too when the current one fails."""
        if urls is None or remote.ignore_discovered_servers:
            return
        urls = [u for u in urls if isinstance(u, str)]
        if self.discovered_urls.get(id(remote)) != urls:
            self.discovered_urls[id(remote)] = urls
            self.log.info("leafnode_urls_discovered", urls=urls)

    def _finish(self, conn):
        """Both sides: the link is up. The layer advertises everything it is
        offered, computed afresh (a reconnect never leaves stale interest);
        then our loop detection subject."""
        conn.noecho = conn  # nothing the link sent ever goes back to it
        conn.account = conn.bound_account  # /accountz counts the account's leafs
        self.links.append(conn)
        if conn.we_are_hub and conn.remote_cluster:
            self.spoke_clusters[conn.remote_cluster] = \
                self.spoke_clusters.get(conn.remote_cluster, 0) + 1
        account = conn.bound_account
        conn.log.info("Leafnode connection created for account: %s" % account.name,
                      peer=conn.remote_name, hub=conn.we_are_hub)
        self.server.links.link_up(conn)
        self.server.hook.nats_client_connected(conn=conn)  # $SYS connect event, as Go
        conn.send(P.encode_sub(self.lds_subject(account)))
        # Subjects another kind routes itself (gateways: the mapped replies
        # "_GR_." and "$GR.") must reach us from the peer whatever our
        # sublist says: a responder behind the link answers a request from
        # another cluster on them (Go initLeafNodeSmapAndSendSubs, both roles).
        for prefix, _handler in self.server.links.subject_claims:
            conn.send(P.encode_sub(prefix + b">"))
        self.server.flush_touched()

    # -- loops ---------------------------------------------------------------------------

    def lds_subject(self, account):
        subject = self.lds.get(account.name)
        if subject is None:
            subject = self.lds[account.name] = P.lds_subject(_nuid())
        return subject

    def is_own_lds(self, account, subject):
        return account is not None and self.lds.get(account.name) == subject

    def loop_detected(self, conn):
        """The peer sent us our own ``$LDS.``: our interest came back around."""
        conn.retry_after = P.LOOP_DELAY
        conn.fail(ClosedReason.PROTOCOL_VIOLATION, P.loop_error(conn.bound_account.name))

    # -- closing ---------------------------------------------------------------------------

    def link_closed(self, conn, reason):
        self.peers.release(conn)
        if conn in self.links:
            self.links.remove(conn)
            if conn.we_are_hub and conn.remote_cluster in self.spoke_clusters:
                self.spoke_clusters[conn.remote_cluster] -= 1
                if not self.spoke_clusters[conn.remote_cluster]:
                    del self.spoke_clusters[conn.remote_cluster]
            conn.log.info("Leafnode connection closed", account=conn.bound_account.name,
                          reason=reason.value, peer=conn.remote_name)

def _is_websocket(url):
    return url.split("://", 1)[0].lower() in ("ws", "wss")


def _same(expected, given):
    import hmac

    return hmac.compare_digest(str(expected).encode(), str(given).encode())


def _userinfo(url):
    from urllib.parse import unquote, urlsplit

    if not url:
        return None, None
    parts = urlsplit(url if "://" in url else "nats-leaf://" + url)
    if parts.username is None:
        return None, None
    return unquote(parts.username), unquote(parts.password) if parts.password else None


def encode_info(info):
    from pluggy_nats.protocol import encode

    return encode.info(info)


def _with_userinfo(hostport, template):
    """A discovered ``host:port`` with the configured URL's scheme and userinfo
    (nats-server reuses them for discovered URLs)."""
    from urllib.parse import urlsplit

    parts = urlsplit(template if "://" in template else "nats-leaf://" + template)
    userinfo = parts.netloc.rpartition("@")[0]
    return "%s://%s%s" % (parts.scheme, userinfo + "@" if userinfo else "", hostport)
