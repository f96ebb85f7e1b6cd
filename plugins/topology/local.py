"""This server's part of an explanation: for a message published in
``account`` on ``subject``, which of its subscriptions would receive it (and
which would not, why), and which of its links would carry it (and why not).

Read from the live objects (the account's subject index, each link's interest,
filters and binding), so it says what delivery would do now. The whole-system
answer is :func:`.explain.assemble` over every server's part.
"""

from pluggy_nats.accounts.streams import StreamImporter
from pluggy_nats.connection import CLIENT
from pluggy_nats.subjects import subject_matches, subset_match

from .explain import not_imported, reason


def identity(server):
    routes = server.pluginmanager.get_plugin("route-manager")
    cluster = getattr(routes, "name", "") or getattr(server, "cluster_name", "") or ""
    return {"id": server.server_id, "name": server.server_name, "cluster": cluster or "",
            "impl": "pluggy-nats"}


def mapping_of(account, subject):
    """(source, [(destination, weight)]) of the mapping ``subject`` selects in
    ``account``, or None."""
    mappings = account.mappings
    if mappings is None:
        return None
    m = mappings.literal.get(subject)
    if m is None:
        m = next((w for w in mappings.wildcard if subset_match(subject, w.src_bytes)), None)
    if m is None:
        return None
    dests, last = [], 0
    for cum, transform in m.dests:
        dests.append({"to": transform.apply(subject.split(b".")).decode(errors="replace"),
                      "pattern": transform.dest, "weight": cum - last})
        last = cum
    return {"from": m.src, "destinations": dests}


def _denied_by(conn, subject):
    """The subscribe deny rule that keeps ``subject`` from ``conn``, or None."""
    deny = getattr(conn, "deny_delivery", None)
    if deny is None or not deny(subject):
        return None
    spec = getattr(getattr(getattr(conn, "permissions", None), "compiled", None), "spec", None)
    rules = getattr(getattr(spec, "subscribe", None), "deny", None) or ()
    rule = next((r for r in rules if subject_matches(r.encode(), subject)), "?")
    return rule


def _receiver(sub, account, subject, via=None):
    conn = sub.conn
    entry = {"account": account.name, "subject": sub.subject.decode(errors="replace"),
             "queue": sub.queue.decode(errors="replace") if sub.queue else "",
             "delivered_as": subject.decode(errors="replace"), "via": via}
    if conn.kind == CLIENT:
        entry.update(kind="client", client=conn.cid, name=conn.name or "",
                     user=getattr(conn, "user", "") or "")
    else:
        entry.update(kind="internal", client=0, name=getattr(conn, "name", ""), user="")
    rule = _denied_by(conn, subject) if conn.kind == CLIENT else None
    entry["receives"] = rule is None
    entry["reason"] = reason("permission", rule=rule) if rule else None
    return entry


def _receivers(account, subject, seen):
    """Local (non-link) subscriptions of ``account`` matching ``subject``,
    following stream imports into the importing accounts (each account once)."""
    seen = seen | {account.name}
    psubs, qsubs = account.sublist.match(subject)
    out, interest = [], {}
    for sub in list(psubs) + [s for group in qsubs for s in group]:
        conn = sub.conn
        if conn.is_link:
            interest.setdefault(id(conn), []).append(sub)
            continue
        importer = getattr(sub.callback, "__self__", None)
        if isinstance(importer, StreamImporter):
            dst = importer.dst
            if dst.name in seen:
                continue
            to = importer.to or importer.prefix + subject
            via = reason("import", source=account.name, account=dst.name,
                         subject=to.decode(errors="replace"))
            for entry in _receivers(dst, to, seen)[0]:
                entry["via"] = entry["via"] or via
                out.append(entry)
            continue
        out.append(_receiver(sub, account, subject))
    return out, interest


def _sub_text(subs):
    return ", ".join(sorted({s.subject.decode(errors="replace") + (
        " (queue %s)" % s.queue.decode(errors="replace") if s.queue else "") for s in subs}))


def _link(link, account, subject, interest):
    kind = link.link_kind.name
    entry = {"kind": kind, "peer_id": link.remote_id or getattr(link, "name", "") or "",
             "peer_name": link.remote_name or "", "peer_cluster": "", "account": "",
             "direction": "both" if kind == "route" else ("out" if link.solicited else "in")}
    subs = interest.get(id(link), ())
    if kind == "gateway":
        entry["peer_cluster"] = link.gateway or ""
        entry["peer_id"] = getattr(link, "name", "") or entry["peer_id"]
        if link.outbound is None:
            return None  # an inbound only sends interest, never messages
        entry["direction"] = "out"
        plain, groups = link.outbound.interest(account.name, subject)
        queues = sorted({g[0].queue.decode(errors="replace") for g in groups if g})
        entry["queues"] = queues
        mode = link.outbound.mode(account.name)
        entry["mode"] = str(mode)
        entry["sends"] = bool(plain or queues)
        if entry["sends"]:
            entry["reason"] = reason("gateway_interest", cluster=entry["peer_cluster"],
                                     queues=queues, plain=plain)
        else:
            entry["reason"] = reason("gateway_no_interest", cluster=entry["peer_cluster"],
                                     mode=entry["mode"])
        return entry
    if kind == "leaf":
        bound = link.bound_account.name if link.bound_account is not None else ""
        entry["account"] = bound
        entry["role"] = "spoke" if link.is_spoke else "hub"
        if bound and bound != account.name:
            entry["sends"], entry["reason"] = False, reason("isolation", account=bound)
            return entry
        if link.out_denied is not None and link.out_denied(subject):
            entry["sends"], entry["reason"] = False, reason("leaf_deny")
            return entry
    entry["sends"] = bool(subs)
    entry["reason"] = reason("interest", subs=_sub_text(subs)) if subs \
        else reason("no_interest")
    return entry


def explain_local(server, account_name, subject):
    """This server's part (``subject`` bytes: the subject as delivered, i.e.
    after the origin applied any mapping)."""
    account = server.accounts.get(account_name)
    out = {"server": identity(server), "account": account_name,
           "subject": subject.decode(errors="replace"), "known": account is not None,
           "receivers": [], "links": []}
    if account is None:
        return out
    mapping = mapping_of(account, subject)
    if mapping:
        out["mapping"] = mapping
    receivers, interest = _receivers(account, subject, frozenset())
    reached = {r["account"] for r in receivers} | {account.name}
    for other in server.accounts:  # subscribers the account's messages never reach
        if other.name in reached:
            continue
        psubs, qsubs = other.sublist.match(subject)
        for sub in list(psubs) + [s for group in qsubs for s in group]:
            if sub.conn.kind == CLIENT:
                receivers.append(not_imported(
                    other.name, sub.subject.decode(errors="replace"),
                    subject.decode(errors="replace"), account.name, sub.conn.cid,
                    sub.conn.name or "", getattr(sub.conn, "user", "") or ""))
    out["receivers"] = receivers
    merged = {}  # the pooled and pinned connections of a route are one link
    for link in list(server.links.links):
        if link.closed or not link.registered:
            continue
        entry = _link(link, account, subject, interest)
        if entry is None:
            continue
        key = (entry["kind"], entry["peer_id"]) if entry["kind"] == "route" else id(link)
        known = merged.get(key)
        if known is None or (entry["sends"] and not known["sends"]):
            merged[key] = entry
    out["links"] = list(merged.values())
    return out
