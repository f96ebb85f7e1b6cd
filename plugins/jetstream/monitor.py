"""/jsz and the /varz ``jetstream`` block, with nats-server's field names
(monitor.go JSInfo, AccountDetail, StreamDetail)."""

import json
import time

from .account import API_LEVEL
from .headers import rfc3339

LIMITS = {"default_max_consumers": 1000}  # as Go 2.15 reports its JSLimitOpts


def _config(js):
    cfg = js.config
    out = {"max_memory": cfg.effective_max_memory(), "max_storage": cfg.effective_max_store(),
           "store_dir": cfg.jetstream_dir(),
           "sync_interval": 0 if cfg.sync_always else int(cfg.sync_interval * 1e9)}
    if cfg.sync_always:
        out["sync_always"] = True
    if cfg.domain:
        out["domain"] = cfg.domain
    out["strict"] = cfg.strict
    return out


def _totals(js):
    mem = store = rmem = rstore = streams = consumers = msgs = nbytes = 0
    for jsa in js.accounts.values():
        m, s = jsa.usage()
        rm, rs = jsa.reserved()
        mem, store, rmem, rstore = mem + m, store + s, rmem + rm, rstore + rs
        streams += len(jsa.streams)
        consumers += jsa.num_consumers()
        for stream in jsa.streams.values():
            st = stream.store.state()
            msgs += st.msgs
            nbytes += st.bytes
    return mem, store, rmem, rstore, streams, consumers, msgs, nbytes


def varz_block(js):
    mem, store, rmem, rstore, streams, consumers, _, _ = _totals(js)
    return {"config": _config(js),
            "stats": {"memory": mem, "storage": store, "reserved_memory": rmem,
                      "reserved_storage": rstore, "accounts": len(js.accounts),
                      "ha_assets": 0,
                      "api": {"level": API_LEVEL, "total": js.api.total,
                              "errors": js.api.errors}},
            "limits": dict(LIMITS)}


def _truthy(query, key):
    return str(query.get(key, "")).lower() in ("1", "true", "yes")


def jsz(js, query):
    """``/jsz`` (query: acc, accounts, streams, consumers, config, offset, limit)."""
    server = js.server
    mem, store, rmem, rstore, streams, consumers, msgs, nbytes = _totals(js)
    out = {"server_id": server.server_id, "now": rfc3339(time.time_ns())}
    if not js.config.enabled:
        out["disabled"] = True
        return out
    out.update({"config": _config(js), "memory": mem, "storage": store,
                "reserved_memory": rmem, "reserved_storage": rstore,
                "accounts": len(js.accounts), "ha_assets": 0,
                "api": {"level": API_LEVEL, "total": js.api.total, "errors": js.api.errors},
                "streams": streams, "consumers": consumers, "messages": msgs,
                "bytes": nbytes, "limits": dict(LIMITS), "total": len(js.accounts)})
    if js.cluster is not None:
        out["meta_cluster"] = js.cluster.meta_cluster()
        out["streams_leader"] = sum(1 for g in js.cluster.groups.values() if g.ready)
    want_streams = _truthy(query, "streams") or _truthy(query, "consumers")
    want_accounts = _truthy(query, "accounts") or want_streams or query.get("acc")
    if want_accounts:
        details = []
        for name, jsa in sorted(js.accounts.items()):
            if query.get("acc") and query["acc"] != name:
                continue
            m, s = jsa.usage()
            rm, rs = jsa.reserved()
            detail = {"name": name, "id": name, "memory": m, "storage": s,
                      "reserved_memory": rm, "reserved_storage": rs,
                      "accounts": 1, "ha_assets": 0,
                      "api": {"level": API_LEVEL, "total": js.api.total,
                              "errors": js.api.errors}}
            if want_streams:
                detail["stream_detail"] = [_stream_detail(s, query)
                                           for _, s in sorted(jsa.streams.items())]
            details.append(detail)
        out["account_details"] = details
    return out


def _stream_detail(stream, query):
    group = getattr(stream, "group", None)  # a replicated stream: this server's view
    out = {"name": stream.name, "created": rfc3339(stream.created),
           "cluster": group.cluster_info() if group is not None
           else {"leader": stream.server.server_name},
           "state": stream.state_dict()}
    if group is not None:
        out["stream_raft_group"] = group.name
    if _truthy(query, "config"):
        out["config"] = stream.jsa.stamp(stream.cfg)
    if _truthy(query, "consumers"):
        out["consumer_detail"] = [c.info() for _, c in sorted(stream.consumers.items())]
    return out


def raftz(js, query):
    """``/raftz``: every RAFT group of this server (Go's field names where it has them)."""
    if js.cluster is None:
        return {}
    return js.cluster.raftz(query)


def healthz(js, query, problems):
    """/healthz's JetStream checks, in the order of Go's ``healthz``
    (monitor.go): nothing with ``js-server-only`` or without JetStream; only
    "enabled" with ``js-enabled-only``; in a cluster the meta group (a leader,
    and this member current with it), then, unless ``js-meta-only``, every
    stream group this server is a member of and their consumers, or only the
    ``account``, ``stream`` and ``consumer`` named (404 when missing)."""
    from pluggy_nats_plugins.monitor.endpoints import bool_param

    if bool_param(query, "js-server-only") or not js.config.enabled:
        return
    if bool_param(query, "js-enabled-only") or bool_param(query, "js-enabled"):
        return
    account, stream, consumer = (query.get(k, "") for k in ("account", "stream", "consumer"))
    if js.cluster is not None:
        js.cluster.health(problems, meta_only=bool_param(query, "js-meta-only"),
                          account=account, stream=stream, consumer=consumer)
        return
    # One server: every stream is loaded at start (Go checks here that each
    # could be recovered); what is left is whether the named assets exist.
    # Go looks for the account's folder in the store directory, which it
    # has once the account has a stream: an account counts once it has one.
    if not account:
        return
    jsa = js.accounts.get(account)
    streams = jsa.streams if jsa is not None else {}
    if not streams:
        problems.append(not_found(account))
    elif stream and stream not in streams:
        problems.append(not_found(account, stream))
    elif consumer and consumer not in streams[stream].consumers:
        problems.append(not_found(account, stream, consumer))


def not_found(account, stream="", consumer=""):
    """Go's healthz answer (404) for a missing account, stream or consumer."""
    if consumer:
        return {"type": "CONSUMER", "account": account, "stream": stream, "consumer": consumer,
                "error": "JetStream consumer %s not found for stream %s on account %s"
                % (_q(consumer), _q(stream), _q(account)), "status_code": 404}
    if stream:
        return {"type": "STREAM", "account": account, "stream": stream,
                "error": "JetStream stream %s not found on account %s" % (_q(stream), _q(account)),
                "status_code": 404}
    return {"type": "ACCOUNT", "account": account,
            "error": "JetStream account %s not found" % _q(account), "status_code": 404}


def _q(text):
    """Go's %q for the names (printable ASCII and UTF-8 as they are)."""
    return json.dumps(text, ensure_ascii=False)
