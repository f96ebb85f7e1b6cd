"""Sans-IO: one server's view and the whole system's, from the standard
monitoring answers (VARZ, ROUTEZ, GATEWAYZ, LEAFZ, JSZ).

Our servers and Go's are read by the same code, so a Go server in the system
appears from its own ``$SYS`` answers exactly as one of ours does, and the local
``/topz`` is the same conversion of this server's own endpoint handlers.

A server view::

    {"id", "name", "cluster", "gateway", "impl": "pluggy-nats"|"nats-server",
     "version", "host", "port", "clients", "subscriptions", "jetstream",
     "links": [{"kind": "route"|"gateway"|"leaf", "direction": "out"|"in",
                "peer_id", "peer_name", "peer_cluster", "account", "role",
                "connections", "rtt_ms", "in_msgs", "out_msgs", "in_bytes",
                "out_bytes", "pending_bytes", "subscriptions"}],
     "streams": [{"account", "name", "replicas", "leader", "cluster",
                  "mirror", "sources"}]}
"""

import re

ENDPOINTS = ("VARZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "JSZ")
# What each endpoint is asked for over $SYS (nats-server's option names).
REQUEST_BODIES = {"JSZ": {"accounts": True, "streams": True, "config": True}}
REQUIRED = ("VARZ", "ROUTEZ", "GATEWAYZ", "LEAFZ")  # JSZ is extra: missing it is not partial

_COUNTERS = ("in_msgs", "out_msgs", "in_bytes", "out_bytes", "pending_bytes", "subscriptions")
_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4,
          "h": 3.6e6}
_PART = re.compile(r"([0-9.]+)(ns|us|µs|μs|ms|s|m|h)")


def duration_ms(text):
    """A Go duration string (``272µs``, ``1.24ms``, ``1m2.5s``, ``0s``) in
    milliseconds; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    total, pos = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            return None
        try:
            total += float(match.group(1)) * _UNITS[match.group(2)]
        except ValueError:
            return None
        pos = match.end()
    return round(total, 3) if pos == len(text) else None


def _link(kind, direction, conn, **fields):
    link = {"kind": kind, "direction": direction, "peer_id": "", "peer_name": "",
            "peer_cluster": "", "account": "", "role": "", "connections": 1,
            "rtt_ms": duration_ms(conn.get("rtt")) or 0.0}
    link.update(fields)
    for key in _COUNTERS:
        value = conn.get(key, conn.get("pending_size", 0) if key == "pending_bytes" else 0)
        link[key] = value if isinstance(value, int) else 0
    return link


def _merge(links):
    """Pooled or pinned route connections to one peer are one link."""
    merged = {}
    for link in links:
        key = (link["kind"], link["direction"], link.get("peer_id"), link.get("peer_cluster"))
        if key not in merged:
            merged[key] = dict(link)
            continue
        into = merged[key]
        into["connections"] += 1
        for counter in _COUNTERS:
            into[counter] += link[counter]
        rtts = [r for r in (into["rtt_ms"], link["rtt_ms"]) if r]
        into["rtt_ms"] = min(rtts) if rtts else 0.0
    return list(merged.values())


def route_links(routez):
    links = []
    for conn in (routez or {}).get("routes") or ():
        # a route carries both ways, whoever dialled
        links.append(_link("route", "both", conn, peer_id=conn.get("remote_id") or "",
                           peer_name=conn.get("remote_name") or ""))
    return _merge(links)


def gateway_links(gatewayz):
    gatewayz = gatewayz or {}
    links = []
    for cluster, entry in sorted((gatewayz.get("outbound_gateways") or {}).items()):
        conn = entry.get("connection") or {}
        links.append(_link("gateway", "out", conn, peer_id=conn.get("name") or "",
                           peer_cluster=cluster))
    for cluster, entries in sorted((gatewayz.get("inbound_gateways") or {}).items()):
        for entry in entries or ():
            conn = entry.get("connection") or {}
            links.append(_link("gateway", "in", conn, peer_id=conn.get("name") or "",
                               peer_cluster=cluster))
    return links


def leaf_links(leafz):
    links = []
    for conn in (leafz or {}).get("leafs") or ():
        spoke = bool(conn.get("is_spoke"))
        # role: what *we* are on this link (the side that dialled is the spoke)
        links.append(_link("leaf", "out" if spoke else "in", conn, peer_id="",
                           peer_name=conn.get("name") or "", account=conn.get("account") or "",
                           role="spoke" if spoke else "hub"))
    return links


def streams(jsz, server_name):
    """Streams this server reports (leader or replica), with their placement
    and mirror/source origins."""
    out = []
    for account in (jsz or {}).get("account_details") or ():
        for detail in account.get("stream_detail") or ():
            config = detail.get("config") or {}
            cluster = detail.get("cluster") or {}
            replicas = [r.get("name") for r in cluster.get("replicas") or () if r.get("name")]
            stream = {"account": account.get("name") or "", "name": detail.get("name") or "",
                      "replicas": config.get("num_replicas") or 1 + len(replicas),
                      "leader": cluster.get("leader") or server_name,
                      "peers": sorted({cluster.get("leader") or server_name, *replicas}),
                      "cluster": cluster.get("name") or "",
                      "messages": (detail.get("state") or {}).get("messages", 0)}
            mirror = config.get("mirror")
            if mirror:
                stream["mirror"] = mirror.get("name", "")
            sources = [s.get("name", "") for s in config.get("sources") or ()]
            if sources:
                stream["sources"] = sources
            out.append(stream)
    return out


def server_view(varz, routez=None, gatewayz=None, leafz=None, jsz=None, info=None):
    """One server's view from its endpoint answers (``info``: the ``server``
    block of a ``$SYS`` answer, used where VARZ is missing)."""
    varz = varz or {}
    info = info or {}
    go = str(varz.get("go", ""))  # nats-server: "go1.22"; ours: "python3.11"
    impl = "pluggy-nats" if go.startswith("python") else "nats-server" if go.startswith(
        "go") else ""
    view = {
        "id": varz.get("server_id") or info.get("id", ""),
        "name": varz.get("server_name") or info.get("name", ""),
        "cluster": (varz.get("cluster") or {}).get("name") or info.get("cluster", ""),
        "gateway": (varz.get("gateway") or {}).get("name", ""),
        "impl": impl,
        "version": varz.get("version") or info.get("ver", ""),
        "host": varz.get("host") or info.get("host", ""),
        "port": varz.get("port", 0),
        "clients": varz.get("connections", 0),
        "subscriptions": varz.get("subscriptions", 0),
        "jetstream": bool(info.get("jetstream")) or (bool(jsz) and not jsz.get("disabled")
                                                      and "config" in jsz),
        "links": route_links(routez) + gateway_links(gatewayz) + leaf_links(leafz),
    }
    view["streams"] = streams(jsz, view["name"])
    return view


def local_view(server, endpoints):
    """This server's view from its own endpoint handlers (``endpoints``: path
    -> handler, as the monitor registry holds them)."""
    answers = {}
    for name in ENDPOINTS:
        handler = endpoints.get("/" + name.lower())
        if handler is not None:
            answers[name] = handler(server, query_strings(REQUEST_BODIES.get(name, {})))
    return server_view(answers.get("VARZ"), answers.get("ROUTEZ"), answers.get("GATEWAYZ"),
                       answers.get("LEAFZ"), answers.get("JSZ"))


def query_strings(body):
    """A $SYS request body as a monitoring query (``True`` is ``"1"``)."""
    return {k: "1" if v is True else str(v) for k, v in body.items()}


# -- the whole system ---------------------------------------------------------------


def named_ids(endpoint, response):
    """The server ids one answer names: its server, and the peers of its
    routes (ROUTEZ) or gateways (GATEWAYZ)."""
    ids = {response["server"]["id"]}
    data = response.get("data") or {}
    if endpoint == "ROUTEZ":
        ids.update(conn["remote_id"] for conn in data.get("routes") or ()
                   if conn.get("remote_id"))
    elif endpoint == "GATEWAYZ":
        ids.update(link["peer_id"] for link in gateway_links(data) if link["peer_id"])
    return ids


def system_leafs(varz, leafz):
    """Names of the leaf servers behind links bound to the system account:
    they share ``$SYS``, so they must answer for themselves."""
    system_account = (varz or {}).get("system_account") or "$SYS"
    return {leaf["name"] for leaf in (leafz or {}).get("leafs") or ()
            if leaf.get("account") == system_account and leaf.get("name")}


def missing_leafs(answers):
    """Names of system-account leaf servers that did not answer at all."""
    names, answered = set(), set()
    for per_server in answers.values():
        answered.update(r["server"].get("name") for r in per_server.values())
    for sid, response in answers.get("LEAFZ", {}).items():
        varz = (answers.get("VARZ", {}).get(sid) or {}).get("data")
        names |= system_leafs(varz, response.get("data"))
    return sorted(names - answered)


def expected_ids(answers):
    """Every server id the answers name (a peer that never answered is missing)."""
    ids = set()
    for endpoint, per_server in answers.items():
        for response in per_server.values():
            ids |= named_ids(endpoint, response)
    return ids


def missing(answers, required=REQUIRED):
    """(server id, endpoint) pairs of the required endpoints not answered."""
    ids = expected_ids(answers)
    return sorted((sid, ep) for ep in required for sid in ids
                  if sid not in answers.get(ep, {}))


def assemble(answers, errors=(), elapsed_ms=None):
    """The system view from ``answers``: endpoint -> {server id -> $SYS
    response}. Servers reached only as the far end of a leaf link (their
    ``$SYS`` is not shared with ours) appear as ``reachable: false`` with what
    their hub knows of them."""
    def data(ep, sid):
        response = answers.get(ep, {}).get(sid) or {}
        return response.get("data")

    ids = expected_ids(answers)
    servers = []
    names = {}
    gaps = missing(answers)
    for sid in sorted(ids):
        info = next((answers[ep][sid].get("server") for ep in ENDPOINTS
                     if sid in answers.get(ep, {})), None)
        if info is None:
            servers.append({"id": sid, "name": "", "cluster": "", "reachable": False,
                            "answered": False, "links": [], "streams": []})
            continue
        view = server_view(data("VARZ", sid), data("ROUTEZ", sid), data("GATEWAYZ", sid),
                           data("LEAFZ", sid), data("JSZ", sid), info=info)
        view["reachable"] = view["answered"] = True
        view["missing"] = [ep for s, ep in gaps if s == sid]
        servers.append(view)
        names[view["name"]] = sid
    for view in servers:  # peers known by id get their names, leaf peers their ids
        for link in view["links"]:
            if link["kind"] == "leaf" and link["peer_name"] in names:
                link["peer_id"] = names[link["peer_name"]]
    by_id = {v["id"]: v for v in servers}
    for view in servers:
        for link in view["links"]:
            peer = by_id.get(link.get("peer_id"))
            if peer is not None:
                link["peer_name"] = link["peer_name"] or peer["name"]
                link["peer_cluster"] = link["peer_cluster"] or peer.get("cluster", "")
    # Leafs whose $SYS we cannot reach: known from their hub's LEAFZ.
    for view in list(servers):
        for link in view["links"]:
            if link["kind"] == "leaf" and not link["peer_id"] and link["role"] == "hub":
                key = "leaf:%s:%s" % (view["id"], link["peer_name"])
                link["peer_id"] = key
                if key not in by_id:
                    leaf = {"id": key, "name": link["peer_name"], "cluster": "",
                            "reachable": False, "answered": False, "hub": view["id"],
                            "account": link["account"], "links": [], "streams": []}
                    by_id[key] = leaf
                    servers.append(leaf)
    clusters = {}
    for view in servers:
        if view.get("answered"):
            clusters.setdefault(view.get("cluster") or "", []).append(view["id"])
    silent = missing_leafs(answers)
    out = {"servers": servers, "clusters": clusters, "edges": edges(servers),
           "streams": system_streams(servers), "partial": bool(gaps or errors or silent),
           "missing": [{"server_id": s, "endpoint": ep} for s, ep in gaps]
           + [{"server_name": n, "endpoint": "*"} for n in silent],
           "errors": list(errors)}
    if elapsed_ms is not None:
        out["elapsed_ms"] = elapsed_ms
    return out


def edges(servers):
    """One edge per link seen from either end: route edges per pair, gateway
    edges per outbound, leaf edges hub -> leaf. ``a`` is the side whose
    counters are shown (``out`` from ``a`` to ``b``)."""
    seen = {}
    for view in servers:
        for link in view.get("links") or ():
            peer = link.get("peer_id") or ""
            kind = link["kind"]
            if kind == "route":
                key = ("route",) + tuple(sorted((view["id"], peer)))
            elif kind == "gateway":
                out = link["direction"] == "out"
                key = ("gateway", view["id"] if out else peer, peer if out else view["id"])
            else:
                hub = link["role"] == "hub"
                key = ("leaf", view["id"] if hub else peer, peer if hub else view["id"])
            if key in seen:
                known = seen[key]
                if kind == "leaf" and link["account"] not in known["account"].split(", "):
                    # one more leaf link between the same two servers (another account)
                    known["account"] = ", ".join(sorted(known["account"].split(", ")
                                                        + [link["account"]]))
                continue
            a, b = key[1], key[2]
            mine = view["id"] == a
            seen[key] = {"kind": kind, "a": a, "b": b, "rtt_ms": link["rtt_ms"],
                         "connections": link["connections"],
                         "a_to_b_msgs": link["out_msgs" if mine else "in_msgs"],
                         "b_to_a_msgs": link["in_msgs" if mine else "out_msgs"],
                         "a_to_b_bytes": link["out_bytes" if mine else "in_bytes"],
                         "b_to_a_bytes": link["in_bytes" if mine else "out_bytes"],
                         "pending_bytes": link["pending_bytes"],
                         "account": link["account"]}
    return list(seen.values())


def system_streams(servers):
    """Each stream once (its leader's report wins), held by every server that
    reports it or that its leader names as a replica."""
    streams_, holders = {}, {}
    for view in servers:
        for stream in view.get("streams") or ():
            key = (stream["account"], stream["name"])
            holders.setdefault(key, set()).update(stream["peers"] + [view["name"]])
            known = streams_.get(key)
            if known is None or stream["leader"] == view["name"]:
                streams_[key] = dict(stream)
    for key, stream in streams_.items():
        stream["peers"] = sorted(holders[key])
    return [streams_[k] for k in sorted(streams_)]
