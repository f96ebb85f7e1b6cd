"""GatewayManager: one server's part of a super-cluster (GATEWAY.md).

* the gateway listener and one dialler per remote cluster (explicit ones
  retry forever, implicit ones ``connect_retries`` rounds);
* the registry: one outbound per remote cluster (kept in RTT order, the queue
  failover order), any number of inbounds;
* discovery: our cluster's gateway URLs from route INFOs (``gateway_url``),
  other clusters from gossip (INFO ``gateway_cmd`` 1) on gateways and routes;
* the forwarder the link layer runs after local delivery of a message that
  entered the cluster here: interest per peer, unserved queue groups,
  ``_GR_.`` reply mapping;
* ``/gatewayz`` and the ``/varz`` gateway block.

Everything connection-shaped (accepting, TLS, the handshake driver, PINGs,
interest ledger, framing) is the link layer's; this module keeps the
gateway's rules only.
"""

import random
import socket
import time
from itertools import compress
from operator import itemgetter

import gevent
import gevent.socket
import structlog

from pluggy_nats import hookimpl
from pluggy_nats.connection import CLIENT, GATEWAY, ClosedReason
from pluggy_nats.delivery import deliver
from pluggy_nats.links import LinkKind, jsdeliver
from pluggy_nats.links.dial import host_port, run_link, use_tls
from pluggy_nats.links.link import forwarding_targets
from pluggy_nats.protocol.parser import LINE
from pluggy_nats.server import NATS_COMPAT_VERSION
from pluggy_nats.sublist import EMPTY_RESULT, SublistResult

from . import monitor, wire
from .config import RemoteGateway
from .forward import plan
from .link import GatewayLink
from .replies import RecentSubs, ReplyMap

_first = itemgetter(0)
_second = itemgetter(1)
# subjects a reply travels home on: never decided by interest (``_direct``)


def _any_routed(subjects):
    """Whether a subject of ``subjects`` is a routed reply (``_GR_.``, or
    the old ``$GR.``): two substring searches over one join, in C, instead
    of a call per subject."""
    joined = b"\n" + b"\n".join(subjects)
    return b"\n_GR_." in joined or b"\n$GR." in joined

SOLICIT_DELAY = 1.0  # Go defaultSolicitGatewaysDelay: let the cluster form first
CONNECT_DELAY = 1.0  # Go gatewayConnectDelay
CONNECT_MAX_DELAY = 30.0  # Go gatewayConnectMaxDelay (connect_backoff)
RECONNECT_DELAY = 1.0  # Go gatewayReconnectDelay (explicit remotes)
DIAL_TIMEOUT = 1.0
PING_INTERVAL_MAX = 15.0  # Go gwMaxPingInterval


class GatewayManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.name = config.name
        self.log = structlog.get_logger("pluggy_nats.gateway")
        self.remotes = {gw.name: gw for gw in config.gateways}
        self.out = {}  # cluster name -> outbound GatewayLink
        self.out_order = ()  # (link, OutboundInterest) by RTT: the forwarder's walk
        self.out_by_hash = {}  # hash6(cluster) / old hash -> outbound link
        self.inbound = {}  # cid -> inbound GatewayLink
        self.url = None  # our gateway URL "host:port"
        self.urls = {}  # our cluster's gateway URLs -> reference count
        self.port = None
        self.listener = None
        self.dialling = set()  # remote names with a dialler running
        self.recent = RecentSubs()
        self.replies = ReplyMap()
        self.cluster_hash = wire.hash6(self.name).encode()
        self.server_hash = wire.hash6(server.server_id).encode()
        self.reply_prefix = wire.reply_prefix(self.name, server.server_id)
        self.old_reply_prefix = wire.old_reply_prefix(self.name)
        self.old_hash = wire.old_hash(self.name).encode()
        self._stopping = False
        self.kind = LinkKind(
            name="gateway", kind=GATEWAY,
            ops={b"RS+": (LINE, GatewayLink.op_rs_plus), b"RS-": (LINE, GatewayLink.op_rs_minus),
                 b"A+": (LINE, GatewayLink.op_a_plus), b"A-": (LINE, GatewayLink.op_a_minus)},
            forwarder=self.forward, run_forwarder=self.forward_run,
            lane_forwarder=self.forward_lane,
            interest=self.has_interest,
            ping_interval_max=PING_INTERVAL_MAX)
        GatewayLink.bind_kind(self.kind)
        server.links.register_kind(self.kind)
        for prefix in (wire.GW_REPLY_PREFIX, wire.OLD_GW_REPLY_PREFIX):
            server.links.claim(prefix, subjects=self.routed_subject_in,
                               replies=self.mapped_reply_in)

    # -- start / stop ---------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        self.listener = server.listen(cfg.host, cfg.port if cfg.port > 0 else 0, self._accept,
                                      "gateway")
        self.port = self.listener.address[1]
        self.log.info("Gateway name is %s" % self.name)
        self.log.info("Listening for gateways connections on %s:%d" % (cfg.host, self.port))
        self.url = self._own_url()
        self.urls[self.url] = self.urls.get(self.url, 0) + 1
        server.links.resend_info("route")  # routes up already learn our gateway_url
        route = server.pluginmanager.get_plugin("route-manager")
        if route is not None and getattr(route, "name", None) is None:
            route.name = self.name  # Go: the cluster takes the gateway's name
        server.spawn(self._solicit_configured)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if not lame_duck:
            self._stopping = True

    @hookimpl
    def nats_reload_block(self, server, key, old, new):
        """nats-server reloads the TLS material of the ``gateway {}`` block
        (and of its remotes) and refuses every other change
        (reload.go: "config reload not supported for Gateway")."""
        if key.lower() != "gateway":
            return None
        if new is None or old is None:
            return ["config reload not supported for Gateway (block added or removed)"]
        from .config import ConfigError, parse_gateway, reload_changes, validate

        try:
            fresh = parse_gateway(new)
            validate(fresh, self.config.cluster_name)
        except ConfigError as exc:
            return [text for _pos, text in exc.errors]
        _tls_changed, refused = reload_changes(self.config, fresh)
        if refused:
            return refused
        return lambda: self._reload_tls(fresh)

    def _reload_tls(self, fresh):
        """New TLS material: the next handshakes use it (links up stay up)."""
        self.config.tls = fresh.tls
        for remote in fresh.gateways:
            mine = self.remotes.get(remote.name)
            if mine is not None:
                mine.tls = remote.tls

    def _own_url(self):
        cfg = self.config
        if cfg.advertise:
            host, _, port = cfg.advertise.rpartition(":")
            return "%s:%s" % (host or cfg.advertise, port or self.port)
        host = cfg.host
        if host in ("0.0.0.0", "::", ""):
            # Go advertises the first non-local IP (other clusters dial it)
            host = _first_non_local_ip()
            if host is None:
                self.log.error("Could not find any non-local IP for gateway %s with listen "
                               "specification %s" % (wire.goq(self.name), wire.goq(cfg.host)))
                host = "127.0.0.1"
        return "%s:%d" % (host, self.port)

    # -- INFO / CONNECT ---------------------------------------------------------------

    def server_info(self):
        cfg = self.config
        host, _, port = self.url.rpartition(":")
        return wire.server_info(self.server.server_id, self.server.server_name,
                                NATS_COMPAT_VERSION, host, int(port),
                                self.server.options.max_payload, self.name, list(self.urls),
                                self.url, auth_required=bool(cfg.user),
                                tls_required=cfg.tls is not None)

    def connect_fields(self, link):
        _host, _port, user, password = host_port(link.url, "nats", 7222)
        if not user:
            user, password = self.config.user, self.config.password
        return wire.connect(self.server.server_id, self.name, user, password,
                            tls_required=link.tls_config is not None)

    def check_connect(self, opts):
        cfg = self.config
        return wire.check_acceptor_connect(opts, self.name, self.remotes, cfg.reject_unknown,
                                           cfg.user, cfg.password)

    def is_duplicate_server_name(self, name):
        if not name:
            return False
        if name == self.server.server_name:
            return True
        return any(link.remote_name == name for link in self.server.links.links_of("route"))

    # -- accepting and dialling ----------------------------------------------------------

    def _accept(self, sock, addr):
        link = GatewayLink(self.server, sock, addr, self)
        use_tls(link, self.config.tls, server_side=True)
        self.server.spawn(self._auth_timer, link)
        run_link(self.server, link)

    def _auth_timer(self, link):
        """CONNECT must come within the auth timeout (Go setAuthTimer; with
        TLS the TLS timeout + 1 s)."""
        cfg = self.config
        timeout = cfg.auth_timeout
        if cfg.tls is not None:
            timeout = max(timeout, cfg.tls.timeout + 1)
        gevent.sleep(timeout)
        if not link.closed and not link.connect_received:
            link.close(ClosedReason.AUTHENTICATION_TIMEOUT, "Authentication Timeout")
            self.server.flush_touched()

    def _solicit_configured(self):
        gevent.sleep(SOLICIT_DELAY)
        for remote in list(self.remotes.values()):
            self.dial(remote)

    def dial(self, remote):
        """Start the dialler of ``remote`` unless one runs or we have an outbound."""
        if remote.name in self.dialling or self._stopping:
            return
        self.dialling.add(remote.name)
        self.server.spawn(self._dialler, remote)

    def _dialler(self, remote):
        """Keep one outbound to ``remote`` (Go solicitGateway, reconnectGateway)."""
        try:
            first = True
            while not self._stopping:
                if not first:
                    delay = random.random() * 0.1 + (0 if remote.implicit else RECONNECT_DELAY)
                    gevent.sleep(delay)
                first = False
                link = self._connect_any(remote)
                if link is None:
                    return  # an implicit remote given up
                run_link(self.server, link)  # returns when the link closes
                if link.closed_reason == ClosedReason.WRONG_GATEWAY and remote.name in self.out:
                    return  # a duplicate of a live outbound
        finally:
            self.dialling.discard(remote.name)

    def _connect_any(self, remote):
        """Dial ``remote``'s URLs in random order until one answers; None when
        an implicit remote runs out of retries (and has no inbound either)."""
        attempts = 0
        delay = CONNECT_DELAY
        while not self._stopping:
            urls = list(remote.urls)
            random.shuffle(urls)
            attempts += 1
            for url in urls:
                host, port, _user, _password = host_port(url, "nats", 7222)
                if "%s:%d" % (host, port) == self.url:
                    continue  # ourselves (a misconfigured list)
                try:
                    sock = gevent.socket.create_connection((host, port), timeout=DIAL_TIMEOUT)
                    sock.settimeout(None)
                except OSError:
                    continue
                link = GatewayLink(self.server, sock, (host, port), self, solicited=True,
                                   url=url, remote=remote)
                use_tls(link, remote.tls or self.config.tls, server_side=False, hostname=host)
                return link
            if remote.implicit and attempts > self.config.connect_retries:
                if any(link.gateway == remote.name for link in self.inbound.values()):
                    attempts = 0  # Go: keep trying while the remote dials us
                else:
                    self.remotes.pop(remote.name, None)
                    return None
            gevent.sleep(delay)
            if self.config.connect_backoff:
                delay = min(delay * 2, CONNECT_MAX_DELAY)
        return None

    # -- the registry -----------------------------------------------------------------------

    def register_outbound(self, link, info):
        existing = self.out.get(link.gateway)
        if existing is not None and not existing.closed:
            link.close(ClosedReason.WRONG_GATEWAY)
            return
        self.out[link.gateway] = link
        remote = self.remotes.get(link.gateway)
        if remote is not None:
            _add_urls(remote, info.get("gateway_urls"))
        self.server.links.link_up(link)
        self._reorder()
        link.log.info("gateway_outbound_registered", gateway=link.gateway, peer=link.remote_id)
        self._forward_to_cluster(link.gateway, remote.urls if remote else [])
        link.rtt_start = time.monotonic()
        link.pings_out += 1
        link.send(b"PING\r\n")  # the first RTT sample orders the outbounds

    def register_inbound(self, link, info):
        self.inbound[link.cid] = link
        link.priming = True
        self.server.links.link_up(link)  # fills link.advertised, sends nothing
        link.priming = False
        lines = [b"RS+ %s %s %s 1\r\n" % (acc.encode(), subject, queue)
                 for (acc, subject, queue) in link.advertised if queue is not None]
        self.implicit_gateway(info.get("gateway"), info.get("gateway_urls") or [])
        for name, remote in self.remotes.items():
            if name != link.gateway and remote.urls:
                lines.append(wire.encode_info(wire.gossip_info(
                    self.server.server_id, name, [_strip(u) for u in remote.urls])))
        accounts = {acc.name for acc in self.server.accounts}
        accounts.update(acc for (acc, _s, _q) in link.advertised)
        for name in sorted(accounts):
            lines += link.inbound.switch(name, link.cmd_line)
        link.send(b"".join(lines))
        link.log.info("gateway_inbound_registered", gateway=link.gateway, peer=link.remote_id)

    def link_closed(self, link, reason):
        link.drop_peer_interest()
        if link.solicited:
            if self.out.get(link.gateway) is link:
                del self.out[link.gateway]
                self._reorder()
        else:
            self.inbound.pop(link.cid, None)
        if link.registered:
            link.log.info("gateway_disconnected", gateway=link.gateway, reason=reason.value)

    def rtt_changed(self):
        self._reorder()

    def _reorder(self):
        links = sorted(self.out.values(), key=lambda link: link.rtt or 1e9)
        self.out_order = tuple((link, link.outbound) for link in links
                               if link.outbound is not None)
        by_hash = {}
        for link in links:
            by_hash[wire.hash6(link.gateway).encode()] = link
            by_hash[wire.old_hash(link.gateway).encode()] = link
        self.out_by_hash = by_hash

    # -- discovery ----------------------------------------------------------------------------

    def info_update(self, link, info):
        """An INFO after the handshake (Go processGatewayInfo, not first)."""
        if not link.solicited:
            return
        cmd = info.get("gateway_cmd") or 0
        if cmd in (wire.GATEWAY_CMD_ALL_SUBS_START, wire.GATEWAY_CMD_ALL_SUBS_COMPLETE):
            account = wire.cmd_account(info)
            if account is None:
                what = "start" if cmd == wire.GATEWAY_CMD_ALL_SUBS_START else "complete"
                link.close(ClosedReason.PROTOCOL_VIOLATION,
                           "Account absent from receive-all-subscriptions-%s command" % what)
                return
            if cmd == wire.GATEWAY_CMD_ALL_SUBS_START:
                link.outbound.all_subs_start(account)
            else:
                link.outbound.all_subs_complete(account)
            return
        name = info.get("gateway")
        if name and name != link.gateway:
            if cmd == wire.GATEWAY_CMD_GOSSIP:
                self.implicit_gateway(name, info.get("gateway_urls") or [])
            return
        remote = self.remotes.get(link.gateway)
        if remote is not None and info.get("gateway_urls"):
            _add_urls(remote, info["gateway_urls"])
            self._forward_to_cluster(link.gateway, remote.urls)

    def implicit_gateway(self, name, urls):
        """Another cluster we heard of (gossip, an inbound): dial it if new,
        else learn its URLs (Go processImplicitGateway)."""
        if not name or name == self.name:
            return
        remote = self.remotes.get(name)
        if remote is None:
            if self.config.reject_unknown:
                return
            remote = RemoteGateway(name, [], implicit=True)
            _add_urls(remote, urls)
            if not remote.urls:
                return
            self.remotes[name] = remote
        else:
            _add_urls(remote, urls)
        if name not in self.out:
            self.dial(remote)

    def _forward_to_cluster(self, name, urls):
        """Tell every route about a cluster we have an outbound to (Go
        forwardNewGatewayToLocalCluster): ``server_id`` "GW" + ours, so an old
        server does not mistake it for a route."""
        if not urls:
            return
        frame = wire.encode_info(wire.gossip_info("GW" + self.server.server_id, name,
                                                  [_strip(u) for u in urls]))
        for route in self.server.links.links_of("route"):
            if route.carries("$G"):  # one connection of each peer's pool
                route.send(frame)

    # -- route cooperation (nats_link_info hooks) -----------------------------------------

    @hookimpl
    def nats_link_info(self, link, info):
        if link.link_kind.name == "route" and self.url:
            info["gateway_url"] = self.url

    @hookimpl
    def nats_link_info_received(self, link, info):
        if link.link_kind.name != "route":
            return
        url = info.get("gateway_url")
        if url and url != link.__dict__.get("_gateway_url"):
            link._gateway_url = url
            if self._add_cluster_url(url):
                self._send_async_info()
        if info.get("gateway") and info.get("gateway_cmd") == wire.GATEWAY_CMD_GOSSIP:
            self.implicit_gateway(info["gateway"], info.get("gateway_urls") or [])
        if not getattr(link, "_gateway_configs_sent", False):
            link._gateway_configs_sent = True
            for name in list(self.out):  # Go sendGatewayConfigsToRoute
                remote = self.remotes.get(name)
                if remote is not None and remote.urls:
                    link.send(wire.encode_info(wire.gossip_info(
                        "GW" + self.server.server_id, name, [_strip(u) for u in remote.urls])))

    @hookimpl
    def nats_client_closed(self, conn, reason, kind):
        url = getattr(conn, "_gateway_url", None)
        if url and kind == "route":
            count = self.urls.get(url, 0) - 1
            if count <= 0:
                self.urls.pop(url, None)
                self._send_async_info()
            else:
                self.urls[url] = count

    def _add_cluster_url(self, url):
        count = self.urls.get(url, 0)
        self.urls[url] = count + 1
        return count == 0

    def _send_async_info(self):
        """Inbounds learn our cluster's new gateway URLs (Go sendAsyncGatewayInfo)."""
        frame = wire.encode_info(self.server_info())
        for link in list(self.inbound.values()):
            link.send(frame)
        self.server.flush_touched()

    # -- interest bookkeeping for reply mapping --------------------------------------------

    @hookimpl
    def nats_interest_changed(self, account, sub, delta, origin):
        # Go gatewayUpdateSubInterest: every new subscription of the cluster
        # is "recent" for two seconds (replies to it get mapped).
        if delta > 0 and sub.queue is None and getattr(origin, "kind", None) != GATEWAY:
            self.recent.added(account.name, sub.subject, time.monotonic())

    # -- the forwarder ---------------------------------------------------------------------

    def forward(self, publisher, account, subject, reply, hdr, msg, result):
        """After local delivery of a message that entered here: send it to
        each remote cluster that wants it (GATEWAY.md sections 6, 7, 9).
        Returns True if it went to at least one gateway."""
        if subject[:5] == b"_GR_." and getattr(publisher, "kind", None) == CLIENT:
            # Reserved (Go processInboundClientMsg): a client may never publish there.
            publisher.send(b"-ERR 'Permissions Violation for Publish to \"%s\"'\r\n" % subject)
            return True  # answered: no no-responders on top
        order = self.out_order
        if not order:
            return False
        name = account.name
        if self.replies.count:
            routed = self.replies.lookup(name, subject, time.monotonic())
            if routed is not None and self._direct(account, routed, reply, hdr, msg):
                # A responder's answer to a mapped request goes home that way
                # only, never also by plain interest (Go handleGWReplyMap):
                # the requester would get it twice.
                return True
        if subject[:5] == b"_GR_." or subject[:4] == b"$GR.":
            return self._direct(account, subject, reply, hdr, msg)
        sent = False
        map_reply = bool(reply) and bool(self.recent.by_account) and \
            self.recent.should_map(name, reply, time.monotonic())
        for _link, interest in order:
            if interest.total_qsubs:
                break
        else:
            # No queue interest anywhere: plain interest decides, link by link.
            for link, interest in order:
                if interest.interest(name, subject)[0]:
                    link.send_gateway_msg(account, subject, self._reply_for(
                        link, reply, map_reply), hdr, msg, ())
                    sent = True
            return sent
        served = [g[0].queue for g in result.qsubs] if result.qsubs else ()
        for link, queues in plan(order, name, subject, served):
            link.send_gateway_msg(account, subject, self._reply_for(link, reply, map_reply),
                                  hdr, msg, queues)
            sent = True
        return sent

    def has_interest(self, account_name, subject):
        """Would a message on ``subject`` cross to some cluster (Go
        ``hasGatewayInterest``). A reply to a mapped request does: it goes
        home by its ``_GR_.`` prefix before the requester's interest has
        crossed (a pull request's fresh inbox)."""
        if self.replies.count and self.replies.lookup(
                account_name, subject, time.monotonic()) is not None:
            return True
        for _link, interest in self.out_order:
            plain, groups = interest.interest(account_name, subject)
            if plain or groups:
                return True
        return False

    def forward_run(self, publisher, account, items):
        """``forward`` for a run of header-less messages in publish order
        (``((subject, reply, payloads), result)``): each cluster gets the ones
        it wants framed at once, unless something needs the general path.
        Decided per subject from what each outbound already answered
        (``OutboundInterest.plain_known``): lookups done in C."""
        msgs = list(map(_first, items))
        subjects = list(map(_first, msgs))
        if any(map(_second, msgs)) or not self._plain_run_ok(subjects):
            for (subject, reply, payloads), result in items:
                for payload in payloads:
                    self.forward(publisher, account, subject, reply, 0, payload, result)
            return
        self._send_plain_run(account, msgs, subjects)

    def forward_lane(self, publisher, account, msgs, subjects, results):
        """``forward_run`` for a client's run without replies, its columns
        apart (``LinkKind.lane_forwarder``): (messages, payload bytes) of
        ``msgs`` where an outbound took them all, else None."""
        if not self._plain_run_ok(subjects):
            self.forward_run(publisher, account, list(zip(msgs, results, strict=True)))
            return None
        return self._send_plain_run(account, msgs, subjects)

    def _plain_run_ok(self, subjects):
        """Whether a run of plain messages on ``subjects`` may be decided by
        what the outbounds answered per subject: no reply mapping in use, no
        queue interest, no routed reply among them."""
        order = self.out_order
        return bool(order) and not self.replies.count and \
            not any(i.total_qsubs for _l, i in order) and not _any_routed(subjects)

    def _send_plain_run(self, account, msgs, subjects):
        """Each outbound's share of a run of plain messages, framed at once.
        Returns what ``send_run`` counted of a share that was the whole run."""
        name = account.name
        counted = None
        for link, interest in self.out_order:
            known = interest.plain_known(name)
            wanted = list(map(known.get, subjects))
            if None in wanted:  # subjects not seen since the peer's interest changed
                wants = interest.wants_plain
                wanted = [wants(name, s, known) if w is None else w
                          for s, w in zip(subjects, wanted, strict=True)]
            if all(wanted):
                counted = link.send_run(account, msgs, True)
            elif any(wanted):
                link.send_run(account, list(compress(msgs, wanted)), True)
        return counted

    def _reply_for(self, link, reply, mapped):
        """A fresh inbox's reply is mapped (its interest may not have crossed
        yet); old peers get the old prefix."""
        if not mapped:
            return reply
        return (self.old_reply_prefix if link.use_old_prefix else self.reply_prefix) + reply

    def _direct(self, account, subject, reply, hdr, msg):
        """A reply on its way home: straight to the cluster its prefix names."""
        parsed = wire.parse_routed_reply(subject)
        if parsed is None:
            return False
        link = self.out_by_hash.get(parsed[0])
        if link is None:
            return False
        link.send_gateway_msg(account, subject, reply, hdr, msg, ())
        return True

    # -- replies coming back ----------------------------------------------------------------

    def routed_subject_in(self, link, account, subject, reply, hdr, msg):
        """A message on ``_GR_.<cluster>.<server>.<subject>`` arriving on any
        link (Go handleGatewayReply): from a
        gateway for another server of ours -> over the route to it, prefix
        kept; ours -> delivered under the plain subject, then to the gateways
        that want it (not for ``_R_.`` service replies); another cluster ->
        to its gateway."""
        parsed = wire.parse_routed_reply(subject)
        if parsed is None:
            return
        cluster_hash, server_hash, plain, old = parsed
        if cluster_hash != (self.old_hash if old else self.cluster_hash):
            # Another cluster's reply, e.g. a leaf's responder answering the
            # mapped reply it was handed: straight to that cluster (Go
            # handleGatewayReply), dropped if we have no gateway to it.
            self._direct(account, subject, reply, hdr, msg)
            return
        if link.kind == GATEWAY and server_hash is not None and server_hash != self.server_hash:
            route = self._route_by_hash(server_hash, account.name)
            if route is not None:
                route.send_msg(account, subject, reply, hdr, msg, ())
                return
        result = account.sublist.match(plain)
        if result is not EMPTY_RESULT:
            targets = forwarding_targets(result, link, None)
            if targets is not None:
                link.account = account
                js = jsdeliver.split(reply) if reply else None
                if js is not None:
                    # a JetStream delivery to a fresh inbox (a fetch): clients get
                    # the stored subject and the ack reply, links the frame
                    link.link_frame = (plain, reply)
                    try:
                        deliver(targets, js[0], js[1], hdr, msg, link)
                    finally:
                        link.link_frame = None
                else:
                    deliver(targets, plain, reply, hdr, msg, link)
        if not plain.startswith(b"_R_."):
            self.forward(link, account, plain, reply, hdr, msg, result)

    def _route_by_hash(self, server_hash, account_name):
        for route in self.server.links.links_of("route"):
            if route.remote_id and wire.hash6(route.remote_id).encode() == server_hash \
                    and route.carries(account_name):
                return route
        return None

    def mapped_reply_in(self, link, account, subject, reply, hdr, msg, queues):
        """A request whose reply the origin cluster mapped, arriving on any
        link: clients see the plain reply (and their answer on it is sent
        straight home, ``forward``), links get the mapped one (Go
        processMsgResults creply, trackGWReply)."""
        parsed = wire.parse_routed_reply(reply)
        if parsed is None:
            return False
        plain = parsed[2]
        self.replies.track(account.name, plain, reply, time.monotonic())
        result = account.sublist.match(subject)
        if result is EMPTY_RESULT:
            return True
        targets = forwarding_targets(result, link, queues)
        if targets is None:
            return True
        local = SublistResult(tuple(s for s in targets.psubs if not s.conn.is_link),
                              tuple(g for g in targets.qsubs if not g[0].conn.is_link))
        linked = SublistResult(tuple(s for s in targets.psubs if s.conn.is_link),
                               tuple(g for g in targets.qsubs if g[0].conn.is_link))
        link.account = account
        if local.psubs or local.qsubs:
            js = jsdeliver.split(plain)  # a JetStream delivery: stored subject, ack reply
            if js is not None:
                deliver(local, js[0], js[1], hdr, msg, link)
            else:
                deliver(local, subject, plain, hdr, msg, link)
        if linked.psubs or linked.qsubs:
            deliver(linked, subject, reply, hdr, msg, link)
        return True

    # -- monitoring --------------------------------------------------------------------------

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/gatewayz", self.gatewayz)

    def gatewayz(self, server, query):
        return monitor.gatewayz(self, server, query)

    @hookimpl
    def nats_varz(self, server, varz):
        varz["gateway"] = monitor.varz_block(self)

    @hookimpl
    def nats_statsz(self, server, statsz):
        gateways = monitor.statsz_gateways(self)
        if gateways:
            statsz["gateways"] = gateways


def _first_non_local_ip():
    """This host's first address that is not loopback (nats-server
    getNonLocalIPsIfHostIsIPAny), or None."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return None
    for info in infos:
        ip = info[4][0]
        if not ip.startswith("127."):
            return ip
    # The address the kernel would send from (a UDP connect sends nothing).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            ip = probe.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def _strip(url):
    """``host:port`` of a URL (gossip and INFO carry them so)."""
    if "://" in url:
        url = url.split("://", 1)[1]
    return url.rsplit("@", 1)[-1].rstrip("/")


def _add_urls(remote, urls):
    for url in urls or ():
        full = url if "://" in url else "nats://" + url
        if all(_strip(u) != _strip(full) for u in remote.urls):
            remote.urls.append(full)
