"""JetStream in one account: its streams, its limits, its ``$JS.API.>`` and
``$JS.ACK.>`` internal subscriptions. The request handlers live in api.py."""

import json
import os
import secrets
import time

import structlog

from pluggy_nats.internal import InternalClient
from pluggy_nats.mappings import MappingError, Transform
from pluggy_nats.subjects import subject_matches

from . import advisories
from .consumer import Consumer
from .errors import ApiError
from .store import StoreConfig, StoreError, open_stream_store
from .stream import Stream, store_config

API_LEVEL = 5
NATS_VERSION = "2.15.1"  # the nats-server version whose API we speak
ACK_PREFIX = b"$JS.ACK."
_NAME_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_consumer_name():
    return "".join(secrets.choice(_NAME_CHARS) for _ in range(8))


def safe_dirname(name):
    """Stream names cannot hold path separators (validated), accounts may hold
    odd characters: keep a name usable as a directory."""
    return name.replace("/", "_").replace("\\", "_")


class JsAccount:
    def __init__(self, js, account, limits):
        self.js = js
        self.server = js.server
        self.account = account
        self.limits = limits
        self.streams = {}
        self.client = InternalClient(self.server, account, "$JS")
        self.subs = []
        self._transforms = {}
        self._ack_targets = {}  # (stream, consumer) bytes of an ack subject -> Consumer
        self.log = structlog.get_logger("pluggy_nats.jetstream").bind(account=account.name)
        self.dir = os.path.join(js.config.jetstream_dir(), safe_dirname(account.name), "streams")

    # -- lifecycle -------------------------------------------------------------

    def start(self, api):
        prefixes = ["$JS.API"]
        if self.js.config.domain:
            prefixes.append("$JS.%s.API" % self.js.config.domain)
        for prefix in prefixes:
            self.subs.append(self.client.subscribe(prefix + ".>", api.handler(self, prefix)))
        self.subs.append(self.client.subscribe("$JS.ACK.>", self._on_ack))
        if self.js.cluster is not None:
            self.js.cluster.api.serve_account(self)  # cluster/capi.py
        self._recover()

    def stop(self):
        for stream in list(self.streams.values()):
            try:
                stream.stop()
            except Exception:
                self.log.exception("stream_stop_failed", stream=stream.name)
        self.client.close()

    def _recover(self):
        """Open every stream found under the store directory (file streams)."""
        if not os.path.isdir(self.dir):
            return
        for name in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, name)
            if not os.path.isdir(path):
                continue
            try:
                store = open_stream_store("file", path, StoreConfig(name=name))
                meta = store.read_meta()
                if not meta:
                    store.close()
                    continue
                meta = json.loads(meta)
                cfg = meta["config"]
                store.update_config(store_config(cfg))
                consumers = []
                for cname, c in (meta.get("consumers") or {}).items():
                    state = None
                    try:
                        state = store.consumer_store(cname).load()
                    except (StoreError, OSError, ValueError):
                        self.log.warning("consumer_state_unreadable", consumer=cname)
                    consumers.append((cname, c["config"], c.get("created", 0), state))
                self.attach_stream(cfg, meta.get("created") or time.time_ns(), store, consumers)
                self.log.info("stream_recovered", stream=cfg["name"],
                              messages=store.state().msgs)
            except (StoreError, OSError, ValueError, KeyError) as exc:
                # a broken stream must not keep the others (or the server) down
                self.log.error("stream_recovery_failed", stream=name, error=str(exc))

    # -- helpers ---------------------------------------------------------------

    def stamp(self, cfg):
        """A config as returned to clients: the server-stamped metadata added."""
        out = dict(cfg)
        meta = dict(cfg.get("metadata") or {})
        meta.setdefault("_nats.level", str(API_LEVEL))
        meta.setdefault("_nats.req.level", "0")
        meta.setdefault("_nats.ver", NATS_VERSION)
        out["metadata"] = meta
        return out

    def transform(self, spec, subject):
        """Apply a subject transform ``{"src", "dest"}`` to ``subject``."""
        src = spec.get("src") or ">"
        dest = spec.get("dest") or ""
        if not dest:
            return subject
        key = (src, dest)
        tr = self._transforms.get(key)
        if tr is None:
            try:
                tr = self._transforms[key] = Transform(src, dest)
            except MappingError:
                return subject
        if src != ">" and not subject_matches(src.encode(), subject.encode()):
            return subject
        out = tr.apply(subject.encode().split(b"."))
        return out.decode() if isinstance(out, bytes) else out

    def usage(self):
        mem = store = 0
        for s in self.streams.values():
            size = s.store.state().bytes
            if s.cfg["storage"] == "memory":
                mem += size
            else:
                store += size
        return mem, store

    def reserved(self):
        mem = store = 0
        for s in self.streams.values():
            if s.cfg["max_bytes"] > 0:
                if s.cfg["storage"] == "memory":
                    mem += s.cfg["max_bytes"]
                else:
                    store += s.cfg["max_bytes"]
        return mem, store

    def num_consumers(self):
        return sum(len(s.consumers) for s in self.streams.values())

    # -- streams and consumers (shared by the API and recovery) ----------------

    def open_store(self, cfg):
        """A new stream store for ``cfg`` (file streams under the account's directory)."""
        directory = None
        if cfg["storage"] == "file":
            directory = os.path.join(self.dir, safe_dirname(cfg["name"]))
        try:
            return open_stream_store(cfg["storage"], directory, store_config(cfg))
        except (StoreError, OSError) as exc:
            raise ApiError(10049, err=str(exc)) from None

    def attach_stream(self, cfg, created, store, consumers=()):
        """Register and start a stream whose store is already filled (recovery,
        restore), with its consumers ``[(name, config, created, state)]``."""
        stream = Stream(self, cfg, created, store)
        self.streams[cfg["name"]] = stream
        for cname, ccfg, ccreated, state in consumers:
            stream.consumers[cname] = Consumer(stream, cname, ccfg, ccreated, state)
        stream.start()
        for consumer in stream.consumers.values():
            consumer.start()
        return stream

    def create_stream(self, cfg):
        store = self.open_store(cfg)
        stream = Stream(self, cfg, time.time_ns(), store)
        if cfg.get("first_seq", 0) > 1:
            store.skip_msgs(1, cfg["first_seq"] - 1)
            store.purge()
        self.streams[cfg["name"]] = stream
        stream.save_meta()
        stream.start()
        advisories.stream_action(self, stream.name, "create")
        return stream

    def delete_stream(self, stream):
        self.streams.pop(stream.name, None)
        stream.stop(delete=True)
        advisories.stream_action(self, stream.name, "delete")

    def add_consumer(self, stream, name, cfg):
        consumer = Consumer(stream, name, cfg, time.time_ns())
        stream.consumers[name] = consumer
        stream.save_meta()
        consumer.save_state()
        consumer.start()
        advisories.consumer_action(self, stream.name, name, "create")
        return consumer

    def delete_consumer(self, stream, name, reason=""):
        consumer = stream.consumers.pop(name, None)
        if consumer is None:
            return False
        consumer.stop(delete=True)
        stream.save_meta()
        if stream.cfg["retention"] == "interest":
            stream_cleanup_interest(stream)
        self.server.flush_touched()
        advisories.consumer_action(self, stream.name, name, "delete")
        return True

    # -- acks ------------------------------------------------------------------

    def _on_ack(self, sub, subject, reply, hdr, payload):
        # $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending> (v1, 9 tokens)
        # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>[...]
        tokens = bytes(subject).split(b".")
        n = len(tokens)
        if n == 9 and not payload and not reply:  # a plain +ACK: the usual one
            consumer = self._ack_targets.get((tokens[2], tokens[3]))
            if consumer is not None and not consumer.closed and tokens[5].isdigit() \
                    and consumer.plain_ack(int(tokens[5])):
                return
        try:
            if n == 9:
                sname, cname = tokens[2].decode(), tokens[3].decode()
                dc, sseq = int(tokens[4]), int(tokens[5])
            elif n >= 11:
                sname, cname = tokens[4].decode(), tokens[5].decode()
                dc, sseq = int(tokens[6]), int(tokens[7])
            else:
                return
        except ValueError:
            return
        stream = self.streams.get(sname)
        consumer = stream.consumers.get(cname) if stream is not None else None
        if consumer is None or not stream.is_leader:
            return  # a replica that does not lead: the leader takes the ack
        if n == 9:  # (stream, consumer) as bytes -> the consumer, for the plain acks
            if len(self._ack_targets) > 4096:
                self._ack_targets.clear()
            self._ack_targets[(tokens[2], tokens[3])] = consumer
        body = bytes(payload).decode("utf-8", "replace") if payload else ""
        kind, rest = _ack_kind(body)
        if kind is None:
            return
        consumer.on_ack(kind, sseq, 0, dc, rest, reply.decode() if reply else "")
        if reply and kind != "NXT" and not consumer.replies_after_commit:
            self.client.publish(reply, b"", flush=False)  # the "double ack" answer

    # -- advisories (called by consumers) ----------------------------------------

    def advisory_max_deliveries(self, consumer, seq, dc):
        advisories.max_deliveries(self, consumer, seq, dc)

    def advisory_naked(self, consumer, seq, dc):
        advisories.naked(self, consumer, seq, dc)

    def advisory_pinned(self, consumer, group):
        advisories.pinned(self, consumer, group)

    def advisory_unpinned(self, consumer, group, reason):
        advisories.unpinned(self, consumer, group, reason)

    def advisory_terminated(self, consumer, seq, dc, reason):
        advisories.terminated(self, consumer, seq, dc, reason)


def stream_cleanup_interest(stream):
    """Interest retention after a consumer left: drop what nobody needs now."""
    store = stream.store
    st = store.state()
    if not stream.consumers:
        if st.msgs:
            stream.purge()
        return
    seq = st.first_seq
    while True:
        msg = store.load_next(None, seq)
        if msg is None:
            break
        stream.acked(msg.seq, msg.subject)
        seq = msg.seq + 1


def _ack_kind(body):
    if not body or body.startswith("+ACK") or body == "+OK":
        return "ACK", ""
    for verb, kind in (("-NAK", "NAK"), ("+WPI", "WPI"), ("+NXT", "NXT"), ("+TERM", "TERM")):
        if body.startswith(verb):
            return kind, body[len(verb):].strip()
    return None, ""
