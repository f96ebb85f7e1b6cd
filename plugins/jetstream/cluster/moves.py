"""Moving a stream to other servers (JETSTREAM-CLUSTER.md section 8), and the
APIs nats-server 2.15 has for it (srv:jetstream_api.go, jetstream_cluster.go):

* ``$JS.API.STREAM.UPDATE.<s>`` with a new ``placement`` (capi.py hands it
  here): the stream is placed again as for a create (another cluster, other
  tags), keeping its group name;
* ``$JS.API.ACCOUNT.STREAM.MOVE.<account>.<stream>`` (system account, body
  ``{"server", "cluster", "domain", "tags"}``, all optional): Go's
  ``jsLeaderServerStreamMoveRequest``: take one server (``server``, else the
  first peer) out of the stream's group, replaced in the same cluster if a
  peer fits, else the whole group goes to another cluster; ``tags`` narrow
  the choice for this move only. Answered as a stream update;
* ``$JS.API.STREAM.CANCEL_MOVE.<s>`` (the account) and
  ``$JS.API.ACCOUNT.STREAM.CANCEL_MOVE.<account>.<stream>`` (system
  account): roll an unfinished move back to the peers, cluster, replicas and
  placement it started from. Answered ``stream_cancel_move_response`` with
  the stream's info, 10129 when nothing is in flight.

A move is recorded in the assignment as Go's *desired state*:
``group.desired = {id, peers, cluster, move, created, origin{peers, cluster,
replicas, placement}}``. Unlike Go, our ``group.peers`` is the target at once
(each member follows it, admin.reconcile: the new peers join as learners and
catch up, the leader hands over, the old peers leave); ``desired`` marks the
move as in flight (Go's 10124 for another move or a scale) and keeps the
origin for a cancel. When the group's RAFT membership is the target, its
leader tells the meta leader on Go's ``$SYS.JSC.STREAM.ASSIGNMENT.RECONCILE``
and the meta leader clears ``desired``: the move is over.
"""

import secrets
import time

from .. import headers as H
from ..errors import ApiError
from ..jsonreq import dumps, loads
from . import meta as M

T = "io.nats.jetstream.api.v1."
ACCOUNT_MOVE = "$JS.API.ACCOUNT.STREAM.MOVE.*.*"
ACCOUNT_CANCEL = "$JS.API.ACCOUNT.STREAM.CANCEL_MOVE.*.*"
RECONCILE = "$SYS.JSC.STREAM.ASSIGNMENT.RECONCILE"
UPDATE_TYPE = "stream_update_response"
CANCEL_TYPE = "stream_cancel_move_response"
RESEND = 2.0  # seconds before the leader repeats "converged" for the same move


def desired(sa):
    return sa["group"].get("desired") or None


def in_flight(sa):
    """A move (or its rollback) still converging (Go's ``moveInFlight``)."""
    return bool((desired(sa) or {}).get("move"))


def is_move(old_cfg, new_cfg):
    """Go's ``isMoveRequest`` for an update: a placement given, and changed."""
    placement = new_cfg.get("placement") or None
    return placement is not None and placement != (old_cfg.get("placement") or None)


def desired_info(m, sa):
    """STREAM.INFO ``cluster.desired`` as Go 2.15.1 shows it while a move is
    in flight: the target cluster and peers, and what a cancel returns to."""
    d = desired(sa)
    if d is None:
        return None
    out = {"created": d.get("created", ""), "name": d.get("cluster", "")}
    replicas = [{"name": m.peer_name(p), "peer": p} for p in d.get("peers", ())]
    if replicas:
        out["replicas"] = replicas
    origin = d.get("origin")
    if origin:
        out["origin"] = {"replicas": origin["replicas"]}
        if origin.get("placement"):
            out["origin"]["placement"] = origin["placement"]
    return out


def _merge_reasons(errors):
    """One 10005 for placements refused in several clusters: their reasons
    once each, in the order first seen (Go accumulates a selectPeerError)."""
    seen = []
    for err in errors:
        for part in err.description.split(", ")[1:]:
            if part not in seen:
                seen.append(part)
    return ApiError(10005, err=", ".join(["no suitable peers for placement"] + seen))


def _due(sent, key):
    """True (and noted in ``sent``) unless ``key`` was sent in the last
    RESEND seconds: a report or its answer repeats until it takes effect."""
    now = time.monotonic()
    if now - sent.get(key, -RESEND) < RESEND:
        return False
    if len(sent) > 1000:
        sent.clear()
    sent[key] = now
    return True


class Moves:
    """The meta leader's side of moves, and a stream leader's report that
    its group has arrived; one per ClusterManager."""

    def __init__(self, manager):
        self.m = manager
        self.reported = {}   # desired id -> monotonic time the leader last reported it
        self.clearing = {}   # desired id -> monotonic time the meta leader proposed its end

    def start(self):
        client = self.m.client
        client.subscribe(ACCOUNT_MOVE, self.m.admin.system(self.account_move, UPDATE_TYPE))
        client.subscribe(ACCOUNT_CANCEL, self.m.admin.system(self.account_cancel, CANCEL_TYPE))
        client.subscribe(RECONCILE, self._on_reconcile)

    # -- starting a move (meta leader) ---------------------------------------------------

    def check_update(self, sa, cfg):
        """Go's refusals for an update while a move is in flight; True when
        ``cfg`` is a move."""
        move = is_move(sa["stream"], cfg)
        scale = int(cfg.get("num_replicas") or 1) != int(sa["stream"].get("num_replicas") or 1)
        if move and scale:
            raise ApiError(10123)
        if (move or scale) and in_flight(sa):
            raise ApiError(10124)
        return move

    def update(self, sa, cfg, reply):
        """STREAM.UPDATE with a new placement: placed as a create would be."""
        m = self.m
        info = m.js.api.client_info or {}
        try:
            cluster, peers = M.place_stream(
                m.placement_peers(), cfg, info.get("cluster") or m.cluster_name,
                info.get("alts") or (), m.js.config.unique_tag or None)
        except M.MetaError as err:
            raise ApiError(10005, err=err.description) from None
        self.propose(sa, peers, cluster, cfg, reply, UPDATE_TYPE)

    def propose(self, sa, peers, cluster, cfg, reply, rtype, sys=False, origin=None):
        """UPDATE_STREAM with ``peers`` in ``cluster`` as the move's target."""
        group = sa["group"]
        old = desired(sa)
        if origin is None:
            origin = (old or {}).get("origin") or {
                "peers": list(group["peers"]), "cluster": group.get("cluster") or "",
                "replicas": int(sa["stream"].get("num_replicas") or 1),
                "placement": sa["stream"].get("placement") or None}
        body = M.assignment_body(sa)
        body["stream"] = cfg
        body["group"] = dict(group, peers=list(peers), cluster=cluster)
        body["group"].pop("preferred", None)
        body["group"]["desired"] = {
            "id": secrets.token_hex(8), "peers": list(peers), "cluster": cluster, "move": True,
            "created": H.rfc3339(time.time_ns()), "origin": origin}
        if reply:
            body["update_reply"] = reply  # the stream leader answers once applied
            if rtype != UPDATE_TYPE:
                body["update_type"] = rtype
            if sys:
                body["update_sys"] = True
        self.m.propose(M.encode_op(M.UPDATE_STREAM, body))

    # -- the system account's requests (meta leader) -------------------------------------

    def _target(self, subject):
        """``(account, sa)`` named by ``...MOVE.<account>.<stream>``: Go's 10035
        and 10059."""
        tokens = subject.split(".")
        account, stream = tokens[5], tokens[6]
        if self.m.server.accounts.get(account) is None:
            raise ApiError(10035)
        sa = self.m.state.stream(account, stream)
        if sa is None:
            raise ApiError(10059)
        return account, sa

    def account_move(self, payload, reply, subject):
        m = self.m
        text = bytes(payload or b"").strip()
        req = loads(text) if text else {}
        if not isinstance(req, dict):
            raise ApiError(10025, err="json: cannot unmarshal %s into Go value"
                           % type(req).__name__)
        server = req.get("server") or ""
        src = None
        if server:
            src = next((pid for pid, info in m.peers.items() if info.name == server and (
                not req.get("cluster") or info.cluster == req["cluster"])), None)
        _, sa = self._target(subject)
        cfg = sa["stream"]
        d = desired(sa)
        current = list(d["peers"] if d else sa["group"]["peers"])
        cluster = (d or {}).get("cluster") or sa["group"].get("cluster") or m.cluster_name
        if server:
            if src is None:
                raise ApiError(10044)
            if src not in current:
                raise ApiError(10040)
            current.remove(src)
            current.insert(0, src)  # the one dropped from the left
        replicas = int(cfg.get("num_replicas") or 1)
        tags = list((cfg.get("placement") or {}).get("tags") or ()) + list(req.get("tags") or ())
        peers, target, errors = self._move_peers(current, cluster, replicas, tags, cfg)
        if peers is None:
            raise _merge_reasons(errors)
        if in_flight(sa):
            raise ApiError(10124)
        m.log.info("Requested move for stream '%s > %s' R=%d from %s to %s" % (
            sa["client"]["account"], cfg["name"], replicas,
            [m.peer_name(p) for p in current], [m.peer_name(p) for p in peers]))
        self.propose(sa, peers, target, cfg, reply, UPDATE_TYPE, sys=True)
        return None  # the stream leader answers once applied

    def _move_peers(self, current, cluster, replicas, tags, cfg):
        """Go's choice: one peer more in the stream's cluster (the first of
        ``current`` then drops out), else ``replicas`` new peers in another."""
        m = self.m
        unique = m.js.config.unique_tag or None
        size = max(int(cfg.get("max_bytes") or 0), 0)
        storage = cfg.get("storage", "file")
        peers = m.placement_peers()
        errors = []
        try:
            chosen = M.select_peer_group(peers, replicas + 1, cluster, tags, unique, size,
                                         existing=current, storage=storage)
            return chosen[-replicas:], cluster, errors
        except M.MetaError as err:
            errors.append(err)
        for other in sorted({p.cluster for p in peers} - {cluster}):
            try:
                chosen = M.select_peer_group(peers, replicas, other, tags, unique, size,
                                             storage=storage)
                return chosen, other, errors
            except M.MetaError as err:
                errors.append(err)
        return None, None, errors

    def account_cancel(self, payload, reply, subject):
        _, sa = self._target(subject)
        return self.cancel(sa, reply, sys=True)

    def stream_cancel(self, jsa, args, payload):
        """``STREAM.CANCEL_MOVE.<s>`` in the stream's account (meta leader)."""
        sa = self.m.state.stream(jsa.account.name, args[0] if args else "")
        if sa is None:
            raise ApiError(10059)
        return self.cancel(sa, self.m.js.api.reply)

    def cancel(self, sa, reply, sys=False):
        """Go's ``jsClusteredStreamCancelMoveLocked``: back to the origin, as a
        move of its own (still in flight until the group is there)."""
        d = desired(sa)
        if d is None or not d.get("origin"):
            raise ApiError(10129)
        origin = d["origin"]
        cfg = dict(sa["stream"], num_replicas=origin["replicas"])
        if origin.get("placement"):
            cfg["placement"] = origin["placement"]
        else:
            cfg.pop("placement", None)
        self.propose(sa, origin["peers"], origin.get("cluster") or "", cfg, reply, CANCEL_TYPE,
                     sys=sys, origin=origin)
        return None  # the stream leader answers once applied

    # -- the end of a move ----------------------------------------------------------------

    def converged(self, group):
        """Called on a stream leader whose RAFT membership is its assignment's
        peers: tell the meta leader, which ends the move (Go's reconcile
        request with ``match``)."""
        sa, node = group.sa, group.node
        d = desired(sa)
        if d is None or node.core.learners or set(node.peers) != set(sa["group"]["peers"]):
            return
        if not _due(self.reported, d["id"]):
            return
        self.m.client.publish(RECONCILE, dumps({
            "account": sa["client"]["account"], "stream": sa["stream"]["name"],
            "id": d["id"], "term": node.term, "meta_peers": sorted(node.peers),
            "match": True}))

    def _on_reconcile(self, sub, subject, reply, hdr, payload):
        m = self.m
        if not m.is_meta_leader or m.disabled:
            return
        try:
            req = loads(payload)
            sa = m.state.stream(req["account"], req["stream"])
        except (ApiError, KeyError, TypeError):
            return
        d = desired(sa) if sa is not None else None
        if d is None or d.get("id") != req.get("id") or not req.get("match") or \
                sorted(req.get("meta_peers") or ()) != sorted(sa["group"]["peers"]):
            return
        if not _due(self.clearing, d["id"]):
            return
        body = M.assignment_body(sa)
        body["group"] = {k: v for k, v in sa["group"].items() if k != "desired"}
        body["group"]["cluster"] = d.get("cluster") or sa["group"].get("cluster")
        m.log.info("stream_move_done", stream=sa["stream"]["name"],
                   cluster=body["group"]["cluster"])
        m.propose(M.encode_op(M.UPDATE_STREAM, body))
