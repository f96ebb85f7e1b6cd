"""One stream: a state machine fed by an ordered log of operations.

Every change to a stream's messages goes through :meth:`Stream.apply`-style
methods that take plain values (subject, headers, payload, time) and return
plain results, so that a replicated (RAFT) stream can later feed the same
methods from its committed log. Publishes arrive through an internal
subscription on the stream's subjects (no per-message hook); the store is
synchronous, acknowledgements are sent after it returns (after one group
``sync()`` per batch with ``sync_interval: always``).
"""

import collections
import json
import time
from operator import itemgetter

import gevent
import gevent.event

from pluggy_nats.subjects import subject_matches

from . import headers as H
from .errors import ApiError
from .jsonreq import dumps
from .store import (
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgSize,
    ErrMaxMsgsPerSubject,
    StoreConfig,
    StoreError,
    gevent_group_commit,
)
from .writebehind import WriteBehind

MAX_HDR = 64 * 1024
EXPIRY_TICK = 0.05  # seconds between expiry passes
MAX_BATCH = 1000  # messages in one atomic batch (Go's streamMaxAtomicBatchSize)
SECOND = 1_000_000_000
DGET_GROUP = "_sys_"  # the queue group of direct gets (Go dgetGroup = sysGroup)
# a replicated stream's log record -> the store's (subject, hdr, data, seq, ts)
_RAW_ITEM = itemgetter(4, 8, 9, 0, 1)


def store_config(cfg):
    """The limits the store enforces itself, from a stream config dict."""
    return StoreConfig(
        name=cfg["name"], subjects=list(cfg.get("subjects", [])),
        max_msgs=cfg["max_msgs"], max_bytes=cfg["max_bytes"], max_age_ns=cfg["max_age"],
        max_msgs_per_subject=cfg["max_msgs_per_subject"], max_msg_size=cfg["max_msg_size"],
        discard_new=cfg["discard"] == "new",
        discard_new_per_subject=bool(cfg.get("discard_new_per_subject")),
        allow_msg_ttl=bool(cfg.get("allow_msg_ttl")),
        subject_delete_marker_ttl_ns=cfg.get("subject_delete_marker_ttl", 0))


def parse_ttl(text):
    """``Nats-TTL`` -> seconds (-1 = never); ApiError 10165 when invalid (Go parseMessageTTL)."""
    from pluggy_nats.conf import go_parse_duration

    if text.lower() == "never":
        return -1
    try:
        ns = go_parse_duration(text)
    except ValueError:
        ns = None
    if ns is not None:
        if ns < SECOND:
            raise ApiError(10165)
        return ns // SECOND
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ApiError(10165)


def _match_any(filters, subject):
    if not filters:
        return True
    s = subject.encode()
    for f in filters:
        if f == subject or f == ">" or subject_matches(f.encode(), s):
            return True
    return False


class Stream:
    def __init__(self, jsa, cfg, created, store):
        self.jsa = jsa
        self.server = jsa.server
        self.client = jsa.client
        self.name = cfg["name"]
        self.cfg = cfg
        self.created = created
        self.store = store
        self.consumers = {}
        self.feeds = set()  # SourceFeeds reading from this stream (mirrors, sources)
        self.source_feeds = []  # SourceFeeds writing into this stream
        self.batches = {}  # atomic batch id -> staged (subject, hdr, data, headers)
        self.dedup = collections.OrderedDict()  # msg id -> (seq, ts ns)
        self.dedup_loaded = False  # the window holds the stored messages' ids
        self.last_msg_id = ""
        self.subs = []
        self.closed = False
        # sync_interval "always": PubAcks wait for one fsync per batch (group
        # commit; the fsync runs in gevent's thread pool)
        self._group_commit = gevent_group_commit(store) \
            if jsa.js.config.sync_always and self.sync_each_write else None
        self._synced_acks = []  # (reply, body, error) released by the last fsync
        # Otherwise (file store) appends are held and written once per read batch
        # (writebehind.py); answers wait for that write.
        self._held = None
        if self._group_commit is None and hasattr(store, "defer_writes"):
            self._held = WriteBehind(self)
            store.defer_writes = True
        self._expiry_wake = gevent.event.Event()
        self._expiry = None
        self._expiry_idle = True  # the expiry loop waits with no deadline
        self._pubprefix = None
        self._set_pubprefix()

    # -- lifecycle -------------------------------------------------------------

    def _set_pubprefix(self):
        domain = self.jsa.js.config.domain
        if domain:
            self._pubprefix = '{"stream":%s,"domain":%s,"seq":' % (
                json.dumps(self.name), json.dumps(domain))
        else:
            self._pubprefix = '{"stream":%s,"seq":' % json.dumps(self.name)
        self._ackprefix = self._pubprefix.encode()

    def start(self):
        self._subscribe()
        self._expiry = self.server.spawn(self._expiry_loop)
        self._start_feeds()

    replicated = False  # a stream of a RAFT group (cluster/replica.py)
    # Where the mirror or source feeds run: here always; a replicated
    # stream's on its leader only.
    runs_feeds = True

    def accepting(self):
        """True when a message handed to this stream now is taken (a
        replicated stream: its leader can propose), so a feed knows whether
        to go on or to come back for the rest."""
        return True

    def _start_feeds(self):
        """The feeds of this stream's mirror or sources, started from what
        the store holds."""
        from .remote import feed_for

        if self.cfg.get("mirror"):
            self.source_feeds = [feed_for(self, self.cfg["mirror"], mirror=True)]
        else:
            self.source_feeds = [feed_for(self, spec, mirror=False)
                                 for spec in self.cfg.get("sources") or ()]
        for feed in self.source_feeds:
            feed.start()

    def _stop_feeds(self):
        for feed in self.source_feeds:
            feed.stop()
        self.source_feeds = []

    def identity(self):
        """Go 2.15's stream identity (``Nats-Stream-Identity``): the hash of
        its creation time, so a stream deleted and made again under the same
        name is told apart by the mirrors and sources that read it."""
        from .sources import go_hash

        return go_hash(H.rfc3339(self.created))

    def identity_header(self):
        """The ``Nats-Stream-Identity`` header block of an API answer."""
        return H.build([("Nats-Stream-Identity", self.identity())])

    def _subscribe(self):
        for sub in self.subs:
            self.client.unsubscribe(sub)
        self.subs = []
        transform = self.cfg.get("subject_transform")
        intake = list(self.cfg.get("subjects", []))
        if transform and transform.get("src") and not intake:
            intake.append(transform["src"])
        for subject in intake:
            sub = self.client.subscribe(subject, self._on_publish)
            sub.run_callback = self._on_publish_run
            self.subs.append(sub)
        if self.cfg.get("allow_direct"):
            # Go's queue group (dgetGroup): of several subscribers (members
            # of a stream, mirrors that share it) one answers
            api = "$JS.API.DIRECT.GET.%s" % self.name
            self.subs.append(self.client.subscribe(api, self._on_direct_get, queue=DGET_GROUP))
            self.subs.append(self.client.subscribe(api + ".>", self._on_direct_get,
                                                   queue=DGET_GROUP))

    def update(self, cfg):
        old = self.cfg
        self.cfg = cfg
        self.store.update_config(store_config(cfg))
        for consumer in self.consumers.values():
            consumer.read_filters = consumer.effective_filters()
        if old.get("subjects") != cfg.get("subjects") or old.get("allow_direct") != \
                cfg.get("allow_direct") or old.get("subject_transform") != \
                cfg.get("subject_transform"):
            self._subscribe()
        if old.get("sources") != cfg.get("sources"):
            self._stop_feeds()
            if self.runs_feeds:
                self._start_feeds()
        self._expiry_wake.set()
        self.save_meta()

    def stop(self, delete=False):
        self.closed = True
        for sub in self.subs:
            self.client.unsubscribe(sub)
        self.subs = []
        for consumer in list(self.consumers.values()):
            consumer.stop(delete=delete, notify=delete)
        self._stop_feeds()
        if self._expiry is not None:
            self._expiry.kill(block=False)
        if self._group_commit is not None:
            self._group_commit.flush()
            self._send_synced_acks()
        if self._held is not None:
            self._held.flush()
        if delete:
            self.store.delete()
        else:
            try:
                self.store.flush_state()
            finally:
                self.store.close()

    def save_meta(self):
        """The stream config, its creation time and its consumers' configs (the
        store keeps the blob; the store keeps consumer state itself)."""
        meta = {"config": self.cfg, "created": self.created,
                "consumers": {name: {"config": c.cfg, "created": c.created}
                              for name, c in self.consumers.items()}}
        try:
            self.store.write_meta(json.dumps(meta).encode())
        except (StoreError, OSError) as exc:
            self.jsa.js.log.warning("stream_meta_write_failed", stream=self.name, error=str(exc))

    # -- publish ---------------------------------------------------------------

    def _on_publish(self, sub, subject, reply, hdr, payload):
        if self.closed:
            return
        subject = subject.decode()
        transform = self.cfg.get("subject_transform")
        if transform and transform.get("dest"):
            subject = self.jsa.transform(transform, subject)
        # the reply stays bytes: it is only handed back to publish
        self.process(subject, reply or "", bytes(hdr) if hdr else b"", bytes(payload))

    def _on_publish_run(self, sub, _subject, msgs):
        """A run of header-less publishes, ``[(subject, reply, payload)]``
        (a client's segment, ``delivery.deliver_run``, or a link's,
        ``links/jsdeliver.claimed_run``), each taken as ``_on_publish`` takes
        it, a subject decoded once for its run. A stream that stores what it
        accepts at once (not replicated) stores the plain ones as runs
        (``_store_new_run``): one that would fail a check goes alone, after
        the run before it."""
        cfg = self.cfg
        transform = cfg.get("subject_transform")
        transform = transform if transform and transform.get("dest") else None
        process = self.process
        plain = self.stores_runs and not cfg.get("sealed") and not cfg.get("allow_msg_counter")
        max_size = cfg["max_msg_size"]
        run = []
        last = name = None
        for subject, reply, payload in msgs:
            if self.closed:
                return
            if subject is not last:
                last = subject
                name = subject.decode()
                if transform is not None:
                    name = self.jsa.transform(transform, name)
            data = bytes(payload)
            if plain and (max_size < 0 or len(data) <= max_size):
                run.append((name, reply, data))
                continue
            if run:
                self._store_new_run(run)
                run = []
            process(name, reply or "", b"", data)
        if run and not self.closed:
            self._store_new_run(run)

    stores_runs = True  # a replicated stream proposes instead

    def _store_new_run(self, run):
        """``_commit`` for new plain messages ``[(subject, reply, data)]``:
        the next sequences and timestamps given here, stored and answered by
        ``commit_run``, or one by one where it declines."""
        state = self.store.state()
        seq = state.last_seq + 1
        ts = max(time.time_ns(), state.last_ts + 1)
        records = [(seq + i, ts + i, 0, "", subject, reply or b"", "", None, b"", data)
                   for i, (subject, reply, data) in enumerate(run)]
        n = self.commit_run(records, True) or 0
        for subject, reply, data in run[n:]:  # each takes the next sequence then
            self._commit(subject, reply or "", b"", data, 0, "", "", None, False)

    def _pub(self, subject, payload=b"", **kw):
        """Publish without flushing: callbacks run in a client's reader, which
        flushes every touched connection once its read batch is handled."""
        self.client.publish(subject, payload, flush=False, **kw)

    def _answer(self, reply, body, seq=0):
        """A PubAck or error: after the held writes when there are any (in order)."""
        held = self._held
        if held is not None and held.pending:
            held.answers.append((reply, body, seq))
        else:
            self._pub(reply, body)

    def _respond(self, reply, body):
        if reply and not self.cfg.get("no_ack"):
            self._answer(reply, body)

    def _error_body(self, err):
        return dumps({"error": err.as_dict(), "stream": self.name, "seq": 0})

    def _error(self, reply, err):
        if reply and not self.cfg.get("no_ack"):
            self._answer(reply, self._error_body(err))

    def process(self, subject, reply, hdr, data, sourced=False, in_batch=False):
        """A message published to the stream (or copied by a source): checks (Go's
        processJetStreamMsg order), store, PubAck, notify consumers. Returns the
        seq or 0."""
        cfg = self.cfg
        if cfg.get("sealed"):
            self._error(reply, ApiError(10109))
            return 0
        if len(hdr) > MAX_HDR:
            self._error(reply, ApiError(10097))
            return 0
        if cfg["max_msg_size"] >= 0 and len(hdr) + len(data) > cfg["max_msg_size"]:
            self._error(reply, ApiError(10054))
            return 0
        msg_id = ""
        ttl = 0
        rollup = ""
        counter = None
        if not hdr and cfg.get("allow_msg_counter"):
            self._error(reply, ApiError(10169))
            return 0
        if hdr:
            h = H.parse(hdr)
            if "Nats-Batch-Id" in h and not in_batch and not sourced:
                return self._batch_msg(subject, reply, hdr, data, h)
            try:
                if "Nats-Incr" in h or cfg.get("allow_msg_counter"):
                    data, counter = self._count(h, subject, data)
                if not sourced and "Nats-Stream-Source" in h:
                    raise ApiError(10227)
                msg_id, ttl, rollup = self._check_headers(h, subject)
            except ApiError as err:
                self._error(reply, err)
                return 0
            except _Duplicate as dup:
                self._duplicate(reply, dup.seq, h.get("Nats-Msg-Id"))
                return 0
        return self._accept(subject, reply, hdr, data, ttl, msg_id, rollup, counter, in_batch)

    def _commit(self, subject, reply, hdr, data, ttl, msg_id, rollup, counter, in_batch,
                seq=0, ts=0):
        """Store a checked message and do what follows (PubAck, republish,
        retention, consumers). A replicated stream calls it when the entry is
        applied, with the ``seq`` and ``ts`` its leader gave the message."""
        cfg = self.cfg
        try:
            # Nats-TTL "never" is -1 for the store: exempt from max_age
            if seq:
                self.store.store_raw(subject, hdr, data, seq, ts,
                                     ttl * SECOND if ttl > 0 else ttl)
            else:
                seq, ts = self.store.store_msg(subject, hdr, data,
                                               ttl * SECOND if ttl > 0 else ttl)
            if self._held is not None:
                self._held.hold()
        except (ErrMaxMsgs, ErrMaxBytes, ErrMaxMsgsPerSubject) as exc:
            self._error(reply, ApiError(10077, err=str(exc) or "maximum messages exceeded"))
            return 0
        except ErrMaxMsgSize:
            self._error(reply, ApiError(10054))
            return 0
        except StoreError as exc:
            self.jsa.js.log.warning("stream_store_failed", stream=self.name, error=str(exc))
            self._error(reply, ApiError(10077, err=str(exc) or "store failed"))
            return 0
        self.last_msg_id = msg_id  # Go keeps the id of the last message, "" if none
        if msg_id:
            self._remember_id(msg_id, seq, ts)
        if rollup:
            if rollup == "sub":
                self.purge(subject=subject, keep=1, notify=False)
            else:
                self.purge(seq=seq, notify=False)
        if ttl > 0 or (self._expiry_idle and cfg["max_age"]):
            self._expiry_wake.set()  # the expiry loop had nothing to wait for
        if reply and not cfg.get("no_ack") and not in_batch:
            body = b"%s%d}" % (self._ackprefix, seq)
            if counter is not None:
                body = b'%s%d,"val":"%d"}' % (self._ackprefix, seq, counter)
            self._ack(reply, body, seq)
        republish = cfg.get("republish")
        if republish:
            self._republish(republish, subject, seq, ts, hdr, data)
        # interest retention with no one interested: dropped at once (Go skips
        # it, srv:stream.go ``noInterest``); a work queue keeps it for a worker
        if cfg["retention"] == "interest" and not any(
                _match_any(c.filters, subject) for c in self.consumers.values()):
            self.store.remove_msg(seq)
            return seq
        self._stored(seq, subject)
        return seq

    def commit_run(self, run, answer):
        """``_commit`` for a run of plain messages at their sequences (a
        replicated stream applying its log, a stream storing a client's
        run, ``_store_new_run``): ``run`` holds log records
        ``(seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data)``
        with no TTL, rollup, message id or counter. ``answer``: PubAcks go to
        the replies (the leader). The store takes the run in one call.
        Returns how many it stored and answered: a limit (discard new) or a
        store error stops the run, and the caller commits the rest one by
        one; None, having done nothing, where a message may need more than
        storing (republish, interest retention)."""
        cfg = self.cfg
        if cfg.get("republish") or cfg["retention"] == "interest":
            return None
        try:
            n = self.store.store_raw_run(list(map(_RAW_ITEM, run)))[0]
        except StoreError:
            n = 0
        if n and self._held is not None:
            self._held.hold()
        self.last_msg_id = ""
        if self._expiry_idle and cfg["max_age"]:
            self._expiry_wake.set()
        done = run[:n] if n < len(run) else run
        if answer and not cfg.get("no_ack"):
            prefix = self._ackprefix
            self._ack_many([(record[5], b"%s%d}" % (prefix, record[0]), record[0])
                            for record in done if record[5]])
        if self.consumers or self.feeds:
            for record in done:
                self._stored(record[0], record[4])
        return n

    _accept = _commit  # a replicated stream proposes instead (cluster/replica.py)
    sync_each_write = True  # with sync_interval: always (a replicated stream: its log is)

    def _last_seq(self):
        """The last sequence ``Nats-Expected-Last-Sequence`` is checked against."""
        return self.store.state().last_seq

    def _last_subject_seq(self, subject):
        """The last sequence stored on ``subject`` (a filter), for
        ``Nats-Expected-Last-Subject-Sequence``."""
        last = self.store.load_last(subject)
        return last.seq if last is not None else 0

    def _stored(self, seq, subject):
        for consumer in self.consumers.values():
            consumer.on_stored(seq, subject)
        for feed in self.feeds:
            feed.wake.set()

    def store_mirrored(self, msg):
        """A mirror copies the origin's message at the origin's sequence."""
        return self.store_remote(msg.subject, msg.hdr, msg.data, msg.seq, msg.ts)

    def store_remote(self, subject, hdr, data, seq, ts, known_new=False):
        """Store a mirrored message at ``seq`` (gaps become deleted sequences).
        True if stored or already held (``known_new``: the caller knows it is
        past the last sequence)."""
        if not known_new and seq <= self.store.state().last_seq:
            return True
        try:
            self.store.store_raw(subject, hdr, data, seq, ts)
            if self._held is not None:
                self._held.hold()
        except StoreError as exc:
            self.jsa.js.log.warning("mirror_store_failed", stream=self.name, error=str(exc))
            return False
        self._stored(seq, subject)
        return True

    def store_remote_run(self, items):
        """``store_remote`` for a run of new messages ``[(subject, hdr, data,
        seq, ts)]`` in order; how many were stored (the rest refused)."""
        n, err = self.store.store_raw_run(items)
        if n and self._held is not None:
            self._held.hold()
        if err is not None:
            self.jsa.js.log.warning("mirror_store_failed", stream=self.name, error=str(err))
        if n and (self.consumers or self.feeds):
            for item in items[:n] if n < len(items) else items:
                self._stored(item[3], item[0])
        return n

    # -- atomic batch publish (2.12: Nats-Batch-Id/-Sequence/-Commit) -------------

    def _batch_msg(self, subject, reply, hdr, data, h):
        """Stage a batch message; the commit stores the whole batch and answers
        one PubAck with ``batch`` and ``count``. Staged messages are answered
        with an empty message, as Go does."""
        batch_id = h["Nats-Batch-Id"]
        if not self.cfg.get("allow_atomic"):
            self._error(reply, ApiError(10174))
            return 0
        if not batch_id or len(batch_id) > 64:
            self._error(reply, ApiError(10179))
            return 0
        seq = _int(h.get("Nats-Batch-Sequence", ""))
        if not seq or seq < 1:
            self.batches.pop(batch_id, None)
            self._error(reply, ApiError(10175))
            return 0
        staged = self.batches.get(batch_id)
        if staged is None:
            staged = self.batches[batch_id] = []
        commit = h.get("Nats-Batch-Commit")
        if len(staged) + 1 != seq or (commit == "eob" and seq == 1):
            del self.batches[batch_id]
            self._error(reply, ApiError(10176))
            return 0
        if commit is not None and commit not in ("1", "eob"):
            del self.batches[batch_id]
            self._error(reply, ApiError(10200))
            return 0
        if commit != "eob":
            staged.append((subject, hdr, data, h))
        if len(staged) > MAX_BATCH:
            del self.batches[batch_id]
            self._error(reply, ApiError(10199, size=MAX_BATCH))
            return 0
        if commit is None:
            if reply and not self.cfg.get("no_ack"):
                self._pub(reply, b"")
            return 0
        del self.batches[batch_id]
        try:
            checked = self._check_batch(staged)
        except ApiError as err:  # nothing of the batch is stored or proposed
            self._error(reply, err)
            return 0
        except StoreError as exc:
            self._error(reply, ApiError(10077, err=str(exc)))
            return 0
        last = 0
        self._begin_atomic(len(checked))
        try:
            for item in checked:
                last = self._accept(*item, True)
                if not last:  # the store refused (I/O, or no longer leader)
                    self._error(reply, ApiError(10176))
                    return 0
        finally:
            self._end_atomic()
        if reply and not self.cfg.get("no_ack"):
            self._ack(reply, (self._pubprefix + '%d,"batch":%s,"count":%d}' % (
                last, dumps(batch_id).decode(), len(staged))).encode(), last)
        return last

    def _check_batch(self, staged):
        """Every check of every message of an atomic batch, before any is
        stored or proposed (Go's ``checkMsgHeadersPreClusteredProposal`` with
        its staged diff): a refused batch leaves nothing behind. Later
        messages see the earlier ones: counters add up, a Nats-Msg-Id may
        appear once, an expected last sequence only on the first message and
        an expected subject sequence only on a subject the batch has not
        written, rollups only where they cannot undo the batch's own
        messages, and discard new limits count the whole batch. Returns the
        ``_accept`` arguments of each message; raises ApiError (or the
        store's ErrMax* for a limit)."""
        if self.cfg.get("sealed"):
            raise ApiError(10109)
        staged_diff = self.store.stage_batch()
        counters, ids, out = {}, set(), []
        for subject, hdr, data, h in staged:
            if "Nats-Expected-Last-Msg-Id" in h:
                raise ApiError(10177, header="Nats-Expected-Last-Msg-Id")
            counter = None
            if "Nats-Incr" in h or self.cfg.get("allow_msg_counter"):
                data, counter = self._count(h, subject, data, counters.get(subject))
                counters[subject] = counter
            if "Nats-Stream-Source" in h:
                raise ApiError(10227)
            if "Nats-Expected-Last-Sequence" in h and out:
                raise ApiError(10164)
            if "Nats-Expected-Last-Subject-Sequence" in h and (
                    h.get("Nats-Expected-Last-Subject-Sequence-Subject") or subject) in staged_diff:
                raise ApiError(10164)
            try:
                msg_id, ttl, rollup = self._check_headers(h, subject)
            except _Duplicate:
                raise ApiError(10201) from None
            if msg_id:
                if msg_id in ids:
                    raise ApiError(10201)
                ids.add(msg_id)
            if rollup == "sub" and subject in staged_diff:
                raise ApiError(10111, err="batch rollup sub invalid")
            if rollup == "all" and out:
                raise ApiError(10111, err="batch rollup all invalid")
            staged_diff.add(subject, hdr, data, rollup)
            out.append((subject, "", hdr, data, ttl, msg_id, rollup, counter))
        return out

    def _begin_atomic(self, count):
        """An atomic batch of ``count`` messages is processed next (a
        replicated stream marks them, :mod:`.cluster.replica`)."""

    def _end_atomic(self):
        pass

    def _ack(self, reply, body, seq=0):
        """Send a PubAck once its record is written (held writes), or
        (``sync_interval: always``) once it is fsynced."""
        if self._group_commit is not None:
            self._group_commit.add(lambda exc, r=reply, b=body: self._after_sync(r, b, exc))
        else:
            self._answer(reply, body, seq)

    def _ack_many(self, acks):
        """``_ack`` for each ``(reply, body, seq)`` of ``acks``: held behind
        the write at once, or published as runs."""
        held = self._held
        if self._group_commit is not None:
            for reply, body, seq in acks:
                self._ack(reply, body, seq)
        elif held is not None and held.pending:
            held.answers += acks
        else:
            self.client.publish_many([ack[:2] for ack in acks])

    def _after_sync(self, reply, body, exc):
        """Group commit released this ack; the first of a batch schedules one
        greenlet that answers them all and flushes once."""
        self._synced_acks.append((reply, body, exc))
        if len(self._synced_acks) == 1:
            gevent.spawn(self._send_synced_acks)

    def _send_synced_acks(self):
        acks, self._synced_acks = self._synced_acks, []
        for reply, body, exc in acks:
            if exc is None:
                self._pub(reply, body)
            else:
                self.jsa.js.log.warning("stream_sync_failed", stream=self.name, error=str(exc))
                self._error(reply, ApiError(10077, err="sync failed"))
        self.server.flush_touched()

    def _count(self, h, subject, data, prior=None):
        """A counter increment (allow_msg_counter, ``Nats-Incr``): the stored body
        becomes ``{"val":"<total>"}``. Returns (body, total). ``prior``: the
        total an earlier message of the same atomic batch left (not stored yet)."""
        text = h.get("Nats-Incr")
        if text is None:
            raise ApiError(10169)
        try:
            incr = int(text, 10)
        except ValueError:
            raise ApiError(10171) from None
        if text[:1] not in "+-0123456789" or "_" in text or " " in text:
            raise ApiError(10171)
        if not self.cfg.get("allow_msg_counter"):
            raise ApiError(10168)
        if data:
            raise ApiError(10170)
        for name in ("Nats-Rollup", "Nats-Expected-Stream", "Nats-Expected-Last-Msg-Id",
                     "Nats-Expected-Last-Subject-Sequence-Subject"):
            if name in h:
                raise ApiError(10171)
        total = incr
        last = self.store.load_last(subject) if prior is None else None
        if prior is not None:
            total += prior
        elif last is not None:
            try:
                total += int(json.loads(last.data)["val"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(10172) from None
        return b'{"val":"%d"}' % total, total

    def _check_headers(self, h, subject):
        cfg = self.cfg
        expected = h.get("Nats-Expected-Stream")
        if expected and expected != self.name:
            raise ApiError(10060)
        ttl_text = h.get("Nats-TTL")
        if ttl_text and not cfg.get("allow_msg_ttl"):
            raise ApiError(10166)
        last_subj_seq = h.get("Nats-Expected-Last-Subject-Sequence")
        last_subj = h.get("Nats-Expected-Last-Subject-Sequence-Subject")
        if last_subj_seq is not None:
            want = _int(last_subj_seq)
            actual = self._last_subject_seq(last_subj or subject)
            if want is None or actual != want:
                raise ApiError(10071, seq=actual)
        elif last_subj:
            raise ApiError(10193)
        last_seq = h.get("Nats-Expected-Last-Sequence")
        if last_seq is not None:
            want = _int(last_seq)
            actual = self._last_seq()
            if want is None or want != actual:
                raise ApiError(10071, seq=actual)
        msg_id = h.get("Nats-Msg-Id", "")
        if msg_id:
            seen = self._check_id(msg_id)
            if seen:
                raise _Duplicate(seen)
        last_id = h.get("Nats-Expected-Last-Msg-Id")
        if last_id and last_id != self.last_msg_id:
            raise ApiError(10070, id=self.last_msg_id)
        rollup = h.get("Nats-Rollup", "")
        if rollup:
            if not cfg.get("allow_rollup_hdrs"):
                raise ApiError(10111, err="rollup not permitted")
            if rollup not in ("sub", "all"):
                raise ApiError(10111, err='rollup value invalid: "%s"' % rollup)
        ttl = 0
        if ttl_text:
            ttl = parse_ttl(ttl_text)
        return msg_id, ttl, rollup

    # -- dedup -----------------------------------------------------------------

    def _check_id(self, msg_id):
        if not self.dedup_loaded:
            self.rebuild_dedup()
        self._prune_ids(time.time_ns())
        seen = self.dedup.get(msg_id)
        return seen[0] if seen else 0

    def _duplicate(self, reply, seq, msg_id=None):
        """Answer a publish whose Nats-Msg-Id (``msg_id``) is in the window (at ``seq``)."""
        self._respond(reply, (self._pubprefix + '%d,"duplicate": true}' % seq).encode())

    def rebuild_dedup(self):
        """Go's ``rebuildDedupe``: add the ids of the stored messages still in
        the window (lost by a restart; not carried by a catch-up, which sets
        ``dedup_loaded`` back to False). Runs at the first check."""
        self.dedup_loaded = True
        window = self.cfg.get("duplicate_window", 0)
        if window <= 0:
            return
        store = self.store
        found = {}
        seq, last = store.seq_for_time(time.time_ns() - window), store.state().last_seq
        while seq <= last:
            msg = store.load_next(None, seq)
            if msg is None:
                break
            if msg.hdr and b"Nats-Msg-Id" in msg.hdr:
                msg_id = H.parse(bytes(msg.hdr)).get("Nats-Msg-Id")
                if msg_id:
                    found[msg_id] = (msg.seq, msg.ts)
            seq = msg.seq + 1
        if found:
            merged = dict(found)
            merged.update(self.dedup)  # what was applied here stays as it was
            self.dedup = collections.OrderedDict(sorted(merged.items(), key=lambda kv: kv[1][1]))

    def _remember_id(self, msg_id, seq, ts):
        if self.cfg.get("duplicate_window", 0) > 0:
            self.dedup[msg_id] = (seq, ts)

    def _prune_ids(self, now):
        window = self.cfg.get("duplicate_window", 0)
        dedup = self.dedup
        while dedup:
            key, (seq, ts) = next(iter(dedup.items()))
            if ts + window > now:
                break
            del dedup[key]

    # -- republish -------------------------------------------------------------

    def _republish(self, rp, subject, seq, ts, hdr, data):
        src = rp.get("src") or ">"
        if not _match_any([src], subject):
            return
        dest = self.jsa.transform({"src": src, "dest": rp["dest"]}, subject)
        last = self.store.load_prev([subject], seq - 1)
        pairs = [("Nats-Stream", self.name), ("Nats-Subject", subject),
                 ("Nats-Sequence", str(seq)), ("Nats-Time-Stamp", H.rfc3339(ts)),
                 ("Nats-Last-Sequence", str(last.seq if last else 0))]
        if rp.get("headers_only"):
            pairs.append(("Nats-Msg-Size", str(len(data))))
            data = b""
        self._pub(dest, data, headers=H.build(pairs, hdr))

    # -- API requests that change the stream (a replicated stream proposes them
    # and answers ``reply`` after the commit, returning None) -------------------

    is_leader = True  # answers its API requests, publishes, acks (a replica may not)

    def purge_request(self, subject, seq, keep, reply):
        return {"success": True, "purged": self.purge(subject=subject, seq=seq, keep=keep)}

    def delete_request(self, seq, erase, reply):
        if not self.remove_msg(seq, erase=erase):
            raise ApiError(10057, err="no message found")
        return {"success": True}

    def create_consumer(self, name, cfg, reply):
        return self.jsa.add_consumer(self, name, cfg).info()

    def update_consumer(self, existing, cfg, reply):
        apply_consumer_update(existing, cfg)
        self.save_meta()
        return existing.info()

    def delete_consumer_request(self, name, reply):
        self.jsa.delete_consumer(self, name)
        return {"success": True}

    # -- removal, expiry ---------------------------------------------------------

    def remove_msg(self, seq, erase=False):
        removed = self.store.remove_msg(seq, erase=erase)
        if removed:
            for consumer in self.consumers.values():
                consumer.on_removed(seq)
        return removed

    def purge(self, subject=None, seq=0, keep=0, notify=True):
        n = self.store.purge(subject=subject, seq=seq, keep=keep)
        for consumer in self.consumers.values():
            consumer.on_purged()
        return n

    def _expiry_loop(self):
        while not self.closed:
            due = self.store.next_expiry()
            now = time.time_ns()
            if due is not None and due <= now:
                removed = []
                markers = self.store.expire(now, removed)
                if removed:
                    for consumer in self.consumers.values():
                        consumer.on_purged()
                for marker in markers:  # subject delete markers the store wrote
                    self._stored(marker.seq, marker.subject)
                self.server.flush_touched()
                # one pass per EXPIRY_TICK at most: messages expiring one by one
                # are removed in batches, and consumers recount once per batch
                gevent.sleep(EXPIRY_TICK)
                continue
            timeout = None if due is None else max(0.001, (due - now) / 1e9)
            self._expiry_idle = due is None
            self._expiry_wake.wait(timeout)
            self._expiry_wake.clear()
            self._expiry_idle = False

    # -- retention -------------------------------------------------------------

    def acked(self, seq, subject=None):
        """A consumer acknowledged ``seq``: drop it if retention says so."""
        retention = self.cfg["retention"]
        if retention == "workqueue":
            self._drop_acked(seq)
        elif retention == "interest":
            if subject is None:
                msg = self.store.load_msg(seq)
                if msg is None:
                    return
                subject = msg.subject
            for c in self.consumers.values():
                if _match_any(c.filters, subject) and not c.has_acked(seq):
                    return
            self._drop_acked(seq)

    def _drop_acked(self, seq):
        """Retention removes an acknowledged message (a replicated stream
        removes it on every member through its log instead)."""
        self.remove_msg(seq)

    # -- direct get ------------------------------------------------------------

    def _on_direct_get(self, sub, subject, reply, hdr, payload):
        if not reply:
            return
        prefix_len = len("$JS.API.DIRECT.GET.") + len(self.name)
        tail = subject[prefix_len + 1:].decode() if len(subject) > prefix_len else ""
        if tail:
            if payload and payload.strip():
                self._pub(reply, b"", headers=H.status(408, "Bad Request"))
                return
            msg = self.store.load_last(tail)
            self._direct_reply(reply, msg)
            return
        if not payload or not bytes(payload).strip():
            self._pub(reply, b"", headers=H.status(408, "Empty Request"))
            return
        try:
            req = json.loads(bytes(payload))
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            self._pub(reply, b"", headers=H.status(408, "Malformed Request"))
            return
        try:
            self._direct_get(reply, req)
        except ApiError:
            self._pub(reply, b"", headers=H.status(408, "Bad Request"))

    def _direct_get(self, reply, req):
        multi = req.get("multi_last")
        batch = req.get("batch", 0)
        if multi:
            subjects = self.store.last_seq_per_subject(multi)
            seqs = sorted(s for s in subjects.values()
                          if not req.get("up_to_seq") or s <= req["up_to_seq"])
            if batch:
                seqs = seqs[:batch]
            if not seqs:
                self._pub(reply, b"", headers=H.status(404, "No Results"))
                return
            for i, seq in enumerate(seqs):
                self._direct_reply(reply, self.store.load_msg(seq),
                                   pending=len(seqs) - i - 1, last=seqs[i - 1] if i else 0)
            up_to = req.get("up_to_seq") or self.store.state().last_seq
            self._pub(reply, b"", headers=H.status(204, "EOB", [
                ("Nats-Num-Pending", "0"), ("Nats-Last-Sequence", str(seqs[-1])),
                ("Nats-UpTo-Sequence", str(up_to))]))
            return
        if batch:
            filt = req.get("next_by_subj")
            seq = req.get("seq", 0) or 1
            sent = 0
            last = 0
            max_bytes = req.get("max_bytes", 0)
            size = 0
            while sent < batch:
                msg = self.store.load_next([filt] if filt else None, seq)
                if msg is None:
                    break
                size += len(msg.hdr) + len(msg.data)
                if max_bytes and size > max_bytes and sent:
                    break
                pending = self.store.num_pending(msg.seq + 1, [filt] if filt else None)
                self._direct_reply(reply, msg, pending=pending, last=last)
                last = msg.seq
                seq = msg.seq + 1
                sent += 1
            if not sent:
                self._pub(reply, b"", headers=H.status(404, "Message Not Found"))
                return
            pending = self.store.num_pending(seq, [filt] if filt else None)
            self._pub(reply, b"", headers=H.status(204, "EOB", [
                ("Nats-Num-Pending", str(pending)), ("Nats-Last-Sequence", str(last))]))
            return
        msg = self.get_msg(req)
        self._direct_reply(reply, msg)

    def get_msg(self, req):
        """STREAM.MSG.GET / direct get single-message lookups."""
        if req.get("last_by_subj"):
            return self.store.load_last(req["last_by_subj"])
        if req.get("next_by_subj"):
            return self.store.load_next([req["next_by_subj"]], req.get("seq", 0) or 1)
        seq = req.get("seq", 0)
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ApiError(10003)
        return self.store.load_msg(seq) if seq else None

    def _direct_reply(self, reply, msg, pending=None, last=None):
        if msg is None:
            self._pub(reply, b"", headers=H.status(404, "Message Not Found"))
            return
        pairs = [("Nats-Stream", self.name), ("Nats-Subject", msg.subject),
                 ("Nats-Sequence", str(msg.seq)), ("Nats-Time-Stamp", H.rfc3339(msg.ts))]
        if pending is not None:
            pairs += [("Nats-Num-Pending", str(pending)), ("Nats-Last-Sequence", str(last))]
        self._pub(reply, msg.data, headers=H.build(pairs, msg.hdr))

    # -- info ------------------------------------------------------------------

    def state_dict(self, deleted_details=False, subjects_filter=None):
        st = self.store.state(with_deleted=deleted_details)
        out = {"messages": st.msgs, "bytes": st.bytes, "first_seq": st.first_seq,
               "first_ts": H.rfc3339(st.first_ts), "last_seq": st.last_seq,
               "last_ts": H.rfc3339(st.last_ts)}
        if st.msgs == 0 and st.last_seq == 0:
            out["first_seq"] = 0
        if deleted_details and st.deleted:
            out["deleted"] = list(st.deleted)
        if st.num_deleted:
            out["num_deleted"] = st.num_deleted
        if st.num_subjects:
            out["num_subjects"] = st.num_subjects
        lost = getattr(st, "lost", None)
        if lost:  # records found corrupt or torn when the file store was opened
            out["lost"] = {"msgs": list(lost), "bytes": getattr(st, "lost_bytes", 0)}
        if subjects_filter:
            subjects = self.store.subjects_state(subjects_filter)
            if subjects:
                out["subjects"] = subjects
        out["consumer_count"] = len(self.consumers)
        return out

    def info(self, deleted_details=False, subjects_filter=None, cluster=True):
        """StreamInfo; Go adds ``cluster`` only to STREAM.INFO answers."""
        info = {"config": self.jsa.stamp(self.cfg), "created": H.rfc3339(self.created),
                "state": self.state_dict(deleted_details, subjects_filter)}
        if cluster:
            info["cluster"] = {"leader": self.server.server_name}
        if self.cfg.get("mirror") and self.source_feeds:
            info["mirror"] = self.source_feeds[0].info()
        elif self.cfg.get("sources"):
            info["sources"] = [feed.info() for feed in self.source_feeds]
        info["ts"] = H.rfc3339(time.time_ns())
        return info


def apply_consumer_update(existing, cfg):
    """A consumer takes an updated config (checked by the API)."""
    from .consumer import sample_rate
    from .consumercfg import filters_of

    existing.cfg = dict(cfg, **({"pause_until": existing.cfg["pause_until"]}
                               if existing.cfg.get("pause_until") else {}))
    existing.filters = filters_of(cfg)
    existing.read_filters = existing.effective_filters()
    existing.sample = sample_rate(cfg.get("sample_freq", ""))
    existing.wake.set()


class _Duplicate(Exception):
    def __init__(self, seq):
        super().__init__(seq)
        self.seq = seq


def _int(text):
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        return None
