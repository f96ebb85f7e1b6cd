"""System account services (PROTOCOL.md 1.5): the ``$SYS`` subjects that
``nats server ...`` tooling and cluster features rely on.

* events published in the system account: ``$SYS.ACCOUNT.<acc>.CONNECT`` /
  ``.DISCONNECT`` for clients, ``$SYS.SERVER.<id>.CLIENT.AUTH.ERR`` for every
  refused authentication, ``$SYS.SERVER.<id>.STATSZ`` every
  ``STATSZ_INTERVAL``, ``$SYS.SERVER.<id>.SHUTDOWN`` and ``.LAMEDUCK``;
* requests answered from an internal client: ``$SYS.REQ.SERVER.PING`` (statsz
  from every server), ``$SYS.REQ.SERVER.PING.<EP>`` and
  ``$SYS.REQ.SERVER.<id>.<EP>`` where EP is a monitoring endpoint (VARZ, CONNZ,
  SUBSZ, ROUTEZ, ACCOUNTZ, HEALTHZ, ...) served by the same handlers as the
  HTTP monitor (``nats_monitor_endpoints``), plus IDZ and STATSZ.

Replies use nats-server's ServerAPIResponse shape ``{"server", "data"|"error"}``.
Everything runs through internal subscriptions, so across a cluster a PING
reaches every server over the routes' pinned ``$SYS`` connection.
"""

import datetime
import itertools
import json
import os
import time

import gevent
import structlog

from pluggy_nats import __version__, hookimpl
from pluggy_nats.accounts import GLOBAL_ACCOUNT
from pluggy_nats.connection import CLIENT, KIND_NAMES, LEAF, ClosedReason
from pluggy_nats.internal import InternalClient

from .accconns import AccountConns

STATSZ_INTERVAL = 10.0
SERVER_ORPHAN_AFTER = 6 * STATSZ_INTERVAL  # a silent server no longer counts as active
DISCONNECT_TYPE = "io.nats.server.advisory.v1.client_disconnect"
_ENDPOINT_QUERY = {"subscriptions": "subs", "offset": "offset", "limit": "limit",
                   "sort": "sort", "state": "state", "cid": "cid", "account": "acc",
                   "accounts": "accounts", "test": "test", "details": "details"}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class _Registry:
    def __init__(self):
        self.endpoints = {}

    def add(self, path, handler):
        self.endpoints[path.strip("/").upper()] = handler


class SystemServices:
    def __init__(self, server):
        self.server = server
        self.client = None
        self.conns = None  # AccountConns once the system client exists
        self.seq = itertools.count(1)
        self.endpoints = {}
        self.servers = {}  # other servers' ids -> when we last heard their STATSZ
        self.log = structlog.get_logger("pluggy_nats.system")

    # -- hooks ------------------------------------------------------------------

    @hookimpl
    def nats_server_ready(self, server):
        account = server.accounts.system_account
        if account is None:
            return
        registry = _Registry()
        server.hook.nats_monitor_endpoints(registry=registry)
        self.endpoints = registry.endpoints
        self.client = InternalClient(server, account, "$SYS")
        sid = server.server_id
        self.client.subscribe("$SYS.REQ.SERVER.PING", self._on_ping)
        self.client.subscribe("$SYS.REQ.SERVER.PING.*", self._on_endpoint)
        self.client.subscribe("$SYS.REQ.SERVER.%s.*" % sid, self._on_endpoint)
        self.client.subscribe("$SYS.SERVER.*.STATSZ", self._on_remote_statsz)
        self.client.subscribe("$SYS.SERVER.*.SHUTDOWN", self._on_remote_statsz)
        server.spawn(self._statsz_loop)
        self.conns = AccountConns(server, self.client, self._server_info, _now)

    @hookimpl
    def nats_client_connected(self, conn):
        self._client_event(conn, "CONNECT", "io.nats.server.advisory.v1.client_connect")
        if conn.kind == LEAF:
            conn.connected_event_sent = True
            if conn.we_are_hub and "gateway" in self.server.links.kinds:
                # nats-server sendLeafNodeConnect: only with gateways (they
                # switch the account to interest-only on it)
                self._publish("$SYS.ACCOUNT.%s.LEAFNODE.CONNECT" % _account_name(conn),
                              {"server": self._server_info(), "acc": _account_name(conn)})
        if self.conns is not None:
            self.conns.changed(getattr(conn, "account", None))

    @hookimpl
    def nats_client_closed(self, conn, reason):
        if conn.kind == LEAF:
            # nats-server saveClosedClient: a leaf link's disconnect event, in
            # its bound account, once it had connected (registered)
            if getattr(conn, "connected_event_sent", False):
                self._client_event(conn, "DISCONNECT", DISCONNECT_TYPE, reason)
                if self.conns is not None:
                    self.conns.changed(getattr(conn, "account", None))
            return
        if conn.kind != CLIENT:
            return
        if reason is ClosedReason.AUTHENTICATION_VIOLATION and not conn.authenticated:
            # nats-server sendAuthErrorEvent, then the disconnect event of the
            # account the client sat in before it could authenticate ($G).
            self._auth_error_event(conn, reason)
        if conn.authenticated or reason is ClosedReason.AUTHENTICATION_VIOLATION:
            self._client_event(conn, "DISCONNECT", DISCONNECT_TYPE, reason)
        if conn.authenticated and self.conns is not None:
            self.conns.changed(getattr(conn, "account", None))

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if self.client is None:
            return
        event = "LAMEDUCK" if lame_duck else "SHUTDOWN"
        self._publish("$SYS.SERVER.%s.%s" % (server.server_id, event),
                      {"server": self._server_info()})

    # -- events -----------------------------------------------------------------

    def _server_info(self):
        server = self.server
        info = {"name": server.server_name, "host": server.options.host,
                "id": server.server_id, "ver": __version__, "seq": next(self.seq),
                "time": _now(), "jetstream": bool(server.extra_info.get("jetstream"))}
        cluster = getattr(server, "cluster_name", None)
        if cluster:
            info["cluster"] = cluster
        opts = server.options
        if opts.server_tags:
            info["tags"] = list(opts.server_tags)
        if opts.server_metadata:
            info["metadata"] = dict(opts.server_metadata)
        return info

    def _publish(self, subject, payload, reply=None):
        if self.client is None:
            return
        self.client.publish(subject, json.dumps(payload).encode(), reply=reply)

    def _client_event(self, conn, kind, event_type, reason=None):
        if self.client is None:
            return
        account = _account_name(conn)
        self._publish("$SYS.ACCOUNT.%s.%s" % (account, kind),
                      self._event(conn, event_type, reason))

    def _auth_error_event(self, conn, reason):
        """``$SYS.SERVER.<id>.CLIENT.AUTH.ERR``: a refused authentication, in the
        shape of a disconnect event (nats-server events.go sendAuthErrorEvent)."""
        if self.client is None:
            return
        self._publish("$SYS.SERVER.%s.CLIENT.AUTH.ERR" % self.server.server_id,
                      self._event(conn, DISCONNECT_TYPE, reason))

    def _event(self, conn, event_type, reason=None):
        """A connect/disconnect event body (nats-server ConnectEventMsg /
        DisconnectEventMsg) for ``conn``; ``reason`` makes it a disconnect."""
        account = _account_name(conn)
        client = {"start": datetime.datetime.fromtimestamp(
                      conn.start, datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
                  "host": conn.host, "id": conn.cid, "acc": account,
                  "user": getattr(conn, "user", None) or getattr(conn, "connect_user", "") or "",
                  "name": getattr(conn, "name", ""), "lang": getattr(conn, "lang", ""),
                  "ver": getattr(conn, "version", ""),
                  "server": self.server.server_name, "name_tag": account,
                  "kind": KIND_NAMES[conn.kind]}
        if conn.kind == CLIENT:  # nats-server clientTypeString: empty for links
            client["client_type"] = "nats"
        else:  # a leaf: the peer's name, version and user from its CONNECT
            peer = getattr(conn, "remote_info", None) or {}
            client.update(name=getattr(conn, "remote_name", "") or "",
                          user=peer.get("user") or "", ver=peer.get("version") or "")
            del client["server"], client["lang"]
            if not client["ver"]:
                del client["ver"]
        if conn.rtt:
            client["rtt"] = int(conn.rtt * 1e9)  # nanoseconds, as Go's Duration
        event = {"type": event_type, "id": "%s-%d" % (self.server.server_id, conn.cid),
                 "timestamp": _now(), "server": self._server_info(), "client": client}
        if reason is not None:
            client["stop"] = _now()
            event["sent"] = {"msgs": conn.in_msgs, "bytes": conn.in_bytes}
            event["received"] = {"msgs": conn.out_msgs, "bytes": conn.out_bytes}
            event["reason"] = reason.value
        return event

    def statsz(self):
        """nats-server ServerStats: the server's totals as ``/varz`` counts
        them (every kind of connection, closed ones included), slow and stale
        connections by kind, the routes and gateways (``nats_statsz``) and the
        servers heard from."""
        server = self.server
        subs = sum(acc.sublist.count() for acc in server.accounts)
        clients = [c for c in server.conns.values() if c.kind == CLIENT]
        varz_handler = self.endpoints.get("VARZ")
        varz = varz_handler(server, {}) if varz_handler is not None else {}
        statsz = {
            "start": datetime.datetime.fromtimestamp(
                server.start_time or time.time(), datetime.timezone.utc).isoformat().replace(
                "+00:00", "Z"),
            "mem": _rss(), "cores": os.cpu_count(), "cpu": varz.get("cpu", 0),
            "connections": len(clients), "total_connections": server.stats.total_connections,
            "active_accounts": len({c.account.name for c in clients if c.account}),
            "subscriptions": subs,
            "slow_consumers": server.stats.slow_consumers,
        }
        if varz:
            for key, prefix in (("sent", "out_"), ("sent_to_clients", "out_client_"),
                                ("received", "in_"), ("received_from_clients", "in_client_")):
                statsz[key] = {"msgs": varz[prefix + "msgs"], "bytes": varz[prefix + "bytes"]}
            if varz.get("stale_connections"):
                statsz["stale_connections"] = varz["stale_connections"]
            for key in ("slow_consumer_stats", "stale_connection_stats"):
                if any(varz.get(key, {}).values()):  # omitted when all zero, as Go
                    statsz[key] = varz[key]
        else:  # no monitor plugin: what the clients alone say
            statsz["sent"] = {"msgs": sum(c.out_msgs for c in clients),
                              "bytes": sum(c.out_bytes for c in clients)}
            statsz["received"] = {"msgs": sum(c.in_msgs for c in clients),
                                  "bytes": sum(c.in_bytes for c in clients)}
        server.hook.nats_statsz(server=server, statsz=statsz)
        now = time.monotonic()
        for sid, seen in list(self.servers.items()):
            if now - seen > SERVER_ORPHAN_AFTER:
                del self.servers[sid]
        if self.servers:
            statsz["active_servers"] = len(self.servers) + 1
        statsz["gomaxprocs"] = 1  # one interpreter thread runs every greenlet
        return statsz

    def _on_remote_statsz(self, sub, subject, reply, headers, payload):
        """Another server's STATSZ or SHUTDOWN (nats-server remoteServerUpdate /
        remoteServerShutdown): the servers counted in ``active_servers``."""
        parts = subject.split(b".")
        sid = parts[2].decode(errors="replace") if len(parts) > 3 else ""
        if not sid or sid == self.server.server_id:
            return
        if parts[-1] == b"SHUTDOWN":
            self.servers.pop(sid, None)
            return
        new = sid not in self.servers
        self.servers[sid] = time.monotonic()
        if new:  # a newcomer hears of us now, not a STATSZ interval later (Go does too)
            self.server.spawn(self._send_statsz)

    def _send_statsz(self):
        self._publish("$SYS.SERVER.%s.STATSZ" % self.server.server_id,
                      {"server": self._server_info(), "statsz": self.statsz()})

    def _statsz_loop(self):
        while True:
            self._send_statsz()
            gevent.sleep(STATSZ_INTERVAL)

    # -- requests -----------------------------------------------------------------

    def _on_ping(self, sub, subject, reply, headers, payload):
        if reply:
            self._publish(reply, {"server": self._server_info(), "statsz": self.statsz()})

    def _on_endpoint(self, sub, subject, reply, headers, payload):
        if not reply:
            return
        name = subject.rsplit(b".", 1)[-1].decode()
        response = {"server": self._server_info()}
        if name == "STATSZ":
            response["data"] = self.statsz()
        elif name == "IDZ":
            response["data"] = {"server_id": self.server.server_id,
                                "server_name": self.server.server_name}
        elif name + "Z" in self.endpoints or name in self.endpoints:
            handler = self.endpoints.get(name) or self.endpoints.get(name + "Z")
            try:
                response["data"] = handler(self.server, _query(payload))
            except Exception as exc:  # a bad request body must not kill the service
                response["error"] = {"code": 400, "description": str(exc)}
        else:
            response["error"] = {"code": 404, "description": "unknown endpoint %s" % name}
        self._publish(reply, response)


def _account_name(conn):
    # Before it authenticates a client has no account of its own; nats-server
    # reports the global account it was parked in.
    account = getattr(conn, "account", None)
    return account.name if account is not None else GLOBAL_ACCOUNT


def _query(payload):
    """A request's JSON options as the monitor handlers' query strings."""
    try:
        body = json.loads(payload) if payload and payload.strip() else {}
    except ValueError:
        return {}
    query = {}
    for key, value in (body.items() if isinstance(body, dict) else ()):
        name = _ENDPOINT_QUERY.get(key, key)
        if isinstance(value, bool):
            value = "1" if value else "0"
        query[name] = str(value)
    if query.get("subs") == "0":
        del query["subs"]
    return query


def _rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@hookimpl
def nats_configure(config, server):
    server.pluginmanager.register(SystemServices(server), "system-services")
