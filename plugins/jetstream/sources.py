"""Mirrors and sources within one server (and one account): a feed copies an
origin stream's messages into the stream that mirrors or sources it.

A mirror keeps the origin's sequence numbers (``store_raw``; gaps become
deleted sequences); a source appends through the normal publish path with a
``Nats-Stream-Source: <origin> <seq> <filter> <dest> <subject>`` header, after
its filter and subject transforms. A feed reads the origin's store directly
(it is on the same server) and is woken whenever the origin stores a message;
a missing origin is looked for again every second. An origin reached through
an ``external`` API prefix (another domain, across a leaf or gateway) is fed
by :class:`~.remote.RemoteFeed`, a consumer of the origin, instead."""

import hashlib
import time

import gevent
import gevent.event

from . import headers as H
from .stream import _match_any

RETRY = 1.0
BATCH = 1024  # messages copied per pass before yielding
NOT_FOUND = {"code": 404, "err_code": 10059, "description": "stream not found"}
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def go_hash(name, size=8):
    """nats-server's ``getHash``: ``size`` base-62 characters of SHA-256."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(_DIGITS[b % 62] for b in digest[:size])


def index_name(spec):
    """A source's name as its ``Nats-Stream-Source`` header gives it (Go
    ``composeIName``): the stream, and the hash of an external API prefix
    (one stream name may exist in several domains) and of a durable
    consumer's name."""
    name = spec.get("name", "")
    external = spec.get("external")
    if isinstance(external, dict):
        name += ":" + go_hash(external.get("api") or "")
    consumer = spec.get("consumer")
    if isinstance(consumer, dict):  # durable sourcing
        name += ":C=" + go_hash(consumer.get("name") or "")
    return name


class SourceFeed:
    def __init__(self, target, spec, mirror):
        self.target = target
        self.spec = spec
        self.mirror = mirror
        self.name = spec.get("name", "")
        self.iname = index_name(spec)  # the name in Nats-Stream-Source
        self.wake = gevent.event.Event()
        self.closed = False
        self.greenlet = None
        self.origin = None
        self.last_active = 0
        transforms = spec.get("subject_transforms") or []
        self.filters = [t.get("src") or ">" for t in transforms] or (
            [spec["filter_subject"]] if spec.get("filter_subject") else [])
        self.transforms = [t for t in transforms if t.get("dest")]
        self.ident = ""  # the origin's identity (Go 2.15), as the last copy names it
        self.next_seq = self._start_seq()

    def _start_seq(self):
        store = self.target.store
        if self.mirror:
            last = store.state().last_seq
            if last:
                return last + 1
        else:
            found = self._last_sourced()
            if found:
                return found + 1
        if self.spec.get("opt_start_seq"):
            return self.spec["opt_start_seq"]
        return 0  # resolved against the origin (its first sequence or a start time)

    def _last_sourced(self):
        """The origin sequence of the newest message this source copied (restart)."""
        store = self.target.store
        seq = store.state().last_seq
        for _ in range(10_000):
            msg = store.load_prev(None, seq)
            if msg is None:
                return 0
            value = H.parse(msg.hdr).get("Nats-Stream-Source", "") if msg.hdr else ""
            parts = value.split(" ")
            if parts[0] == self.iname and len(parts) > 1 and parts[1].isdigit():
                self.ident = parts[5] if len(parts) > 5 else ""
                return int(parts[1])
            seq = msg.seq - 1
        return 0

    def start(self):
        self.greenlet = self.target.server.spawn(self._run)

    def stop(self):
        self.closed = True
        if self.origin is not None:
            self.origin.feeds.discard(self)
        if self.greenlet is not None and gevent.getcurrent() is not self.greenlet:
            self.greenlet.kill(block=False)

    def _run(self):
        while not self.closed:
            origin = self.target.jsa.streams.get(self.name)
            if origin is not self.origin:
                if self.origin is not None:
                    self.origin.feeds.discard(self)
                self.origin = origin
                if origin is not None:
                    origin.feeds.add(self)
            if origin is None:
                self.wake.wait(RETRY)
                self.wake.clear()
                continue
            if not self.next_seq:
                if self.spec.get("opt_start_time"):
                    self.next_seq = origin.store.seq_for_time(
                        H.parse_rfc3339(self.spec["opt_start_time"]))
                else:
                    self.next_seq = origin.store.state().first_seq or 1
            copied = self._copy(origin)
            self.target.server.flush_touched()
            if copied >= BATCH:
                gevent.sleep(0)
                continue
            self.wake.wait()
            self.wake.clear()

    def _copy(self, origin):
        n = 0
        store = origin.store
        while n < BATCH and not self.closed:
            msg = store.load_next(self.filters or None, self.next_seq)
            if msg is None:
                # caught up: nothing the filter takes lies before the origin's end
                self.next_seq = max(self.next_seq, store.state().last_seq + 1)
                break
            self.next_seq = msg.seq + 1
            n += 1
            self.last_active = time.monotonic()
            if self.mirror:
                self.target.store_mirrored(msg)
            else:
                self.append_sourced(msg.subject, msg.seq, msg.hdr, msg.data)
        return n

    def transformed(self, subject):
        """``subject`` after the first subject transform whose source takes it."""
        for t in self.transforms:
            if _match_any([t.get("src") or ">"], subject):
                return self.target.jsa.transform(t, subject)
        return subject

    def append_sourced(self, subject, seq, hdr, data):
        """Append an origin message to a sourcing stream: through the publish
        path, with ``Nats-Stream-Source: <iname> <seq> <filter> <dest> <subject>
        [<origin identity>]`` (Go 2.15 genSourceHeader) in place of any it had
        (daisy chains)."""
        value = "%s %d %s %s %s" % (self.iname, seq, ",".join(self.filters) or ">",
                                    ",".join(t["dest"] for t in self.transforms) or ">",
                                    subject)
        ident = self.origin_identity()
        if ident:
            value += " " + ident
        hdr = H.build([("Nats-Stream-Source", value)],
                      H.remove(hdr, {"Nats-Stream-Source"}) if hdr else b"")
        return self.target.process(self.transformed(subject), "", hdr, data, sourced=True)

    def origin_identity(self):
        """The origin's identity for the header: a local origin's own (a
        consumer-fed feed learns it from its consumer's answers instead)."""
        origin = self.origin
        return origin.identity() if origin is not None else ""

    def info(self):
        origin = self.target.jsa.streams.get(self.name)
        lag = 0
        if origin is not None:
            lag = max(0, origin.store.state().last_seq - max(self.next_seq - 1, 0))
        active = int((time.monotonic() - self.last_active) * 1e9) if self.last_active else -1
        out = {"name": self.name, "lag": lag, "active": active}
        if origin is None:  # Go: the consumer create's answer, kept in the info
            out["error"] = dict(NOT_FOUND)
        if self.spec.get("filter_subject"):
            out["filter_subject"] = self.spec["filter_subject"]
        if self.spec.get("subject_transforms"):
            out["subject_transforms"] = self.spec["subject_transforms"]
        return out
