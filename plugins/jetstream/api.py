"""The JetStream API on ``$JS.API.>`` (jetstream_api.go): one internal
subscription per account, dispatched by subject. Every response carries Go's
``type``; errors keep the response's non-omitempty keys, as Go marshals them.
Unknown subjects get no reply at all (as Go)."""

import json
import secrets
import time

from . import advisories, snapshot
from . import headers as H
from .account import API_LEVEL, new_consumer_name
from .consumercfg import check_consumer_config
from .consumercfg import same_config as same_consumer
from .errors import ApiError
from .jsonreq import Fields, dumps, loads
from .streamcfg import check_stream_config, check_update, same_config

T = "io.nats.jetstream.api.v1."
STREAM_NAMES_LIMIT = 1024
STREAM_LIST_LIMIT = 256
CONSUMER_LIST_LIMIT = 256

# response type -> keys Go writes even on error (non-omitempty fields)
_ERROR_KEYS = {
    "stream_info_response": {"total": 0, "offset": 0, "limit": 0},
    "stream_names_response": {"total": 0, "offset": 0, "limit": 0, "streams": []},
    "stream_list_response": {"total": 0, "offset": 0, "limit": 0, "streams": []},
    "consumer_names_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "consumer_list_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "stream_purge_response": {"purged": 0},
    "consumer_pause_response": {"paused": False, "pause_until": "0001-01-01T00:00:00Z"},
}


class Api:
    """Request handlers; one instance per server, shared by every account."""

    def __init__(self, js):
        self.js = js
        self.total = 0
        self.errors = 0
        self.reply = ""  # of the request being answered
        # the request being routed in a cluster (cluster/capi.py): who handed it
        # to us, its headers and subject, and the requester's client info
        self.publisher = None
        self.hdr = None
        self.subject = ""
        self.client_info = None
        self.routes = {
            ("INFO",): (self.account_info, "account_info_response"),
            ("STREAM", "CREATE"): (self.stream_create, "stream_create_response"),
            ("STREAM", "UPDATE"): (self.stream_update, "stream_update_response"),
            ("STREAM", "INFO"): (self.stream_info, "stream_info_response"),
            ("STREAM", "NAMES"): (self.stream_names, "stream_names_response"),
            ("STREAM", "LIST"): (self.stream_list, "stream_list_response"),
            ("STREAM", "DELETE"): (self.stream_delete, "stream_delete_response"),
            ("STREAM", "PURGE"): (self.stream_purge, "stream_purge_response"),
            ("STREAM", "MSG", "GET"): (self.msg_get, "stream_msg_get_response"),
            ("STREAM", "MSG", "DELETE"): (self.msg_delete, "stream_msg_delete_response"),
            ("STREAM", "SNAPSHOT"): (self.snapshot, "stream_snapshot_response"),
            ("STREAM", "RESTORE"): (self.restore, "stream_restore_response"),
            ("STREAM", "LEADER", "STEPDOWN"): (self.clustered,
                                               "stream_leader_stepdown_response"),
            ("STREAM", "PEER", "REMOVE"): (self.clustered, "stream_remove_peer_response"),
            ("STREAM", "PEER", "EVACUATE"): (self.clustered, "stream_evacuate_peer_response"),
            ("STREAM", "CANCEL_MOVE"): (self.clustered, "stream_cancel_move_response"),
            ("CONSUMER", "CREATE"): (self.consumer_create, "consumer_create_response"),
            ("CONSUMER", "DURABLE", "CREATE"): (self.durable_create,
                                                "consumer_create_response"),
            ("CONSUMER", "INFO"): (self.consumer_info, "consumer_info_response"),
            ("CONSUMER", "NAMES"): (self.consumer_names, "consumer_names_response"),
            ("CONSUMER", "LIST"): (self.consumer_list, "consumer_list_response"),
            ("CONSUMER", "DELETE"): (self.consumer_delete, "consumer_delete_response"),
            ("CONSUMER", "PAUSE"): (self.consumer_pause, "consumer_pause_response"),
            ("CONSUMER", "UNPIN"): (self.consumer_unpin, "consumer_unpin_response"),
            ("CONSUMER", "RESET"): (self.consumer_reset, "consumer_reset_response"),
            ("CONSUMER", "LEADER", "STEPDOWN"): (self.clustered,
                                                 "consumer_leader_stepdown_response"),
        }

    def handler(self, jsa, prefix):
        skip = prefix.count(".") + 1

        def on_request(sub, subject, reply, hdr, payload):
            tokens = bytes(subject).decode("utf-8", "replace").split(".")[skip:]
            self.publisher, self.client_info = sub.conn.publisher, None
            self.dispatch(jsa, tokens, reply.decode() if reply else "", hdr, payload,
                          ".".join(["$JS.API"] + tokens))
        return on_request

    def not_enabled_handler(self, client):
        """An account without JetStream: every known request gets 10039."""
        def on_request(sub, subject, reply, hdr, payload):
            tokens = bytes(subject).decode("utf-8", "replace").split(".")[2:]
            route = self._route(tokens)
            if route is None or not reply:
                return
            _, rtype, _ = route
            body = {"type": T + rtype, "error": ApiError(10039).as_dict()}
            client.publish(reply, dumps(body), flush=False)
        return on_request

    def _route(self, tokens):
        for n in (3, 2, 1):
            key = tuple(tokens[:n])
            if key in self.routes:
                fn, rtype = self.routes[key]
                return fn, rtype, tokens[n:]
        return None

    def dispatch(self, jsa, tokens, reply, hdr, payload, subject):
        if tokens[:3] == ["CONSUMER", "MSG", "NEXT"]:
            cluster = self.js.cluster
            if cluster is not None and reply and cluster.api.forward_next(
                    jsa, tokens[3:], reply, hdr, payload, subject):
                return  # led across a leaf link extending the hub (cluster/extend.py)
            self.msg_next(jsa, tokens[3:], reply, payload)
            return
        if tokens[:2] == ["DIRECT", "GET"]:
            # answered by the stream's own subscription (allow_direct), or by
            # its copy across a leaf link extending the hub (cluster/capi.py)
            cluster = self.js.cluster
            if cluster is not None and reply:
                cluster.api.direct_get(jsa, tokens[2:], reply, hdr, payload, subject)
            return
        route = self._route(tokens)
        if route is None:
            return  # Go answers nothing to unknown API subjects
        fn, rtype, args = route
        if not reply:
            return
        self.reply = reply  # replicated requests answer it after their commit
        self.hdr, self.response_headers = hdr, None
        cluster = self.js.cluster
        if cluster is not None:  # who answers in a cluster (cluster/capi.py)
            self.subject = subject
            fn = cluster.api.route(jsa, tuple(tokens[:len(tokens) - len(args)]), fn, args)
            if fn is None:
                return
        self.total += 1
        try:
            if hdr:
                level = H.parse(hdr).get("Nats-Required-Api-Level")
                if level and (not level.isdigit() or int(level) > API_LEVEL):
                    raise ApiError(10185)
            body = fn(jsa, args, payload)
            if body is None:
                return
            response = {"type": T + rtype}
            response.update(body)
        except ApiError as err:
            self.errors += 1
            self.response_headers = None
            response = {"type": T + rtype, "error": err.as_dict()}
            response.update(_ERROR_KEYS.get(rtype, {}))
        except Exception:
            self.errors += 1
            jsa.log.exception("api_request_failed", subject=subject)
            response = {"type": T + rtype, "error": {"code": 500, "err_code": 10003,
                                                     "description": "internal error"}}
        data = dumps(response)
        jsa.client.publish(reply, data, headers=self.response_headers, flush=False)
        advisories.api_audit(jsa, subject, bytes(payload or b"").decode("utf-8", "replace"),
                             data.decode())

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _stream(jsa, args):
        if not args:
            raise ApiError(10059)
        stream = jsa.streams.get(args[0])
        if stream is None:
            raise ApiError(10059)
        return stream

    @staticmethod
    def _consumer(stream, args):
        if len(args) < 2:
            raise ApiError(10014)
        consumer = stream.consumers.get(args[1])
        if consumer is None:
            raise ApiError(10014)
        return consumer

    @staticmethod
    def _empty(payload):
        if payload and bytes(payload).strip():
            raise ApiError(10038)

    # -- account -------------------------------------------------------------------

    def account_info(self, jsa, args, payload):
        mem, store = jsa.usage()
        rmem, rstore = jsa.reserved()
        out = {"memory": mem, "storage": store, "reserved_memory": rmem,
               "reserved_storage": rstore, "streams": len(jsa.streams),
               "consumers": jsa.num_consumers(), "limits": jsa.limits.as_dict()}
        if jsa.js.config.domain:  # Go JetStreamAccountStats: omitempty
            out["domain"] = jsa.js.config.domain
        out["api"] = {"level": API_LEVEL, "total": self.total, "errors": self.errors}
        return out

    def clustered(self, jsa, args, payload):
        raise ApiError(10010)

    def snapshot(self, jsa, args, payload):
        """Answer ``{config, state}`` and stream the archive (snapshot.py)."""
        if not payload or not bytes(payload).strip():
            raise ApiError(10003)
        return snapshot.snapshot_request(jsa, self._stream(jsa, args), payload)

    def restore(self, jsa, args, payload):
        """Checks in Go's order (jsStreamRestoreRequest), then the upload subject."""
        if not payload or not bytes(payload).strip():
            raise ApiError(10003)
        req = loads(payload)
        cfg = req.get("config")
        if not isinstance(cfg, dict):
            cfg = {}
        name = args[0] if args else ""
        if not cfg.get("name"):
            cfg["name"] = name
        if cfg["name"] != name:
            raise ApiError(10056)
        if "/" in name or "\\" in name:
            raise ApiError(10128)
        cfg = check_stream_config(cfg, self.js.config, jsa.limits, False)
        if cfg["num_replicas"] > 1:
            raise ApiError(10074)
        if jsa.limits.max_streams >= 0 and len(jsa.streams) >= jsa.limits.max_streams:
            raise ApiError(10027)
        self._check_resources(jsa, cfg)
        if name in jsa.streams:
            raise ApiError(10130)
        return {"deliver_subject": snapshot.Restore(jsa, self, cfg).subject}

    def finish_restore(self, jsa, cfg, created, store, consumers):
        """The upload is in ``store``: the stream joins the account (or the store
        goes, when the name or subjects were taken meanwhile)."""
        try:
            if cfg["name"] in jsa.streams:
                raise ApiError(10130)
            self._check_overlap(jsa, cfg)
        except ApiError:
            store.delete()
            raise
        stream = jsa.attach_stream(cfg, created, store, consumers)
        stream.save_meta()
        for consumer in stream.consumers.values():
            consumer.save_state()
        advisories.stream_action(jsa, stream.name, "create")
        return stream

    # -- streams ---------------------------------------------------------------------

    def _check_stream_request(self, jsa, args, payload, create=False):
        req = loads(payload)
        name = args[0] if args else ""
        if req.get("name") is None or req.get("name") == "":
            req["name"] = name
        if name != req.get("name"):
            raise ApiError(10056)
        if create and req.get("sealed") is True:
            raise ApiError(10052, err="stream configuration for create can not be sealed")
        if create and req.get("mirror_direct") is True and not req.get("mirror"):
            raise ApiError(10052, err="stream has no mirror but does have mirror direct")
        pedantic = Fields(req, "StreamConfig").bool("pedantic")
        cfg = check_stream_config(req, self.js.config, jsa.limits, pedantic)
        return cfg

    def _check_overlap(self, jsa, cfg):
        mine = cfg.get("subjects", [])
        from .streamcfg import _collide

        for other in jsa.streams.values():
            if other.name == cfg["name"]:
                continue
            for a in mine:
                for b in other.cfg.get("subjects", []):
                    if _collide(a, b):
                        raise ApiError(10065)

    def _check_resources(self, jsa, cfg, old=None):
        limits = jsa.limits
        mem, store = jsa.reserved()
        if old is not None and old["max_bytes"] > 0:
            if old["storage"] == "memory":
                mem -= old["max_bytes"]
            else:
                store -= old["max_bytes"]
        size = max(cfg["max_bytes"], 0)
        server = self.js.config
        limit = server.max_memory if cfg["storage"] == "memory" else server.max_store
        if limit >= 0 and size:
            used = sum((a.reserved()[0] if cfg["storage"] == "memory" else a.reserved()[1])
                       for a in self.js.accounts.values())
            if old is not None and old["storage"] == cfg["storage"]:
                used -= max(old["max_bytes"], 0)
            if used + size > limit:
                raise ApiError(10023)  # the server's max_mem / max_file
        if cfg["storage"] == "memory":
            if limits.max_memory >= 0 and (mem + size > limits.max_memory or
                                           limits.max_memory == 0):
                raise ApiError(10028)
        else:
            if limits.max_storage >= 0 and (store + size > limits.max_storage or
                                            limits.max_storage == 0):
                raise ApiError(10047)

    def stream_create(self, jsa, args, payload):
        cfg = self._check_stream_request(jsa, args, payload, create=True)
        if cfg["num_replicas"] > 1:
            raise ApiError(10074)
        existing = jsa.streams.get(cfg["name"])
        if existing is not None:
            if same_config(existing.cfg, cfg):
                info = existing.info(cluster=False)
                info["did_create"] = True  # as Go answers an idempotent create
                return info
            raise ApiError(10058)
        if jsa.limits.max_streams >= 0 and len(jsa.streams) >= jsa.limits.max_streams:
            raise ApiError(10027)
        self._check_overlap(jsa, cfg)
        self._check_resources(jsa, cfg)
        stream = jsa.create_stream(cfg)
        info = stream.info(cluster=False)
        info["did_create"] = True
        return info

    def stream_update(self, jsa, args, payload):
        cfg = self._check_stream_request(jsa, args, payload)
        stream = self._stream(jsa, args)
        check_update(stream.cfg, cfg)
        self._check_overlap(jsa, cfg)
        self._check_resources(jsa, cfg, stream.cfg)
        stream.update(cfg)
        advisories.stream_action(jsa, stream.name, "modify")
        return stream.info(cluster=False)

    def stream_info(self, jsa, args, payload):
        req = loads(payload)
        f = Fields(req, "JSApiStreamInfoRequest")
        stream = self._stream(jsa, args)
        subjects_filter = f.str("subjects_filter")
        info = stream.info(f.bool("deleted_details"), subjects_filter or None)
        offset = f.int("offset", 0)
        total = 0
        limit = 0
        subjects = info["state"].get("subjects")
        if subjects is not None:
            total = len(subjects)
            limit = 100_000
            if offset:
                keys = sorted(subjects)[offset:offset + limit]
                info["state"]["subjects"] = {k: subjects[k] for k in keys}
        out = {"total": total, "offset": offset, "limit": limit}
        out.update(info)
        return out

    def _filtered_streams(self, jsa, payload):
        req = loads(payload)
        f = Fields(req, "JSApiStreamNamesRequest")
        subject = f.str("subject")
        offset = max(0, f.int("offset", 0))
        streams = sorted(jsa.streams.values(), key=lambda s: s.name)
        if subject:
            from .streamcfg import _collide

            streams = [s for s in streams
                       if any(_collide(subject, x) for x in s.cfg.get("subjects", []))]
        return streams, offset

    def stream_names(self, jsa, args, payload):
        streams, offset = self._filtered_streams(jsa, payload)
        page = streams[offset:offset + STREAM_NAMES_LIMIT]
        return {"total": len(streams), "offset": offset, "limit": STREAM_NAMES_LIMIT,
                "streams": [s.name for s in page]}

    def stream_list(self, jsa, args, payload):
        streams, offset = self._filtered_streams(jsa, payload)
        page = streams[offset:offset + STREAM_LIST_LIMIT]
        return {"total": len(streams), "offset": offset, "limit": STREAM_LIST_LIMIT,
                "streams": [s.info(cluster=False) for s in page]}

    def stream_delete(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        jsa.delete_stream(stream)
        return {"success": True}

    def stream_purge(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        req = loads(payload)
        f = Fields(req, "JSApiStreamPurgeRequest")
        if stream.cfg.get("sealed"):
            raise ApiError(10109)
        if stream.cfg.get("deny_purge"):
            raise ApiError(10110, err="stream purge not permitted")
        seq = f.int("seq", 0)
        keep = f.int("keep", 0)
        filt = f.str("filter")
        if seq and keep:
            raise ApiError(10003)
        return stream.purge_request(filt or None, seq, keep, self.reply)

    def msg_get(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        req = loads(payload)
        f = Fields(req, "JSApiMsgGetRequest")
        seq = f.int("seq", 0)
        last = f.str("last_by_subj")
        nxt = f.str("next_by_subj")
        if (seq and last) or (last and nxt) or (not seq and not last and not nxt):
            raise ApiError(10003)
        msg = stream.get_msg({"seq": seq, "last_by_subj": last, "next_by_subj": nxt})
        if msg is None:
            raise ApiError(10037)
        import base64

        out = {"subject": msg.subject, "seq": msg.seq}
        if msg.hdr:
            out["hdrs"] = base64.b64encode(msg.hdr).decode()
        if msg.data:
            out["data"] = base64.b64encode(msg.data).decode()
        out["time"] = H.rfc3339(msg.ts)
        return {"message": out}

    def msg_delete(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        req = loads(payload)
        f = Fields(req, "JSApiMsgDeleteRequest")
        if stream.cfg.get("sealed"):
            raise ApiError(10109)
        if stream.cfg.get("deny_delete"):
            raise ApiError(10057, err="message delete not permitted")
        return stream.delete_request(f.int("seq", 0), not f.bool("no_erase"), self.reply)

    # -- consumers -------------------------------------------------------------------

    def durable_create(self, jsa, args, payload):
        """Legacy ``CONSUMER.DURABLE.CREATE.<stream>.<durable>``."""
        return self.consumer_create(jsa, args, payload, legacy_durable=True)

    def consumer_create(self, jsa, args, payload, legacy_durable=False):
        req = loads(payload)
        f = Fields(req, "CreateConsumerRequest")
        config = f.map("config")
        if config is None:
            config = {}
        config = dict(config)
        stream_req = f.str("stream_name")
        filtered = ""
        if len(args) == 1:  # CONSUMER.CREATE.<stream>: legacy ephemeral
            stream_name = args[0]
            name = config.get("name") or ""
        elif args and args[0] == "" or not args:
            return None
        else:
            stream_name = args[0]
            name = args[1]
            if len(args) > 2:
                filtered = ".".join(args[2:])
        if stream_name != stream_req:
            raise ApiError(10056)
        if name and any(c in name for c in "\\/"):
            raise ApiError(10127)
        cf = Fields(config, "ConsumerConfig")
        durable = cf.str("durable_name")
        if legacy_durable:
            if not durable:
                raise ApiError(10018)
            if name != durable:
                raise ApiError(10017)
            config["name"] = name
        elif len(args) >= 2:
            if durable and name != durable:
                raise ApiError(10017)
            config["name"] = name
        elif durable:
            raise ApiError(10020)
        if filtered and cf.strs("filter_subjects"):
            raise ApiError(10137)
        if filtered and cf.str("filter_subject") != filtered:
            raise ApiError(10131)
        if cf.int("num_replicas", 0) > 1:
            raise ApiError(10074)
        stream = jsa.streams.get(stream_name)
        if stream is None:
            raise ApiError(10059)
        pedantic = f.bool("pedantic")
        cfg = check_consumer_config(config, stream.cfg, self.js.config, jsa.limits, pedantic)
        action = f.str("action")
        if cfg.get("direct") and cfg.get("sourcing") and cfg.get("name"):
            # A mirror or source asks under a stable name: each create gets its
            # own consumer (Go appends a random suffix; the old one times out).
            cfg["name"] = "%s-%s" % (cfg["name"], secrets.token_hex(4))
        if cfg.get("direct") or cfg.get("sourcing"):
            # Go 2.15: a mirror or source names the identity it expects (a
            # recreated origin is refused) and learns it from the answer
            ident = stream.identity()
            want = H.parse(self.hdr).get("Nats-Stream-Identity") if self.hdr else None
            if want and want != ident:
                raise ApiError(10225, msg=ident)
            self.response_headers = stream.identity_header()
        name = cfg.get("name") or ""
        existing = stream.consumers.get(name) if name else None
        if existing is not None:
            if same_consumer(existing.cfg, cfg):
                return existing.info()
            if action == "create":
                raise ApiError(10148)
            self._check_update(existing, cfg)
            return stream.update_consumer(existing, cfg, self.reply)
        if action == "update":
            raise ApiError(10149)
        if stream.cfg["max_consumers"] > 0 and len(stream.consumers) >= \
                stream.cfg["max_consumers"]:
            raise ApiError(10026)
        if jsa.limits.max_consumers >= 0 and jsa.num_consumers() >= jsa.limits.max_consumers:
            raise ApiError(10026)
        if stream.cfg["retention"] == "workqueue":
            self._check_workqueue(stream, cfg)
        if not name:
            name = new_consumer_name()
            while name in stream.consumers:
                name = new_consumer_name()
        return stream.create_consumer(name, cfg, self.reply)

    @staticmethod
    def _check_update(existing, cfg):
        old = existing.cfg
        if old.get("deliver_subject", "") and not cfg.get("deliver_subject"):
            raise ApiError(10012, err="can not update push consumer to pull based")
        if not old.get("deliver_subject") and cfg.get("deliver_subject"):
            raise ApiError(10012, err="can not update pull consumer to push based")
        for key, text in (("deliver_policy", "deliver policy"), ("ack_policy", "ack policy"),
                          ("opt_start_seq", "start sequence"),
                          ("opt_start_time", "start time"),
                          ("replay_policy", "replay policy")):
            if old.get(key) != cfg.get(key):
                raise ApiError(10012, err="%s can not be updated" % text)

    @staticmethod
    def _check_workqueue(stream, cfg):
        from pluggy_nats.subjects import subjects_collide

        from .consumercfg import filters_of

        mine = filters_of(cfg)
        for other in stream.consumers.values():
            theirs = other.filters
            if not mine or not theirs:
                if not mine and not theirs:
                    raise ApiError(10099)
                raise ApiError(10100)
            for a in mine:
                for b in theirs:
                    if subjects_collide(a.encode(), b.encode()):
                        raise ApiError(10100)

    def consumer_info(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        return self._consumer(stream, args).info()

    def _consumer_page(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        req = loads(payload)
        offset = max(0, Fields(req, "JSApiConsumersRequest").int("offset", 0))
        consumers = sorted(stream.consumers.values(), key=lambda c: c.name)
        return consumers, offset

    def consumer_names(self, jsa, args, payload):
        consumers, offset = self._consumer_page(jsa, args, payload)
        page = consumers[offset:offset + CONSUMER_LIST_LIMIT * 4]
        return {"total": len(consumers), "offset": offset, "limit": CONSUMER_LIST_LIMIT * 4,
                "consumers": [c.name for c in page]}

    def consumer_list(self, jsa, args, payload):
        consumers, offset = self._consumer_page(jsa, args, payload)
        page = consumers[offset:offset + CONSUMER_LIST_LIMIT]
        return {"total": len(consumers), "offset": offset, "limit": CONSUMER_LIST_LIMIT,
                "consumers": [c.info() for c in page]}

    def consumer_delete(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        consumer = self._consumer(stream, args)
        return stream.delete_consumer_request(consumer.name, self.reply)

    def consumer_pause(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        consumer = self._consumer(stream, args)
        req = loads(payload)
        until = Fields(req, "JSApiConsumerPauseRequest").str("pause_until")
        if until:
            try:
                H.parse_rfc3339(until)
            except ValueError:
                raise ApiError(10025, err="parsing time %s" % json.dumps(until)) from None
        consumer.pause(until)
        paused = bool(consumer.paused_until)
        advisories.consumer_pause(jsa, stream.name, consumer.name, paused, until)
        out = {"paused": paused, "pause_until": until if paused else "0001-01-01T00:00:00Z"}
        if paused:
            out["pause_remaining"] = consumer.paused_until - time.time_ns()
        return out

    def consumer_unpin(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        consumer = self._consumer(stream, args)
        req = loads(payload)
        group = Fields(req, "JSApiConsumerUnpinRequest").str("group")
        if group not in (consumer.cfg.get("priority_groups") or []):
            raise ApiError(10160)
        consumer.unpin("admin")
        return {}

    def consumer_reset(self, jsa, args, payload):
        stream = self._stream(jsa, args)
        consumer = self._consumer(stream, args)
        req = loads(payload)
        seq = Fields(req, "JSApiConsumerResetRequest").int("seq", 0)
        reset_seq = seq or consumer.afloor_s + 1
        if self.hdr and "Nats-Stream-Identity" in H.parse(self.hdr):
            # Go 2.15: never refused here, the identity only comes back
            self.response_headers = stream.identity_header()
        consumer.pending.clear()
        consumer.rdc.clear()
        consumer.rdq.clear()
        consumer.rdq_set.clear()
        consumer.sseq = reset_seq
        consumer.dsseq = consumer.afloor_s = reset_seq - 1
        consumer.dseq = consumer.afloor_c = 0  # Go: delivery counting starts again at 1
        consumer.last_delivered_ns = consumer.last_ack_ns = 0  # (Go: no last_active)
        consumer.npending = consumer._count_pending()
        consumer.wake.set()
        out = consumer.info()
        out["reset_seq"] = reset_seq
        return out

    # -- pull --------------------------------------------------------------------------

    def msg_next(self, jsa, args, reply, payload):
        if not reply or len(args) < 2:
            return
        stream = jsa.streams.get(args[0])
        consumer = stream.consumers.get(args[1]) if stream is not None else None
        if consumer is None or not stream.is_leader:
            return  # Go drops requests for unknown consumers (the client times out)
        consumer.add_request(reply, payload)

