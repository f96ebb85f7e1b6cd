"""One consumer: a cursor over its stream with acknowledgement state.

Delivery runs in one greenlet per consumer, woken by new messages, pull
requests, acks and timers (ack wait, heartbeats, pull expiry, pause); it sends
as much as it may in one pass and flushes once. Acks arrive on ``$JS.ACK.>``
(one subscription per account) and are applied inline. State changes are plain
method calls (deliver, ack, nak...) so a replicated consumer can replay them.
"""

import collections
import heapq
import json
import random
import secrets
import time

import gevent
import gevent.event

from pluggy_nats.subjects import subset_match

from . import advisories, direct
from . import headers as H
from .consumercfg import filters_of
from .jsonreq import go_syntax_text
from .store import ConsumerState, StoreError
from .stream import _match_any

SECOND = 1_000_000_000
# Push flow control (Go JsFlowControlMaxPending, needFlowControl): at most a
# window of bytes goes out unanswered; it starts at 1/16 of the limit and
# doubles with each reply; a request goes once half the window is out.
FC_LIMIT = 32 * 1024 * 1024
PUSH_PASS = 4096  # push deliveries per pass before others get a turn
PUSH_RUN = 256  # push deliveries framed as one run (flow control is checked between)
INTEREST_POLL = 0.05  # seconds between interest checks of an unbound push consumer


class PullRequest:
    __slots__ = ("reply", "reply_bytes", "batch", "max_bytes", "expires", "no_wait", "hb",
                 "next_hb", "delivered", "received", "min_pending", "min_ack_pending",
                 "pin_id", "group")

    def __init__(self, reply, batch, max_bytes, expires, no_wait, hb, now):
        self.reply = reply
        self.reply_bytes = reply.encode() if isinstance(reply, str) else bytes(reply)
        self.batch = batch
        self.max_bytes = max_bytes
        self.expires = expires  # monotonic deadline or 0
        self.no_wait = no_wait
        self.hb = hb  # seconds, 0 = none
        self.next_hb = now + hb if hb else 0
        self.delivered = 0
        self.received = now
        self.min_pending = self.min_ack_pending = 0  # priority policy overflow
        self.pin_id = self.group = ""  # priority policy pinned_client


def parse_pull_request(payload):
    """Body of a MSG.NEXT request -> (batch, expires ns, no_wait, max_bytes, hb ns,
    priority group dict or None); ValueError with Go's text for a bad one."""
    text = bytes(payload).strip() if payload else b""
    if not text:
        return 1, 0, False, 0, 0, None
    if text[:1] != b"{":
        try:
            n = int(text)
        except ValueError:
            n = 1
        return max(n, 1), 0, False, 0, 0, None
    try:
        req = json.loads(text)
    except ValueError as exc:
        raise ValueError(go_syntax_text(exc, text)) from None
    batch = req.get("batch") or 1
    expires = req.get("expires") or 0
    hb = req.get("idle_heartbeat") or 0
    if not all(isinstance(v, int) for v in (batch, expires, hb)):
        raise ValueError("invalid request")
    if hb and expires and hb * 2 > expires:
        raise ValueError("heartbeat value too large")
    if hb and not expires:
        raise ValueError("heartbeat value too large")
    group = {key: req.get(key) or default for key, default in (
        ("group", ""), ("min_pending", 0), ("min_ack_pending", 0), ("id", ""), ("priority", 0))}
    return (batch, expires, bool(req.get("no_wait")), int(req.get("max_bytes") or 0), hb,
            group)


def sample_rate(text):
    """``sample_freq`` ("30%" or "30") -> a probability 0..1."""
    text = (text or "").strip().rstrip("%")
    try:
        return max(0, min(100, int(text))) / 100
    except ValueError:
        return 0


def priority_error(cfg, group):
    """Go's 400 texts for a pull request's priority group (processNextMsgRequest)."""
    policy = cfg.get("priority_policy", "none")
    if (group["min_pending"] or group["min_ack_pending"]) and policy != "overflow":
        return "Bad Request - Not a Overflow Priority consumer"
    if group["id"] and policy != "pinned_client":
        return "Bad Request - Not a Pinned Client Priority consumer"
    if not isinstance(group["priority"], int) or not 0 <= group["priority"] <= 9:
        return "Bad Request - Priority must be between 0 and 9"
    if policy != "none":
        if not group["group"]:
            return "Bad Request - Priority Group missing"
        if group["group"] not in (cfg.get("priority_groups") or ()):
            return "Bad Request - Invalid Priority Group"
    return None


class Consumer:
    replies_after_commit = False  # a replicated consumer answers double acks itself
    def __init__(self, stream, name, cfg, created, state=None):
        self.stream = stream
        self.jsa = stream.jsa
        self.client = stream.client
        self.server = stream.server
        self.name = name
        self.cfg = cfg
        self.created = created
        self.filters = filters_of(cfg)
        self.read_filters = self.effective_filters()
        self.sample = sample_rate(cfg.get("sample_freq", ""))
        self.push = bool(cfg.get("deliver_subject"))
        self.ack_none = cfg["ack_policy"] == "none"
        # ack_policy flow_control (Go AckFlowControl, durable sourcing): as
        # "all", the acks being the deliver subject's flow control replies
        self.ack_fc = cfg["ack_policy"] == "flow_control"
        self.ack_all = cfg["ack_policy"] == "all" or self.ack_fc
        self.fc_out = None  # the reply subject of the flow control request unanswered
        self._fc_sub = None
        self.pending = {}  # stream seq -> [consumer seq, delivery ts ns, deadline monotonic]
        self.rdc = {}  # stream seq -> times delivered
        self.rdq = collections.deque()  # stream seqs due for redelivery
        self.rdq_set = set()
        self.delayed = []  # heap of (due monotonic, stream seq) (NAK with delay)
        self.lps = collections.deque()  # deliver last_per_subject: seqs first
        self.waiting = collections.deque()
        self.dseq = 0
        self.dsseq = 0
        self.afloor_s = 0
        self.afloor_c = 0
        self.num_redelivered = 0
        self.wake = gevent.event.Event()
        self.closed = False
        self.paused_until = 0  # ns since epoch, 0 = running
        self.last_active = time.monotonic()
        self.last_delivery = time.monotonic()
        self.next_ack_check = float("inf")
        self.pbytes = 0  # bytes delivered that no flow control reply covers yet
        self.fcsz = 0  # pbytes when the outstanding request went
        self.maxpb = FC_LIMIT // 16  # the window
        self.greenlet = None
        self.store = None
        store = stream.store
        try:
            self.store = store.consumer_store(name)
        except (StoreError, OSError, AttributeError):
            self.store = None
        self._set_pause(cfg.get("pause_until"))
        if state is not None:
            self._restore(state)
        else:
            self._init_position()
        self.npending = self._count_pending()

    # -- position -------------------------------------------------------------

    def effective_filters(self):
        """The filters worth applying while reading: None when they take every
        subject the stream can hold (a KV watcher's ``$KV.B.>`` on ``KV_B``)."""
        if not self.filters:
            return None
        subjects = self.stream.cfg.get("subjects") or []
        cfg = self.stream.cfg
        if subjects and not cfg.get("sources") and not cfg.get("subject_transform") and all(
                any(f == ">" or subset_match(s.encode(), f.encode()) for f in self.filters)
                for s in subjects):
            return None
        return self.filters

    def _init_position(self):
        st = self.stream.store.state()
        policy = self.cfg["deliver_policy"]
        if policy == "all":
            self.sseq = st.first_seq or 1
        elif policy == "last":
            msg = self.stream.store.load_prev(self.filters or None, st.last_seq)
            self.sseq = msg.seq if msg else st.last_seq + 1
        elif policy == "new":
            self.sseq = st.last_seq + 1
        elif policy == "by_start_sequence":
            self.sseq = max(self.cfg["opt_start_seq"], 1)
        elif policy == "by_start_time":
            self.sseq = self.stream.store.seq_for_time(H.parse_rfc3339(self.cfg["opt_start_time"]))
        elif policy == "last_per_subject":
            self.lps.extend(sorted(self.stream.store.last_seq_per_subject(
                self.filters or None).values()))
            self.sseq = st.last_seq + 1
        self.dsseq = self.afloor_s = max(self.sseq - 1, 0)
        if self.lps:
            self.dsseq = self.afloor_s = self.lps[0] - 1

    def _restore(self, state):
        self.dseq = state.delivered_consumer_seq
        self.dsseq = state.delivered_stream_seq
        self.sseq = state.delivered_stream_seq + 1
        self.afloor_c = state.ack_floor_consumer_seq
        self.afloor_s = state.ack_floor_stream_seq
        now, wall = time.monotonic(), time.time_ns()
        self.rdc = {s: n + 1 for s, n in state.redelivered.items()}
        for sseq, (dseq, ts) in sorted(state.pending.items()):
            # Go (checkPending): redelivered once the ack wait has passed since
            # the delivery, also on a new leader (a move) or after a restart
            left = self._ack_wait(self.rdc.get(sseq, 1)) - max(wall - ts, 0) / 1e9
            self.pending[sseq] = [dseq, ts, now + max(left, 0.0)]
        self.next_ack_check = now

    def _count_pending(self):
        n = self.stream.store.num_pending(self.sseq, self.read_filters)
        return n + len(self.lps)

    def on_stored(self, seq, subject):
        """The stream stored ``seq``: count it and wake the deliverer."""
        if self.read_filters and not _match_any(self.read_filters, subject):
            return
        self.npending += 1
        if not self.wake.is_set():
            self.wake.set()

    def on_removed(self, seq):
        if seq >= self.sseq:
            self.npending = self._count_pending()

    def on_purged(self):
        self._settle_floor()
        st = self.stream.store.state()
        if self.sseq < st.first_seq:
            self.sseq = st.first_seq
            if self.dsseq < st.first_seq - 1:
                self.dsseq = st.first_seq - 1
            if self.afloor_s < st.first_seq - 1:
                self.afloor_s = st.first_seq - 1
        for seq in [s for s in self.pending if s < st.first_seq]:
            del self.pending[seq]
        self.npending = self._count_pending()

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        if self.push and self.cfg.get("flow_control"):
            self._fc_sub = self.client.subscribe("$JS.FC.%s.%s.*" % (self.stream.name, self.name),
                                                 self._on_flow_control)
        self.greenlet = self.server.spawn(self._run)

    def stop(self, delete=False, notify=True):
        if self.closed:
            return
        self.closed = True
        if self._fc_sub is not None:
            self.client.unsubscribe(self._fc_sub)
            self._fc_sub = None
        if notify and not self.push:
            for req in self.waiting:
                self.client.publish(req.reply, b"", headers=H.status(409, "Consumer Deleted"),
                                    flush=False)
        self.waiting.clear()
        if delete:
            if self.store is not None:
                self.store.delete()
        else:
            self.save_state()
        if self.greenlet is not None and gevent.getcurrent() is not self.greenlet:
            self.greenlet.kill(block=False)

    def state(self):
        """Delivery and ack state as the store keeps it (and a snapshot carries)."""
        return ConsumerState(self.dseq, self.dsseq, self.afloor_c, self.afloor_s,
                             {s: (p[0], p[1]) for s, p in self.pending.items()},
                             {s: n - 1 for s, n in self.rdc.items() if n > 1})

    def save_state(self):
        if self.store is None or self.stream.cfg["storage"] == "memory":
            return
        try:
            self.store.update(self.state())
        except (StoreError, OSError) as exc:
            self.jsa.js.log.warning("consumer_state_write_failed", consumer=self.name,
                                    error=str(exc))

    def _set_pause(self, until):
        self.paused_until = 0
        if until:
            try:
                ns = H.parse_rfc3339(until)
            except ValueError:
                return
            if ns > time.time_ns():
                self.paused_until = ns

    def pause(self, until):
        self._set_pause(until)
        if self.paused_until:
            self.cfg["pause_until"] = until
        else:
            self.cfg.pop("pause_until", None)
        self.stream.save_meta()
        self.wake.set()

    # -- the delivery loop -------------------------------------------------------

    def _run(self):
        dirty_since = None
        while not self.closed:
            try:
                timeout = self._service()
            except Exception:
                self.jsa.js.log.exception("consumer_service_failed", consumer=self.name)
                timeout = 1.0
            self.server.flush_touched()
            if self.closed:
                return
            # consumer state goes to disk shortly after it changes (as Go's flusher)
            if self._dirty:
                if dirty_since is None:
                    dirty_since = time.monotonic()
                if time.monotonic() - dirty_since >= 0.1 or self.jsa.js.config.sync_always:
                    self._dirty = False
                    dirty_since = None
                    self.save_state()
                else:
                    timeout = min(timeout, 0.1) if timeout is not None else 0.1
            self.wake.wait(timeout)
            self.wake.clear()

    _dirty = False

    def _service(self):
        """Deliver what may be delivered now; returns seconds until the next timer."""
        now = time.monotonic()
        next_t = None

        def soon(t):
            nonlocal next_t
            if t and (next_t is None or t < next_t):
                next_t = t

        if self.paused_until:
            if time.time_ns() < self.paused_until:
                soon(now + (self.paused_until - time.time_ns()) / 1e9)
                self._expire_requests(now, soon)
                return max(0.0, next_t - now)
            self.paused_until = 0
            self.cfg.pop("pause_until", None)
        if self.pending and now >= self.next_ack_check:
            self._check_ack_waits(now)
        if self.next_ack_check != float("inf"):
            soon(self.next_ack_check)
        while self.delayed and self.delayed[0][0] <= now:
            _, seq = heapq.heappop(self.delayed)
            self._queue_redelivery(seq)
        if self.delayed:
            soon(self.delayed[0][0])
        if self.push:
            self._deliver_push(now, soon)
        else:
            self._expire_requests(now, soon)
            self._deliver_pull(now, soon)
            self._expire_requests(now, soon)
        self._check_inactive(now, soon)
        return None if next_t is None else max(0.0, next_t - now)

    def _next_msg(self):
        """(message, delivery count) of the next thing to send, or (None, 0)."""
        store = self.stream.store
        while self.rdq:
            seq = self.rdq.popleft()
            self.rdq_set.discard(seq)
            if seq not in self.pending:
                continue
            msg = store.load_msg(seq)
            if msg is None:
                self._settle_floor()
                self.pending.pop(seq, None)
                continue
            return msg, self.rdc.get(seq, 1) + 1
        while self.lps:
            seq = self.lps.popleft()
            msg = store.load_msg(seq)
            if msg is not None:
                self.npending = max(0, self.npending - 1)
                return msg, 1
        if self.read_filters is None:
            # reading every subject in order: most sequences are there
            msg = store.load_msg(self.sseq) or store.load_next(None, self.sseq)
        else:
            msg = store.load_next(self.read_filters, self.sseq)
        if msg is None:
            st = store.state()
            self.sseq = max(self.sseq, st.last_seq + 1)
            self.npending = 0
            return None, 0
        self.sseq = msg.seq + 1
        self.npending = max(0, self.npending - 1)
        return msg, 1

    def _max_ack_pending_reached(self):
        limit = self.cfg.get("max_ack_pending", 0)
        return not self.ack_none and limit > 0 and len(self.pending) >= limit

    def _has_work(self):
        return bool(self.rdq or self.lps or self.npending)

    def _send(self, msg, dc, subject, now, pin=None):
        if self._floor_due:
            self._update_floor()
        self.dseq += 1
        if dc == 1:
            self.dsseq = max(self.dsseq, msg.seq)
        else:
            self.num_redelivered += 1
        prefix = self._ack_prefix
        if prefix is None:  # built once: the stream and consumer names never change
            prefix = self._ack_prefix = ("$JS.ACK.%s.%s." % (self.stream.name, self.name)).encode()
        reply = b"%s%d.%d.%d.%d.%d" % (prefix, dc, msg.seq, self.dseq, msg.ts, self.npending)
        hdr = msg.hdr
        data = msg.data
        if self.cfg.get("headers_only"):
            hdr = H.build([("Nats-Msg-Size", str(len(data)))], hdr)
            data = b""
        if pin:
            hdr = H.build([("Nats-Pin-Id", pin)], hdr)
        # the message keeps its own subject; it goes to the deliver subject / inbox
        self.client.publish(msg.subject, data, reply=reply, headers=hdr or None, flush=False,
                            via=subject)
        self.last_delivery = now
        self.last_delivered_ns = now_ns = time.time_ns()
        if self.ack_none:
            self.afloor_s = self.dsseq
            self.afloor_c = self.dseq
            if self.stream.cfg["retention"] != "limits":
                self.stream.acked(msg.seq, msg.subject)
        else:
            deadline = now + self._ack_wait(dc)
            self.rdc[msg.seq] = dc
            self.pending[msg.seq] = [self.dseq, now_ns, deadline]
            if deadline < self.next_ack_check:
                self.next_ack_check = deadline
        self._dirty = True
        return len(hdr) + len(data)

    _ack_prefix = None  # b"$JS.ACK.<stream>.<consumer>." once the first message goes

    def _run_msgs(self, count):
        """Up to ``count`` next new messages as (seq, subject bytes, ts, hdr, data),
        moving the read position (``sseq``; ``npending`` is left to the caller
        unless the stream ran out)."""
        if self.read_filters is None:
            run = self.stream.store.load_run(self.sseq, count)
            if run:
                self.sseq = run[-1][0] + 1
            if len(run) < count:  # the end of the stream (as _next_msg finds it)
                self.sseq = max(self.sseq, self.stream.store.state().last_seq + 1)
                self.npending = 0
            return run
        out = []
        npending = self.npending
        while len(out) < count:
            msg, _ = self._next_msg()  # moves sseq, counts npending down
            if msg is None:
                return out  # the end of the stream: npending is 0
            out.append((msg.seq, msg.subject.encode(), msg.ts, msg.hdr, msg.data))
        self.npending = npending  # the caller counts them
        return out

    def _run_start(self):
        """What a run of deliveries starts with: the ack floor settled, and
        ``b"$JS.ACK.<stream>.<consumer>."`` (built once: the names never change)."""
        if self._floor_due:
            self._update_floor()
        prefix = self._ack_prefix
        if prefix is None:
            prefix = self._ack_prefix = ("$JS.ACK.%s.%s." % (self.stream.name,
                                                            self.name)).encode()
        return prefix

    def _pull_run(self, req, target, now):
        """``_send`` for a run of first deliveries to one pull request, framed
        by the target (direct.py): what a batch costs per message is the store read, one
        frame and the pending entry. Stops at the batch, the end of what is
        pending or max_ack_pending."""
        prefix = self._run_start() + b"1."
        limit = self.cfg.get("max_ack_pending", 0)
        room = req.batch - req.delivered
        pending = self.pending
        if limit > 0:
            room = min(room, limit - len(pending))
        room = min(room, self.npending)
        if room <= 0:
            return
        deadline = now + self._ack_wait(1)
        now_ns = time.time_ns()
        dseq = self.dseq
        run = self._run_msgs(room)
        if not run:
            return
        npending, _, _ = target.send_run(run, prefix, dseq, self.npending)
        for m in run:
            dseq += 1
            pending[m[0]] = [dseq, now_ns, deadline]
        seq = run[-1][0]
        sent = len(run)
        self.npending = min(self.npending, npending)
        self.dseq = dseq
        self.dsseq = max(self.dsseq, seq)
        req.delivered += sent
        if req.hb:
            req.next_hb = now + req.hb
        self.last_delivery = now
        self.last_delivered_ns = now_ns
        if deadline < self.next_ack_check:
            self.next_ack_check = deadline
        self._dirty = True

    def _ack_wait(self, dc):
        backoff = self.cfg.get("backoff")
        if backoff:
            return backoff[min(dc - 1, len(backoff) - 1)] / 1e9
        return self.cfg.get("ack_wait", 30 * SECOND) / 1e9

    def _check_ack_waits(self, now):
        nxt = float("inf")
        max_deliver = self.cfg["max_deliver"]
        for seq, p in list(self.pending.items()):
            if p[2] <= now:
                if seq in self.rdq_set:
                    continue
                dc = self.rdc.get(seq, 1)
                if max_deliver > 0 and dc >= max_deliver:
                    # Go stops redelivering, keeps the message in the stream
                    # (MAX_DELIVERIES advisory) and moves the ack floor past it.
                    self._settle_floor()
                    del self.pending[seq]
                    self.rdc.pop(seq, None)
                    self.jsa.advisory_max_deliveries(self, seq, dc)
                    self._update_floor()
                    continue
                self._queue_redelivery(seq)
            elif p[2] < nxt:
                nxt = p[2]
        self.next_ack_check = nxt

    def _queue_redelivery(self, seq):
        if seq in self.pending and seq not in self.rdq_set:
            self.pending[seq][2] = float("inf")
            self.rdq.append(seq)
            self.rdq_set.add(seq)

    def _push_run(self, target, subject, room, now):
        """``_send`` for a run of up to ``room`` first deliveries to the push
        consumer's one subscriber (``_pull_run``'s way); the messages sent."""
        prefix = self._run_start()
        pending = self.pending
        limit = self.cfg.get("max_ack_pending", 0)
        if limit > 0 and not self.ack_none:
            room = min(room, limit - len(pending))
        room = min(room, self.npending)
        if room <= 0:
            return 0
        fc = self.cfg.get("flow_control")
        if fc and self.pbytes > self.maxpb:
            return 0  # the window is out: wait for the flow control reply
        dseq = self.dseq
        before = self.npending
        run = self._run_msgs(room)
        if not run:
            return 0
        prefix += b"1."
        npending = self.npending
        if fc:
            # as one by one: a flow control request right after the message
            # that crosses half the window, and nothing after the one that
            # crosses the window (the run is sent in pieces around them)
            sent = 0
            while sent < len(run):
                if self.pbytes > self.maxpb:  # the rest is read again later
                    self.sseq = run[sent][0]
                    run = run[:sent]
                    npending = before - sent
                    self.npending = npending
                    break
                piece = run[sent:] if sent else run
                edge = self.maxpb if self.fc_out else self.maxpb // 2
                npending, size, n = target.send_run(piece, prefix, dseq + sent, npending,
                                                    max(edge - self.pbytes + 1, 1))
                sent += n
                self.dseq = dseq + sent  # (a request names the last delivery)
                self._count_flow(size, subject)
        else:
            npending, _, sent = target.send_run(run, prefix, dseq, npending)
        if self.ack_none:  # (limits retention only: nothing to tell the stream)
            dseq += sent
        else:
            deadline = now + self._ack_wait(1)
            now_ns = time.time_ns()
            for m in run:
                dseq += 1
                pending[m[0]] = [dseq, now_ns, deadline]
            if deadline < self.next_ack_check:
                self.next_ack_check = deadline
        seq = run[-1][0]
        self.npending = min(self.npending, npending)
        self.dseq = dseq
        self.dsseq = max(self.dsseq, seq)
        if self.ack_none:
            self._afloor_s = self.dsseq
            self._afloor_c = dseq
        self.last_delivery = now
        self.last_delivered_ns = time.time_ns()
        self._dirty = True
        return sent

    def _deliver_push(self, now, soon):
        subject = self.cfg["deliver_subject"]
        hb = self.cfg.get("idle_heartbeat", 0) / 1e9
        subject_b = subject.encode()
        active = self._interest(subject_b)
        if active:
            self.last_active = now
            sent = 0
            replay_original = self.cfg["replay_policy"] == "original"
            rate = self.cfg.get("rate_limit_bps", 0)
            fc = self.cfg.get("flow_control")
            # new messages in order go as runs framed straight into the one
            # subscriber (direct.py)
            if not (replay_original or rate or self.cfg.get("headers_only") or self.rdq or
                    self.lps or (self.ack_none and self.stream.cfg["retention"] != "limits")):
                target = direct.resolve(self.client, subject_b, links=True)
                while target is not None and sent < PUSH_PASS and self.npending:
                    n = self._push_run(target, subject, min(PUSH_RUN, PUSH_PASS - sent), now)
                    if not n:
                        break
                    sent += n
            while self._has_work() and not self._max_ack_pending_reached() and \
                    sent < PUSH_PASS:
                if rate and self._rate_next > now:  # rate_limit_bps: wait for the budget
                    soon(self._rate_next)
                    break
                if fc and self.pbytes > self.maxpb:
                    break  # the window is out: the flow control reply wakes us
                msg, dc = self._next_due(replay_original, now, soon)
                if msg is None:
                    break
                size = self._send(msg, dc, subject, now)
                sent += 1
                if rate:
                    self._rate_next = max(now, self._rate_next) + size * 8 / rate
                if fc:
                    self._count_flow(size, subject)
            if sent >= PUSH_PASS:
                self.wake.set()
            self._ack_by_flow_control(subject, False)
            if hb:
                if now - self.last_delivery >= hb:
                    self._push_heartbeat(subject)
                    self._ack_by_flow_control(subject, True)
                    self.last_delivery = now
                soon(self.last_delivery + hb)
        else:
            # no subscriber on the deliver subject yet: look again soon (clients
            # may subscribe after creating the consumer)
            soon(now + min(hb, INTEREST_POLL) if hb else now + INTEREST_POLL)

    def _count_flow(self, size, subject):
        """``size`` bytes delivered under flow control (Go needFlowControl)."""
        self.pbytes += size
        if self.fc_out is None:
            if self.pbytes > self.maxpb // 2:
                self._flow_control_request(subject)
        elif self.pbytes - self.fcsz >= self.maxpb:
            self.fcsz += size  # far past the window: the reply covers more

    def _flow_control_request(self, subject):
        self.fcsz = self.pbytes
        self.fc_out = "$JS.FC.%s.%s.%d" % (self.stream.name, self.name, self.dseq)
        self.client.publish(subject, b"", reply=self.fc_out,
                            headers=b"NATS/1.0 100 FlowControl Request\r\n\r\n", flush=False)

    def _on_flow_control(self, sub, subject, reply, hdr, payload):
        """A flow control reply (Go ``processFlowControl``): only the latest
        request's counts. With ack_policy flow_control its
        ``Nats-Last-Stream`` acks everything up to it (``Nats-Last-Consumer``
        may be 0: a reply without deliveries)."""
        if self.closed or self.fc_out is None or bytes(subject).decode() != self.fc_out:
            return
        self.fc_out = None
        self.maxpb = min(self.maxpb * 2, FC_LIMIT)  # Go: slow start
        self.pbytes = max(self.pbytes - self.fcsz, 0)
        self.fcsz = 0
        if self.ack_fc and hdr:
            fields = H.parse(hdr)
            last = fields.get("Nats-Last-Stream", "")
            if last.isdigit() and int(last) > 0:
                dseq = fields.get("Nats-Last-Consumer", "")
                self.on_ack("ACK", int(last), int(dseq) if dseq.isdigit() else 0, 1, b"", None)
                return
        self.wake.set()

    def _ack_by_flow_control(self, subject, idle):
        """ack_policy flow_control: acks come only as flow control replies,
        so ask when max_ack_pending is reached, and on an idle heartbeat
        while deliveries are unacked (Go)."""
        if self.ack_fc and self.pending and self.fc_out is None and (
                idle or self._max_ack_pending_reached()):
            self._flow_control_request(subject)

    def _next_due(self, replay_original, now, soon):
        """The next message that may go now: (None, 0) when there is none or
        ``replay_policy: original`` holds it back (then ``soon`` gets its time)."""
        msg, dc = self._next_msg()
        if msg is not None and replay_original and dc == 1:
            due = self._replay_due(msg, now)
            if due:
                self._put_back(msg, dc)
                soon(due)
                return None, 0
        return msg, dc

    def _replay_due(self, msg, now):
        """replay_policy original: when ``msg`` may go (0 = now), keeping the gaps
        between the stored timestamps."""
        last = self._replay_last
        if last is not None:
            due = last[1] + (msg.ts - last[0]) / 1e9
            if due > now:
                return due
        self._replay_last = (msg.ts, now)
        return 0

    _replay_last = None  # (stored ts ns, monotonic time) of the last replayed message
    last_delivered_ns = 0  # wall clock of the last delivery / ack (info's last_active)
    last_ack_ns = 0
    _rate_next = 0.0  # rate_limit_bps: monotonic time the next message may go

    def _push_heartbeat(self, subject):
        # an unanswered flow control request rides along (Go: the receiver
        # answers it, so a lost reply does not stall the consumer)
        stalled = "Nats-Consumer-Stalled: %s\r\n" % self.fc_out if self.fc_out else ""
        hdr = ("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: %d\r\n"
               "Nats-Last-Stream: %d\r\n%s\r\n" % (self.dseq, self.dsseq, stalled)).encode()
        self.client.publish(subject, b"", headers=hdr, flush=False)

    # -- pull ------------------------------------------------------------------

    def add_request(self, reply, payload):
        """A CONSUMER.MSG.NEXT request (or +NXT)."""
        self.last_active = time.monotonic()
        if self.push:
            self.client.publish(reply, b"", headers=H.status(409, "Consumer is push based"),
                                flush=False)
            return
        try:
            batch, expires, no_wait, max_bytes, hb, group = parse_pull_request(payload)
        except ValueError as exc:
            self.client.publish(reply, b"", headers=H.status(400, "Bad Request - %s" % exc),
                                flush=False)
            return
        cfg = self.cfg
        if cfg.get("max_batch") and batch > cfg["max_batch"]:
            self.client.publish(reply, b"", headers=H.status(
                409, "Exceeded MaxRequestBatch of %d" % cfg["max_batch"]), flush=False)
            return
        if expires and cfg.get("max_expires") and expires > cfg["max_expires"]:
            self.client.publish(reply, b"", headers=H.status(
                409, "Exceeded MaxRequestExpires of %s" % _go_duration(cfg["max_expires"])),
                flush=False)
            return
        if max_bytes and cfg.get("max_bytes") and max_bytes > cfg["max_bytes"]:
            self.client.publish(reply, b"", headers=H.status(
                409, "Exceeded MaxRequestMaxBytes of %d" % cfg["max_bytes"]), flush=False)
            return
        if group is not None:
            text = priority_error(cfg, group)
            if text:
                self.client.publish(reply, b"", headers=H.status(400, text), flush=False)
                return
            if self.pin_id and cfg.get("priority_policy") == "pinned_client":
                if group["id"] == self.pin_id:
                    self.pin_deadline = time.monotonic() + self._pin_ttl()
                elif group["id"]:
                    self.client.publish(reply, b"", headers=H.status(
                        423, "Nats-Pin-Id mismatch"), flush=False)
                    return
        if no_wait:
            if not self._has_work() and not expires:
                self.client.publish(reply, b"", headers=H.NO_MESSAGES, flush=False)
                return
        if len(self.waiting) >= cfg.get("max_waiting", 512):
            if not hb:
                self.client.publish(reply, b"", headers=H.status(409, "Exceeded MaxWaiting"),
                                    flush=False)
            return
        now = time.monotonic()
        req = PullRequest(reply, batch, max_bytes, now + expires / 1e9 if expires else 0,
                          no_wait, hb / 1e9, now)
        if group is not None and cfg.get("priority_policy") == "overflow":
            req.min_pending = group["min_pending"]
            req.min_ack_pending = group["min_ack_pending"]
        if group is not None and cfg.get("priority_policy") == "pinned_client":
            req.pin_id = group["id"]
            req.group = group["group"]
        self.waiting.append(req)
        self.wake.set()

    def _deliver_pull(self, now, soon):
        waiting = self.waiting
        checked = None  # the request whose inbox was seen to have interest this pass
        replay_original = self.cfg["replay_policy"] == "original"
        pinned = self.cfg.get("priority_policy") == "pinned_client"
        # the common case goes through _pull_run: new messages in order, framed
        # straight into the one client that asked (direct.py)
        plain = not (replay_original or pinned or self.ack_none or self.pin_id or
                     self.cfg.get("headers_only"))
        skipped = 0
        while waiting and self._has_work() and not self._max_ack_pending_reached():
            req = waiting[0]
            if (req.min_pending or req.min_ack_pending) and not (
                    (req.min_pending and req.min_pending <= self.npending) or
                    (req.min_ack_pending and req.min_ack_pending <= len(self.pending))):
                # overflow: this request only takes messages once the backlog
                # reaches its thresholds; look at the next one
                waiting.rotate(-1)
                skipped += 1
                if skipped >= len(waiting):
                    break
                continue
            skipped = 0
            if pinned and not self._pin_allows(req, now):
                if req.pin_id:  # another (older) pin: Go tells it and drops the request
                    waiting.popleft()
                    self.client.publish(req.reply, b"", headers=H.status(
                        423, "Nats-Wrong-Pin-Id", [
                            ("Nats-Pending-Messages", req.batch - req.delivered),
                            ("Nats-Pending-Bytes", req.max_bytes)]), flush=False)
                    continue
                waiting.rotate(-1)  # unpinned requests wait while a pin is held
                skipped += 1
                if skipped >= len(waiting):
                    break
                continue
            if req is not checked:
                if not self._interest(req.reply_bytes):
                    waiting.popleft()
                    continue
                checked = req
            if plain and not req.max_bytes and not self.rdq and not self.lps:
                target = direct.resolve(self.client, req.reply_bytes)
                if target is not None:
                    self._pull_run(req, target, now)
                    if req.delivered >= req.batch:
                        waiting.popleft()
                    continue
            msg, dc = self._next_due(replay_original, now, soon)
            if msg is None:
                break
            size = len(msg.hdr) + len(msg.data)
            if req.max_bytes:
                if size > req.max_bytes:
                    self._put_back(msg, dc)
                    waiting.popleft()
                    self.client.publish(req.reply, b"", headers=H.status(
                        409, "Message Size Exceeds MaxBytes", [
                            ("Nats-Pending-Messages", req.batch - req.delivered),
                            ("Nats-Pending-Bytes", req.max_bytes)]), flush=False)
                    continue
                req.max_bytes -= size
                if req.max_bytes == 0:
                    req.batch = req.delivered + 1
            self._send(msg, dc, req.reply_bytes, now, pin=self.pin_id or None)
            req.delivered += 1
            if req.hb:
                req.next_hb = now + req.hb
            if req.delivered >= req.batch:
                waiting.popleft()
                if req.max_bytes > 0 and req.delivered:
                    self.client.publish(req.reply, b"", headers=H.status(
                        409, "Batch Completed", [("Nats-Pending-Messages", 0),
                                                 ("Nats-Pending-Bytes", req.max_bytes)]),
                        flush=False)
        # end of stream for no_wait requests
        if waiting and not self._has_work():
            kept = collections.deque()
            for req in waiting:
                if req.no_wait and (not req.expires or req.delivered):
                    self.client.publish(req.reply, b"", headers=H.NO_MESSAGES, flush=False)
                else:
                    kept.append(req)
            self.waiting = waiting = kept

    # -- priority policy pinned_client ------------------------------------------

    pin_id = ""  # the pull client holding the pin (Nats-Pin-Id), "" = none
    pin_deadline = 0.0
    pin_group = ""
    pinned_ns = 0

    def _pin_ttl(self):
        return self.cfg.get("priority_timeout", 120 * SECOND) / 1e9

    def _pin_allows(self, req, now):
        """May ``req`` take messages? The first request without an id gets a new
        pin (Go's nextWaiting); the pin holder's requests carry its id."""
        if self.pin_id and now >= self.pin_deadline:
            self.unpin("timeout")
        if not self.pin_id:
            if req.pin_id:
                return False
            self.pin_id = secrets.token_hex(11)
            self.pin_group = req.group
            self.pin_deadline = now + self._pin_ttl()
            self.pinned_ns = time.time_ns()
            self.jsa.advisory_pinned(self, req.group)
            return True
        return req.pin_id == self.pin_id

    def unpin(self, reason="admin"):
        if self.pin_id:
            group = self.pin_group
            self.pin_id = ""
            self.pin_group = ""
            self.pinned_ns = 0
            self.jsa.advisory_unpinned(self, group, reason)
            self.wake.set()

    def _put_back(self, msg, dc):
        if dc > 1:
            self.rdq.appendleft(msg.seq)
            self.rdq_set.add(msg.seq)
        else:
            self.sseq = min(self.sseq, msg.seq)
            self.npending += 1

    def _expire_requests(self, now, soon):
        if not self.waiting:
            return
        kept = collections.deque()
        for req in self.waiting:
            if req.expires and req.expires <= now:
                self.client.publish(req.reply, b"", headers=H.status(408, "Request Timeout", [
                    ("Nats-Pending-Messages", req.batch - req.delivered),
                    ("Nats-Pending-Bytes", req.max_bytes)]), flush=False)
                continue
            if req.hb and req.next_hb <= now:
                self.client.publish(req.reply, b"", headers=H.IDLE_HEARTBEAT, flush=False)
                req.next_hb = now + req.hb
            soon(req.expires)
            soon(req.next_hb)
            kept.append(req)
        self.waiting = kept
        self.last_active = now if kept else self.last_active

    def _interest(self, subject):
        """Someone would get a delivery on ``subject`` (here or across a link)."""
        return self.server.links.has_interest(self.jsa.account, subject)

    def _check_inactive(self, now, soon):
        threshold = self.cfg.get("inactive_threshold", 0) / 1e9
        if not threshold:
            return
        if self.push:
            if self._interest(self.cfg["deliver_subject"].encode()):
                self.last_active = now
        elif self.waiting:
            self.last_active = now
        if now - self.last_active >= threshold:
            self.server.spawn(self.jsa.delete_consumer, self.stream, self.name, "inactive")
            return
        soon(self.last_active + threshold)

    # -- acks ------------------------------------------------------------------

    def has_acked(self, seq):
        """Interest retention: this consumer no longer needs ``seq``."""
        return seq < self.sseq and seq not in self.pending and seq not in self.lps

    def plain_ack(self, sseq):
        """An empty ack without a reply (``+ACK``, the usual one), for explicit
        acks without sampling; False when the general ``on_ack`` must do it."""
        if self.ack_all or self.sample:
            return False
        self.last_active = time.monotonic()
        self.last_ack_ns = time.time_ns()
        if self.pending.pop(sseq, None) is not None:
            if self.rdc:
                self.rdc.pop(sseq, None)
            if self.rdq_set:
                self.rdq_set.discard(sseq)
            if self.stream.cfg["retention"] != "limits":
                self.stream.acked(sseq)
        self._floor_due = True
        self._dirty = True
        wake = self.wake
        if not wake.is_set():
            wake.set()
        return True

    def on_ack(self, kind, sseq, dseq, dc, body, reply):
        """An ack of stream seq ``sseq`` (``kind`` one of ACK NAK WPI NXT TERM)."""
        self.last_active = time.monotonic()
        self.last_ack_ns = time.time_ns()
        if kind in ("ACK", "NXT", "TERM"):
            if self.ack_all and kind != "TERM":
                for seq in [s for s in self.pending if s <= sseq]:
                    self._acked(seq, retention=True)
            elif sseq in self.pending:
                if self.sample and kind != "TERM" and random.random() < self.sample:
                    p = self.pending[sseq]
                    advisories.ack_metric(self.jsa, self, sseq, p[0], dc,
                                          time.time_ns() - p[1])
                self._acked(sseq, retention=kind != "TERM" or
                            self.stream.cfg["retention"] == "workqueue")
                if kind == "TERM":
                    self.jsa.advisory_terminated(self, sseq, dc, body)
            self._floor_due = True  # computed once, when next needed (see afloor_s)
            if kind == "NXT":
                self.add_request(reply, body)
        elif kind == "NAK":
            if sseq in self.pending:
                delay = _nak_delay(body)
                if delay > 0:
                    self.pending[sseq][2] = float("inf")
                    heapq.heappush(self.delayed, (time.monotonic() + delay, sseq))
                else:
                    self._queue_redelivery(sseq)
                self.jsa.advisory_naked(self, sseq, dc)
        elif kind == "WPI":
            p = self.pending.get(sseq)
            if p is not None and sseq not in self.rdq_set:
                p[2] = time.monotonic() + self._ack_wait(dc)
        self._dirty = True
        self.wake.set()

    def _acked(self, seq, retention):
        self.pending.pop(seq, None)
        self.rdc.pop(seq, None)
        if seq in self.rdq_set:
            self.rdq_set.discard(seq)
        if retention and self.stream.cfg["retention"] != "limits":
            self.stream.acked(seq)

    def _update_floor(self):
        self._floor_due = False
        if not self.pending:
            self._afloor_s = self.dsseq
            self._afloor_c = self.dseq
        else:
            # deliveries enter ``pending`` in stream order (redeliveries keep
            # their place), so the first key is the lowest pending sequence
            first = next(iter(self.pending))
            self._afloor_s = first - 1
            self._afloor_c = self.pending[first][0] - 1

    # The ack floor follows every ack, but finding the first pending key steps over every
    # slot the acks freed at the front of ``pending`` (~1 us per ack with a thousand
    # pending). An ack only marks it due; it is computed, from the state the ack left,
    # before anything reads it or changes what it depends on (pending, dseq, dsseq).
    _floor_due = False
    _afloor_s = _afloor_c = 0

    def _settle_floor(self):
        if self._floor_due:
            self._update_floor()

    @property
    def afloor_s(self):
        """Stream sequence of the ack floor."""
        self._settle_floor()
        return self._afloor_s

    @afloor_s.setter
    def afloor_s(self, seq):
        self._settle_floor()
        self._afloor_s = seq

    @property
    def afloor_c(self):
        """Consumer sequence of the ack floor."""
        self._settle_floor()
        return self._afloor_c

    @afloor_c.setter
    def afloor_c(self, seq):
        self._settle_floor()
        self._afloor_c = seq

    # -- info ------------------------------------------------------------------

    def info(self):
        delivered = {"consumer_seq": self.dseq, "stream_seq": self.dsseq}
        if self.last_delivered_ns:
            delivered["last_active"] = H.rfc3339(self.last_delivered_ns)
        floor = {"consumer_seq": self.afloor_c, "stream_seq": self.afloor_s}
        if self.last_ack_ns:
            floor["last_active"] = H.rfc3339(self.last_ack_ns)
        info = {"stream_name": self.stream.name, "name": self.name,
                "created": H.rfc3339(self.created), "config": self.jsa.stamp(self.cfg),
                "delivered": delivered, "ack_floor": floor,
                "num_ack_pending": len(self.pending),
                "num_redelivered": sum(1 for n in self.rdc.values() if n > 1),
                "num_waiting": len(self.waiting), "num_pending": self.npending}
        if self.push:
            info["push_bound"] = self._interest(
                self.cfg["deliver_subject"].encode())
            if not info["push_bound"]:
                del info["push_bound"]
        if self.cfg.get("priority_policy") == "pinned_client":
            groups = []
            for group in self.cfg.get("priority_groups") or ():
                entry = {"group": group}
                if self.pin_id and group == self.pin_group:
                    entry["pinned_client_id"] = self.pin_id
                    entry["pinned_ts"] = H.rfc3339(self.pinned_ns)
                groups.append(entry)
            info["priority_groups"] = groups
        if self.paused_until and self.paused_until > time.time_ns():
            info["paused"] = True
            info["pause_remaining"] = self.paused_until - time.time_ns()
        info["ts"] = H.rfc3339(time.time_ns())
        return info


def _nak_delay(body):
    """-NAK body after the verb: ``{"delay": ns}`` or a Go duration -> seconds."""
    text = body.strip()
    if not text:
        return 0
    if text.startswith("{"):
        try:
            return max(0, int(json.loads(text).get("delay", 0))) / 1e9
        except (ValueError, AttributeError, TypeError):
            return 0
    from pluggy_nats.conf import go_parse_duration

    try:
        return max(0, go_parse_duration(text)) / 1e9
    except ValueError:
        return 0


def _go_duration(ns):
    """Go's time.Duration String() for whole units (enough for limits)."""
    if ns % SECOND == 0:
        s = ns // SECOND
        if s >= 60:
            m, s = divmod(s, 60)
            if m >= 60:
                h, m = divmod(m, 60)
                return "%dh%dm%ds" % (h, m, s)
            return "%dm%ds" % (m, s)
        return "%ds" % s
    if ns % 1_000_000 == 0:
        return "%dms" % (ns // 1_000_000)
    return "%dns" % ns

