"""LeafManager: the leaf links of one server, what each may be told and where
their messages may go.

* **Binding.** A link carries one local account: the remote's ``account`` on
  the spoke, the authenticated user's account on the hub. That is the tenant
  isolation: nothing else is offered to, or reachable from, the link.
* **Interest offered to a link** (``offers``), per origin of a subscription:
  a hub offers all of the account's interest (clients, internal, routes,
  other leafs, except leafs of the peer's own cluster and, when isolated, any
  leaf); a spoke offers its local interest only (clients, internal, leafs it
  is the hub of) plus ``$LDS.`` loop detection subjects from anywhere. Each
  link counts what it was offered per (subject, queue), so a queue group is
  advertised with its aggregate member count, and a reconnect rebuilds the
  whole map from the account's index.
* **Where a message from a link may go** (``targets``): local subscribers;
  routes and other leafs only when we are this link's hub (a spoke never
  passes its hub's messages on to its routes), never a leaf of the sender's
  cluster; queue groups only those the sender named, a local member first.
"""

import random
import secrets
import string
import time

import structlog

from pluggy_nats import __version__, hookimpl
from pluggy_nats.connection import LEAF, ROUTE, ClosedReason
from pluggy_nats.links import InterestTable
from pluggy_nats.permissions import PermissionSpec, SubjectPermission
from pluggy_nats.server import NATS_COMPAT_VERSION
from pluggy_nats.sublist import SublistResult

from . import creds as C
from . import protocol as P
from .transport import Transport

_NUID_CHARS = string.ascii_letters + string.digits


def _nuid():
    return "".join(secrets.choice(_NUID_CHARS) for _ in range(22))


def deny_filters(deny_pub=(), deny_sub=()):
    """(messages filter, interest filter) for deny lists: ``msg(subject)`` is
    True when a message on that literal subject is denied, ``interest(subject)``
    when a subscription (possibly with wildcards) is. None where nothing is denied."""
    msg = interest = None
    if deny_pub:
        perms = PermissionSpec(publish=SubjectPermission(deny=list(deny_pub))).compile()
        msg = lambda s: not P.is_unchecked(s) and not perms.publish_allowed(s)  # noqa: E731
    if deny_sub:
        perms2 = PermissionSpec(subscribe=SubjectPermission(deny=list(deny_sub))).compile()
        interest = lambda s: not P.is_unchecked(s) and not perms2.subscribe_allowed(s)  # noqa: E731
    return msg, interest


class LeafManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.log = structlog.get_logger("pluggy_nats.leafnode")
        self.links = []  # registered LeafConnections
        self.lds = {}  # account name -> its $LDS.<nuid> subject
        self.spoke_clusters = {}  # cluster name -> count of registered spokes of that cluster
        self.discovered_urls = {}  # id(remote) -> leafnode_urls learned from its hubs
        self.transport = Transport(server, self)
        self.port = None

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        if cfg.port is not None:
            self.port = self.transport.listen(cfg.host, cfg.port)
            self.log.info("Listening for leafnode connections on %s:%d" % (cfg.host, self.port))
        for remote in cfg.remotes:
            if remote.urls and not remote.disabled:
                server.spawn(self.transport.solicit, remote)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if lame_duck:
            return
        self.transport.stop()
        for conn in list(self.links):
            conn.close(ClosedReason.SERVER_SHUTDOWN)

    @hookimpl
    def nats_interest_changed(self, account, sub, delta, origin):
        if not self.links:
            return
        key = (account.name, sub.subject, sub.queue)
        for link in self.links:
            if link.account is not account or not self.offers(link, sub):
                continue
            weight = link.offered.change(key, delta * (sub.weight if sub.queue else 1))
            if weight is not None:
                link.advertise(account.name, sub.subject, sub.queue, weight)

    @hookimpl
    def nats_varz(self, server, varz):
        varz["leafnodes"] = len(self.links)
        leaf = {}
        if self.port is not None:
            leaf.update(host=self.config.host, port=self.port,
                        auth_timeout=self.config.auth.timeout or 1)
        if self.config.remotes:
            leaf["remotes"] = [{"local_account": r.account, "urls": [_hostport(u) for u in r.urls],
                                "deny": {"exports": r.deny_exports, "imports": r.deny_imports}
                                if (r.deny_exports or r.deny_imports) else None}
                               for r in self.config.remotes]
            for entry in leaf["remotes"]:
                if entry["deny"] is None:
                    del entry["deny"]
        varz["leaf"] = leaf

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/leafz", self.leafz)

    # -- INFO / CONNECT -----------------------------------------------------------

    def leafnode_urls(self):
        if self.port is None or self.config.no_advertise:
            return []
        if self.config.advertise:
            return [self.config.advertise]
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return ["%s:%d" % (host, self.port)]

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
            cluster=self.cluster_name(), tls_required=self.config.tls is not None)

    def cluster_name(self):
        """Our cluster name as leafs see it: the route cluster's, else (a
        server with remotes and no cluster) the server name (``leafNoCluster``)."""
        route = self.server.pluginmanager.get_plugin("route-manager")
        if route is not None and route.name:
            return route.name
        return self.server.server_name if self.config.remotes else None

    def our_cluster_for_connect(self):
        return self.cluster_name() or self.server.server_name

    def send_connect(self, conn, info):
        """Answer the hub's INFO with our CONNECT. False if we cannot (bad
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
            name=self.server.server_name, cluster=self.our_cluster_for_connect(),
            remote_account=remote.account, user=user, password=password,
            is_hub=remote.hub, deny_pub=remote.deny_imports,
            isolate=remote.request_isolation, **signed)
        conn.send(encode_connect(connect))
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
        limit = account.limits.get("max_leafnodes", -1) if account.limits else -1
        if limit is not None and 0 <= limit <= sum(1 for link in self.links
                                                   if link.account is account):
            conn.fail(ClosedReason.MAX_ACCOUNT_CONNECTIONS_EXCEEDED,
                      "Maximum Account Connections Exceeded")
            return
        if connect.get("is_hub"):
            conn.we_are_hub = False  # the dialler acts as the hub
        conn.remote_id = connect.get("server_id") or ""
        conn.remote_name = connect.get("name") or conn.remote_id
        conn.remote_cluster = connect.get("cluster") or ""
        conn.remote_account = connect.get("remote_account") or "$G"
        conn.headers = bool(connect.get("headers", True))
        conn.isolated = self.config.isolate or bool(connect.get("isolate"))
        deny_pub = list(connect.get("deny_pub") or [])
        if perms is not None:
            deny_pub += perms.get("deny_pub", [])
        conn.out_denied, _ = deny_filters(deny_pub)
        if perms is not None and perms.get("deny_sub"):
            conn.in_denied, _ = deny_filters(perms["deny_sub"])
        if not self._replace_duplicate(conn):
            return
        conn.account = account
        second = P.connect_info(conn.first_info, account_name=account.name,
                                is_system=account.is_system)
        conn.send(encode_info(second))
        self._finish(conn)
        conn.send(b"PING\r\n")
        conn.pings_out += 1

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
        return account, _link_permissions(decision.permissions)

    def _replace_duplicate(self, conn):
        """A new link from the same server for the same accounts replaces the
        old one (which may be a stale half-closed TCP connection), #1607."""
        for other in list(self.links):
            if other is not conn and not other.solicited and \
                    other.remote_id == conn.remote_id and \
                    other.remote_account == conn.remote_account:
                other.fail(ClosedReason.DUPLICATE_ROUTE, P.DUPLICATE)
        return not conn.closed

    def register(self, conn, info):
        """The spoke side: the hub accepted us (second INFO, or the first one
        of a hub without ``info_on_connect``)."""
        remote = conn.remote
        conn.remote_id = info.get("server_id") or ""
        conn.remote_name = info.get("server_name") or conn.remote_id
        conn.remote_cluster = info.get("cluster") or ""
        conn.remote_account = info.get("remote_account") or ""
        conn.headers = bool(info.get("headers", True))
        cluster = conn.remote_cluster
        if cluster and cluster in self.spoke_clusters and not conn.we_are_hub:
            # Our hub's cluster is already one of our spokes: a loop.
            conn.retry_after = P.LOOP_DELAY
            conn.fail(ClosedReason.PROTOCOL_VIOLATION, P.loop_error(remote.account))
            return
        conn.account = self.server.accounts.get_or_create(remote.account)
        deny_exports = list(remote.deny_exports) + _perm_denies(info.get("import"))
        deny_imports = list(remote.deny_imports) + _perm_denies(info.get("export"))
        conn.out_denied, _ = deny_filters(deny_exports)
        conn.in_denied, conn.advertise_deny = deny_filters(deny_imports, deny_imports)
        if conn.advertise_deny is not None:
            deny = conn.advertise_deny
            conn.advertise_filter = lambda s: not deny(s)
        conn.isolated = remote.isolate
        urls = info.get("leafnode_urls") or []
        if urls and not remote.ignore_discovered_servers:
            self.discovered_urls[id(remote)] = list(urls)
        self._finish(conn)

    def info_update(self, conn, info):
        """An async INFO: new ``leafnode_urls`` of the hub's cluster."""
        urls = info.get("leafnode_urls")
        if conn.remote is not None and urls is not None \
                and not conn.remote.ignore_discovered_servers:
            self.discovered_urls[id(conn.remote)] = list(urls)

    def _finish(self, conn):
        """Both sides: the link carries interest from now on. Everything we
        offer it is computed afresh from the account's index (a reconnect
        can never leave stale interest), then our loop detection subject."""
        conn.registered = True
        conn.noecho = conn  # nothing the link sent ever goes back to it
        conn.offered = InterestTable()
        self.links.append(conn)
        if conn.we_are_hub and conn.remote_cluster:
            self.spoke_clusters[conn.remote_cluster] = \
                self.spoke_clusters.get(conn.remote_cluster, 0) + 1
        account = conn.account
        conn.log.info("Leafnode connection created for account: %s" % account.name,
                      peer=conn.remote_name, hub=conn.we_are_hub)
        for sub in account.sublist.subscriptions():
            if self.offers(conn, sub):
                conn.offered.change((account.name, sub.subject, sub.queue),
                                    sub.weight if sub.queue else 1)
        conn.send_initial_interest(conn.offered)
        conn.send(P.encode_sub(self.lds_subject(account)))
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
        conn.fail(ClosedReason.PROTOCOL_VIOLATION, P.loop_error(conn.account.name))

    # -- the rules -----------------------------------------------------------------------

    def offers(self, link, sub):
        """Whether ``sub`` (a subscription in ``link``'s account) is interest we
        tell ``link`` about."""
        origin = sub.conn
        if origin is link:
            return False
        if not origin.is_link:
            return True  # clients and internal subscriptions
        if origin.kind == LEAF:
            if sub.subject.startswith(P.LDS_PREFIX):
                return not (link.remote_cluster and origin.remote_cluster == link.remote_cluster)
            if link.we_are_hub:
                if link.isolated:
                    return False
                return not (link.remote_cluster and origin.remote_cluster == link.remote_cluster)
            return origin.we_are_hub  # a spoke passes on the interest of its own leafs
        return link.we_are_hub  # routes, gateways: a hub sends all of the account's interest

    def targets(self, link, result, queues):
        """What a message that came in on ``link`` may reach of ``result``: local
        subscribers; routes and other leafs only when we are ``link``'s hub (or
        its peer is ours and the target is a leaf we are hub for); queue groups
        only those named, a local member first."""
        plain = tuple(s for s in result.psubs if self._may_reach(link, s.conn))
        picked = ()
        if queues and result.qsubs:
            names = set(queues)
            chosen = []
            for group in result.qsubs:
                if group[0].queue not in names:
                    continue
                local = [s for s in group if not s.conn.is_link]
                if local:
                    chosen.append((local[int(random.random() * len(local))],))
                    continue
                remote = [s for s in group if s.conn is not link and
                          self._may_reach(link, s.conn)]
                if remote:
                    chosen.append((_weighted_pick(remote),))
            picked = tuple(chosen)
        if not plain and not picked:
            return None
        return SublistResult(plain, picked)

    def _may_reach(self, link, conn):
        if not conn.is_link:
            return True
        if conn is link:
            return False
        if conn.kind == LEAF:
            if link.remote_cluster and conn.remote_cluster == link.remote_cluster:
                return False
            return link.we_are_hub or conn.we_are_hub
        if conn.kind == ROUTE:
            return link.we_are_hub
        return link.we_are_hub  # gateways

    # -- closing ---------------------------------------------------------------------------

    def link_closed(self, conn, reason):
        if conn in self.links:
            self.links.remove(conn)
            if conn.we_are_hub and conn.remote_cluster in self.spoke_clusters:
                self.spoke_clusters[conn.remote_cluster] -= 1
                if not self.spoke_clusters[conn.remote_cluster]:
                    del self.spoke_clusters[conn.remote_cluster]
            conn.log.info("Leafnode connection closed", account=conn.account.name,
                          reason=reason.value, peer=conn.remote_name)

    # -- monitoring ---------------------------------------------------------------------------

    def leafz(self, server, query):
        subs = query.get("subs") in ("1", "true", "detail")
        acc = query.get("acc")
        leafs = []
        now = time.time()
        for conn in list(self.links):
            if acc and conn.account.name != acc:
                continue
            entry = {
                "id": conn.cid, "name": conn.remote_name, "is_spoke": conn.is_spoke,
                "account": conn.account.name, "ip": conn.host, "port": conn.port,
                "rtt": "%.3fms" % (conn.rtt * 1000), "in_msgs": conn.in_msgs,
                "out_msgs": conn.out_msgs, "in_bytes": conn.in_bytes,
                "out_bytes": conn.out_bytes, "subscriptions": len(conn.remote_subs),
                "compression": "off",
            }
            if conn.isolated:
                entry["is_isolated"] = True
            if subs:
                entry["subscriptions_list"] = sorted(
                    s.subject.decode() for s in conn.remote_subs.values())
            leafs.append(entry)
        return {"server_id": server.server_id, "now": _rfc3339(now),
                "leafnodes": len(leafs), "leafs": leafs}


def _weighted_pick(subs):
    total = sum(s.weight for s in subs)
    n = random.random() * total
    for sub in subs:
        n -= sub.weight
        if n < 0:
            return sub
    return subs[-1]


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


def _hostport(url):
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else "nats-leaf://" + url)
    return "%s:%d" % (parts.hostname, parts.port or 7422)


def _perm_denies(block):
    if isinstance(block, dict):
        deny = block.get("deny")
        if isinstance(deny, str):
            return [deny]
        if isinstance(deny, list):
            return [d for d in deny if isinstance(d, str)]
    return []


def _link_permissions(perms):
    """The deny lists a hub applies on a leaf link from the user's permissions:
    the user's subscribe-deny is what we do not send it, its publish-deny
    what we do not take from it (nats-server reverses them for leafs)."""
    spec = getattr(perms, "spec", None)
    if spec is None:
        return None
    out = {}
    if spec.subscribe is not None and spec.subscribe.deny:
        out["deny_pub"] = list(spec.subscribe.deny)
    if spec.publish is not None and spec.publish.deny:
        out["deny_sub"] = list(spec.publish.deny)
    return out or None


def _rfc3339(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06dZ" % int(ts % 1 * 1e6)


def encode_info(info):
    from pluggy_nats.protocol import encode

    return encode.info(info)


def encode_connect(connect):
    from pluggy_nats.protocol import encode

    return encode.connect(connect)
