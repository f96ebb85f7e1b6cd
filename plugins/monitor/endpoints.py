"""Core monitoring endpoints, with nats-server's JSON field names and types
(durations in /varz options are nanoseconds, times RFC 3339, uptimes Go-style)."""

import datetime
import os
import platform
import resource
import time

from pluggy_nats import __version__
from pluggy_nats.connection import CLIENT, KIND_NAMES
from pluggy_nats.server import NATS_COMPAT_VERSION

from .http import BadRequest

NS = 1_000_000_000


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace(
        "+00:00", "Z")


def go_duration(seconds):
    """1d2h3m4s, the way nats-server prints uptime and idle times."""
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    out = ""
    if days:
        out += "%dd" % days
    if days or hours:
        out += "%dh" % hours
    if days or hours or minutes:
        out += "%dm" % minutes
    return out + "%ds" % seconds


def _int_param(query, name, default, minimum=0):
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise BadRequest("%s: not an integer: %r" % (name, query[name]))
    if value < minimum:
        raise BadRequest("%s: must be >= %d" % (name, minimum))
    return value


def _totals(server):
    totals = {"in_msgs": 0, "out_msgs": 0, "in_bytes": 0, "out_bytes": 0}
    for conn in list(server.conns.values()) + list(server.closed_conns):
        totals["in_msgs"] += conn.in_msgs
        totals["out_msgs"] += conn.out_msgs
        totals["in_bytes"] += conn.in_bytes
        totals["out_bytes"] += conn.out_bytes
    return totals


def varz(server, query):
    opts = server.options
    now = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    subs = sum(acc.sublist.count() for acc in server.accounts)
    out = {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "version": NATS_COMPAT_VERSION,
        "pluggy_nats": __version__,
        "proto": 1,
        "git_commit": "",
        "go": "python" + platform.python_version(),
        "host": opts.host,
        "port": server.port,
        "max_connections": opts.max_connections,
        "ping_interval": int(opts.ping_interval * NS),
        "ping_max": opts.ping_max,
        "http_host": opts.http_host,
        "http_port": getattr(server, "http_port", opts.http_port),
        "http_base_path": "",
        "https_port": 0,
        "auth_timeout": opts.auth_timeout,
        "max_control_line": opts.max_control_line,
        "max_payload": opts.max_payload,
        "max_pending": opts.max_pending,
        "tls_timeout": 2,
        "write_deadline": int(opts.write_deadline * NS),
        "start": rfc3339(server.start_time or now),
        "now": rfc3339(now),
        "uptime": go_duration(now - (server.start_time or now)),
        "mem": usage.ru_maxrss * 1024,
        "cores": os.cpu_count(),
        "gomaxprocs": 1,
        "cpu": 0.0,
        "connections": server.num_clients(),
        "total_connections": server.stats.total_connections,
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "slow_consumers": server.stats.slow_consumers,
        "subscriptions": subs,
        "http_req_stats": {},
        "config_load_time": rfc3339(server.start_time or now),
        "system_account": server.accounts.system_account.name
        if server.accounts.system_account else "",
        "slow_consumer_stats": {"clients": server.stats.slow_consumers, "routes": 0,
                                "gateways": 0, "leafs": 0},
    }
    out.update(_totals(server))
    server.hook.nats_varz(server=server, varz=out)
    return out


SORT_KEYS = {
    "cid": lambda c: c.cid,
    "start": lambda c: c.start,
    "subs": lambda c: -len(getattr(c, "subs", ())),
    "pending": lambda c: -c.pending_bytes,
    "msgs_to": lambda c: -c.out_msgs,
    "msgs_from": lambda c: -c.in_msgs,
    "bytes_to": lambda c: -c.out_bytes,
    "bytes_from": lambda c: -c.in_bytes,
    "last": lambda c: -c.last_activity,
    "idle": lambda c: c.last_activity,
    "uptime": lambda c: c.start,
    "stop": lambda c: -(c.stop or 0),
    "reason": lambda c: c.closed_reason.value if c.closed_reason else "",
}


def connz(server, query):
    offset = _int_param(query, "offset", 0)
    limit = _int_param(query, "limit", 1024, minimum=1)
    state = query.get("state", "open")
    if state not in ("open", "closed", "all", "any"):
        raise BadRequest("state: must be open, closed or all")
    sort = query.get("sort", "cid")
    if sort not in SORT_KEYS:
        raise BadRequest("sort: unknown key %r" % sort)
    if sort in ("stop", "reason") and state == "open":
        raise BadRequest("sort by %s is only valid for closed connections" % sort)
    subs = query.get("subs", "")
    conns = []
    if state in ("open", "all", "any"):
        conns += [c for c in server.conns.values() if c.kind == CLIENT]
    if state in ("closed", "all", "any"):
        conns += [c for c in server.closed_conns if c.kind == CLIENT]
    if "cid" in query:
        cid = _int_param(query, "cid", 0)
        conns = [c for c in conns if c.cid == cid]
    conns.sort(key=SORT_KEYS[sort])
    page = conns[offset:offset + limit]
    now = time.time()
    mono = time.monotonic()
    return {
        "server_id": server.server_id,
        "now": rfc3339(now),
        "num_connections": len(page),
        "total": len(conns),
        "offset": offset,
        "limit": limit,
        "connections": [_conn_info(c, now, mono, subs) for c in page],
    }


def _conn_info(c, now, mono, subs):
    info = {
        "cid": c.cid,
        "kind": KIND_NAMES[c.kind],
        "type": "nats",
        "ip": c.host,
        "port": c.port,
        "start": rfc3339(c.start),
        "last_activity": rfc3339(c.start + (c.last_activity - c.start_mono)),
        "rtt": "%dµs" % int(c.rtt * 1e6),
        "uptime": go_duration((c.stop or now) - c.start),
        "idle": go_duration(mono - c.last_activity),
        "pending_bytes": c.pending_bytes,
        "in_msgs": c.in_msgs,
        "out_msgs": c.out_msgs,
        "in_bytes": c.in_bytes,
        "out_bytes": c.out_bytes,
        "subscriptions": len(getattr(c, "subs", ())),
        "name": getattr(c, "name", ""),
        "lang": getattr(c, "lang", ""),
        "version": getattr(c, "version", ""),
    }
    account = getattr(c, "account", None)
    if account is not None:
        info["account"] = account.name
    if getattr(c, "user", None):
        info["authorized_user"] = c.user
    if c.closed:
        info["stop"] = rfc3339(c.stop)
        info["reason"] = c.closed_reason.value
    if subs in ("1", "true", "detail") and getattr(c, "subs", None):
        if subs == "detail":
            info["subscriptions_list_detail"] = [
                {"account": account.name if account else "", "subject": s.subject.decode(),
                 "qgroup": (s.queue or b"").decode(), "sid": s.sid.decode(),
                 "msgs": s.delivered, "max": s.max_msgs, "cid": c.cid}
                for s in c.subs.values()]
        else:
            info["subscriptions_list"] = [s.subject.decode() for s in c.subs.values()]
    return info


def subsz(server, query):
    totals = {}
    for acc in server.accounts:
        for key, value in acc.sublist.stats().items():
            if isinstance(value, (int, float)):
                if key.startswith("max_"):
                    totals[key] = max(totals.get(key, 0), value)
                else:
                    totals[key] = totals.get(key, 0) + value
    out = {"server_id": server.server_id, "now": rfc3339(time.time())}
    out.update(totals)
    test = query.get("test")
    if test is not None:
        from pluggy_nats.subjects import is_valid_literal_subject

        subject = test.encode()
        if not is_valid_literal_subject(subject):
            raise BadRequest("test: not a valid publish subject: %r" % test)
        account = server.accounts.get(query.get("acc", "$G"))
        if account is None:
            raise BadRequest("acc: unknown account")
        result = account.sublist.match(subject)
        matched = list(result.psubs) + [s for group in result.qsubs for s in set(group)]
        out["total"] = len(matched)
        out["subscriptions_list"] = [
            {"account": account.name, "subject": s.subject.decode(),
             "qgroup": (s.queue or b"").decode(), "sid": s.sid.decode(),
             "msgs": s.delivered, "max": s.max_msgs, "cid": s.conn.cid}
            for s in matched]
    return out


def healthz(server, query):
    return {"status": "ok"}
