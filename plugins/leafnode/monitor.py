"""Monitoring of leaf links: ``/leafz`` (nats-server's Leafz, with ``subs``
and ``acc``) and the ``/varz`` leaf block."""

import time

from .config import hostport


def leafz(manager, server, query):
    """``/leafz``: one entry per registered link; ``account`` is the local
    bound account, ``name`` the peer's server name, ``is_spoke`` our role."""
    subs = query.get("subs") in ("1", "true", "detail")
    acc = query.get("acc")
    leafs = []
    now = time.time()
    for conn in list(manager.links):
        if acc and conn.bound_account.name != acc:
            continue
        entry = {
            "id": conn.cid, "name": conn.remote_name, "is_spoke": conn.is_spoke,
            "account": conn.bound_account.name, "ip": conn.host, "port": conn.port,
            "rtt": "%.3fms" % (conn.rtt * 1000), "in_msgs": conn.in_msgs,
            "out_msgs": conn.out_msgs, "in_bytes": conn.in_bytes,
            "out_bytes": conn.out_bytes, "subscriptions": len(conn.remote_subs),
            "compression": "off",
        }
        if conn.isolated:
            entry["is_isolated"] = True
        if subs:
            entry["subscriptions_list"] = sorted(
                s.subject.decode() for s in conn.remote_subs.values())
        leafs.append(entry)
    return {"server_id": server.server_id, "now": _rfc3339(now),
            "leafnodes": len(leafs), "leafs": leafs}


def varz(manager, varz):
    """The ``leafnodes`` count and the ``leaf`` block (listener, remotes)."""
    varz["leafnodes"] = len(manager.links)
    leaf = {}
    if manager.port is not None:
        leaf.update(host=manager.config.host, port=manager.port,
                    auth_timeout=manager.config.auth.timeout or 1)
    if manager.config.write_deadline:  # omitempty, nanoseconds (Go's Duration)
        leaf["write_deadline"] = int(manager.config.write_deadline * 1e9)
    if manager.config.write_timeout:
        leaf["write_timeout"] = manager.config.write_timeout
    if manager.config.remotes:
        remotes = []
        for r in manager.config.remotes:
            entry = {"local_account": r.account, "urls": [hostport(u) for u in r.urls]}
            if r.deny_exports or r.deny_imports:
                entry["deny"] = {"exports": r.deny_exports, "imports": r.deny_imports}
            remotes.append(entry)
        leaf["remotes"] = remotes
    varz["leaf"] = leaf


def _rfc3339(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06dZ" % int(ts % 1 * 1e6)
