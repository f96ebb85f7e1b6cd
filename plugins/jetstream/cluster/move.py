"""Moving a stream to other peers: a new ``placement`` (another cluster of
the super-cluster, or other tags), as Go does it (JETSTREAM-CLUSTER.md
section 8; srv:jetstream_cluster.go ``jsClusteredStreamUpdateRequest``).

1. The meta leader keeps the group's name and peers and records the target
   as ``group.desired {peers, cluster, move}`` (Go 2.15's desired state);
   the desired peers start the group as joining members (no peers of their
   own: the leader's log tells them the group).
2. The stream leader widens the RAFT group: every desired peer is added as a
   learner, catches up from the log, and becomes a voter (one change at a
   time, :mod:`pluggy_nats.raft`).
3. It hands the lead to the most caught-up desired peer (a leader transfer).
4. The new leader removes the old peers one at a time.
5. It reports ``$JSC.MOVED`` (system account) until the meta leader records
   the desired peers as the group (``desired`` gone); old peers then stop and
   delete their copy.

Every step is decided from the group's current state, so a leader change
in the middle resumes the move where it stands. Consumers live in the
stream's group (replica.py) and move with it. Publishes during the hand-over
get no PubAck and are retried by the client (``Nats-Msg-Id`` dedups).
"""

import json
import time

from pluggy_nats.raft import ChangeInProgress, NotLeader

from ..jsonreq import dumps
from . import meta as M

MOVED = "$JSC.MOVED"
STEP_INTERVAL = 0.25   # seconds between steps of a move on the stream leader
REPORT_AGAIN = 2.0     # the meta leader proposes the end of one move at most this often


def step(group):
    """One step of ``group``'s move on its leader; returns what it did
    (None when there is nothing to do here)."""
    desired = group.sa["group"].get("desired")
    if not desired or not group.ready:
        return None
    node = group.node
    core = node.core
    want = set(desired["peers"])
    try:
        missing = sorted(want - core.peers)
        if missing:
            for peer in missing:
                node.add_peer(peer)  # a learner until caught up, then a voter
            return "adding"
        if node.id not in want:
            target = max(sorted(want), key=lambda p: core.match_index.get(p, 0))
            group.step_down(group.manager.peer_name(target))
            return "handing_over"
        extra = sorted(core.peers - want)
        if extra:
            node.remove_peer(extra[0])
            return "removing"
    except (ChangeInProgress, NotLeader):
        return "waiting"
    report(group)
    return "done"


def report(group):
    manager = group.manager
    manager.client.publish(MOVED, dumps({
        "account": group.jsa.account.name, "stream": group.sa["stream"]["name"],
        "group": group.name, "peers": sorted(group.node.core.peers)}), flush=False)


class MoveFinisher:
    """The meta leader's side: records a finished move once."""

    def __init__(self, manager):
        self.m = manager
        self.proposed = {}   # group name -> monotonic time of the last proposal

    def on_moved(self, sub, subject, reply, hdr, payload):
        m = self.m
        if not m.is_meta_leader:
            return
        try:
            body = json.loads(bytes(payload))
            sa = m.state.stream(body["account"], body["stream"])
            peers = set(body["peers"])
        except (ValueError, KeyError, TypeError):
            return
        if sa is None or sa["group"]["name"] != body.get("group"):
            return
        desired = sa["group"].get("desired")
        if not desired or set(desired["peers"]) != peers:
            return
        now = time.monotonic()
        if now - self.proposed.get(body["group"], -REPORT_AGAIN) < REPORT_AGAIN:
            return
        self.proposed[body["group"]] = now
        group = {k: v for k, v in sa["group"].items() if k not in ("desired", "preferred")}
        group["peers"], group["cluster"] = list(desired["peers"]), desired["cluster"]
        entry = {k: v for k, v in sa.items() if k not in ("consumers", "reply", "update_reply")}
        entry["group"] = group
        try:
            m.propose(M.encode_op(M.UPDATE_STREAM, entry))
        except NotLeader:
            pass
        m.log.info("jetstream_stream_move_finishing", stream=body["stream"],
                   cluster=desired["cluster"], peers=[m.peer_name(p) for p in desired["peers"]])
