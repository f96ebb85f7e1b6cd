"""Who answers a ``$JS.API`` request in a cluster. Every server's account
subscription receives every request (as in Go); exactly one answers:

* stream create, update, delete, names, list and account info: the meta
  leader. The server the requester is connected to (the *entry* server: the
  request came from a client, a leaf or an internal client, not over a route
  or gateway from another of our JetStream servers) hands the request to the
  meta leader on ``$JSC.API.<leader id>`` in the requester's account, with a
  ``Nats-Request-Info`` header naming the requester's cluster and the other
  clusters by RTT, as Go's service import does. (In the account, not the
  system account: the forward then follows the requester's fresh inbox
  interest on the same route, and a gateway maps its reply to ``_GR_.``, so
  the answer finds its way back before the inbox interest has crossed.) That is how the meta leader,
  wherever it is in the super-cluster, places a stream in the requester's
  cluster by default. Copies of the request that reach the others over links
  are left to the entry server. With no meta leader the entry server answers
  Go's 10008;
* requests about one stream (info, messages, purge, consumers, step-down):
  the stream's leader, from its local copy through the single-server code;
  while the group has no leader, a member answers INFO from its own state
  (no ``cluster.leader``, as Go); a stream the meta group does not know: the
  meta leader answers 10059.

:meth:`ClusterApi.route` returns the function that answers here (same
signature as the single-server handlers), or None to stay silent.
"""

import json
import time

from pluggy_nats.links.kinds import CLIENT_ORIGIN

from .. import headers as H
from ..errors import ApiError
from ..jsonreq import Fields, loads
from ..streamcfg import _collide, check_update, same_config
from . import meta as M

META_KEYS = {
    ("INFO",): "account_info",
    ("STREAM", "CREATE"): "stream_create",
    ("STREAM", "UPDATE"): "stream_update",
    ("STREAM", "DELETE"): "stream_delete",
    ("STREAM", "NAMES"): "stream_names",
    ("STREAM", "LIST"): "stream_list",
    ("STREAM", "CANCEL_MOVE"): "stream_cancel_move",
}
FORWARD = "$JSC.API.%s"      # a meta request handed to the meta leader (system account)
REQUEST_INFO = "Nats-Request-Info"
STEPDOWN_KEYS = {("STREAM", "LEADER", "STEPDOWN"), ("CONSUMER", "LEADER", "STEPDOWN")}
UNSUPPORTED = {("STREAM", "RESTORE")}
# Per-stream operations the meta leader answers itself (Admin's methods).
PEER_OPS = {("STREAM", "PEER", "REMOVE"): "stream_peer_remove",
            ("STREAM", "PEER", "EVACUATE"): "stream_peer_evacuate"}


def _meta_error(err):
    out = ApiError(10005, err=err.description)
    out.code, out.err_code = err.code, err.err_code
    return out


class ClusterApi:
    def __init__(self, manager):
        self.m = manager

    def route(self, jsa, key, fn, args):
        m = self.m
        if m.disabled:
            return None  # removed from the meta group: JetStream is off here
        if key in PEER_OPS:
            if m.is_meta_leader:
                return getattr(m.admin, PEER_OPS[key])
            return self.no_meta_leader if m.meta_leader is None else None
        if key in META_KEYS or key in UNSUPPORTED:
            api = m.js.api
            if api.client_info is None:  # not handed to us by an entry server
                if self._relayed(api.publisher):
                    return None  # its entry server hands it to the meta leader
                api.client_info = self.local_info(jsa)
                if not m.is_meta_leader:
                    return self.no_meta_leader if m.meta_leader is None else self.forward
            if m.is_meta_leader:
                return getattr(self, META_KEYS.get(key, "unsupported"))
            return None  # leadership moved on: the requester retries
        name = args[0] if args else ""
        sa = m.state.stream(jsa.account.name, name)
        if sa is None:
            if m.is_meta_leader:
                return fn  # the single-server handler answers "not found"
            target = self.leader_across(jsa, None)
            if target is not None:
                return self._forward_to(target)  # not applied here yet: ask the meta leader
            return self.no_meta_leader if m.meta_leader is None else None
        group = m.groups.get((jsa.account.name, name))
        if group is None or not group.ready:
            target = self.leader_across(jsa, sa)
            if target is not None:
                return self._forward_to(target)
        if group is None:
            return None  # not a peer of this stream
        if group.ready:
            if key in STEPDOWN_KEYS:
                return self.leader_stepdown
            return fn
        if key == ("STREAM", "INFO") and group.node.leader is None:
            return fn
        return None

    # -- the entry server: who asked, and handing it on ---------------------------------

    def _relayed(self, publisher):
        """True when the request came over a route or gateway from another of
        our JetStream servers (the entry server, which forwards it)."""
        if publisher is None or getattr(publisher, "origin", CLIENT_ORIGIN) == CLIENT_ORIGIN \
                or not getattr(publisher, "is_link", False):
            return False
        if publisher.origin not in ("route", "gateway"):
            return False  # a leaf: its servers are not in our meta group
        name = publisher.remote_name
        return any(info.name == name for info in self.m.peers.values())

    def local_info(self, jsa):
        """Go's ClientInfo for a request entering here: the account, this
        server and cluster, the other clusters in RTT order (``alts``). A
        request relayed by a server that is not ours (a Go server without our
        JetStream) counts as entering in the cluster of the link it came on."""
        m = self.m
        cluster = m.cluster_name
        publisher = m.js.api.publisher
        if getattr(publisher, "origin", None) == "gateway" and getattr(publisher, "gateway", None):
            cluster = publisher.gateway
        alts = []
        if m.gateway is not None:
            alts = [link.gateway for link, _ in m.gateway.out_order if link.gateway != cluster]
        return {"acc": jsa.account.name, "server": m.server.server_name, "cluster": cluster,
                "alts": alts}

    def forward(self, jsa, args, payload):
        self.send_to(self.m.meta_leader, jsa, self.m.js.api.client_info, self.m.js.api.subject,
                     self.m.js.api.reply, self.m.js.api.hdr, payload)
        return None

    def send_to(self, target, jsa, client_info, subject, reply, hdr, payload):
        """Hand a request to the server ``target`` on ``$JSC.API.<target>`` in
        the requester's account, ``Nats-Request-Info`` naming who asked."""
        info = dict(client_info or self.local_info(jsa), subject=subject)
        info["hops"] = info.get("hops", 0) + 1
        line = ("%s: %s\r\n" % (REQUEST_INFO, json.dumps(info, separators=(",", ":")))).encode()
        hdr = bytes(hdr) if hdr else b"NATS/1.0\r\n\r\n"
        head, _, rest = hdr.partition(b"\r\n")
        jsa.client.publish(FORWARD % target, payload or b"", reply=reply,
                           headers=head + b"\r\n" + line + rest, flush=False)

    # -- across a leaf link extending a hub's JetStream (extend.py) ---------------------

    def leader_across(self, jsa, sa):
        """Where to hand a request about one stream when a leaf link extends
        the hub's JetStream, else None. The account's ``$JS.API.>`` is denied
        on a leaf link (as Go), so a server on the other side never sees the
        request: the entry server hands it to the stream's leader on
        ``$JSC.API.<leader>`` in the account, which the account's leaf link
        carries (Go carries the API in the system account). A stream this
        server has not applied yet (``sa`` None) is asked of the meta leader
        when that is across the link; a request handed to us about a stream
        we do not lead goes on to its leader, once more at most (``hops``)."""
        m, api = self.m, self.m.js.api
        if not m.extend and not any(m.sides.values()):
            return None  # no extending leaf anywhere
        info = api.client_info
        if info is None:
            if self._relayed(api.publisher):
                return None  # a relayed copy: its entry server forwards
        elif info.get("hops", 0) >= 2:
            return None
        if sa is None:
            leader = m.meta_leader
            if info is not None or leader is None or not m.across_link(leader):
                return None
            return leader
        leader = m.stream_leaders.get(sa["group"]["name"])
        peers = sa["group"]["peers"]
        if leader is None and len(peers) == 1:
            leader = peers[0]
        if leader is None or leader == m.id or not m.peer_online(leader):
            return None
        if info is None and not m.across_link(leader):
            return None  # on our side: it has the request itself
        return leader

    def _forward_to(self, target):
        def forward(jsa, args, payload):
            api = self.m.js.api
            self.send_to(target, jsa, api.client_info, api.subject, api.reply, api.hdr,
                         payload)
            return None
        return forward

    def forward_next(self, jsa, args, reply, hdr, payload, subject):
        """A pull request (CONSUMER.MSG.NEXT) for a stream led across an
        extending leaf link: handed to its leader. True when forwarded."""
        m = self.m
        if not args or (not m.extend and not any(m.sides.values())):
            return False  # no extending leaf anywhere
        sa = self.m.state.stream(jsa.account.name, args[0])
        group = self.m.groups.get((jsa.account.name, args[0]))
        if group is not None and group.ready:
            return False
        target = self.leader_across(jsa, sa)
        if target is None:
            return False
        self.send_to(target, jsa, self.m.js.api.client_info, subject, reply, hdr, payload)
        return True

    def direct_get(self, jsa, args, reply, hdr, payload, subject):
        """``DIRECT.GET`` of a stream whose every member is across an
        extending leaf link (where the account's ``$JS.API.>`` is denied):
        the entry server hands it to the stream's leader, which answers from
        its copy; a stream the entry server has not applied yet goes through
        the meta leader, as the other requests about one stream. Anywhere
        else the stream's own queue subscriptions answer."""
        m = self.m
        if not args or (not m.extend and not any(m.sides.values())):
            return  # no extending leaf anywhere
        handed = m.js.api.client_info is not None
        stream = jsa.streams.get(args[0])
        if handed and stream is not None and stream.is_leader:
            if stream.cfg.get("allow_direct"):
                stream._on_direct_get(None, subject.encode(), reply.encode(), hdr, payload)
            return
        sa = m.state.stream(jsa.account.name, args[0])
        if sa is not None and (not sa["stream"].get("allow_direct") or not handed and not all(
                m.across_link(p) for p in sa["group"]["peers"])):
            return  # a member on our side answers (or Go's silence)
        target = self.leader_across(jsa, sa)
        if target is not None:
            self.send_to(target, jsa, m.js.api.client_info, subject, reply, hdr, payload)

    def serve_account(self, jsa):
        """Take the meta requests entry servers hand us in ``jsa``'s account."""
        def on_forwarded(sub, subject, reply, hdr, payload):
            try:
                info = json.loads(H.parse(hdr).get(REQUEST_INFO) or "")
                tokens = info["subject"].split(".")
            except (ValueError, KeyError, TypeError, AttributeError):
                return
            if tokens[:2] != ["$JS", "API"] or not reply:
                return
            info["acc"] = jsa.account.name  # the account is the one it came in
            api = self.m.js.api
            api.publisher, api.client_info = None, info
            api.dispatch(jsa, tokens[2:], bytes(reply).decode(), hdr, payload, info["subject"])
        jsa.subs.append(jsa.client.subscribe(FORWARD % self.m.id, on_forwarded))

    # -- meta leader ----------------------------------------------------------------------

    def no_meta_leader(self, jsa, args, payload):
        raise ApiError(10008)

    def unsupported(self, jsa, args, payload):
        raise ApiError(10052, err="not supported by this server in a cluster yet")

    def _streams(self, account):
        return [sa for sa in self.m.state.streams.values()
                if sa["client"]["account"] == account]

    def account_info(self, jsa, args, payload):
        out = self.m.js.api.account_info(jsa, args, payload)
        out["streams"] = len(self._streams(jsa.account.name))
        return out

    def _check_overlap(self, jsa, cfg):
        for sa in self._streams(jsa.account.name):
            other = sa["stream"]
            if other["name"] == cfg["name"]:
                continue
            for a in cfg.get("subjects", []):
                for b in other.get("subjects", []):
                    if _collide(a, b):
                        raise ApiError(10065)

    def stream_create(self, jsa, args, payload):
        m, api = self.m, self.m.js.api
        cfg = api._check_stream_request(jsa, args, payload, create=True)
        account = jsa.account.name
        existing = m.state.stream(account, cfg["name"])
        if existing is not None:
            if same_config(existing["stream"], cfg):
                # the stream leader answers with the stream's info
                jsa.client.publish("$JS.API.STREAM.INFO.%s" % cfg["name"], b"",
                                   reply=api.reply)
                return None
            raise ApiError(10058)
        if jsa.limits.max_streams >= 0 and len(self._streams(account)) >= \
                jsa.limits.max_streams:
            raise ApiError(10027)
        self._check_overlap(jsa, cfg)
        try:
            info = api.client_info or {}
            data = M.propose_stream(m.state, account, cfg, m.placement_peers(),
                                    info.get("cluster") or m.cluster_name,
                                    alternates=info.get("alts") or (),
                                    created=H.rfc3339(time.time_ns()),
                                    client={"account": account,
                                            "cluster": info.get("cluster") or m.cluster_name},
                                    reply=api.reply, unique_tag=m.js.config.unique_tag or None)
        except M.MetaError as err:
            raise _meta_error(err) from None
        m.propose(data)
        return None  # the stream's first leader answers

    def stream_update(self, jsa, args, payload):
        m, api = self.m, self.m.js.api
        cfg = api._check_stream_request(jsa, args, payload)
        sa = m.state.stream(jsa.account.name, cfg["name"])
        if sa is None:
            raise ApiError(10059)
        check_update(sa["stream"], cfg, clustered=True)
        self._check_overlap(jsa, cfg)
        if m.moves.check_update(sa, cfg):  # a new placement (moves.py)
            m.moves.update(sa, cfg, api.reply)
            return None
        replicas = max(int(cfg.get("num_replicas") or 1), 1)
        peers = sa["group"]["peers"]
        if replicas != len(peers):  # scale up or down (admin.py)
            peers = m.admin.scaled_peers(sa, replicas, cfg)
        m.admin.propose_group(sa, peers, cfg, reply=api.reply)
        return None

    def stream_cancel_move(self, jsa, args, payload):
        return self.m.moves.stream_cancel(jsa, args, payload)

    def stream_delete(self, jsa, args, payload):
        m = self.m
        try:
            data = M.propose_remove_stream(m.state, jsa.account.name, args[0] if args else "",
                                           reply=m.js.api.reply)
        except M.MetaError as err:
            raise _meta_error(err) from None
        m.propose(data)
        return None  # answered when committed

    def _filtered(self, jsa, payload):
        f = Fields(loads(payload), "JSApiStreamNamesRequest")
        subject = f.str("subject")
        offset = max(0, f.int("offset", 0))
        streams = sorted(self._streams(jsa.account.name), key=lambda sa: sa["stream"]["name"])
        if subject:
            streams = [sa for sa in streams
                       if any(_collide(subject, x) for x in sa["stream"].get("subjects", []))]
        return streams, offset

    def stream_names(self, jsa, args, payload):
        from ..api import STREAM_NAMES_LIMIT

        streams, offset = self._filtered(jsa, payload)
        page = streams[offset:offset + STREAM_NAMES_LIMIT]
        return {"total": len(streams), "offset": offset, "limit": STREAM_NAMES_LIMIT,
                "streams": [sa["stream"]["name"] for sa in page]}

    def stream_list(self, jsa, args, payload):
        from ..api import STREAM_LIST_LIMIT

        streams, offset = self._filtered(jsa, payload)
        page = streams[offset:offset + STREAM_LIST_LIMIT]
        return {"total": len(streams), "offset": offset, "limit": STREAM_LIST_LIMIT,
                "streams": [self._list_info(jsa, sa) for sa in page]}

    def _list_info(self, jsa, sa):
        group = self.m.groups.get((jsa.account.name, sa["stream"]["name"]))
        if group is not None:
            return group.stream.info(cluster=True)
        # hosted elsewhere: what the meta group knows (Go asks the leaders)
        return {"config": jsa.stamp(sa["stream"]), "created": sa.get("created", ""),
                "state": {"messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0,
                          "consumer_count": 0},
                "cluster": {"name": sa["group"].get("cluster") or self.m.cluster_name}}

    # -- stream leader ----------------------------------------------------------------------

    def leader_stepdown(self, jsa, args, payload):
        from .admin import preferred_placement

        group = self.m.groups[(jsa.account.name, args[0])]
        req = loads(payload) if payload and bytes(payload).strip() else {}
        placement = req.get("placement") if isinstance(req, dict) else None
        # Go's error before anything moves
        group.step_down(preferred_placement(self.m, group.node, placement))
        return {"success": True}
