"""RaftNode: one RAFT group member running inside a server, its messages
carried by internal subscriptions in the system account, so they travel over
routes like any ``$SYS`` traffic (no link changes).

Subjects (our wire format; Go's names where the role is the same):

* ``$NRG.V.<group>``: vote requests, one publish reaches every member;
* ``$NRG.AE.<group>.<peer>``: append entries and snapshots for one member
  (each follower has its own next index, so catch-up needs no second path);
* ``$NRG.R.<group>.<peer>``: a member's inbox for vote and append responses.

Messages from subscriptions are queued and handled in the node's own
greenlet, which also runs the timers: feed the core, ``ready()`` (one fsync
for the batch: group commit), send, then apply. Callbacks (``apply``,
``install_snapshot``, ``leader_changed``) run in that greenlet, in order.
"""

import hashlib
import time

import gevent
import gevent.event
import structlog

from ..internal import InternalClient
from .core import RaftConfig, RaftCore
from .messages import NORMAL, AppendEntries, InstallSnapshot, VoteRequest, WireError, decode, encode

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def node_id_for(server_name, size=8):
    """Go's peer id (srv:events.go getHashSize): sha256 of the server name,
    the first ``size`` bytes mapped to base-62 digits. Stable across restarts
    as long as ``server_name`` is."""
    digest = hashlib.sha256(server_name.encode()).digest()
    return "".join(_DIGITS[b % 62] for b in digest[:size])


class RaftNode:
    """``peers``: the node ids of the group at bootstrap (this node included
    for a founding member; empty for a node that joins by ``add_peer``).

    ``apply(entry)`` gets every committed NORMAL entry in index order;
    ``install_snapshot(data, index)`` replaces the state with the one after
    ``index`` (a snapshot from the leader, or ours at restart); the entries
    after it follow;
    ``leader_changed(leader_id_or_None, term)`` runs on every change.
    """

    def __init__(self, server, group, storage, peers, apply, install_snapshot=None,
                 leader_changed=None, config=None, node_id=None):
        self.server = server
        self.group = group
        self.storage = storage
        self.id = node_id or node_id_for(server.server_name)
        self.core = RaftCore(self.id, storage, peers, config or RaftConfig(), now=time.monotonic())
        self._apply = apply
        self._install = install_snapshot
        self._leader_changed = leader_changed
        self.applied = storage.snapshot_index  # the last index handed to the callbacks
        self._inbox = []
        self._wake = gevent.event.Event()
        self._greenlet = None
        self._client = None
        self.log = structlog.get_logger("pluggy_nats.raft").bind(group=group, node=self.id)

    # -- life -------------------------------------------------------------------------

    def start(self):
        account = self.server.accounts.system_account
        if account is None:
            raise RuntimeError("RAFT needs the system account")
        self._client = InternalClient(self.server, account, "$NRG-%s" % self.group)
        for subject in ("$NRG.V.%s" % self.group, "$NRG.AE.%s.%s" % (self.group, self.id),
                        "$NRG.R.%s.%s" % (self.group, self.id)):
            self._client.subscribe(subject, self._on_message)
        self._greenlet = self.server.spawn(self._run)
        return self

    def stop(self):
        if self._client is not None:
            self._client.close()
        if self._greenlet is not None:
            # wait for it to die unless it is us: it must not touch the closed log
            self._greenlet.kill(block=gevent.getcurrent() is not self._greenlet)
        self.storage.close()

    # -- the interface ----------------------------------------------------------------

    @property
    def leader(self):
        return self.core.leader

    @property
    def term(self):
        return self.core.term

    @property
    def is_leader(self):
        return self.core.is_leader

    @property
    def peers(self):
        return self.core.peers

    @property
    def observer(self):
        """Never campaigns (:meth:`.core.RaftCore.set_observer`)."""
        return self.core.observer

    def set_observer(self, observer):
        return self._request(self.core.set_observer, observer)

    def healthy(self):
        """Go's ``Healthy`` (raft.go isCurrent): the loop runs, something is
        committed and all of it applied, and a follower heard from its leader
        within two heartbeats."""
        core = self.core
        if self._greenlet is None or self._greenlet.dead or core.commit_index == 0:
            return False
        if core.is_leader:
            return True
        if core.leader is not None and (
                core.last_contact is None
                or time.monotonic() - core.last_contact > 2 * core.config.heartbeat):
            return False
        return self.applied >= core.commit_index

    def status(self):
        """This member's view, with /raftz's names (JETSTREAM-CLUSTER.md section 4)."""
        core, storage, now = self.core, self.storage, time.monotonic()
        peers = {}
        for peer in sorted(core.peers | core.learners):
            if peer == self.id:
                continue
            seen = core.last_ack.get(peer)
            peers[peer] = {"last_replicated_index": core.match_index.get(peer, 0),
                           "last_seen": None if seen is None else round(now - seen, 3),
                           "learner": peer in core.learners}
        return {"id": self.id, "group": self.group, "state": core.role, "term": core.term,
                "leader": core.leader, "voted_for": core.vote, "pterm": storage.last_term,
                "pindex": storage.last_index, "committed": core.commit_index,
                "applied": self.applied, "snapshot_index": storage.snapshot_index,
                "peers": peers}

    def propose(self, data):
        """Append ``data``; returns its index (the ``apply`` callback sees it
        once committed). Raises :class:`~.core.NotLeader` on a follower."""
        index = self.core.propose(data)
        self._wake.set()
        return index

    def snapshot(self, data):
        """``data`` is the state after everything applied so far: keep it and
        compact the log."""
        return self._request(self.core.snapshot, data, self.applied)

    def step_down(self, preferred=None):
        return self._request(self.core.step_down, preferred)

    def add_peer(self, peer):
        return self._request(self.core.add_peer, peer)

    def promote(self, peer):
        return self._request(self.core.promote, peer)

    def remove_peer(self, peer):
        return self._request(self.core.remove_peer, peer)

    def _request(self, method, *args):
        result = method(*args)
        self._wake.set()
        return result

    # -- the loop ---------------------------------------------------------------------

    def _on_message(self, sub, subject, reply, headers, payload):
        self._inbox.append(payload)
        self._wake.set()

    def _run(self):
        core = self.core
        self._flush()
        while True:
            self._wake.wait(max(0.0, core.next_deadline() - time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            inbox, self._inbox = self._inbox, []
            for raw in inbox:
                try:
                    msg = decode(raw)
                except WireError as exc:
                    self.log.warning("raft_bad_message", error=str(exc))
                    continue
                if msg.src != self.id:
                    self._guarded(core.receive, msg, now)
            self._guarded(core.tick, now)
            self._guarded(self._flush)

    def _guarded(self, fn, *args):
        """One bad input or callback must not stop the node's loop."""
        try:
            fn(*args)
        except Exception:
            self.log.exception("raft_step_failed", step=getattr(fn, "__name__", str(fn)))

    def _flush(self):
        ready = self.core.ready()
        if ready.snapshot is not None:
            # Installed before anything is sent: our answer to the leader says
            # we hold the snapshot, and the application (a stream that copies
            # the messages the snapshot covers) must hold it first, or we
            # would count in a quorum (be promoted, elected) without them.
            self.applied = ready.snapshot.index
            if self._install is not None:
                self._install(ready.snapshot.data, ready.snapshot.index)
        sent = set()
        for dst, msg in ready.messages:
            kind = type(msg)
            if kind is VoteRequest:
                if id(msg) in sent:
                    continue  # one publish reaches every member
                sent.add(id(msg))
                subject = "$NRG.V.%s" % self.group
            elif kind is AppendEntries or kind is InstallSnapshot:
                subject = "$NRG.AE.%s.%s" % (self.group, dst)
            else:
                subject = "$NRG.R.%s.%s" % (self.group, dst)
            self._client.publish(subject, encode(msg), flush=False)
        if ready.messages and (ready.committed or ready.snapshot is not None):
            # Send before applying: a follower's answer and a leader's next
            # entries do not wait for the apply (a stream stores and answers
            # a whole batch there), so the members work in parallel.
            self.server.flush_touched()
        if ready.leader_changed:
            self.log.info("raft_leader_changed", leader=self.core.leader, term=self.core.term)
        for entry in ready.committed:
            self.applied = entry.index
            if entry.type == NORMAL:
                self._apply(entry)
        if ready.leader_changed and self._leader_changed is not None:
            self._leader_changed(self.core.leader, self.core.term)
        # one write per connection for what apply sent (PubAcks, answers)
        self.server.flush_touched()
