"""The RAFT state machine of one node, sans I/O.

Fed with messages (:meth:`RaftCore.receive`), clock ticks (:meth:`RaftCore.tick`)
and requests (``propose``, ``snapshot``, ``step_down``, ``add_peer``,
``remove_peer``); it writes through a :class:`~.storage.Storage` and hands back,
from :meth:`RaftCore.ready`, the messages to send and the committed entries to
apply. It has no sockets, clock or threads: time is passed in, randomness
comes from the ``rng`` it is given, so a seeded simulation replays exactly.

Safety rules kept here (JETSTREAM-CLUSTER.md section 1, the Raft paper):

* term and vote are stored durably (``Storage.save_state``) before a vote
  is granted or a higher term is acted on;
* a vote goes only to a candidate whose log is at least as up to date;
* ``ready()`` syncs the log once before returning messages, so nothing is
  acknowledged (by a follower) or counted (by the leader) before it is durable;
* the leader commits only entries of its own term by counting (earlier ones
  commit with them); a new leader appends a PEER_STATE entry at once for this;
* a follower truncates only an uncommitted suffix that conflicts with the leader;
* membership changes one peer at a time, effective when appended, one in flight,
  and only after the leader committed an entry of its term;
* a node with a live leader ignores vote requests from other nodes (leader
  stickiness) unless the request is a leader transfer, and a candidate raises
  its term only after a pre-vote majority, so removed or partitioned nodes do
  not depose a healthy leader;
* an *observer* (:attr:`RaftCore.observer`) never becomes a candidate.
"""

import random
from dataclasses import dataclass, field

from .messages import (
    ADD_PEER,
    CONFIG_TYPES,
    LEADER_TRANSFER,
    NORMAL,
    PEER_STATE,
    REMOVE_PEER,
    AppendEntries,
    AppendResponse,
    Entry,
    InstallSnapshot,
    VoteRequest,
    VoteResponse,
    decode_peers,
    encode_peers,
)
from .storage import Snapshot

FOLLOWER = "follower"
CANDIDATE = "candidate"
LEADER = "leader"


@dataclass
class RaftConfig:
    """Timers in seconds. Defaults are Go's (srv:raft.go); tests use short ones."""

    election_min: float = 4.0
    election_max: float = 9.0
    heartbeat: float = 1.0
    lost_quorum: float = 10.0
    campaign_min: float = 0.1   # a voter that refused a stale candidate campaigns this soon
    campaign_max: float = 0.8
    max_append_bytes: int = 256 * 1024

    @classmethod
    def scaled(cls, factor, **overrides):
        """Go's timers times ``factor`` (0.05 gives 200-450 ms elections)."""
        base = cls()
        values = {name: getattr(base, name) * factor for name in
                  ("election_min", "election_max", "heartbeat", "lost_quorum",
                   "campaign_min", "campaign_max")}
        values.update(overrides)
        return cls(**values)


class NotLeader(Exception):
    """Only the leader takes this request; ``leader`` is the known leader or None."""

    def __init__(self, leader):
        super().__init__("not leader (leader: %s)" % leader)
        self.leader = leader


class ChangeInProgress(Exception):
    """A membership change is still uncommitted, or the new leader has not yet
    committed an entry of its term: retry later."""


@dataclass
class Ready:
    messages: list = field(default_factory=list)   # (to, message)
    committed: list = field(default_factory=list)  # entries to apply, in order
    snapshot: Snapshot = None                       # install this before ``committed``
    leader_changed: bool = False


class RaftCore:
    """One member of one group. ``peers`` is the group at bootstrap (ignored
    once the log or a snapshot holds a peer set)."""

    def __init__(self, node_id, storage, peers=(), config=None, rng=None, now=0.0):
        self.id = node_id
        self.storage = storage
        self.config = config or RaftConfig()
        self.rng = rng or random.Random()
        self.now = now
        self.term, self.vote = storage.term, storage.vote
        self.role = FOLLOWER
        self.leader = None
        self._reported_leader = (None, 0)
        self.commit_index = self.applied = storage.snapshot_index
        self._install = storage.snapshot
        self._synced_index = storage.last_index
        self.last_contact = None   # when we last heard from a leader
        self.outbox = []
        self._rebuild_configs(tuple(peers))
        self._transfer_campaign = False
        self._dirty = False  # a truncation not yet synced
        self.observer = False
        self._reset_election_timer()
        self._leader_state_clear()

    # -- public state -----------------------------------------------------------------

    @property
    def is_leader(self):
        return self.role == LEADER

    @property
    def quorum(self):
        return len(self.peers) // 2 + 1

    def set_observer(self, observer):
        """An observer (Go's ``SetObserver``, raft.go) is a member that
        never becomes a candidate: it replicates, votes and counts in the
        quorum like any voter, but never campaigns, not even for a leader
        transfer naming it, so leadership stays with the other members. A
        leader made an observer hands its leadership on (a transfer to the
        most up-to-date other voter). Leaving observer mode re-arms the
        election timer. Used for a leaf server extending its hub's meta
        group (leadership pinned to the hub side) and for
        ``jetstream_cluster_migrate`` (a leaf's stream groups while its link
        is down). Not persisted: the owner decides it at each start."""
        was, self.observer = self.observer, bool(observer)
        if self.observer and self.role == LEADER:
            self.step_down()
        elif self.observer and self.role == CANDIDATE:
            self._become_follower(self.term, None)
        elif was and not self.observer:
            self._reset_election_timer()

    def next_deadline(self):
        """When :meth:`tick` next has work to do."""
        return self.heartbeat_due if self.role == LEADER else self.election_deadline

    # -- inputs -----------------------------------------------------------------------

    def tick(self, now):
        self.now = now
        if self.role == LEADER:
            if now >= self.transfer_deadline and self.transfer_to is not None:
                # The transfer did not happen: lead on, and report the
                # leadership again (ready().leader_changed): the application
                # gave it up for the transfer and must take it back up.
                self.transfer_to = None
                self._reported_leader = (None, self.term)
            if now >= self.heartbeat_due:
                if not self._has_quorum_contact():
                    self._become_follower(self.term, None)
                    return
                self.heartbeat_due = now + self.config.heartbeat
                for peer in self._targets():
                    self._send_append(peer)
        elif now >= self.election_deadline:
            transfer, self._transfer_campaign = self._transfer_campaign, False
            self._campaign(transfer)

    def receive(self, msg, now):
        self.now = now
        if type(msg) in (VoteRequest, VoteResponse) and msg.pre:
            self._on_pre_vote(msg)
            return
        if msg.term > self.term:
            if type(msg) is VoteRequest and not msg.transfer and self._leader_is_live():
                return  # stickiness: a healthy leader is not deposed by a stray node
            leader = msg.src if type(msg) in (AppendEntries, InstallSnapshot) else None
            self._become_follower(msg.term, leader)
        handler = self._handlers[type(msg)]
        handler(self, msg)

    def propose(self, data, type=NORMAL):
        """Append ``data`` as a new entry; returns its index. Raises
        :class:`NotLeader` on a follower or during a leader transfer."""
        if self.role != LEADER or self.transfer_to is not None:
            raise NotLeader(self.leader if self.leader != self.id else None)
        return self._append_local(type, data)

    def snapshot(self, data, index=None):
        """The application's state after applying everything through ``index``
        (default: all handed out by ``ready()``): keep it and compact the log
        up to there."""
        index = self.applied if index is None else index
        if index > self.applied:
            raise ValueError("snapshot at %d beyond applied %d" % (index, self.applied))
        if index <= self.storage.snapshot_index:
            return False
        snap = Snapshot(index, self.storage.term_at(index), self._config_at(index), bytes(data))
        self.storage.save_snapshot(snap)
        self._prune_configs(index)
        return True

    def step_down(self, preferred=None):
        """Leader transfer: hand leadership to ``preferred`` (or the most up to
        date peer) with a LEADER_TRANSFER entry naming it; it campaigns as soon
        as it has that entry. Returns the chosen peer, or None."""
        if self.role != LEADER:
            raise NotLeader(self.leader)
        others = [p for p in sorted(self.peers) if p != self.id]
        if preferred is not None:
            if preferred not in others:
                raise ValueError("%s is not another peer of this group" % preferred)
            target = preferred
        elif others:
            target = max(others, key=lambda p: (self.match_index.get(p, 0), p))
        else:
            # no one to hand over to: lead on, reported again (see tick)
            self._reported_leader = (None, self.term)
            return None
        if self.transfer_to is None:
            self._append_local(LEADER_TRANSFER, target.encode())
        self.transfer_to = target
        self.transfer_index = self.storage.last_index
        self.transfer_deadline = self.now + self.config.election_max
        return target

    def add_peer(self, peer):
        """Start replicating to ``peer`` as a learner; once it has caught up to
        the commit index it is added to the voters (an ADD_PEER entry)."""
        if self.role != LEADER:
            raise NotLeader(self.leader)
        if peer in self.peers or peer in self.learners:
            return
        self.learners.add(peer)
        self.leaving.pop(peer, None)
        if peer not in self.next_index:
            self._track(peer)
        self._send_append(peer)

    def promote(self, peer):
        """Make the learner ``peer`` a voter before it has caught up (an ADD_PEER
        entry now): for a peer that is down while the group must change
        without it (a stream move whose target is down; Go adds it to the peer
        set all the same). It catches up when it comes back."""
        if self.role != LEADER:
            raise NotLeader(self.leader)
        if peer not in self.learners:
            return
        self._check_change_allowed()
        self.learners.discard(peer)
        self._append_local(ADD_PEER, encode_peers(self.peers | {peer}))

    def remove_peer(self, peer):
        """Append a REMOVE_PEER entry: effective at once for quorum counting.
        A learner is dropped (never promoted) and no longer sent anything."""
        if self.role != LEADER:
            raise NotLeader(self.leader)
        if peer not in self.peers:
            if peer in self.learners:
                self.learners.discard(peer)
                for table in (self.next_index, self.match_index, self.last_ack, self.paused):
                    table.pop(peer, None)
            return None
        self._check_change_allowed()
        index = self._append_local(REMOVE_PEER, encode_peers(self.peers - {peer}))
        if peer != self.id:
            self.leaving[peer] = index
        return index

    def ready(self):
        """Sync the log once, then hand back what to send and what to apply."""
        ready = Ready()
        storage = self.storage
        if self._synced_index != storage.last_index or self._dirty:
            target = storage.last_index  # what this sync covers, whatever comes meanwhile
            storage.sync()
            self._synced_index = target
            self._dirty = False
        if self.role == LEADER:
            self._advance_commit()
            for peer in self._targets():
                if not self.paused.get(peer) and self.next_index[peer] <= storage.last_index:
                    self._send_append(peer)
        ready.messages, self.outbox = self.outbox, []
        if self._install is not None:
            ready.snapshot, self._install = self._install, None
        if self.commit_index > self.applied:
            first = max(self.applied + 1, storage.first_index)
            last = self.commit_index
            ready.committed = [storage.entry(i) for i in range(first, last + 1)]
            self.applied = last
        current = (self.leader, self.term)
        if current[0] != self._reported_leader[0]:
            ready.leader_changed = True
        self._reported_leader = current
        return ready

    # -- roles -------------------------------------------------------------------------

    def _leader_state_clear(self):
        self.next_index, self.match_index, self.last_ack, self.paused = {}, {}, {}, {}
        self.learners, self.leaving, self.told_at = set(), {}, {}
        self.transfer_to, self.transfer_index, self.transfer_deadline = None, 0, 0.0
        self.term_start_index = 0
        self.heartbeat_due = 0.0
        self.votes = set()
        self.prevotes = set()

    def _become_follower(self, term, leader):
        # A follower before the new term is saved: saving may let other
        # greenlets run (the fsync is off the loop), and a propose() among
        # them must not append as leader in a term this node does not lead.
        self.role = FOLLOWER
        self._leader_state_clear()
        self.leader = leader
        if leader is not None:
            self.last_contact = self.now
        self._reset_election_timer()
        if term != self.term:
            self.term, self.vote = term, None
            self.storage.save_state(term, None)

    def _campaign(self, transfer=False):
        self._reset_election_timer()
        if self.id not in self.peers or self.observer:
            return  # not a voter (a learner, or removed), or one that never leads
        if not transfer and len(self.peers) > 1:
            # Pre-vote first: a node that cannot win (cut off, or behind)
            # never raises its term, so it cannot depose a leader on return.
            self.prevotes = {self.id}
            msg = VoteRequest(self.term + 1, self.id, self.storage.last_term,
                              self.storage.last_index, False, True)
            for peer in sorted(self.peers):
                if peer != self.id:
                    self.outbox.append((peer, msg))
            return
        self._start_election(transfer)

    def _start_election(self, transfer):
        self.prevotes = set()
        self.term += 1
        self.vote = self.id
        self.storage.save_state(self.term, self.id)
        self.role = CANDIDATE
        self.leader = None
        self.votes = {self.id}
        if len(self.votes) >= self.quorum:
            self._become_leader()
            return
        msg = VoteRequest(self.term, self.id, self.storage.last_term, self.storage.last_index,
                          transfer)
        for peer in sorted(self.peers):
            if peer != self.id:
                self.outbox.append((peer, msg))

    def _become_leader(self):
        self.role = LEADER
        self.leader = self.id
        self._leader_state_clear()
        for peer in sorted(self.peers):
            if peer != self.id:
                self._track(peer)
        # The no-op of Raft: an entry of this term, so earlier ones can commit.
        self.term_start_index = self._append_local(PEER_STATE, encode_peers(self.peers))
        self.heartbeat_due = self.now + self.config.heartbeat

    def _track(self, peer):
        self.next_index[peer] = self.storage.last_index + 1
        self.match_index[peer] = 0
        self.last_ack[peer] = self.now
        self.paused[peer] = False

    def _targets(self):
        return [p for p in self.next_index if p != self.id]

    def _reset_election_timer(self, lo=None, hi=None):
        cfg = self.config
        lo = cfg.election_min if lo is None else lo
        hi = cfg.election_max if hi is None else hi
        self.election_deadline = self.now + lo + self.rng.random() * (hi - lo)

    def _leader_is_live(self):
        if self.role == LEADER:
            return True
        return (self.leader is not None and self.last_contact is not None
                and self.now - self.last_contact < self.config.election_min)

    def _has_quorum_contact(self):
        heard = sum(1 for p in self.peers if p != self.id and p in self.last_ack
                    and self.now - self.last_ack[p] < self.config.lost_quorum)
        return heard + (self.id in self.peers) >= self.quorum

    # -- log --------------------------------------------------------------------------

    def _append_local(self, etype, data):
        entry = Entry(self.storage.last_index + 1, self.term, etype, bytes(data))
        self.storage.append([entry])
        if etype in CONFIG_TYPES:
            self._config_appended(entry)
        return entry.index

    def _send_append(self, peer):
        storage = self.storage
        nxt = self.next_index[peer]
        if nxt <= storage.snapshot_index:
            snap = storage.snapshot
            self.outbox.append((peer, InstallSnapshot(self.term, self.id, snap.index, snap.term,
                                                      snap.peers, snap.data)))
            self.next_index[peer] = snap.index + 1
            self.paused[peer] = True  # until it answers
            return
        prev = nxt - 1
        entries = storage.slice(nxt, storage.last_index, self.config.max_append_bytes) \
            if nxt <= storage.last_index else ()
        self.outbox.append((peer, AppendEntries(self.term, self.id, prev, storage.term_at(prev),
                                                self.commit_index, tuple(entries))))
        if entries:
            self.next_index[peer] = entries[-1].index + 1

    def _advance_commit(self):
        storage = self.storage
        matches = [self.match_index.get(p, 0) for p in self.peers if p != self.id]
        if self.id in self.peers:
            matches.append(self._synced_index)
        matches.sort(reverse=True)
        if len(matches) < self.quorum:
            return
        candidate = matches[self.quorum - 1]
        # Only an entry of the current term commits by counting (Raft 5.4.2).
        if candidate > self.commit_index and storage.term_at(candidate) == self.term:
            self.commit_index = candidate
            self._after_commit()

    def _after_commit(self):
        if self.configs[-1][0] <= self.commit_index and self.id not in self.peers:
            self._become_follower(self.term, None)  # removed ourselves: done leading
            return
        for peer in sorted(self.learners):
            self._maybe_promote(peer)

    def _told_commit(self, peer, index):
        """A removed peer acts on its removal only once it is committed (the
        entry may yet be truncated by the next leader, which keeps it as a
        voter): keep talking to it until an answer comes a heartbeat after
        the commit, i.e. to an append that carried it."""
        if self.commit_index < index:
            return False
        since = self.told_at.setdefault(peer, self.now)
        if self.now - since < self.config.heartbeat:
            return False
        del self.told_at[peer]
        return True

    def committed_peers(self):
        """The voters as of the commit index (``peers`` is the latest
        configuration, in effect when appended, possibly not committed)."""
        return frozenset(self._config_at(self.commit_index))

    def _maybe_promote(self, peer):
        if self.match_index.get(peer, 0) < self.commit_index or not self._change_allowed():
            return
        self.learners.discard(peer)
        self._append_local(ADD_PEER, encode_peers(self.peers | {peer}))

    def _change_allowed(self):
        return (self.configs[-1][0] <= self.commit_index
                and self.commit_index >= self.term_start_index)

    def _check_change_allowed(self):
        if not self._change_allowed():
            raise ChangeInProgress("a membership change is pending")

    # -- membership (derived from the log) ---------------------------------------------

    def _rebuild_configs(self, initial):
        storage = self.storage
        snap = storage.snapshot
        self.configs = [(snap.index, frozenset(snap.peers))] if snap else [(0, frozenset(initial))]
        for e in storage.entries:
            if e.type in CONFIG_TYPES:
                self.configs.append((e.index, frozenset(decode_peers(e.data)[0])))
        self.peers = self.configs[-1][1]

    def _config_appended(self, entry):
        self.configs.append((entry.index, frozenset(decode_peers(entry.data)[0])))
        self.peers = self.configs[-1][1]
        if self.role == LEADER:
            for peer in sorted(self.peers):
                if peer != self.id and peer not in self.next_index:
                    self._track(peer)

    def _config_at(self, index):
        for cidx, peers in reversed(self.configs):
            if cidx <= index:
                return tuple(sorted(peers))
        return tuple(sorted(self.configs[0][1]))

    def _prune_configs(self, index):
        keep = [c for c in self.configs if c[0] > index]
        base = [c for c in self.configs if c[0] <= index][-1:]
        self.configs = base + keep

    def _truncate(self, index):
        if index < self.commit_index:
            raise AssertionError("truncating committed entries: %d < %d"
                                 % (index, self.commit_index))
        self.storage.truncate_after(index)
        self._dirty = True
        if self.configs[-1][0] > index:
            self.configs = [c for c in self.configs if c[0] <= index] or self.configs[:1]
            self.peers = self.configs[-1][1]

    # -- handlers ---------------------------------------------------------------------

    def _on_vote_request(self, msg):
        storage = self.storage
        if msg.term < self.term:
            self.outbox.append((msg.src, VoteResponse(self.term, self.id, False)))
            return
        up_to_date = (msg.last_term, msg.last_index) >= (storage.last_term, storage.last_index)
        granted = self.role == FOLLOWER and self.vote in (None, msg.src) and up_to_date
        if granted:
            if self.vote != msg.src:
                self.vote = msg.src
                storage.save_state(self.term, msg.src)  # durable before the reply
            self._reset_election_timer()
        elif not up_to_date and self.vote is None and self.role == FOLLOWER:
            # Our log is better: campaign soon rather than wait (Go does this).
            self._reset_election_timer(self.config.campaign_min, self.config.campaign_max)
        self.outbox.append((msg.src, VoteResponse(self.term, self.id, granted)))

    def _on_pre_vote(self, msg):
        storage = self.storage
        if type(msg) is VoteRequest:
            up_to_date = (msg.last_term, msg.last_index) >= (storage.last_term, storage.last_index)
            granted = msg.term > self.term and up_to_date and not self._leader_is_live()
            if not up_to_date and not self._leader_is_live() and self.role == FOLLOWER:
                self._reset_election_timer(self.config.campaign_min, self.config.campaign_max)
            self.outbox.append((msg.src, VoteResponse(msg.term if granted else self.term,
                                                      self.id, granted, True)))
            return
        if not msg.granted:
            if msg.term > self.term:
                self._become_follower(msg.term, None)  # we are behind: catch up on the term
            return
        if msg.term != self.term + 1 or self.role == LEADER or not self.prevotes:
            return
        self.prevotes.add(msg.src)
        if len(self.prevotes & self.peers) >= self.quorum and not self.observer:
            self._start_election(False)

    def _on_vote_response(self, msg):
        if self.role != CANDIDATE or msg.term != self.term or not msg.granted:
            return
        self.votes.add(msg.src)
        if len(self.votes & self.peers) >= self.quorum:
            self._become_leader()

    def _accept_leader(self, msg):
        """An append or snapshot from ``msg.src``: False when it is from an old
        term (answered, so that leader steps down) or we lead this term."""
        if msg.term < self.term:
            self.outbox.append((msg.src, AppendResponse(self.term, self.id, False,
                                                        self.storage.last_index)))
            return False
        if self.role == LEADER:
            return False  # two leaders in one term cannot happen; never act on it
        self.role, self.leader, self.last_contact = FOLLOWER, msg.src, self.now
        self._reset_election_timer()
        return True

    def _on_append(self, msg):
        storage = self.storage
        if not self._accept_leader(msg):
            return
        prev, prev_term, entries = msg.prev_index, msg.prev_term, msg.entries
        if prev < storage.snapshot_index:
            # Our snapshot covers the start: it is committed, so it matches.
            skip = storage.snapshot_index - prev
            entries = entries[skip:] if skip < len(entries) else ()
            prev, prev_term = storage.snapshot_index, storage.snapshot_term
        if prev > storage.last_index:
            self.outbox.append((msg.src, AppendResponse(self.term, self.id, False,
                                                        storage.last_index)))
            return
        ours = storage.term_at(prev)
        if ours != prev_term:
            hint = prev - 1
            while hint > max(storage.snapshot_index, self.commit_index) \
                    and storage.term_at(hint) == ours:
                hint -= 1
            self.outbox.append((msg.src, AppendResponse(self.term, self.id, False, hint)))
            return
        new = []
        for i, e in enumerate(entries):
            if e.index <= storage.last_index:
                if storage.term_at(e.index) == e.term:
                    continue
                self._truncate(e.index - 1)
            new = entries[i:]
            break
        if new:
            storage.append(new)
            for e in new:
                if e.type in CONFIG_TYPES:
                    self._config_appended(e)
        match = prev + len(entries)
        if msg.commit > self.commit_index:
            self.commit_index = max(self.commit_index, min(msg.commit, match))
        last = storage.last_index
        if new and new[-1].type == LEADER_TRANSFER and new[-1].index == last \
                and new[-1].term == self.term and new[-1].data == self.id.encode():
            self._transfer_campaign = True
            self.election_deadline = self.now  # campaign at the next tick
        self.outbox.append((msg.src, AppendResponse(self.term, self.id, True, match)))

    def _on_append_response(self, msg):
        if self.role != LEADER or msg.term != self.term or msg.src not in self.next_index:
            return
        peer = msg.src
        self.last_ack[peer] = self.now
        if msg.success:
            if msg.index > self.match_index[peer]:
                self.match_index[peer] = msg.index
            self.next_index[peer] = max(self.next_index[peer], msg.index + 1)
            self.paused[peer] = False
            self._advance_commit()
            if self.role != LEADER:
                return
            if peer in self.learners:
                self._maybe_promote(peer)
            left = self.leaving.get(peer)
            if left is not None and self.match_index[peer] >= left \
                    and peer not in self.peers and peer not in self.learners \
                    and self._told_commit(peer, left):
                del self.leaving[peer]  # it knows its removal is committed: stop sending
                for table in (self.next_index, self.match_index, self.last_ack, self.paused):
                    table.pop(peer, None)
                return
            if peer == self.transfer_to and self.match_index[peer] >= self.transfer_index:
                self._become_follower(self.term, None)  # the target now campaigns
                self.last_contact = None
                return
        else:
            if msg.index < self.match_index[peer]:
                # Below what it acknowledged: its store lost data (or the answer
                # is stale); search from there rather than resend forever.
                self.match_index[peer] = msg.index
            self.next_index[peer] = max(self.match_index[peer] + 1,
                                        min(self.next_index[peer], msg.index + 1))
            self.paused[peer] = True
            self._send_append(peer)

    def _on_install_snapshot(self, msg):
        storage = self.storage
        if not self._accept_leader(msg):
            return
        if msg.index > self.commit_index:
            snap = Snapshot(msg.index, msg.last_term, tuple(msg.peers), msg.data)
            storage.save_snapshot(snap)
            self.commit_index = self.applied = msg.index
            self._install = snap
            self._rebuild_configs(msg.peers)
            self._synced_index = storage.last_index
        self.outbox.append((msg.src, AppendResponse(self.term, self.id, True, self.commit_index)))

    _handlers = {VoteRequest: _on_vote_request, VoteResponse: _on_vote_response,
                 AppendEntries: _on_append, AppendResponse: _on_append_response,
                 InstallSnapshot: _on_install_snapshot}
