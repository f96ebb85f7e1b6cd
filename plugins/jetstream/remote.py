"""Mirrors and sources of a stream reached through an ``external`` API prefix
(another domain, across a leaf or gateway): fed by a push consumer of the
origin, as nats-server does it (stream.go ``setupMirrorConsumer``,
``setupSourceConsumer``, ``processInboundMirrorMsg``/``SourceMsg``;
JETSTREAM-CLUSTER.md section 7).

The feed asks the origin's API (``<api>.CONSUMER.CREATE.<stream>``) for an
ephemeral push consumer starting at the last origin sequence it holds + 1:
``ack_policy none``, ``idle_heartbeat 1s``, ``flow_control``,
``inactive_threshold 10s``. Each delivery's ack reply names its origin and
delivery sequences: a mirror stores the message at the origin's sequence, a
source appends it with ``Nats-Stream-Source``. A gap in the delivery
sequence (a message lost while the link was down), a heartbeat whose
``Nats-Last-Consumer`` is not the last one we saw, or 10 s without a
message or heartbeat (stalled) re-creates the consumer from where the stream
is, so nothing is lost or stored twice. A link coming up (``nats_link_up``)
re-creates stalled ones at once (Go ``checkInternalSyncConsumers``).
Creates are at least 2 s apart; after failures the wait grows (Go: 5 s x 2 x
fails, at most 2 min, with jitter).
"""

import json
import random
import secrets
import time

import gevent
import gevent.event

from . import headers as H
from .errors import ApiError
from .sources import SourceFeed, go_hash

HEARTBEAT_NS = 1_000_000_000  # sourceHealthHB
HEALTH = 10.0  # sourceHealthCheckInterval: no message or heartbeat this long = stalled
INACTIVE_NS = 10_000_000_000
THROTTLE = 2.0  # sourceConsumerRetryThreshold
# Go waits 30 s for a create's answer (srcConsumerWaitTime); a request that
# reached a stream or meta group between leaders is never answered, so a
# mirror would stand still that long after a leader change: asked again
# after 10 s (a consumer created for an answer we no longer wait for is
# dropped by the origin after its 10 s inactive_threshold).
CREATE_WAIT = 10.0
BACKOFF_MAX = 120.0
_STRIP = ("Nats-Expected-", "Nats-Batch-")


def is_remote(spec):
    """A mirror or source read through a consumer (an ``external`` block)."""
    return isinstance(spec.get("external"), dict)


def feed_for(target, spec, mirror):
    """The feed of one mirror or source of ``target``: a consumer of the
    origin when it is external or ``target`` is replicated (its origin may
    live on other servers of the cluster, as in Go, whose clustered mirrors
    always read through a consumer), else a reader of the local origin."""
    remote = is_remote(spec) or target.replicated or bool(spec.get("consumer"))
    return (RemoteFeed if remote else SourceFeed)(target, spec, mirror)


def ack_info(reply):
    """``(consumer, dc, sseq, dseq, ts, pending)`` of a ``$JS.ACK`` reply (v1:
    9 tokens, v2: 11 or more), or None (Go ``ackReplyInfo``)."""
    tokens = reply.split(".")
    n = len(tokens)
    if (n != 9 and n < 11) or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    o = 4 if n >= 11 else 2
    try:
        return (tokens[o + 1], int(tokens[o + 2]), int(tokens[o + 3]), int(tokens[o + 4]),
                int(tokens[o + 5]), int(tokens[o + 6]))
    except ValueError:
        return None


class RemoteFeed(SourceFeed):
    """A mirror or one source fed by a consumer of a remote origin."""

    def __init__(self, target, spec, mirror):
        super().__init__(target, spec, mirror)
        ext = spec.get("external") or {}
        self.api = (ext.get("api") or "$JS.API").rstrip(".")
        self.deliver_prefix = (ext.get("deliver") or "").rstrip(".")
        self.client = target.jsa.client
        self.server = target.server
        self.cname = None  # the consumer whose deliveries we take
        self.sseq = max(self.next_seq - 1, 0)  # the last origin sequence we hold
        self.dseq = 0  # the last delivery sequence seen
        self.lag = 0
        self.sub = None
        self.need = True  # (re)create the consumer
        self.last_req = 0.0
        self.fails = 0
        self.retry_at = 0.0
        self.err = None
        self.sourcing = True
        self.pending = None  # the AsyncResult of a create request in flight
        # durable sourcing (Go 2.14+): a consumer the user made, reset instead
        # of created, acked by our flow control replies
        self.durable = spec.get("consumer") if isinstance(spec.get("consumer"), dict) else None
        self.adopt = False  # take the next delivery's sequence as where we are
        # a source asks at API level 5 naming the origin identity it expects
        # (Go 2.15: a recreated origin is refused with 10225), else at 4
        self.api_level = 4 if mirror else 5
        self.recreated = False  # the origin was made again: start from its start
        self._ack_head = b"$JS.ACK.."  # set with cname

    # -- the loop -------------------------------------------------------------------

    def _run(self):
        while not self.closed:
            now = time.monotonic()
            if self.need and now >= self.retry_at:
                self._setup()
                continue
            wait = HEALTH / 2
            if self.need:
                wait = max(0.05, self.retry_at - now)
            self.wake.wait(wait)
            self.wake.clear()
            if self.sub is not None and not self.need and \
                    time.monotonic() - self.last_active > HEALTH:
                self.retry("stalled")

    def retry(self, why):
        """Re-create the consumer from the last sequence we hold + 1."""
        if not self.need:
            self.target.jsa.js.log.debug("source_consumer_retry", stream=self.target.name,
                                         origin=self.name, reason=why)
        self.need = True
        self.wake.set()

    def link_up(self):
        """A link came up: a consumer without traffic is re-created now, and a
        create request waiting for its answer (lost with the old link) is
        asked again."""
        if self.pending is not None:
            self.pending.set(None)
            return
        if self.sub is None or time.monotonic() - self.last_active > 2 * HEARTBEAT_NS / 1e9:
            self.retry_at = min(self.retry_at, time.monotonic())
            self.retry("link up")

    def stop(self):
        super().stop()
        self._cancel()

    def origin_identity(self):
        return self.ident

    def _cancel(self):
        if self.sub is not None:
            self.client.unsubscribe(self.sub)
            self.sub = None
        self.cname = None

    # -- consumer create ---------------------------------------------------------------

    def _consumer_config(self, name):
        if self.deliver_prefix:
            deliver = "%s.%s.%s" % (self.deliver_prefix, "M" if self.mirror else "S",
                                    secrets.token_hex(8))
        else:
            deliver = "$JS.%s.%s" % ("M" if self.mirror else "S", secrets.token_hex(8))
        jsa = self.target.jsa
        kind = "mirror" if self.mirror else "source"
        meta = {"_nats.%s.stream" % kind: self.target.name,
                "_nats.%s.acc" % kind: jsa.account.name}
        if jsa.js.config.domain:
            meta["_nats.%s.domain" % kind] = jsa.js.config.domain
        cfg = {"name": name, "deliver_subject": deliver, "deliver_policy": "by_start_sequence",
               "opt_start_seq": self.sseq + 1, "ack_policy": "none",
               "ack_wait": 22 * 3600 * 10**9, "max_deliver": 1,
               "idle_heartbeat": HEARTBEAT_NS, "flow_control": True, "direct": True,
               "inactive_threshold": INACTIVE_NS, "metadata": meta}
        if self.sourcing:
            cfg["sourcing"] = True
        if not self.sseq:  # first start: the configured start, else everything
            cfg["opt_start_seq"] = 0
            if self.spec.get("opt_start_seq"):
                cfg["opt_start_seq"] = self.spec["opt_start_seq"]
            elif self.spec.get("opt_start_time"):
                cfg["opt_start_time"] = self.spec["opt_start_time"]
                cfg["deliver_policy"] = "by_start_time"
            if not cfg["opt_start_seq"] and "opt_start_time" not in cfg:
                cfg["deliver_policy"] = "all"
                del cfg["opt_start_seq"]
        if self.filters:
            if len(self.filters) == 1:
                cfg["filter_subject"] = self.filters[0]
            else:
                cfg["filter_subjects"] = list(self.filters)
        return cfg

    def _setup(self):
        """Send one create request and wait for its answer (Go: 30 s)."""
        now = time.monotonic()
        if now - self.last_req < THROTTLE:
            self.retry_at = self.last_req + THROTTLE
            return
        self.last_req = now
        self._cancel()
        if self.mirror:  # resume after what the mirror holds
            self.sseq = max(self.sseq, self.target.store.state().last_seq)
        stable = go_hash("%s %s%s" % (self.target.name, self.target.jsa.account.name,
                                      " " + self.target.jsa.js.config.domain
                                      if self.target.jsa.js.config.domain else ""))
        base = "JS_%s_%s" % ("MIRROR" if self.mirror else "SOURCE", stable)
        if not self.mirror:
            base += "_" + go_hash(self.iname)
        name = base if self.sourcing else "%s_%s" % (base, secrets.token_hex(4))
        if self.durable:  # Go: a consumer reset, no body
            deliver = self.durable["deliver_subject"]
            # its deliveries may overtake the answer (the origin sends them
            # on another queue): they are taken as they come (``_early``)
            self.cname, self.dseq, self.adopt = self.durable["name"], 0, True
            self._ack_head = ("$JS.ACK.%s.%s.1." % (self.name, self.cname)).encode()
            subject = "%s.CONSUMER.RESET.%s.%s" % (self.api, self.name, self.durable["name"])
            body = b""
        else:
            cfg = self._consumer_config(name)
            deliver = cfg["deliver_subject"]
            if "filter_subject" in cfg:
                subject = "%s.CONSUMER.CREATE.%s.%s.%s" % (self.api, self.name, name,
                                                          cfg["filter_subject"])
            else:
                subject = "%s.CONSUMER.CREATE.%s" % (self.api, self.name)
            body = json.dumps({"stream_name": self.name, "config": cfg}).encode()
        sub = self.sub = self.client.subscribe(deliver, self._on_msg)
        sub.run_callback = self._on_run
        result = gevent.event.AsyncResult()
        inbox = "$JSC.R.%s" % secrets.token_hex(10)
        rsub = self.client.subscribe(
            inbox, lambda _s, _subj, _r, hdr, data: self._answered(data, result, sub, hdr))
        # Nobody answers the API (a link still coming up): ask again after the
        # throttle instead of waiting out the 30 s.
        wait = CREATE_WAIT if self.server.links.has_interest(self.client.account,
                                                             subject.encode()) else THROTTLE
        self.pending = result
        try:
            pairs = [("Nats-Required-Api-Level", str(self.api_level))]
            if self.api_level >= 5:
                pairs.append(("Nats-Stream-Identity", self.ident))
            self.client.publish(subject, body, reply=inbox, headers=H.build(pairs))
            outcome = result.get(timeout=wait)
        except gevent.Timeout:
            outcome = None
        finally:
            self.pending = None
            self.client.unsubscribe(rsub)
        if self.closed or outcome == "ok":
            return
        self._cancel()
        if outcome is None:  # no answer (yet): ask again once the throttle allows (Go)
            self.retry_at = time.monotonic()
        elif outcome == "recreated":  # 10225: start again from the new origin's start
            self.last_req = 0.0
        elif outcome == "fallback":  # an origin without sourcing consumers (Go retries so)
            if self.api_level > 4:
                self.api_level = 4  # first an origin without stream identities
            else:
                self.sourcing = False
            self.last_req = 0.0
        else:
            self.err = outcome
            self.fails += 1
            delay = min(5.0 * 2 * self.fails, BACKOFF_MAX)
            self.retry_at = time.monotonic() + delay * (1 + random.random() * 0.2)
            self.target.jsa.js.log.warning(
                "source_consumer_create_failed", stream=self.target.name, origin=self.name,
                api=self.api, error=self.err.get("description"))

    def _answered(self, data, result, sub, hdr=None):
        """The create request's answer, taken at once in the reader that
        brought it: the consumer's first deliveries may follow in the same
        read, and must find it set up."""
        if result.ready() or sub is not self.sub or self.closed:
            return
        try:
            resp = json.loads(data)
        except ValueError:
            resp = None
        error = resp.get("error") if isinstance(resp, dict) else None
        if error or not isinstance(resp, dict) or not isinstance(resp.get("config"), dict):
            if error and error.get("err_code") == 10225 and not self.mirror:
                # Go 2.15: the origin was deleted and made again
                self.ident, self.recreated = "", True
                self.sseq = self.dseq = 0
                result.set("recreated")
                return
            if error and self.sourcing and error.get("err_code") in (10185, 10025):
                result.set("fallback")
                return
            result.set(error if isinstance(error, dict) else {
                "code": 500, "err_code": 10029 if self.mirror else 10030,
                "description": "%s consumer setup failed: invalid response"
                % ("mirror" if self.mirror else "source")})
            return
        if self.durable and resp["config"].get("ack_policy") != "flow_control":
            # Go: JSMirrorConsumerRequiresAckFCErr / JSSourceConsumerRequiresAckFCErr
            result.set(ApiError(10214 if self.mirror else 10217).as_dict())
            return
        ident = H.parse(hdr).get("Nats-Stream-Identity", "") if hdr else ""
        if not self.mirror and (self.recreated or (ident and self.ident and
                                                   ident != self.ident)):
            self.target.jsa.js.log.warning(
                "JetStream source stream %r for stream '%s > %s' was recreated, resetting "
                "source state" % (self.name, self.target.jsa.account.name, self.target.name))
            self.sseq = 0
        if not self.mirror:
            self.ident, self.recreated = ident, False
        self.err = None
        self.fails = 0
        self.cname = resp.get("name")
        # b"$JS.ACK.<origin>.<consumer>.1.": what a first delivery's reply starts with
        self._ack_head = ("$JS.ACK.%s.%s.1." % (self.name, self.cname)).encode()
        delivered = (resp.get("delivered") or {}).get("stream_seq", 0) or 0
        if self.durable:
            # the answer's delivery count, unless deliveries overtook it (then
            # the count they carried); the first delivery after it is taken
            # as where the consumer is (``adopt``: a reset restarts Go's count
            # at 1); what it redelivers below what we hold is skipped
            if self.adopt:
                self.dseq = (resp.get("delivered") or {}).get("consumer_seq", 0) or 0
            if not self.mirror:
                self.sseq = max(self.sseq, delivered)
        else:
            self.dseq = 0
        if self.mirror:
            last = self.target.store.state().last_seq
            # The origin's first sequence is past ours: skip to it (a replicated
            # mirror does not write its store outside the log: its next message,
            # proposed at the origin's sequence, leaves the same gap).
            if last < delivered and not self.target.replicated:
                self.target.store.skip_msgs(last + 1, delivered - last)
            self.sseq = max(delivered, last)
        self.need = False
        self.last_active = time.monotonic()
        result.set("ok")

    # -- deliveries ----------------------------------------------------------------------

    def _on_msg(self, sub, subject, reply, hdr, data):
        if sub is not self.sub or self.closed:
            return
        reply = reply.encode() if isinstance(reply, str) else (reply or b"")
        if hdr and hdr.startswith(b"NATS/1.0 100"):
            self.last_active = time.monotonic()
            if reply:  # flow control: answer with where we are
                self.client.publish(reply, b"", headers=(
                    "NATS/1.0\r\nNats-Last-Consumer: %d\r\nNats-Last-Stream: %d\r\n\r\n"
                    % (self.dseq, self.sseq)).encode(), flush=False)
                return
            fields = H.parse(hdr)
            last = fields.get("Nats-Last-Consumer", "")
            if last.isdigit() and int(last) > 0 and int(last) != self.dseq:
                self.retry("heartbeat names delivery %s, we saw %d" % (last, self.dseq))
            elif fields.get("Nats-Consumer-Stalled"):
                self.client.publish(fields["Nats-Consumer-Stalled"], b"", flush=False)
            return
        if self.need and not self._early():
            return
        got = self._first_delivery(reply)
        if got is None:
            return
        self.last_active = time.monotonic()
        subject = subject.decode() if isinstance(subject, bytes) else subject
        self._take(subject, hdr, data, *got)

    def _early(self):
        """A durable consumer's delivery while its reset's answer is on the
        way: taken (the consumer is the user's, its name known)."""
        return self.durable is not None and self.pending is not None

    def _first_delivery(self, ack):
        """``(sseq, dseq, ts, pending)`` of a first delivery of our consumer
        by its ack reply (bytes), or None. The usual reply
        (``<_ack_head><sseq>.<dseq>.<ts>.<pending>``) is read without decoding;
        anything else (v2 tokens) by ``ack_info``."""
        head = self._ack_head
        if ack.startswith(head):
            fields = ack[len(head):].split(b".")
            if len(fields) == 4 and all(map(bytes.isdigit, fields)):
                return tuple(map(int, fields))
            return None
        info = ack_info(ack.decode("utf-8", "replace"))
        if info is None or info[0] != self.cname or info[1] > 1:
            return None
        return info[2:]

    def _on_run(self, sub, _subject, msgs):
        """A read's run of header-less deliveries, ``[(stored subject, ack
        reply, payload)]`` (links/jsdeliver.py ``claimed_run``): each taken as
        ``_on_msg`` takes it, the usual ack reply (``<prefix><sseq>.<dseq>.
        <ts>.<pending>``, first delivery) read without decoding it. A mirror
        without transforms stores the run's new messages with one store call
        (``_mirror_run``)."""
        if sub is not self.sub or self.closed or (self.need and not self._early()):
            return
        self.last_active = time.monotonic()
        first_delivery = self._first_delivery
        mirror = self.mirror and not self.transforms
        last = name = None
        parsed = []
        for stored, ack, data in msgs:
            got = first_delivery(ack)
            if got is None:
                continue
            sseq, dseq, ts, pending = got
            if stored is not last:
                last = stored
                name = stored.decode()
            if mirror:
                parsed.append((name, data, sseq, dseq, ts, pending))
            elif not self._take(name, b"", data, sseq, dseq, ts, pending):
                return  # re-creating the consumer: the rest comes again
        if parsed:
            self._mirror_run(parsed)

    def _mirror_run(self, parsed):
        """``_take`` for a mirror's run ``[(subject, data, sseq, dseq, ts,
        pending)]``: the same sequence rules, the new messages stored by one
        ``store_remote_run`` (before a gap is acted on, so the state says what
        the store holds)."""
        if self.adopt:
            self.adopt = False
            self.dseq = parsed[0][3] - 1
        s, d = self.sseq, self.dseq
        batch = []
        dseqs = []
        lag = self.lag + 1
        gap = None
        for subject, data, sseq, dseq, ts, pending in parsed:
            if sseq <= s:  # older than what we hold
                if dseq == d + 1:
                    d = dseq
                continue
            if dseq != d + 1 and sseq != s + 1:  # a delivery went missing
                gap = "delivery %d after %d" % (dseq, d)
                break
            batch.append((subject, b"", data, sseq, ts))
            dseqs.append(dseq)
            s, d, lag = sseq, dseq, pending
        n = self.target.store_remote_run(batch) if batch else 0
        if n < len(batch):
            if n:
                s, d = batch[n - 1][3], dseqs[n - 1]
            else:
                s, d = self.sseq, self.dseq
            gap = "mirror store refused %d" % batch[n][3]
        self.sseq, self.dseq = s, d
        self.next_seq = s + 1
        self.lag = max(lag - 1, 0)
        if gap is not None:
            self.retry(gap)

    def _take(self, subject, hdr, data, sseq, dseq, ts, pending):
        """One first delivery of origin sequence ``sseq``: stored, or the
        consumer re-created when one went missing; False once it is."""
        if self.adopt:
            self.adopt = False
            self.dseq = dseq - 1
        if sseq <= self.sseq:  # older than what we hold
            if dseq == self.dseq + 1:
                self.dseq = dseq
            return True
        in_order = dseq == self.dseq + 1 or (self.mirror and sseq == self.sseq + 1)
        if not in_order:  # a delivery went missing (a link was down): start over
            self.retry("delivery %d after %d" % (dseq, self.dseq))
            return False
        hdr = H.remove(hdr, (), _STRIP) if hdr else b""
        if self.mirror:
            stored = self.target.store_remote(self.transformed(subject), hdr, data, sseq, ts,
                                              known_new=True)
            if not stored:
                self.retry("mirror store refused %d" % sseq)
                return False
        else:
            if not self.target.accepting():  # (a replicated stream's leader stepping down)
                self.retry("not accepting %d" % sseq)
                return False
            self.append_sourced(subject, sseq, hdr, data)
        self.dseq = dseq
        self.sseq = sseq
        self.next_seq = sseq + 1
        self.lag = max(pending - 1, 0)
        return True

    def info(self):
        active = int((time.monotonic() - self.last_active) * 1e9) if self.last_active else -1
        out = {"name": self.name, "external": self.spec.get("external"), "lag": self.lag,
               "active": active}
        if self.spec.get("filter_subject"):
            out["filter_subject"] = self.spec["filter_subject"]
        if self.spec.get("subject_transforms"):
            out["subject_transforms"] = self.spec["subject_transforms"]
        if self.err:
            out["error"] = self.err
        return out
