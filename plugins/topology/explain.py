"""Sans-IO: explain delivery across the whole system.

Every server contributes a *part* (:func:`.local.explain_local` on ours; on a
Go server :func:`from_go` reads its CONNZ, LEAFZ, ROUTEZ and GATEWAYZ
answers): its subscriptions that match and whether each would receive, and
its links with whether each would carry the message and why (not).
:func:`assemble` walks from the publishing server along the links that would
carry it, with the forwarding rule of docs/architecture.md section 3 (a
routed message takes no second route, a message from a route or gateway
never takes a gateway), and reports every receiver, each queue group's pick,
and every server or link where the message stops, with the reason.
"""

from pluggy_nats.subjects import is_valid_literal_subject, subject_matches

# code -> text; every "why (not)" names one of these codes.
REASONS = {
    "interest": "interest: {subs}",
    "no_interest": "no interest in this subject on the other side",
    "gateway_interest": "cluster {cluster} has interest{queue_text}",
    "gateway_no_interest": "gateway to cluster {cluster} is {mode}, with no interest in "
                           "this subject",
    "isolation": "leaf account isolation: the link is bound to account {account} only",
    "leaf_deny": "the leaf link's deny rules refuse this subject (deny_imports/deny_exports "
                 "or the leaf user's permissions)",
    "permission": "permission: subscribe deny rule {rule}",
    "import": "stream import: account {account} imports it from {source} as {subject}",
    "not_imported": "account {account} has a subscriber on it but does not import it from "
                    "{source} (accounts share messages only through an export and an import)",
    "derived": "interest derived from the subscriptions the peer reported ({subs})",
    "derived_none": "no subscriber behind this link (derived from what the peer reported)",
    "unreachable_leaf": "leaf server not reachable over $SYS (its system account is not "
                        "shared): it has interest ({subs}); its subscribers are not listed",
    "unknown_account": "account {account} does not exist on this server",
}

# link kind -> where the messages it may be handed came from (the forwarding rule)
FORWARD = {"route": {"client", "gateway", "leaf"}, "gateway": {"client", "leaf"},
           "leaf": {"client", "route", "gateway", "leaf"}}


def reason(code, **fields):
    fields = dict(fields)
    if code == "gateway_interest":
        queues = fields.get("queues") or []
        fields["queue_text"] = "" if fields.get("plain") or not queues else (
            " (queue groups %s)" % ", ".join(queues))
        if fields.get("plain") and queues:
            fields["queue_text"] = " (and queue groups %s)" % ", ".join(queues)
    return {"code": code, "text": REASONS[code].format(**fields)}


class BadInput(ValueError):
    """An account or subject that cannot be explained (answered with 400)."""


def check_input(account, subject):
    if not account:
        raise BadInput("account: required (e.g. ?account=APP; $G is the default account)")
    if not subject:
        raise BadInput("subject: required")
    if not is_valid_literal_subject(subject.encode()):
        raise BadInput("subject: %r is not a valid publish subject (tokens separated by "
                       "'.', no wildcards, no spaces)" % subject)


def not_imported(owner, sub_subject, subject, source, cid, name, user):
    """A subscriber of another account that matches but is not reached."""
    return {"account": owner, "subject": sub_subject, "queue": "", "delivered_as": subject,
            "via": None, "kind": "client", "client": cid, "name": name, "user": user,
            "receives": False, "reason": reason("not_imported", account=owner, source=source)}


# -- Go servers ----------------------------------------------------------------------------


def _matches(pattern, subject):
    try:
        return subject_matches(pattern.encode(), subject.encode())
    except (AttributeError, ValueError):
        return False


def from_go(info, connz, leafz, routez, gatewayz, wanted):
    """A Go server's part from its answers. ``wanted``: (account, subject,
    via) to match, the first the explained one, then those stream imports
    deliver into (learnt from our servers' parts: imports are configured
    alike across a cluster). Route and gateway links get ``sends: None``:
    :func:`assemble` derives them from what the peers reported."""
    account, subject = wanted[0][0], wanted[0][1]
    part = {"server": {"id": info.get("id", ""), "name": info.get("name", ""),
                       "cluster": info.get("cluster", ""), "impl": "nats-server"},
            "account": account, "subject": subject, "known": True, "receivers": [],
            "links": [], "notes": []}
    for conn in (connz or {}).get("connections") or ():
        if conn.get("kind", "Client") != "Client":  # Go lists leaf connections too
            continue
        for detail in conn.get("subscriptions_list_detail") or ():
            # the detail's account is often left out: the connection's (auth=true)
            owner = detail.get("account") or conn.get("account") or "$G"
            for acc, subj, via in wanted:
                if owner == acc and _matches(detail.get("subject", ""), subj):
                    part["receivers"].append({
                        "account": acc, "subject": detail.get("subject", ""),
                        "queue": detail.get("qgroup", ""), "delivered_as": subj, "via": via,
                        "kind": "client", "client": conn.get("cid", 0),
                        "name": conn.get("name", ""),
                        "user": conn.get("authorized_user", ""), "receives": True,
                        "reason": None})
    accounts = {w[0] for w in wanted}
    for conn in (connz or {}).get("connections") or ():
        owner = conn.get("account") or "$G"
        if conn.get("kind", "Client") != "Client" or owner in accounts:
            continue
        for detail in conn.get("subscriptions_list_detail") or ():
            if _matches(detail.get("subject", ""), subject):
                part["receivers"].append(not_imported(
                    owner, detail.get("subject", ""), subject, account,
                    conn.get("cid", 0), conn.get("name", ""), conn.get("authorized_user", "")))
    if any(r["receives"] for r in part["receivers"]):
        part["notes"].append("nats-server does not report permissions: the deny rules of "
                             "its subscribers are not checked")
    peers = set()
    for conn in (routez or {}).get("routes") or ():
        peer = conn.get("remote_id")
        if peer and peer not in peers:
            peers.add(peer)
            part["links"].append({"kind": "route", "direction": "both", "peer_id": peer,
                                  "peer_name": conn.get("remote_name", ""),
                                  "peer_cluster": "", "account": "", "sends": None})
    for cluster, entry in sorted(((gatewayz or {}).get("outbound_gateways") or {}).items()):
        part["links"].append({"kind": "gateway", "direction": "out",
                              "peer_id": (entry.get("connection") or {}).get("name", ""),
                              "peer_name": "", "peer_cluster": cluster, "account": "",
                              "sends": None})
    for leaf in (leafz or {}).get("leafs") or ():
        entry = {"kind": "leaf", "direction": "out" if leaf.get("is_spoke") else "in",
                 "role": "spoke" if leaf.get("is_spoke") else "hub", "peer_id": "",
                 "peer_name": leaf.get("name", ""), "peer_cluster": "",
                 "account": leaf.get("account", "")}
        if entry["account"] != account:
            entry["sends"], entry["reason"] = False, reason("isolation", account=entry["account"])
        else:
            subs = [s for s in leaf.get("subscriptions_list") or () if _matches(s, subject)]
            entry["sends"] = bool(subs)
            entry["reason"] = reason("interest", subs=", ".join(sorted(subs))) if subs \
                else reason("no_interest")
        part["links"].append(entry)
    return part


# -- the whole system ---------------------------------------------------------------------


def _receives_here(part):
    return [r for r in part["receivers"] if r["receives"]]


def _derive(parts):
    """Fill ``sends`` of links whose side could not tell (Go's routes and
    gateways): a peer wants the message if it, or a leaf behind it, has a
    receiver (interest propagation guarantees the converse)."""
    def wants(sid):
        part = parts.get(sid)
        if part is None:
            return False
        return bool(_receives_here(part)) or any(
            link["kind"] == "leaf" and link.get("role") == "hub" and link["sends"]
            for link in part["links"])

    by_cluster = {}
    for sid, part in parts.items():
        by_cluster.setdefault(part["server"].get("cluster", ""), []).append(sid)
    for part in parts.values():
        for link in part["links"]:
            if link.get("sends") is not None:
                continue
            if link["kind"] == "gateway":
                subs = [s for s in by_cluster.get(link["peer_cluster"], ()) if wants(s)]
            else:
                subs = [link["peer_id"]] if wants(link["peer_id"]) else []
            link["sends"] = bool(subs)
            names = ", ".join(sorted(parts[s]["server"]["name"] for s in subs))
            link["reason"] = reason("derived", subs=names) if subs else reason("derived_none")


def _where(part):
    server = part["server"]
    return {"server": server.get("name", ""), "server_id": server.get("id", ""),
            "cluster": server.get("cluster", "")}


def _pick(group, origin_cluster):
    """Which members may take a queue group's message published on the
    origin, and why: the publishing cluster's (local and routed alike), else
    the nearest other cluster's, else a leaf member (only as a fallback)."""
    members = group["members"]
    local = [m for m in members if m["cluster"] == origin_cluster and not m.get("leaf")]
    if local:
        return local, ("one member in cluster %s (the publishing cluster; local and routed "
                       "members are picked alike)" % origin_cluster)
    remote = [m for m in members if not m.get("leaf")]
    if remote:
        clusters = sorted({m["cluster"] for m in remote})
        return remote, ("one member in the nearest other cluster with members (gateway RTT "
                        "order): %s" % ", ".join(clusters))
    return members, "one leaf member (leaf members serve only when the group has no other member)"


def assemble(parts, origin, account, subject, mapping=None):
    """``parts``: server id -> part; ``origin``: the publishing server's id."""
    _derive(parts)
    origin_part = parts[origin]
    origin_cluster = origin_part["server"].get("cluster", "")
    receivers, stopped, visited = [], [], set()
    queue = [(origin, "client")]
    while queue:
        sid, came = queue.pop(0)
        if sid in visited:
            continue
        visited.add(sid)
        part = parts[sid]
        where = _where(part)
        for receiver in part["receivers"]:
            entry = dict(where, **receiver)
            if receiver["receives"]:
                receivers.append(entry)
            else:
                stopped.append(dict(where, client=receiver.get("client"),
                                    name=receiver.get("name", ""), reason=receiver["reason"]))
        for link in part["links"]:
            if came not in FORWARD.get(link["kind"], ()) or link["peer_id"] in visited:
                continue
            if link["sends"]:
                peer = link["peer_id"]
                if peer in parts:
                    queue.append((peer, link["kind"]))
                elif link["kind"] == "leaf":
                    receivers.append(dict(where, kind="leaf server", server=link["peer_name"],
                                          server_id="", cluster="", hub=where["server"],
                                          account=link["account"], queue="",
                                          reason=reason("unreachable_leaf",
                                                        subs=link["reason"]["text"])))
                continue
            peer = "cluster " + link["peer_cluster"] if link["kind"] == "gateway" else (
                link.get("peer_name") or link["peer_id"])
            stopped.append(dict(where, link=link["kind"], peer=peer, reason=link["reason"]))
    groups = {}
    for r in receivers:
        if r.get("queue"):
            group = groups.setdefault((r["account"], r["queue"]), {
                "account": r["account"], "queue": r["queue"], "members": []})
            group["members"].append({"server": r["server"], "cluster": r["cluster"],
                                     "client": r.get("client"), "name": r.get("name", ""),
                                     "leaf": r.get("kind") == "leaf server"})
    queue_groups = []
    for key in sorted(groups):
        group = groups[key]
        candidates, group["picked"] = _pick(group, origin_cluster)
        group["candidates"] = sorted({m["server"] for m in candidates})
        queue_groups.append(group)
    unknown = [dict(_where(p), reason=reason("unknown_account", account=account))
               for p in parts.values() if not p.get("known", True)]
    out = {"account": account, "subject": subject, "origin": _where(origin_part),
           "receivers": [r for r in receivers if not r.get("queue")],
           "queue_groups": queue_groups, "not_delivered": stopped + unknown,
           "servers_reached": sorted(parts[s]["server"]["name"] for s in visited),
           "notes": sorted({n for p in parts.values() for n in p.get("notes", ())})}
    if mapping:
        out["mapping"] = mapping
    return out
