"""Core monitoring endpoints, with nats-server 2.15's JSON field names and types.

Conventions (as nats-server's ``server/monitor.go``): durations in /varz options
are integer nanoseconds, times are RFC 3339 in UTC, uptimes and idle times are
``1d2h3m4s``, RTTs are Go ``time.Duration`` strings (``370µs``, ``1.2ms``).
Fields nats-server leaves out when empty (``omitempty``) are left out here too.
Where we have no such feature the value is the honest empty one (0, "", {}).

Every handler is ``handler(server, query) -> dict``; a bad query parameter
raises :class:`BadRequest` (400 with a JSON message), an unhealthy server
:class:`Unavailable` (503).
"""

import datetime
import os
import platform
import resource
import time

from pluggy_nats import __version__
from pluggy_nats.connection import CLIENT, GATEWAY, KIND_NAMES, LEAF, ROUTE, ClosedReason
from pluggy_nats.server import NATS_COMPAT_VERSION
from pluggy_nats.subjects import is_valid_literal_subject, subject_matches

from .http import BadRequest, Unavailable

NS = 1_000_000_000
DEFAULT_LIST_SIZE = 1024  # nats-server DefaultConnListSize / DefaultSubListSize


# -- formatting -------------------------------------------------------------------


def rfc3339(ts):
    """A POSIX timestamp as nats-server prints a time.Time (UTC, ``Z``)."""
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace(
        "+00:00", "Z")


def uptime_string(seconds):
    """nats-server's ``myUptime``: whole seconds as ``1y2d3h4m5s``."""
    secs = max(int(seconds), 0)
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    years = days // 365
    if years:
        return "%dy%dd%dh%dm%ds" % (years, days % 365, hours % 24, mins % 60, secs % 60)
    if days:
        return "%dd%dh%dm%ds" % (days, hours % 24, mins % 60, secs % 60)
    if hours:
        return "%dh%dm%ds" % (hours, mins % 60, secs % 60)
    if mins:
        return "%dm%ds" % (mins, secs % 60)
    return "%ds" % secs


def _fraction(value, unit):
    whole, frac = divmod(value, unit)
    if not frac:
        return "%d" % whole
    digits = len(str(unit)) - 1
    return "%d.%s" % (whole, ("%0*d" % (digits, frac)).rstrip("0"))


def go_duration(nanoseconds):
    """Go's ``time.Duration.String()``: ``0s``, ``850ns``, ``370µs``, ``1.5ms``,
    ``2.25s``, ``1m30s``, ``1h0m0s``."""
    ns = int(nanoseconds)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return "%s%dns" % (sign, ns)
    if ns < 1_000_000:
        return "%s%sµs" % (sign, _fraction(ns, 1000))
    if ns < NS:
        return "%s%sms" % (sign, _fraction(ns, 1_000_000))
    hours, rest = divmod(ns, 3600 * NS)
    mins, rest = divmod(rest, 60 * NS)
    out = _fraction(rest, NS) + "s"
    if hours:
        out = "%dh%dm%s" % (hours, mins, out)
    elif mins:
        out = "%dm%s" % (mins, out)
    return sign + out


def rtt_string(seconds):
    """A connection's RTT as nats-server shows it (µs precision under 1ms)."""
    ns = int(seconds * NS)
    if 1000 < ns < 1_000_000:
        ns -= ns % 1000
    return go_duration(ns)


def _seconds(value):
    """A float option as Go's encoding/json prints a float64 (2, not 2.0)."""
    return int(value) if float(value).is_integer() else value


# -- query parameters ---------------------------------------------------------------

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def bool_param(query, name):
    """Go's strconv.ParseBool; absent or empty is false; anything else is a 400."""
    text = query.get(name, "")
    if text == "" or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise BadRequest("%s: not a boolean: %r (use true/false or 1/0)" % (name, text))


def int_param(query, name, default=0, minimum=0):
    text = query.get(name, "")
    if text == "":
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise BadRequest("%s: not an integer: %r" % (name, text)) from None
    if value < minimum:
        raise BadRequest("%s: must be >= %d, got %d" % (name, minimum, value))
    return value


def limit_param(query):
    limit = int_param(query, "limit", DEFAULT_LIST_SIZE, minimum=0)
    return limit or DEFAULT_LIST_SIZE  # 0 means the default, as nats-server


# -- process figures ------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss():
    """Resident memory now (nats-server's ``mem``), not the peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CpuSampler:
    """Percent CPU over the last sampling period (>= 1 s), as nats-server's
    ``pse`` package reports it: the first sample covers the time since start."""

    def __init__(self):
        self.wall = time.monotonic()
        self.cpu = time.process_time()
        self.percent = 0.0

    def sample(self):
        wall, cpu = time.monotonic(), time.process_time()
        if wall - self.wall >= 1.0:
            self.percent = round(100.0 * (cpu - self.cpu) / (wall - self.wall), 2)
            self.wall, self.cpu = wall, cpu
        return self.percent


class Counters:
    """What the monitor remembers about connections that are gone: message and
    byte totals (so /varz counters never go down when the closed ring drops a
    connection), stale connections and slow consumers per kind."""

    KINDS = {CLIENT: "clients", ROUTE: "routes", GATEWAY: "gateways", LEAF: "leafs"}

    def __init__(self):
        self.closed = {"in_msgs": 0, "in_bytes": 0, "out_msgs": 0, "out_bytes": 0,
                       "in_client_msgs": 0, "in_client_bytes": 0, "out_client_msgs": 0,
                       "out_client_bytes": 0}
        self.stale = dict.fromkeys(self.KINDS.values(), 0)
        self.cpu = CpuSampler()
        self.http_requests = {}

    def connection_closed(self, conn, reason):
        self._add(self.closed, conn)
        kind = self.KINDS.get(conn.kind)
        if kind is None:
            return
        if reason is ClosedReason.STALE_CONNECTION:
            self.stale[kind] += 1

    @staticmethod
    def _add(totals, conn):
        totals["in_msgs"] += conn.in_msgs
        totals["in_bytes"] += conn.in_bytes
        totals["out_msgs"] += conn.out_msgs
        totals["out_bytes"] += conn.out_bytes
        if conn.kind == CLIENT:
            totals["in_client_msgs"] += conn.in_msgs
            totals["in_client_bytes"] += conn.in_bytes
            totals["out_client_msgs"] += conn.out_msgs
            totals["out_client_bytes"] += conn.out_bytes

    def totals(self, server):
        totals = dict(self.closed)
        for conn in list(server.conns.values()):
            self._add(totals, conn)
        return totals


def counters(server):
    """The monitor's Counters (a fresh, empty one when a handler is called
    without the monitor listener, e.g. by an embedding program)."""
    monitor = server.pluginmanager.get_plugin("monitor-http")
    return monitor.counters if monitor is not None else Counters()


# -- /varz ------------------------------------------------------------------------------


def varz(server, query):
    opts = server.options
    now = time.time()
    stats = counters(server)
    start = server.start_time or now
    totals = stats.totals(server)
    total_slow = server.stats.slow_consumers
    slow = dict(server.stats.slow_by_kind)  # counted by the core when they happen
    system_account = server.accounts.system_account
    config_digest = ""
    if opts.conf:
        from pluggy_nats.conf import digest

        try:
            config_digest = digest(opts.conf)
        except (TypeError, ValueError):  # a hand-made conf dict
            config_digest = ""
    out = {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "version": NATS_COMPAT_VERSION,
        "proto": 1,
        "git_commit": "",
        "go": "python" + platform.python_version(),
        "host": opts.host,
        "port": server.port or 0,
    }
    if server.auth_required:
        out["auth_required"] = True
    if server.connect_urls:
        out["connect_urls"] = list(server.connect_urls)
    if opts.server_tags:
        out["tags"] = list(opts.server_tags)
    if opts.server_metadata:
        out["metadata"] = dict(opts.server_metadata)
    out["max_connections"] = opts.max_connections
    if opts.max_subscriptions:
        out["max_subscriptions"] = opts.max_subscriptions
    out.update({
        "ping_interval": int(opts.ping_interval * NS),
        "ping_max": opts.ping_max,
        "http_host": opts.http_host or opts.host,
        "http_port": getattr(server, "http_port", None) or max(opts.http_port, 0),
        "http_base_path": opts.http_base_path,
        "https_port": opts.https_port,  # as configured (-1 stays -1), as nats-server
        "auth_timeout": _seconds(opts.auth_timeout),
        "max_control_line": opts.max_control_line,
        "max_payload": opts.max_payload,
        "max_pending": opts.max_pending,
        # Blocks of features that plugins own; they fill them through nats_varz.
        "cluster": {},
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": {},
        "jetstream": {},
        "tls_timeout": 0,  # no TLS listener
        "write_deadline": int(opts.write_deadline * NS),
        "start": rfc3339(start),
        "now": rfc3339(now),
        "uptime": uptime_string(now - start),
        "mem": _rss(),
        "cores": os.cpu_count() or 1,
        "gomaxprocs": 1,  # one interpreter thread runs every greenlet
        "cpu": stats.cpu.sample(),
        "connections": server.num_clients(),
        "total_connections": server.stats.total_connections,
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": totals["in_msgs"],
        "in_bytes": totals["in_bytes"],
        "in_client_msgs": totals["in_client_msgs"],
        "in_client_bytes": totals["in_client_bytes"],
        "out_msgs": totals["out_msgs"],
        "out_bytes": totals["out_bytes"],
        "out_client_msgs": totals["out_client_msgs"],
        "out_client_bytes": totals["out_client_bytes"],
        "slow_consumers": total_slow,
        "stale_connections": sum(stats.stale.values()),
        "stalled_clients": 0,  # writers never stall publishers here (no flush stalls)
        "subscriptions": sum(acc.sublist.count() for acc in server.accounts),
        "http_req_stats": dict(stats.http_requests),
        "config_load_time": rfc3339(start),
        "config_digest": config_digest,
        "feature_flags": dict(opts.feature_flags),
        "system_account": system_account.name if system_account else "",
        "slow_consumer_stats": slow,
        "stale_connection_stats": dict(stats.stale),
        "disk_io_wait_stats": {"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0},
        "pluggy_nats": __version__,
    })
    if not out["system_account"]:
        del out["system_account"]  # omitempty, as nats-server (no_system_account)
    server.hook.nats_varz(server=server, varz=out)
    return out


# -- /connz -------------------------------------------------------------------------------


def _last_activity(c):
    """Wall-clock time of the last read (connections keep a monotonic one)."""
    return c.start + (c.last_activity - c.start_mono)


def _end(c, now):
    return c.stop if c.closed and c.stop else now


# key functions; Python's sort is stable, so ties stay in cid order
SORT_KEYS = {
    "cid": lambda c, now: c.cid,
    "start": lambda c, now: c.cid,  # nats-server: start order is cid order
    "subs": lambda c, now: -len(getattr(c, "subs", ())),
    "pending": lambda c, now: -c.pending_bytes,
    "msgs_to": lambda c, now: -c.out_msgs,
    "msgs_from": lambda c, now: -c.in_msgs,
    "bytes_to": lambda c, now: -c.out_bytes,
    "bytes_from": lambda c, now: -c.in_bytes,
    "last": lambda c, now: -_last_activity(c),
    "idle": lambda c, now: -(_end(c, now) - _last_activity(c)),
    "uptime": lambda c, now: _end(c, now) - c.start,
    "stop": lambda c, now: -(c.stop or 0),
    "reason": lambda c, now: c.closed_reason.value if c.closed_reason else "",
    "rtt": lambda c, now: -c.rtt,
}

STATES = {"open": "open", "closed": "closed", "any": "all", "all": "all"}


def connz(server, query):
    sort = query.get("sort", "") or "cid"
    if sort not in SORT_KEYS:
        raise BadRequest("sort: invalid sorting option %r (one of %s)"
                         % (sort, ", ".join(sorted(SORT_KEYS))))
    auth = bool_param(query, "auth")
    subs_detail = query.get("subs", "").lower() == "detail"
    subs = subs_detail or bool_param(query, "subs")
    offset = int_param(query, "offset", 0)
    limit = limit_param(query)
    cid = int_param(query, "cid", 0)
    state = STATES.get(query.get("state", "open").lower() or "open")
    if state is None:
        raise BadRequest("state: must be open, closed or all, got %r" % query["state"])
    if sort in ("stop", "reason") and state != "closed":
        raise BadRequest("sort by %s only valid on closed connections" % sort)
    user = query.get("user", "")
    acc = query.get("acc", "")
    if cid:
        limit = 1

    conns = []
    if state in ("open", "all"):
        conns += [c for c in list(server.conns.values()) if c.kind == CLIENT]
    if state in ("closed", "all"):
        conns += [c for c in list(server.closed_conns) if c.kind == CLIENT]
    if cid:
        conns = [c for c in conns if c.cid == cid]
    if acc:
        conns = [c for c in conns if getattr(getattr(c, "account", None), "name", None) == acc]
    if user:
        conns = [c for c in conns if getattr(c, "user", None) == user]
    if query.get("mqtt_client"):
        conns = []  # no MQTT clients here
    now = time.time()
    conns.sort(key=lambda c: SORT_KEYS[sort](c, now))
    page = conns[offset:offset + limit]
    return {
        "server_id": server.server_id,
        "now": rfc3339(now),
        "num_connections": len(page),
        "total": len(conns),
        "offset": offset,
        "limit": limit,
        "connections": [conn_info(c, now, subs, subs_detail, auth) for c in page],
    }


def conn_info(c, now, subs=False, subs_detail=False, auth=False):
    """One /connz entry, fields in nats-server's order (``omitempty`` honoured)."""
    end = _end(c, now)
    last = _last_activity(c)
    info = {
        "cid": c.cid,
        "kind": KIND_NAMES[c.kind],
        "type": getattr(c, "conn_type", "nats"),  # "websocket" for WebSocket clients
        "ip": c.host,
        "port": c.port,
        "start": rfc3339(c.start),
        "last_activity": rfc3339(last),
    }
    if c.closed and c.stop:
        info["stop"] = rfc3339(c.stop)
        info["reason"] = c.closed_reason.value if c.closed_reason else ""
    info.update({
        "rtt": rtt_string(c.rtt),
        "uptime": uptime_string(end - c.start),
        "idle": uptime_string(end - last),
        "pending_bytes": c.pending_bytes,
        "in_msgs": c.in_msgs,
        "out_msgs": c.out_msgs,
        "in_bytes": c.in_bytes,
        "out_bytes": c.out_bytes,
        "subscriptions": len(getattr(c, "subs", ())),
    })
    for key in ("name", "lang", "version"):
        value = getattr(c, key, "")
        if value:
            info[key] = value
    if getattr(c, "tls", False):  # nats-server ConnInfo tls_version, tls_cipher_suite
        info["tls_version"] = c.tls_version
        info["tls_cipher_suite"] = c.tls_cipher
    account = getattr(c, "account", None)
    if auth:
        user = getattr(c, "user", None)
        if user:
            info["authorized_user"] = user
        if account is not None and account.name != "$G":
            info["account"] = account.name
        if account is not None:
            info["name_tag"] = account.name  # nats-server: the account's tag, else its name
    client_subs = list(getattr(c, "subs", {}).values())
    if client_subs:
        if subs_detail:
            info["subscriptions_list_detail"] = [sub_detail(s) for s in client_subs]
        elif subs:
            info["subscriptions_list"] = [s.subject.decode() for s in client_subs]
    return info


def sub_detail(s, account=None):
    """nats-server's SubDetail; ``account`` only in /subsz (as nats-server)."""
    out = {}
    if account is not None:
        out["account"] = account
        out["account_tag"] = account
    out["subject"] = s.subject.decode()
    if s.queue:
        out["qgroup"] = s.queue.decode()
    out["sid"] = s.sid.decode()
    out["msgs"] = s.delivered
    if s.max_msgs:
        out["max"] = s.max_msgs
    conn = s.conn
    out["cid"] = getattr(conn, "cid", 0)
    return out


# -- /subsz ---------------------------------------------------------------------------------


def subsz(server, query):
    """Sublist figures summed over accounts (``acc=`` picks one). ``subs=1``
    lists subscriptions; ``test=<subject>`` keeps those a publish to that
    subject would reach and ``total`` counts them (remote interest included:
    route/leaf links own subscriptions in the same index)."""
    subs = bool_param(query, "subs")
    offset = int_param(query, "offset", 0)
    limit = limit_param(query)
    test = query.get("test", "")
    if test and not is_valid_literal_subject(test.encode()):
        raise BadRequest("invalid test subject, must be valid publish subject: %s" % test)
    acc_name = query.get("acc", "")
    accounts = list(server.accounts)
    if acc_name:
        accounts = [a for a in accounts if a.name == acc_name]
    totals = {"num_subscriptions": 0, "num_cache": 0, "num_inserts": 0, "num_removes": 0,
              "num_matches": 0, "cache_hit_rate": 0.0, "max_fanout": 0, "avg_fanout": 0.0}
    hits = fanout = caches = 0
    for acc in accounts:
        st = acc.sublist.stats()
        for key in ("num_subscriptions", "num_cache", "num_inserts", "num_removes",
                    "num_matches"):
            totals[key] += st.get(key, 0)
        hits += st.get("cache_hit_rate", 0.0) * st.get("num_matches", 0)
        fanout += st.get("avg_fanout", 0.0) * st.get("num_cache", 0)
        caches += st.get("num_cache", 0)
        totals["max_fanout"] = max(totals["max_fanout"], st.get("max_fanout", 0))
    if totals["num_matches"]:
        totals["cache_hit_rate"] = hits / totals["num_matches"]
    if caches:
        totals["avg_fanout"] = fanout / caches
    out = {"server_id": server.server_id, "now": rfc3339(time.time())}
    out.update(totals)
    listed = []
    if subs or test:
        subject = test.encode()
        for acc in accounts:
            for s in acc.sublist.subscriptions():
                if test and not subject_matches(s.subject, subject):
                    continue
                listed.append((acc.name, s))
        listed.sort(key=lambda item: (item[0], getattr(item[1].conn, "cid", 0),
                                      item[1].sid))
    out.update({"total": len(listed), "offset": offset, "limit": limit})
    if subs and listed[offset:offset + limit]:
        out["subscriptions_list"] = [sub_detail(s, account=name)
                                     for name, s in listed[offset:offset + limit]]
    return out


# -- /accountz --------------------------------------------------------------------------------


def accountz(server, query):
    """``{"server_id","now","system_account","accounts":[names]}``; with
    ``acc=NAME`` the account's detail instead of the list."""
    system = server.accounts.system_account
    out = {"server_id": server.server_id, "now": rfc3339(time.time()),
           "system_account": system.name if system else ""}
    name = query.get("acc", "")
    if not name:
        out["accounts"] = sorted(a.name for a in server.accounts)
        return out
    account = server.accounts.get(name)
    if account is None:
        raise BadRequest("Account %s does not exist" % name)
    out["account_detail"] = account_detail(server, account)
    return out


def account_detail(server, account):
    """nats-server's AccountInfo for what we have (no JWTs, no revocations)."""
    clients = [c for c in list(account.clients) if not c.closed and c.kind == CLIENT]
    leafs = [c for c in list(server.conns.values())
             if c.kind == LEAF and getattr(c, "account", None) is account]
    detail = {"account_name": account.name,
              "update_time": rfc3339(server.start_time or time.time())}
    if account is server.accounts.system_account:
        detail["is_system"] = True
    detail.update({
        "expired": False,
        "complete": True,
        "jetstream_enabled": bool(getattr(account, "jetstream", None)),
        "leafnode_connections": len(leafs),
        "client_connections": len(clients),
        "subscriptions": account.sublist.count(),
    })
    # The auth plugin may describe what it wired, as lists of dicts in
    # nats-server's shape (subject, account, type, ...); omitted when empty.
    for key in ("exports", "imports"):
        entries = getattr(account, key, None)
        if entries and all(isinstance(e, dict) for e in entries):
            detail[key] = list(entries)
    detail["name_tag"] = account.name
    detail["sublist_stats"] = account.sublist.stats()
    return detail


# -- /healthz ---------------------------------------------------------------------------------


def healthz(server, query):
    """``{"status":"ok"}``; 503 with ``status``/``error`` (or ``errors`` with
    ``details=true``) while the server is not ready or is shutting down, or
    when a plugin reports a problem (``nats_healthz``: JetStream's checks,
    which ``account``, ``stream`` and ``consumer`` narrow to one asset, a 404
    when it is missing). As Go's ``healthz`` (monitor.go), a ``stream``
    without an ``account`` or a ``consumer`` without a ``stream`` is a 400
    before anything else is checked."""
    for name in ("js-enabled", "js-enabled-only", "js-server-only", "js-meta-only"):
        bool_param(query, name)
    details = bool_param(query, "details")
    for needed, given, kind in (("account", "stream", "stream"),
                                ("stream", "consumer", "consumer")):
        if not query.get(needed) and query.get(given):
            text = '"%s" must not be empty when checking %s health' % (needed, kind)
            if details:
                raise Unavailable({"status": "error",
                                   "errors": [{"type": "BAD_REQUEST", "error": text}]}, 400)
            raise Unavailable({"status": "error", "error": text}, 400)
    problem = None
    if not server.ready.is_set():
        problem = "server is not ready for client connections"
    elif getattr(server, "_shutting_down", False):
        problem = "server is shutting down"
    if problem is None:
        problems = []
        server.pluginmanager.hook.nats_healthz(server=server, query=query, problems=problems)
        if not problems:
            return {"status": "ok"}
        # a problem may carry Go's status code for the answer (404: not found)
        code = max(p.pop("status_code", 503) for p in problems)
        if details:
            raise Unavailable({"status": "error", "errors": problems}, code)
        raise Unavailable({"status": "unavailable", "error": problems[0]["error"]}, code)
    if details:
        raise Unavailable({"status": "error", "errors": [{"type": "CONNECTION",
                                                          "error": problem}]})
    raise Unavailable({"status": "error", "error": problem})
