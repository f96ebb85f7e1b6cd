"""A replicated stream (R>1): a :class:`~..stream.Stream` on every peer of
its group, fed from the group's committed RAFT log (JETSTREAM-CLUSTER.md
section 3).

* Only the leader subscribes to the stream's subjects, and only once it has
  applied its own first entry (``LEADER_READY``), so it checks every publish
  against a store that holds everything committed before its term.
* The leader checks a publish (Go's order, the single-server code), gives it
  the next sequence and a timestamp and proposes it; every member, leader
  included, stores it when the entry is applied, at that sequence. The PubAck
  is sent by the leader after the commit: the message is then in a quorum's
  logs. An entry whose sequence a member already holds (a restart re-applies
  the log after its snapshot) is skipped, so applying is idempotent.
* Consumers belong to their stream's group (Go gives each its own group):
  create, update and delete are entries of the stream's log, so a consumer
  is where its stream is. They run on the stream leader only. Their state (delivered, ack
  floor, pending, redeliveries) goes through the same log when it changes
  (at most every 100 ms, the single-server flush cadence); a new leader
  starts each consumer from the last state committed, as after a restart.
* Purge and message delete are entries too; expiry by age runs on each
  member (as in Go).
"""

import bisect
import json
import os
import time

import gevent
import structlog

from pluggy_nats.raft import FileStorage, NotLeader
from pluggy_nats.raft.node import RaftNode

from .. import advisories
from ..consumer import Consumer
from ..errors import ApiError
from ..jsonreq import dumps
from ..store import StoreError, open_stream_store
from ..store.consumer import decode_state, encode_state
from ..stream import Stream, store_config
from . import moves, ops

# compact the log after this many entries or messages, once every peer holds
# them (tests lower it)
SNAPSHOT_ENTRIES = int(os.environ.get("PLUGGY_NATS_JS_SNAPSHOT_ENTRIES") or 20000)
T = "io.nats.jetstream.api.v1."
ATOMIC = b"\x00batch:"  # in a record's reply: a message of an atomic batch


class ReplicatedStream(Stream):
    """A stream whose changes go through its group's log."""

    # sync_interval: always fsyncs the group's log on every member before it
    # answers (FileStorage(fsync=True)), so a PubAck after the commit means
    # "on disk on a quorum" without an fsync of the stream's own blocks per
    # batch; those are fsynced before a snapshot compacts the log (Go 2.15
    # does the same, pr#8447).
    sync_each_write = False
    stores_runs = False  # its publishes are proposed, then stored at apply
    replicated = True

    def __init__(self, jsa, cfg, created, store, group):
        self.group = group
        super().__init__(jsa, cfg, created, store)

    @property
    def is_leader(self):
        return self.group.ready

    # Mirrors and sources: the leader's feeds (started once its LEADER_READY
    # entry is applied, so from everything committed before; stopped when it
    # loses the lead) propose what they copy; every member stores it when
    # applied. A mirror's record keeps the origin's sequence (a gap is a
    # gap in the log too); a source's message is proposed as a publish.
    @property
    def runs_feeds(self):
        return self.group.ready

    def accepting(self):
        return self.group.can_propose()

    def store_remote(self, subject, hdr, data, seq, ts, known_new=False):
        group = self.group
        if not group.can_propose():
            return False  # the feed comes back for it (a new leader starts over)
        if not known_new and seq <= group.clseq:
            return True
        group.batch.add(ops.encode_record(seq, ts, 0, "", subject, b"", "", None, hdr, data),
                        (seq, ts, 0, "", subject, b"", "", None, hdr, data))
        group.clseq, group.clts = seq, max(ts, group.clts)
        return True

    def store_remote_run(self, items):
        n = 0
        for subject, hdr, data, seq, ts in items:
            if not self.store_remote(subject, hdr, data, seq, ts, known_new=True):
                break
            n += 1
        return n

    def start(self):
        self._subscribe()
        self._expiry = self.server.spawn(self._expiry_loop)

    def _subscribe(self):
        if self.group.ready:
            super()._subscribe()
        else:
            for sub in self.subs:
                self.client.unsubscribe(sub)
            self.subs = []

    def _accept(self, subject, reply, hdr, data, ttl, msg_id, rollup, counter, in_batch):
        group = self.group
        if not group.can_propose():
            return 0  # no answer: the client retries (its Nats-Msg-Id dedups)
        seq = group.clseq + 1
        ts = time.time_ns()
        if ts <= group.clts:
            ts = group.clts + 1
        if in_batch:
            # an atomic batch's messages carry (first seq, count) where a reply
            # would be, so that every member can undo the batch at apply
            atomic = self._atomic
            if atomic is None:
                reply = b""
            else:
                atomic[0] = atomic[0] or seq
                reply = b"%s%d:%d" % (ATOMIC, atomic[0], atomic[1])
        elif not reply:
            reply = b""
        elif type(reply) is str:
            reply = reply.encode()
        group.batch.add(ops.encode_record(seq, ts, ttl, rollup, subject, reply, msg_id,
                                          counter, hdr, data),
                        (seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data))
        group.clseq, group.clts = seq, ts
        group.inflight[subject] = seq
        self.last_msg_id = msg_id
        if msg_id and self.cfg.get("duplicate_window", 0) > 0:
            # Not in the dedup window yet: a proposal can still be lost (a
            # step-down drops it, a new leader truncates it), and a window
            # entry for it would answer a retry with a sequence that another
            # message takes later. Committed, it enters the window (_commit).
            group.proposed_ids[msg_id] = seq
        return seq

    def _check_id(self, msg_id):
        return super()._check_id(msg_id) or self.group.proposed_ids.get(msg_id, 0)

    _atomic = None  # [first seq, count] while an atomic batch is proposed

    def _begin_atomic(self, count):
        self._atomic = [0, count]

    def _end_atomic(self):
        self._atomic = None

    def _duplicate(self, reply, seq, msg_id=None):
        if msg_id and seq > self.store.state().last_seq and reply and not self.cfg.get("no_ack"):
            # a retry of a message still in flight: answered once it is
            # committed (a step-down drops it unanswered and the client retries)
            bisect.insort(self.group.held_acks, (
                seq, reply, (self._pubprefix + '%d,"duplicate": true}' % seq).encode(),
                msg_id), key=_held_seq)
            return
        super()._duplicate(reply, seq)

    def _last_seq(self):
        return self.group.clseq

    def _drop_acked(self, seq):
        # The leader's consumers saw the ack: the removal goes into the log
        # with the consumer's next state, and every member (this one too)
        # removes the message when that entry is applied, so the replicas
        # agree and a new leader does not hold what was acknowledged. A
        # member applying an entry (a consumer removed under interest
        # retention) removes at once, as every member does.
        group = self.group
        if group.ready and not group.applying:
            self.group.acked_removals.append(seq)
        else:
            self.remove_msg(seq)

    def _ack(self, reply, body, seq=0):
        group = self.group
        if group.applying or not seq:
            super()._ack(reply, body, seq)
        else:
            # an atomic batch is answered when proposed: hold its PubAck
            # until its last message is committed and stored
            group.held_acks.append((seq, reply, body, None))

    def _ack_many(self, acks):
        if self.group.applying:
            super()._ack_many(acks)
        else:
            for reply, body, seq in acks:
                self._ack(reply, body, seq)

    def _republish(self, *args):
        # every member stores the message; only the leader republishes it
        # (srv:stream.go processJetStreamMsg: ``republish := tsubj != "" && isLeader``)
        if self.group.ready:
            super()._republish(*args)

    def _last_subject_seq(self, subject):
        # proposed but not yet applied messages count: two compare-and-set
        # updates on one revision must not both pass while the first is in flight
        inflight = self.group.inflight
        best = super()._last_subject_seq(subject)
        if inflight:
            if "*" in subject or ">" in subject:
                from pluggy_nats.subjects import subject_matches

                filt = subject.encode()
                for subj, seq in inflight.items():
                    if seq > best and subject_matches(filt, subj.encode()):
                        best = seq
            else:
                best = max(best, inflight.get(subject, 0))
        return best

    # API requests: proposed, answered by the leader once applied
    def purge_request(self, subject, seq, keep, reply):
        # the last sequence proposed before it (Go's purge op carries its
        # LastSeq): a replay after a restart, onto a store that already holds
        # the later messages, purges only what the purge saw
        self.group.propose_admin(ops.PURGE, {"filter": subject or "", "seq": seq,
                                             "keep": keep, "reply": reply,
                                             "last_seq": self.group.clseq})

    def delete_request(self, seq, erase, reply):
        self.group.propose_admin(ops.DELETE_MSG, {"seq": seq, "no_erase": not erase,
                                                  "reply": reply})

    def create_consumer(self, name, cfg, reply):
        self.group.propose_admin(ops.ADD_CONSUMER, {
            "name": name, "config": cfg, "created": time.time_ns(), "reply": reply})

    def update_consumer(self, existing, cfg, reply):
        self.create_consumer(existing.name, cfg, reply)

    def delete_consumer_request(self, name, reply):
        self.group.propose_admin(ops.REMOVE_CONSUMER, {"name": name, "reply": reply})

    def info(self, deleted_details=False, subjects_filter=None, cluster=True):
        info = super().info(deleted_details, subjects_filter, cluster=False)
        if cluster:
            info["cluster"] = self.group.cluster_info()
        return info


class ReplicatedConsumer(Consumer):
    """A consumer of a replicated stream: its state changes are proposed; a
    double ack (``ack_sync``) is answered once its state is committed (Go)."""

    replies_after_commit = True
    _ack_replies = ()

    def on_ack(self, kind, sseq, dseq, dc, body, reply):
        super().on_ack(kind, sseq, dseq, dc, body, reply)
        if reply and kind != "NXT":
            if not self._ack_replies:
                self._ack_replies = []
            self._ack_replies.append(reply)
            self.save_state()  # now: the requester waits for it

    def save_state(self):
        group = self.stream.group
        if not group.ready or self.closed:
            return
        state = self.current_state()
        body = {"name": self.name, "state": encode_state(state).decode()}
        if self._ack_replies:
            body["replies"], self._ack_replies = self._ack_replies, []
        if group.acked_removals:
            body["removed"], group.acked_removals = group.acked_removals, []
        try:
            group.propose(ops.encode_json(ops.CONSUMER_STATE, body))
        except NotLeader:
            pass
        self._dirty = False
        self._write_state(state)

    def info(self):
        info = super().info()
        info["cluster"] = self.stream.group.cluster_info()
        return info

    def current_state(self):
        from ..store.types import ConsumerState

        return ConsumerState(self.dseq, self.dsseq, self.afloor_c, self.afloor_s,
                             {s: (p[0], p[1]) for s, p in self.pending.items()},
                             {s: n - 1 for s, n in self.rdc.items() if n > 1})

    def _write_state(self, state):
        if self.store is None or self.stream.cfg["storage"] == "memory":
            return
        try:
            self.store.update(state)
        except (StoreError, OSError) as exc:
            self.jsa.js.log.warning("consumer_state_write_failed", consumer=self.name,
                                    error=str(exc))


class _Batch:
    """The messages a stream leader accepted while one read batch was
    handled, proposed as one entry (one log record, one slice of an append,
    one decode per member) when the reader flushes: it sits on the server's
    ``touched`` list like a connection. A caller outside a read batch is
    covered by a callback on the next loop turn. Anything else the group
    proposes goes after it (``StreamGroup.propose``), so the log keeps the
    order in which the leader accepted things."""

    __slots__ = ("group", "records", "items", "size", "flush_queued", "_callback")
    MAX_BYTES = 256 * 1024  # one entry stays well below a route's max_payload

    def __init__(self, group):
        self.group = group
        self.records, self.items, self.size = [], [], 0
        self.flush_queued = False
        self._callback = None

    def add(self, record, item):
        if self.size + len(record) > self.MAX_BYTES and self.records:
            self.flush()
        self.records.append(record)
        self.items.append(item)
        self.size += len(record)
        if not self.flush_queued:
            self.flush_queued = True
            self.group.server.touched.append(self)
        if self._callback is None:
            self._callback = gevent.get_hub().loop.run_callback(self._later)

    def _later(self):
        self._callback = None
        if self.records:
            self.flush()
            self.group.server.flush_touched()

    def drop(self):
        self.records, self.items, self.size = [], [], 0

    def flush(self):
        """Propose what is held (the touched list's caller flushes the
        connections the node wakes)."""
        self.flush_queued = False
        if not self.records:
            return
        records, items = self.records, self.items
        self.drop()
        group = self.group
        try:
            index = group.node.propose(ops.encode_batch(records))
        except NotLeader:
            return  # not answered: the clients retry (their Nats-Msg-Id dedups)
        # the leader applies its own entry from these, not by decoding it again
        group.mine[index] = (group.node.term, items)


class StreamGroup:
    """One stream's RAFT group member on this server."""

    def __init__(self, manager, jsa, sa):
        self.manager = manager
        self.jsa = jsa
        self.server = manager.server
        self.sa = sa
        self.name = sa["group"]["name"]
        self.ready = False        # leader, and its LEADER_READY entry applied
        self.clseq = 0            # the last sequence proposed (leader)
        self.clts = 0
        self.inflight = {}        # subject -> last seq proposed, not yet applied (leader)
        self.batch = _Batch(self)  # messages accepted, not yet proposed (leader)
        self.mine = {}            # index -> (term, messages) proposed by this leader
        self.acked_removals = []  # seqs retention drops once the next consumer state commits
        self.applying = False     # in _apply: retention removes at once (every member does)
        self.held_acks = []       # (seq, reply, body, msg id): atomic batches and
        #                           retries of messages in flight, until applied
        self.proposed_ids = {}    # Nats-Msg-Id -> seq proposed, not yet applied (leader)
        self.refused = (0, 0)     # an atomic batch's (first, last) seqs refused at apply
        self.node = None
        self.stream = None
        self.answered = set()     # replies already answered (create responses)
        self.joining = False      # added to a running group: no founding peer set
        self.since_snapshot = 0
        self.log = structlog.get_logger("pluggy_nats.jetstream.cluster").bind(
            stream=sa["stream"]["name"], group=self.name)

    # -- life -------------------------------------------------------------------------

    def data_dir(self):
        from ..account import safe_dirname

        return os.path.join(self.manager.js.config.jetstream_dir(),
                            safe_dirname(self.jsa.account.name), "rstreams",
                            safe_dirname(self.sa["stream"]["name"]))

    def raft_dir(self):
        return os.path.join(self.manager.js.config.jetstream_dir(), "$SYS", "_js_", self.name)

    def start(self):
        cfg = self.sa["stream"]
        directory = self.data_dir() if cfg["storage"] == "file" else None
        store = open_stream_store(cfg["storage"], directory, store_config(cfg))
        created = _created_ns(self.sa.get("created"))
        self.stream = ReplicatedStream(self.jsa, cfg, created, store, self)
        self.jsa.streams[cfg["name"]] = self.stream
        self._recover_consumers(store)
        self.stream.save_meta()
        self.stream.start()
        storage = FileStorage(self.raft_dir(), fsync=self.manager.js.config.sync_always) \
            if cfg["storage"] == "file" else _memory_storage()
        founders = [] if self.joining else list(self.sa["group"]["peers"])
        self.node = RaftNode(self.server, self.name, storage, founders,
                             apply=self._apply, install_snapshot=self._install,
                             leader_changed=self._leader_changed,
                             config=self.manager.raft_config())
        self.node.start()
        self.follow_migration()
        preferred = self.sa["group"].get("preferred")
        if (preferred == self.node.id and storage.last_index == 0) or \
                self.node.peers == {self.node.id}:  # R1: no one to wait for
            self.node.core.election_deadline = 0  # Go: the preferred peer campaigns first
        return self

    def follow_migration(self):
        """An observer while the account's leaf remote is away
        (``Manager.migrate``); replicated streams only."""
        if self.node is None or len(self.sa["group"]["peers"]) < 2:
            return
        away = self.jsa.account.name in self.manager.migrated
        if away != self.node.observer:
            self.log.info("stream_migrate_observer", observer=away)
            self.node.set_observer(away)

    def stop(self, delete=False):
        self.ready = False
        self.batch.drop()
        self.mine.clear()
        if self.node is not None:
            self.node.stop()
        if self.stream is not None:
            self.jsa.streams.pop(self.stream.name, None)
            self.stream.stop(delete=delete)
        if delete:
            import shutil

            shutil.rmtree(self.raft_dir(), ignore_errors=True)

    def update(self, sa):
        self.sa = dict(sa, consumers=self.sa.get("consumers"))
        self.stream.update(sa["stream"])
        reply = sa.get("update_reply")
        if reply and self.ready:
            # a move or cancel asked in the system account is answered there (moves.py)
            client = self.manager.client if sa.get("update_sys") else None
            self._respond(reply, sa.get("update_type") or "stream_update_response",
                          self.stream.info(cluster=True), client=client)
            self.server.flush_touched()

    # -- consumers ----------------------------------------------------------------------

    def _recover_consumers(self, store):
        """Consumers this member held before a restart (the log replays what
        came after)."""
        try:
            meta = json.loads(store.read_meta() or b"{}")
        except ValueError:
            meta = {}
        for name, c in (meta.get("consumers") or {}).items():
            try:
                state = store.consumer_store(name).load()
            except (StoreError, OSError, ValueError, AttributeError):
                state = None
            self.stream.consumers[name] = ReplicatedConsumer(
                self.stream, name, c["config"], c.get("created", 0), state)

    def _apply_add_consumer(self, body):
        from ..stream import apply_consumer_update

        name, cfg, stream = body["name"], body["config"], self.stream
        reply = body.get("reply") if self.ready else None
        existing = stream.consumers.get(name)
        if existing is not None:
            if existing.cfg != cfg:
                apply_consumer_update(existing, cfg)
                stream.save_meta()
            if reply:
                self._respond(reply, "consumer_create_response", existing.info(),
                              headers=_identity(stream, cfg))
            return
        consumer = ReplicatedConsumer(stream, name, cfg, body.get("created") or time.time_ns())
        stream.consumers[name] = consumer
        stream.save_meta()
        if self.ready:
            consumer.start()
            consumer.save_state()  # the followers take the leader's starting position
            advisories.consumer_action(self.jsa, stream.name, name, "create")
            if reply:
                self._respond(reply, "consumer_create_response", consumer.info(),
                              headers=_identity(stream, cfg))

    def _apply_remove_consumer(self, body):
        found = self.jsa.delete_consumer(self.stream, body["name"])
        reply = body.get("reply") if self.ready else None
        if reply:
            if found:
                self._respond(reply, "consumer_delete_response", {"success": True})
            else:
                self._respond(reply, "consumer_delete_response", error=ApiError(10014))

    # -- the log ------------------------------------------------------------------------

    def _apply(self, entry):
        self.applying = True
        try:
            self._apply_entry(entry)
        finally:
            self.applying = False

    def _apply_entry(self, entry):
        data = entry.data
        op = data[0]
        if op == ops.MSG_BATCH:
            mine = self.mine.pop(entry.index, None)
            if mine is not None and mine[0] == entry.term:
                items = mine[1]
            else:
                items = ops.decode_batch(data)
            self._apply_msgs(items)
            self.since_snapshot += len(items) - 1
        elif op == ops.STREAM_MSG:
            self._apply_msgs((ops.decode_msg(data),))
        elif op == ops.CONSUMER_STATE:
            body = ops.decode_json(data)
            if not self.ready:
                self._follower_consumer_state(body["name"], body["state"])
            for seq in body.get("removed") or ():
                self.stream.remove_msg(seq)  # acknowledged under workqueue/interest retention
            if self.ready:
                for reply in body.get("replies") or ():
                    self.jsa.client.publish(reply, b"", flush=False)
        elif op == ops.LEADER_READY:
            body = ops.decode_json(data)
            if self.node.is_leader and body["term"] == self.node.term:
                self._become_ready()
        elif op in (ops.PURGE, ops.DELETE_MSG):
            self._apply_admin(op, ops.decode_json(data))
        elif op == ops.ADD_CONSUMER:
            self._apply_add_consumer(ops.decode_json(data))
        elif op == ops.REMOVE_CONSUMER:
            self._apply_remove_consumer(ops.decode_json(data))
        self.since_snapshot += 1
        if self.since_snapshot >= SNAPSHOT_ENTRIES and self._all_caught_up(entry.index):
            self.since_snapshot = 0
            # the log gives up these entries: the store must hold them durably
            self.stream.store.sync()
            self.node.snapshot(self._snapshot_state())
        # the node flushes once after the batch (PubAcks included)

    def _apply_msgs(self, items):
        """Store committed messages at their sequences (skipping those this
        member already holds: a restart re-applies the log after its
        snapshot); the leader answers each."""
        stream, inflight, ready = self.stream, self.inflight, self.ready
        commit = stream._commit
        last = stream.store.state().last_seq
        seq = ts = 0
        proposed = self.proposed_ids
        run = []  # plain messages in a row: stored and answered together
        for record in items:
            seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, body = record
            if inflight and inflight.get(subject) == seq:
                del inflight[subject]
            if proposed and msg_id and proposed.get(msg_id) == seq:
                del proposed[msg_id]
            if seq <= last:
                continue
            if not (ttl or rollup or msg_id or counter is not None or reply[:1] == ATOMIC[:1]):
                run.append(record)
                continue
            if run:
                self._commit_run(run)
                run = []
            if reply and reply[0] == 0:  # ATOMIC
                self._apply_atomic(seq, ts, ttl, rollup, subject, reply, msg_id, counter,
                                   hdr, body)
                continue
            commit(subject, reply if ready else b"", hdr, body, ttl, msg_id, rollup, counter,
                   False, seq=seq, ts=ts)
        if run:
            self._commit_run(run)
        if not ready and seq:
            self.clseq, self.clts = seq, ts
        held = self.held_acks
        while held and held[0][0] <= seq:
            acked, reply, body, msg_id = held.pop(0)
            if msg_id is not None:
                if stream.dedup.get(msg_id, (0,))[0] != acked:
                    continue  # the store refused the original: not a duplicate, no answer
            elif self.refused[0] <= acked <= self.refused[1]:
                # a message of this atomic batch was refused: none is stored
                body = stream._error_body(ApiError(10176))
            Stream._ack(stream, reply, body, acked)

    def _commit_run(self, run):
        stream, ready = self.stream, self.ready
        n = stream.commit_run(run, ready) or 0
        # declined, or a limit or a store error stopped it: each of the rest meets it
        for seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, body in run[n:]:
            stream._commit(subject, reply if ready else b"", hdr, body, ttl, msg_id, rollup,
                           counter, False, seq=seq, ts=ts)

    def _apply_atomic(self, seq, ts, ttl, rollup, subject, marker, msg_id, counter, hdr, body):
        """One message of an atomic batch; when the store refuses one (a limit
        with discard new), every member removes the batch's messages stored
        before it and skips the rest, and the leader answers an error."""
        first, count = (int(x) for x in bytes(marker[len(ATOMIC):]).split(b":"))
        if self.refused[0] == first:
            return  # the batch was refused at an earlier message
        stream = self.stream
        if stream._commit(subject, b"", hdr, body, ttl, msg_id, rollup, counter, False,
                          seq=seq, ts=ts):
            return
        self.refused = (first, first + count - 1)
        for stored in range(first, seq):
            stream.remove_msg(stored)

    def propose(self, data):
        """Propose ``data`` after the messages accepted before it."""
        self.batch.flush()
        return self.node.propose(data)

    def can_propose(self):
        core = self.node.core
        return self.ready and core.is_leader and core.transfer_to is None

    def _apply_admin(self, op, body):
        stream = self.stream
        reply = body.get("reply") if self.ready else None
        if op == ops.PURGE:
            seq, last = body.get("seq", 0), body.get("last_seq")
            if isinstance(last, int) and not body.get("keep"):
                seq = min(seq, last + 1) if seq else last + 1
            n = stream.purge(subject=body.get("filter") or None, seq=seq,
                             keep=body.get("keep", 0))
            if reply:
                self._respond(reply, "stream_purge_response", {"success": True, "purged": n})
        else:
            removed = stream.remove_msg(body["seq"], erase=not body.get("no_erase"))
            if reply:
                if removed:
                    self._respond(reply, "stream_msg_delete_response", {"success": True})
                else:
                    self._respond(reply, "stream_msg_delete_response",
                                  error=ApiError(10057, err="no message found"))

    def propose_admin(self, op, body):
        try:
            self.propose(ops.encode_json(op, body))
        except NotLeader:
            raise ApiError(10009) from None

    def _follower_consumer_state(self, name, raw):
        stream = self.stream
        consumer = stream.consumers.get(name)
        if consumer is None:
            return
        state = decode_state(raw.encode())
        consumer.closed = True
        fresh = ReplicatedConsumer(stream, name, consumer.cfg, consumer.created, state)
        stream.consumers[name] = fresh
        fresh._write_state(state)

    def _snapshot_state(self):
        return json.dumps({"last_seq": self.stream.store.state().last_seq, "consumers": {
            n: {"config": c.cfg, "created": c.created,
                "state": encode_state(c.current_state()).decode()}
            for n, c in self.stream.consumers.items()}}).encode()

    def _install(self, data, index):
        """A snapshot: consumer states (the messages are in our store: a log is
        compacted only once every peer holds it)."""
        try:
            snap = json.loads(data)
        except ValueError:
            return
        stream = self.stream
        for name, c in (snap.get("consumers") or {}).items():
            if name not in stream.consumers:
                stream.consumers[name] = ReplicatedConsumer(stream, name, c["config"],
                                                            c["created"])
            self._follower_consumer_state(name, c["state"])
        for name in set(stream.consumers) - set(snap.get("consumers") or {}):
            self.jsa.delete_consumer(stream, name)
        stream.save_meta()
        last = snap.get("last_seq", 0)
        if last > self.stream.store.state().last_seq:
            # a wiped store, or a new member after the log was compacted: the
            # messages come from the leader's store before anything after
            from . import catchup

            catchup.fetch(self.manager, self, last)
            stream.dedup_loaded = False  # the copies' Nats-Msg-Id enter the window

    def _all_caught_up(self, index):
        core = self.node.core
        return core.is_leader and all(core.match_index.get(p, 0) >= index
                                      for p in core.peers if p != core.id)

    # -- leadership -----------------------------------------------------------------------

    def _leader_changed(self, leader, term):
        if leader == self.node.id:
            try:
                self.propose(ops.encode_json(ops.LEADER_READY, {"term": term}))
            except NotLeader:
                pass
            return
        if self.ready:
            if leader is None:
                # not a step-down we asked for (that clears ready first): the
                # leader lost its quorum (Go sends this then)
                self.log.warning("JetStream cluster stream '%s > %s' has NO quorum, stalled"
                                 % (self.jsa.account.name, self.stream.name))
                advisories.quorum_lost(self.jsa, self.stream.name, sorted(self.stream.consumers),
                                       self.replica_names(), system=self.manager.client)
            self._lose_leadership()

    def _become_ready(self):
        stream = self.stream
        st = stream.store.state()
        self.inflight.clear()
        self.batch.drop()
        self.mine.clear()
        self.acked_removals = []
        self.held_acks = []
        self.proposed_ids.clear()
        self.clseq, self.clts = st.last_seq, st.last_ts
        self.ready = True
        stream._subscribe()
        for name, consumer in list(stream.consumers.items()):
            consumer.closed = True
            fresh = ReplicatedConsumer(stream, name, consumer.cfg, consumer.created,
                                       consumer.current_state())
            stream.consumers[name] = fresh
            fresh.start()
        advisories.stream_leader_elected(self.jsa, stream.name, self.server.server_name,
                                         self.replica_names(), system=self.manager.client)
        for name in sorted(stream.consumers):
            advisories.consumer_leader_elected(self.jsa, stream.name, name,
                                               self.server.server_name, self.replica_names(),
                                               system=self.manager.client)
        reply = self.sa.get("reply")
        if reply and reply not in self.answered and time.time() - _created_s(self.sa) < 30:
            self.answered.add(reply)
            info = stream.info(cluster=True)
            info["did_create"] = True
            self._respond(reply, "stream_create_response", info)
        stream._stop_feeds()
        stream._start_feeds()
        self.server.flush_touched()

    def _lose_leadership(self):
        self.ready = False
        self.stream._stop_feeds()
        self.inflight.clear()
        self.batch.drop()  # never proposed: not answered, the clients retry
        self.mine.clear()
        self.acked_removals = []  # those acks were not committed: the new leader redelivers
        self.held_acks = []       # not answered: the client retries
        self.proposed_ids.clear()  # those may never commit: not duplicates of anything
        stream = self.stream
        stream._subscribe()
        for name, consumer in list(stream.consumers.items()):
            # closed: the ack fast path (account.py) drops its cached object
            consumer.closed = True
            if consumer.greenlet is not None:
                consumer.greenlet.kill(block=False)
            stream.consumers[name] = ReplicatedConsumer(stream, name, consumer.cfg,
                                                        consumer.created,
                                                        consumer.current_state())
        self.log.info("stream_leader_lost")

    def step_down(self, preferred=None):
        """Hand leadership to the peer id ``preferred`` (checked by the caller,
        admin.preferred_placement) or the most up to date peer."""
        for consumer in self.stream.consumers.values():
            consumer.save_state()  # their last state goes before the transfer entry
        self.ready = False
        self._lose_leadership()
        self.node.step_down(preferred)

    # -- views ------------------------------------------------------------------------------

    def health_error(self):
        """Why this member is not current (Go's isStreamHealthy), or None."""
        if self.stream is None or self.stream.closed:
            return "stream not found"
        if self.sa["stream"].get("num_replicas", 1) <= 1:
            return None  # no further checks for R1 (Go)
        if self.node is None:
            return "group node missing"
        if not self.node.healthy():
            return "group node unhealthy"
        return None

    def replica_names(self):
        return [self.manager.peer_name(p) for p in sorted(self.node.peers) if p != self.node.id]

    def cluster_info(self):
        """STREAM.INFO ``cluster``: Go's ClusterInfo. As Go, ``replicas`` are the
        peers but this server (the leader, when the leader answers), all of
        them while the group has no leader."""
        node, core = self.node, self.node.core
        leader = node.leader
        out = {"name": self.manager.cluster_name}  # Go: the answering server's cluster
        if leader:
            out["leader"] = self.manager.peer_name(leader)
        replicas = []
        now = time.monotonic()
        for peer in sorted(node.peers):
            if leader and peer == node.id:
                continue
            entry = {"name": self.manager.peer_name(peer), "current": False, "active": 0,
                     "peer": peer}
            if peer == node.id:
                entry["current"] = node.applied >= core.commit_index
            elif node.is_leader:
                seen = core.last_ack.get(peer)
                if seen is not None:
                    entry["active"] = int((now - seen) * 1e9)
                    lag = core.storage.last_index - core.match_index.get(peer, 0)
                    entry["current"] = lag == 0 or now - seen < 2 * node.core.config.heartbeat
                    if lag:
                        entry["lag"] = lag
            else:
                entry["current"] = self.manager.peer_online(peer)
            if not self.manager.peer_online(peer) and peer != node.id:
                entry["offline"] = True
                entry["current"] = False
            replicas.append(entry)
        if replicas:
            out["replicas"] = replicas
        desired = moves.desired_info(self.manager, self.sa)
        if desired:
            out["desired"] = desired
        return out

    def _respond(self, reply, rtype, body=None, error=None, client=None, headers=None):
        response = {"type": T + rtype}
        if error is not None:
            response["error"] = error.as_dict()
        else:
            response.update(body)
        (client or self.jsa.client).publish(reply, dumps(response), headers=headers,
                                            flush=False)


def _identity(stream, cfg):
    """The answer's ``Nats-Stream-Identity`` for a mirror's or source's
    consumer (api.py ``consumer_create``), else None."""
    if cfg.get("direct") or cfg.get("sourcing"):
        return stream.identity_header()
    return None


def _held_seq(held):
    return held[0]


def _created_ns(text):
    from .. import headers as H

    if not text:
        return time.time_ns()
    try:
        return H.parse_rfc3339(text)
    except (ValueError, TypeError):
        return time.time_ns()


def _created_s(sa):
    return _created_ns(sa.get("created")) / 1e9


def _memory_storage():
    from pluggy_nats.raft import MemoryStorage

    return MemoryStorage()
