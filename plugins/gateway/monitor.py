"""``/gatewayz`` and the ``/varz`` gateway block, shaped as nats-server's
``Gatewayz`` / ``GatewayOptsVarz`` (monitor.go): ``gw_name`` picks one remote
cluster, ``accs=1`` adds the per-account interest modes (``acc_name`` one
account, implying ``accs``), ``subs=1`` / ``subs=detail`` their subscriptions.
"""

import time

from pluggy_nats_plugins.monitor.endpoints import bool_param, conn_info, rfc3339

from .interest import MAX_RUNSUB_BEFORE_SWITCH


def _account_entry(link, name, subs):
    mode, no_interest, plain, queues = link.outbound.account_stats(name)
    entry = {"name": name, "interest_mode": mode}
    if no_interest:
        entry["no_interest_count"] = no_interest
    entry["interest_only_threshold"] = MAX_RUNSUB_BEFORE_SWITCH
    if plain + queues:
        entry["num_subs"] = plain + queues
    if queues:
        entry["num_queue_subs"] = queues
    if subs:
        listed = link.outbound.subscriptions(name)
        if listed:
            entry["subscriptions_list"] = sorted(s.subject.decode(errors="replace")
                                                 for s in listed)
    return entry


def _outbound(link, now, accounts, acc_name, subs):
    entry = {"configured": not link.remote.implicit}
    info = conn_info(link, now)
    info["subscriptions"] = sum(link.outbound.account_stats(a)[2] + link.outbound.account_stats(
        a)[3] for a in link.outbound.accounts) if link.outbound else 0
    entry["connection"] = info
    if accounts and link.outbound is not None:
        names = [acc_name] if acc_name else sorted(link.outbound.accounts)
        entry["accounts"] = [_account_entry(link, n, subs) for n in names
                             if not acc_name or n in link.outbound.accounts]
    return entry


def _inbound(link, now, accounts, acc_name):
    entry = {"configured": False, "connection": conn_info(link, now)}
    entry["connection"]["subscriptions"] = 0
    if accounts and link.inbound is not None:
        names = [acc_name] if acc_name else sorted(link.inbound.accounts)
        entry["accounts"] = [{"name": n, "interest_mode": link.inbound.mode(n),
                              "interest_only_threshold": MAX_RUNSUB_BEFORE_SWITCH}
                             for n in names]
    return entry


def gatewayz(manager, server, query):
    now = time.time()
    host, _, port = (manager.url or ":0").rpartition(":")
    name = query.get("gw_name", "")
    acc_name = query.get("acc_name", "")
    accounts = bool_param(query, "accs") or bool(acc_name)
    subs = query.get("subs", "") in ("1", "true", "detail")
    outbound = {}
    for gw, link in sorted(manager.out.items()):
        if name and gw != name:
            continue
        if link.registered and not link.closed:
            outbound[gw] = _outbound(link, now, accounts, acc_name, subs)
    inbound = {}
    for link in manager.inbound.values():
        if (name and link.gateway != name) or not link.registered or link.closed:
            continue
        inbound.setdefault(link.gateway, []).append(_inbound(link, now, accounts, acc_name))
    return {"server_id": server.server_id, "now": rfc3339(now), "name": manager.name,
            "host": host, "port": int(port or 0), "outbound_gateways": outbound,
            "inbound_gateways": inbound}


def varz_block(manager):
    cfg = manager.config
    block = {"name": manager.name, "host": cfg.host, "port": manager.port or cfg.port,
             "auth_timeout": cfg.auth_timeout}
    if cfg.tls is not None:
        block.update(tls_timeout=cfg.tls.timeout, tls_required=True, tls_verify=True)
    if cfg.advertise:
        block["advertise"] = cfg.advertise
    if cfg.connect_retries:
        block["connect_retries"] = cfg.connect_retries
    gateways = []
    for remote in manager.remotes.values():
        if remote.implicit:
            continue
        entry = {"name": remote.name}
        if remote.tls is not None:
            entry["tls_timeout"] = remote.tls.timeout
        entry["urls"] = list(remote.urls)
        gateways.append(entry)
    if gateways:
        block["gateways"] = gateways
    if cfg.reject_unknown:
        block["reject_unknown"] = True
    if cfg.write_deadline:
        block["write_deadline"] = int(cfg.write_deadline * 1e9)
    if cfg.write_timeout:
        block["write_timeout"] = cfg.write_timeout
    return block


def statsz_gateways(manager):
    """nats-server GatewayStat, one per outbound: what we sent on it, and what
    the inbounds from that cluster received, with their number."""
    stats = []
    for name, link in sorted(manager.out.items()):
        inbound = [i for i in list(manager.inbound.values()) if i.gateway == name]
        stats.append({"gwid": link.cid, "name": name,
                      "sent": {"msgs": link.out_msgs, "bytes": link.out_bytes},
                      "received": {"msgs": sum(i.in_msgs for i in inbound),
                                   "bytes": sum(i.in_bytes for i in inbound)},
                      "inbound_connections": len(inbound)})
    return stats
