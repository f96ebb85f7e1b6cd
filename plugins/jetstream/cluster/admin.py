"""Operations on where streams live (JETSTREAM-CLUSTER.md section 4), each
answered as nats-server answers it (srv:jetstream_api.go):

* ``$JS.API.META.LEADER.STEPDOWN`` (system account, meta leader): hands the
  meta group's leadership over, to ``placement.preferred`` or a peer that
  matches ``placement.cluster``/``tags`` (:func:`preferred_placement`, the
  same choice as a stream step-down);
* ``$JS.API.SERVER.REMOVE`` (system account, meta leader): removes a server
  from the meta group, answers once the removal is committed; the streams it
  carried get a replacement peer where placement finds one. The removed
  server disables its clustered JetStream (Go's log line and
  ``$JS.EVENT.ADVISORY.SERVER.REMOVED``) until it is restarted, when it
  joins again as a new peer;
* ``$JS.API.STREAM.PEER.REMOVE.<stream>`` (the account, meta leader):
  replaces one peer of a stream's group, or answers Go's 10075 when no
  replacement exists;
* ``$JS.API.STREAM.PEER.EVACUATE.<stream>`` (the account) and
  ``$JS.API.SERVER.EVACUATE`` (system account, every stream on a server),
  nats-server 2.15's: the same replacement, the peer staying until its
  replacement caught up (which is how every replacement goes here);
* replica changes in ``STREAM.UPDATE`` (:func:`scaled_peers`).

The meta leader only changes a stream's assignment (its ``group.peers``);
each stream group follows its assignment by itself (:func:`reconcile`, every
second and after each assignment change): its leader adds the new peers (RAFT
learners, promoted once caught up) before it removes anyone, one change at a
time, and steps down first when it is itself taken out; a member taken out
stops and deletes its copy once the group's configuration no longer holds it.
"""

import random
import time

import gevent

from pluggy_nats.raft import ChangeInProgress, NotLeader

from .. import advisories
from ..errors import ApiError
from ..jsonreq import dumps, loads
from . import meta as M

T = "io.nats.jetstream.api.v1."
META_STEPDOWN = "$JS.API.META.LEADER.STEPDOWN"
SERVER_REMOVE = "$JS.API.SERVER.REMOVE"
SERVER_EVACUATE = "$JS.API.SERVER.EVACUATE"
REMOVE_WAIT = 30.0  # seconds the meta leader waits for a removal to commit
ORPHAN_AFTER = 10.0  # seconds a member taken out waits to hear its removal
SILENT_AFTER = 5     # heartbeats without an answer: a learner counts as down


def preferred_placement(m, node, placement):
    """Go's ``getStepDownPreferredPlacement``: the peer id of ``node``'s group
    to hand leadership to, None for "any" (no placement)."""
    if not placement:
        return None
    if not isinstance(placement, dict):
        raise ApiError(10025, err="json: cannot unmarshal placement")
    preferred = placement.get("preferred") or ""
    if preferred:
        pid = next((p for p in sorted(node.peers) if m.peer_name(p) == preferred), None)
        if pid is not None and pid == node.id:
            raise ApiError(10005, err='preferred server "%s" is already leader' % preferred)
        if pid is None:
            raise ApiError(10005, err='preferred server "%s" not known' % preferred)
        return pid
    cluster, tags = placement.get("cluster") or "", placement.get("tags") or ()
    possible = []
    for pid in sorted(node.peers):
        info = m.peers.get(pid)
        if pid == node.id or info is None or not m.peer_online(pid):
            continue
        if cluster and info.cluster != cluster:
            continue
        if any(t not in info.tags for t in tags):
            continue
        possible.append(pid)
    if not possible:
        raise ApiError(10005, err="no replacement peer connected")
    return random.choice(possible)


def _is_empty(payload):
    """Go's ``isEmptyRequest``: no body, ``{}`` or a JSON object of nothing."""
    text = bytes(payload or b"").strip()
    if not text or text == b"{}":
        return True
    try:
        value = loads(text)
    except ApiError:
        return False
    return isinstance(value, dict) and not value


def _request(payload):
    req = loads(payload)  # 10025 for bad JSON
    if not isinstance(req, dict):
        raise ApiError(10025, err="json: cannot unmarshal %s into Go value"
                       % type(req).__name__)
    return req


class Admin:
    """The meta leader's side of the operations; one per ClusterManager."""

    def __init__(self, manager):
        self.m = manager
        self.removing = None     # peer id whose removal awaits its commit
        self.removed = {}        # peer id -> boot of the server we removed (not re-added)

    def start(self):
        client = self.m.client
        client.subscribe(META_STEPDOWN, self.system(self.meta_stepdown,
                                                     "meta_leader_stepdown_response"))
        client.subscribe(SERVER_REMOVE, self.system(self.server_remove,
                                                     "meta_server_remove_response"))
        client.subscribe(SERVER_EVACUATE, self.system(self.server_evacuate,
                                                       "meta_server_evacuate_response"))

    def system(self, fn, rtype):
        """A system-account request ``fn(payload, reply, subject)``: only the
        meta leader answers (Go: the others stay silent); ``fn`` returns the
        body, or None when the answer comes later."""
        def on_request(sub, subject, reply, hdr, payload):
            if not reply or not self.m.is_meta_leader or self.m.disabled:
                return
            reply = bytes(reply).decode()
            try:
                body = fn(payload, reply, bytes(subject).decode())
                if body is None:
                    return
                response = dict({"type": T + rtype}, **body)
            except ApiError as err:
                response = {"type": T + rtype, "error": err.as_dict()}
            self.m.client.publish(reply, dumps(response))
        return on_request

    # -- the meta group ---------------------------------------------------------------

    def meta_stepdown(self, payload, reply, subject=META_STEPDOWN):
        m = self.m
        preferred = None
        text = bytes(payload or b"").lstrip()
        if text[:1] in (b"{", b"["):
            req = _request(payload)
            preferred = preferred_placement(m, m.meta, req.get("placement"))
        try:
            m.meta.step_down(preferred)
        except (NotLeader, ValueError) as exc:
            raise ApiError(10041, err=str(exc)) from None
        return {"success": True}

    def server_remove(self, payload, reply, subject=SERVER_REMOVE):
        m = self.m
        if _is_empty(payload):
            raise ApiError(10003)
        req = _request(payload)
        if self.removing is not None:
            raise ApiError(10202)
        name, pid = req.get("peer") or "", req.get("peer_id") or ""
        found = None
        for peer in sorted(m.meta.peers):
            if (pid and peer == pid) or (not pid and m.peer_name(peer) == name):
                found = peer
                break
        if found is None:
            raise ApiError(10044)
        try:
            index = m.meta.remove_peer(found)
        except ChangeInProgress:
            raise ApiError(10202) from None
        except NotLeader as exc:
            raise ApiError(10041, err=str(exc)) from None
        self.removing = found
        # not added back by the next tick (it is out of the peers from now on)
        self.removed[found] = m.boots.get(found)
        m.server.spawn(self._answer_removed, found, index, reply)
        return None  # answered once the removal is committed (Go)

    def _answer_removed(self, peer, index, reply):
        m = self.m
        deadline = time.monotonic() + REMOVE_WAIT
        try:
            while m.meta.core.commit_index < (index or 0):
                if time.monotonic() > deadline or not m.is_meta_leader:
                    return
                gevent.sleep(0.05)
            m.log.info("jetstream_meta_peer_removed", peer=m.peer_name(peer))
            m.client.publish(reply, dumps({"type": T + "meta_server_remove_response",
                                           "success": True}))
            self.replace_missing()
        finally:
            self.removing = None

    def may_add(self, pid):
        """A server we removed is not added back while it runs (it disables
        its JetStream); restarted (a new boot), it joins again."""
        if pid in self.removed and self.removed[pid] == self.m.boots.get(pid):
            return False
        self.removed.pop(pid, None)
        return True

    # -- stream groups (meta leader) ----------------------------------------------------

    def stream_peer_remove(self, jsa, args, payload):
        """``STREAM.PEER.REMOVE.<stream>``, Go's checks in Go's order. Unlike
        Go's, the peer leaves once its replacement caught up (as an
        evacuation does), never before."""
        return self._stream_peer_out(jsa, args, payload)

    def stream_peer_evacuate(self, jsa, args, payload):
        """``STREAM.PEER.EVACUATE.<stream>`` (nats-server 2.15): the peer
        stays until its replacement caught up (the group's reconcile adds the
        new peer as a learner first), answered as Go answers it."""
        return self._stream_peer_out(jsa, args, payload, evacuating=True)

    def _stream_peer_out(self, jsa, args, payload, evacuating=False):
        m = self.m
        if _is_empty(payload):
            raise ApiError(10003)
        req = _request(payload)
        peer = req.get("peer") or ""
        if not peer:
            raise ApiError(10003)
        sa = m.state.stream(jsa.account.name, args[0] if args else "")
        if sa is None:
            raise ApiError(10059)
        members = list(sa["group"]["peers"])
        if evacuating:  # Go's isGroupMember: a move's target counts too
            members += [p for p in (sa["group"].get("desired") or {}).get("peers", ())
                        if p not in members]
        # a server name or a peer id
        pid = next((p for p in members if m.peer_name(p) == peer), None) or \
            (peer if peer in members else None)
        if pid is None:
            raise ApiError(10040)
        if pid not in sa["group"]["peers"]:
            return {"success": True}  # only the move's target: it is not placed yet
        if not self.remap(sa, pid, require_replicas=True):
            raise ApiError(10075)
        return {"success": True}

    def server_evacuate(self, payload, reply, subject=SERVER_EVACUATE):
        """``$JS.API.SERVER.EVACUATE`` (system account, nats-server 2.15):
        every stream placed on the server (``peer``: its name, ``peer_id``)
        gets a replacement peer, the server staying in each group until that
        one caught up; a stream with no replacement keeps it (Go excludes it
        from the group's placement until healed; here it is simply never
        chosen again by this request). The server stays in the meta group."""
        m = self.m
        if _is_empty(payload):
            raise ApiError(10003)
        req = _request(payload)
        unknown = sorted(set(req) - {"peer", "peer_id"})
        if unknown:  # Go decodes these requests strictly
            raise ApiError(10025, err='json: unknown field "%s"' % unknown[0])
        name, pid = req.get("peer") or "", req.get("peer_id") or ""
        found = next((p for p in sorted(m.meta.peers)
                      if (pid and p == pid) or (not pid and m.peer_name(p) == name)), None)
        if found is None:
            raise ApiError(10044)
        moved = 0
        for sa in list(m.state.streams.values()):
            if found in sa["group"]["peers"] and self.remap(sa, found, require_replicas=True):
                moved += 1
        m.log.info("jetstream_server_evacuate", peer=m.peer_name(found), streams=moved)
        return {"success": True}

    def remap(self, sa, peer, require_replicas=False):
        """Propose ``sa`` with ``peer`` replaced (Go's ``remapStreamAssignment``);
        without a replacement the group shrinks, or nothing happens (False)
        when ``require_replicas``."""
        m = self.m
        group = sa["group"]
        peers = list(group["peers"])
        retain = [p for p in peers if p != peer]
        cfg = sa["stream"]
        placement = cfg.get("placement") or {}
        try:
            new = M.select_peer_group(
                m.placement_peers(), len(peers), group.get("cluster") or m.cluster_name,
                placement.get("tags") or (), m.js.config.unique_tag or None,
                max(int(cfg.get("max_bytes") or 0), 0), existing=retain, ignore=[peer],
                storage=cfg.get("storage", "file"))
        except M.MetaError:
            if require_replicas:
                m.log.warning("JetStream cluster rejected peer removal, no replacement "
                              "available for stream '%s > %s'" % (
                                  sa["client"]["account"], cfg["name"]))
                return False
            new = retain
        self.propose_group(sa, new)
        return True

    def propose_group(self, sa, peers, cfg=None, reply=""):
        body = M.assignment_body(sa)
        body["group"] = dict(sa["group"], peers=list(peers))
        body["group"].pop("preferred", None)
        if cfg is not None:
            body["stream"] = cfg
        if reply:
            body["update_reply"] = reply  # the stream leader answers once applied
        self.m.propose(M.encode_op(M.UPDATE_STREAM, body))

    def scaled_peers(self, sa, replicas, cfg):
        """The peer set for a replica change (Go: scale up keeps the peers and
        places more; scale down keeps the stream's leader)."""
        m = self.m
        current = list(sa["group"]["peers"])
        if replicas > M.MAX_REPLICAS:
            raise ApiError(10052, err="maximum replicas is %d" % M.MAX_REPLICAS)
        if replicas > len(current):
            placement = cfg.get("placement") or {}
            try:
                return M.select_peer_group(
                    m.placement_peers(), replicas, sa["group"].get("cluster") or m.cluster_name,
                    placement.get("tags") or (), m.js.config.unique_tag or None,
                    max(int(cfg.get("max_bytes") or 0), 0), existing=current,
                    storage=cfg.get("storage", "file"))
            except M.MetaError as err:
                raise ApiError(10005, err=err.description) from None
        ours = next((g for g in m.groups.values() if g.name == sa["group"]["name"]), None)
        leader = m.id if ours is not None and ours.ready else \
            m.stream_leaders.get(sa["group"]["name"])
        keep = [leader] if leader in current else []
        keep += [p for p in current if p not in keep and m.peer_online(p)]
        keep += [p for p in current if p not in keep]
        return keep[:replicas]

    def replace_missing(self):
        """Streams placed on a server that left the meta group get a
        replacement (Go's processRemovePeer on the meta leader)."""
        m = self.m
        if not m.is_meta_leader:
            return
        members = set(m.meta.peers) | set(m.meta.core.learners)
        for sa in list(m.state.streams.values()):
            gone = [p for p in sa["group"]["peers"] if p not in members]
            if gone:
                self.remap(sa, gone[0])  # one per pass: the next sees the proposal applied


# -- every server: a stream group follows its assignment ------------------------------

def reconcile(m, group):
    """Bring ``group``'s RAFT membership to its assignment; True when the
    group was stopped here (taken out)."""
    node = group.node
    if node is None:
        return False
    want = set(group.sa["group"]["peers"])
    if m.id not in want:
        if node.is_leader:
            targets = sorted(p for p in want if p in node.peers)
            if not targets and group.ready:
                # none of the new peers is a member yet (a move, or the
                # leader of an R1 replaced): they join as learners first
                try:
                    for peer in sorted(want - node.peers - node.core.learners):
                        node.add_peer(peer)
                except (ChangeInProgress, NotLeader, ValueError):
                    pass
            if targets:
                try:
                    group.step_down(targets[0])
                except (NotLeader, ValueError, ApiError):
                    pass
            return False
        now = time.monotonic()
        group.out_since = getattr(group, "out_since", None) or now
        contact = node.core.last_contact
        # Removed from the committed configuration (an uncommitted removal
        # may be truncated by the next leader, which counts on us as a voter)
        # and the leader stopped talking to us (a learner it dropped is never
        # promoted; one it still catches up may be promoted any time), or (a
        # member that was down during its removal) no leader talks to us any more.
        core = node.core
        quiet = contact is None or now - contact > 3 * core.config.heartbeat
        if (node.peers and quiet and m.id not in node.peers
                and m.id not in core.committed_peers()) or (
                now - group.out_since > ORPHAN_AFTER and
                (contact is None or now - contact > ORPHAN_AFTER)):
            m.log.info("stream_member_removed", stream=group.sa["stream"]["name"],
                       group=group.name)
            return True
        return False
    if not group.ready:
        return False
    core = node.core
    try:
        for peer in sorted(core.learners - want):
            node.remove_peer(peer)  # no longer wanted: never promoted
        for peer in sorted(want - node.peers - core.learners):
            node.add_peer(peer)
        if want - node.peers:
            _promote_silent(node, want)
            return False  # the new peers catch up first
        for peer in sorted(node.peers - want):
            node.remove_peer(peer)
            break  # one change at a time
        else:
            m.moves.converged(group)
    except (ChangeInProgress, NotLeader, ValueError):
        pass
    return False


def _promote_silent(node, want):
    """A wanted learner that does not answer (down) is made a voter anyway
    once most of ``want`` are voters already, so that a move completes
    without it, as Go's does (it catches up when it comes back)."""
    core = node.core
    if len(want & node.peers) < len(want) // 2 + 1:
        return
    now = time.monotonic()
    for peer in sorted(want & core.learners):
        seen = core.last_ack.get(peer)
        if seen is None or now - seen > SILENT_AFTER * core.config.heartbeat:
            node.promote(peer)
            return  # one change at a time


def disable(m):
    """Our server was removed from the meta group (Go's processRemovePeer for
    ourselves): log, advise, and stop clustered JetStream here."""
    m.log.error("JetStream being DISABLED, our server was removed from the cluster")
    m.disabled = True
    advisories.server_removed(m.client, m.server.server_name, m.server.server_id,
                              m.cluster_name, m.js.config.domain)
    m.server.flush_touched()
    for group in list(m.groups.values()):
        group.stop()
    m.groups.clear()
