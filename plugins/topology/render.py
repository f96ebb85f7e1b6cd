"""Sans-IO: a system view (:func:`.view.assemble`) as a text tree, SVG or
Graphviz DOT, and the layout the SVG and the ``/topology`` page share.

Layout: each cluster is a box of servers in a grid (``ceil(sqrt(n))``
columns); leaf servers known only from their hub hang in a row under their
cluster's box; cluster groups go left to right and wrap. Linear in the number
of servers, so a hundred servers lay out in well under a millisecond.
"""

import html
import math

NODE_W, NODE_H = 130, 40
CELL_W, CELL_H = 150, 64
PAD, TITLE = 14, 22
MAX_WIDTH = 1500
EDGE_STYLE = {"route": ("#888", "", 1.5), "gateway": ("#2f6fdf", "6 4", 2.5),
              "leaf": ("#2a9d55", "2 3", 1.5)}


def _name(server):
    return server.get("name") or server["id"][:8]


def _hub(server):
    """The id of the server this one is a leaf of, or None."""
    if server.get("hub"):
        return server["hub"]
    return next((link["peer_id"] for link in server.get("links") or ()
                 if link["kind"] == "leaf" and link.get("role") == "spoke"), None)


def layout(system):
    """{"nodes": {id: {"x", "y"}}, "groups": [{"cluster", "x", "y", "w", "h"}],
    "width", "height"}: node centres and cluster boxes."""
    servers = system["servers"]
    by_id = {s["id"]: s for s in servers}
    clusters = {}
    hanging = {}  # cluster -> leaf servers hanging under it
    for server in servers:
        hub = by_id.get(_hub(server))
        if hub is not None and not server.get("cluster"):
            # a leaf (seen from its hub, or answering itself without a cluster)
            cluster = hub.get("cluster") or ""
            clusters.setdefault(cluster, [])
            hanging.setdefault(cluster, []).append(server)
        elif server.get("answered"):
            clusters.setdefault(server.get("cluster") or "", []).append(server)
    nodes, groups = {}, []
    x = y = row_h = 0
    width = 0
    for cluster in sorted(clusters, key=lambda c: (c == "", c)):
        members = sorted(clusters[cluster], key=_name)
        column = {m["id"]: i for i, m in enumerate(members)}
        # under their hubs, as far as the order allows: fewer crossing lines
        leafs = sorted(hanging.get(cluster, ()), key=lambda s: (column.get(_hub(s), 0),
                                                               _name(s)))
        cols = max(1, math.ceil(math.sqrt(len(members))), min(len(leafs), 4))
        rows = math.ceil(len(members) / cols) if members else 0
        box_w = cols * CELL_W + 2 * PAD
        box_h = rows * CELL_H + 2 * PAD + TITLE
        leaf_rows = math.ceil(len(leafs) / cols) if leafs else 0
        total_h = box_h + leaf_rows * CELL_H + (PAD if leafs else 0)
        if x and x + box_w > MAX_WIDTH:
            x, y, row_h = 0, y + row_h + 2 * PAD, 0
        groups.append({"cluster": cluster, "x": x + PAD, "y": y + PAD, "w": box_w,
                       "h": box_h})
        for i, server in enumerate(members):
            nodes[server["id"]] = {"x": x + 2 * PAD + (i % cols) * CELL_W + CELL_W // 2 - PAD,
                                   "y": y + PAD + TITLE + PAD + (i // cols) * CELL_H
                                   + CELL_H // 2}
        for i, server in enumerate(leafs):
            nodes[server["id"]] = {"x": x + 2 * PAD + (i % cols) * CELL_W + CELL_W // 2 - PAD,
                                   "y": y + PAD + box_h + PAD + (i // cols) * CELL_H
                                   + CELL_H // 2}
        x += box_w + 2 * PAD
        width = max(width, x)
        row_h = max(row_h, total_h + PAD)
    return {"nodes": nodes, "groups": groups, "width": max(width, 200),
            "height": y + row_h + PAD}


# -- text -------------------------------------------------------------------------------


def _count(n):
    return "%d" % n if n < 10_000 else "%.1fk" % (n / 1000)


def text(system):
    """A tree: clusters, their servers, each server's links; then streams."""
    servers = system["servers"]
    by_id = {s["id"]: s for s in servers}
    answered = [s for s in servers if s.get("answered")]
    lines = ["system: %d servers answered, %d leaf servers seen from their hubs%s%s" % (
        len(answered), len(servers) - len(answered),
        ", PARTIAL" if system.get("partial") else "",
        " (%.0f ms)" % system["elapsed_ms"] if "elapsed_ms" in system else "")]
    for cluster in sorted(system["clusters"], key=lambda c: (c == "", c)):
        lines.append("cluster %s" % (cluster or "(none)"))
        for sid in sorted(system["clusters"][cluster], key=lambda i: _name(by_id[i])):
            server = by_id[sid]
            lines.append("  %s  %s %s  clients %d%s" % (
                _name(server), server.get("impl", ""), server.get("version", ""),
                server.get("clients", 0), "  jetstream" if server.get("jetstream") else ""))
            for link in server["links"]:
                peer = by_id.get(link["peer_id"])
                who = link["peer_name"] or (_name(peer) if peer else link["peer_id"][:8])
                if link["kind"] == "gateway":
                    who = "%s %s (%s)" % ("->" if link["direction"] == "out" else "<-",
                                          link["peer_cluster"], who)
                if link["kind"] == "leaf":
                    who = "%s [%s] (%s)" % (who, link["account"],
                                            "we are hub" if link["role"] == "hub" else
                                            "we are spoke")
                lines.append("    %-8s %-34s rtt %6.2fms  out %s / in %s msgs%s" % (
                    link["kind"], who, link["rtt_ms"], _count(link["out_msgs"]),
                    _count(link["in_msgs"]),
                    "  pending %d B" % link["pending_bytes"] if link["pending_bytes"] else ""))
    if system.get("streams"):
        lines.append("streams")
        for stream in system["streams"]:
            origin = ""
            if stream.get("mirror"):
                origin = "  mirror of %s" % stream["mirror"]
            elif stream.get("sources"):
                origin = "  sources %s" % ", ".join(stream["sources"])
            lines.append("  %s/%s  R%d  leader %s  on %s%s" % (
                stream["account"], stream["name"], stream["replicas"], stream["leader"],
                ", ".join(stream["peers"]), origin))
    for gap in system.get("missing") or ():
        lines.append("missing: %s did not answer %s" % (
            gap.get("server_id") or gap.get("server_name"), gap["endpoint"]))
    for error in system.get("errors") or ():
        lines.append("error: %s" % error)
    return "\n".join(lines) + "\n"


# -- SVG --------------------------------------------------------------------------------


def _e(value):
    return html.escape(str(value), quote=True)


def _bend(a, b, amount):
    """The control point of a quadratic curve from ``a`` to ``b`` bent to its
    left by ``amount`` of its length (gateways: each direction to its side)."""
    return ((a["x"] + b["x"]) / 2 - (b["y"] - a["y"]) * amount,
            (a["y"] + b["y"]) / 2 + (b["x"] - a["x"]) * amount)


def stream_arrows(system):
    """(from server name, to server name, label) for each mirror/source: from
    the origin stream's leader to the stream's."""
    leaders = {(s["account"], s["name"]): s["leader"] for s in system.get("streams") or ()}
    out = []
    for stream in system.get("streams") or ():
        for origin in ([stream["mirror"]] if stream.get("mirror") else []) + list(
                stream.get("sources") or ()):
            frm = leaders.get((stream["account"], origin))
            if frm:
                out.append((frm, stream["leader"], "%s -> %s" % (origin, stream["name"])))
    return out


def svg(system, places=None):
    places = places or layout(system)
    nodes = places["nodes"]
    by_name = {s.get("name"): s["id"] for s in system["servers"]}
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (places["width"], places["height"]),
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#d9822b"/>'
           '</marker></defs>']
    for g in places["groups"]:
        out.append('<g class="cluster"><rect x="%d" y="%d" width="%d" height="%d" rx="8" '
                   'fill="#f4f6fa" stroke="#b8c2d6"/><text x="%d" y="%d" font-weight="bold">'
                   'cluster %s</text></g>' % (g["x"], g["y"], g["w"], g["h"], g["x"] + 8,
                                              g["y"] + 16, _e(g["cluster"] or "(none)")))
    for edge in system["edges"]:
        a, b = nodes.get(edge["a"]), nodes.get(edge["b"])
        if a is None or b is None:
            continue
        color, dash, width = EDGE_STYLE.get(edge["kind"], ("#555", "", 1))
        cx, cy = _bend(a, b, 0.18 if edge["kind"] == "gateway" else 0)
        out.append('<path class="edge %s" d="M%d,%d Q%d,%d %d,%d" fill="none" stroke="%s" '
                   'stroke-width="%s"%s><title>%s %d/%d msgs</title></path>' % (
                       edge["kind"], a["x"], a["y"], cx, cy, b["x"], b["y"], color, width,
                       ' stroke-dasharray="%s"' % dash if dash else "", edge["kind"],
                       edge["a_to_b_msgs"], edge["b_to_a_msgs"]))
    for frm, to, label in stream_arrows(system):
        a, b = nodes.get(by_name.get(frm)), nodes.get(by_name.get(to))
        if a and b and a is not b:
            out.append('<line class="stream-arrow" x1="%d" y1="%d" x2="%d" y2="%d" '
                       'stroke="#d9822b" stroke-width="2" marker-end="url(#arrow)">'
                       '<title>%s</title></line>' % (a["x"], a["y"] + 8, b["x"], b["y"] + 8,
                                                     _e(label)))
    for server in system["servers"]:
        n = nodes.get(server["id"])
        if n is None:
            continue
        answered = server.get("answered")
        fill = ("#fff" if server.get("impl") == "pluggy-nats" else "#fff7e0") if answered \
            else "#eef8f0"
        sub = ("%s  %d clients" % ("py" if server.get("impl") == "pluggy-nats" else "go",
                                   server.get("clients", 0)) if answered
               else "leaf [%s]" % server.get("account", ""))
        out.append('<g class="server" data-id="%s"><rect x="%d" y="%d" width="%d" height="%d" '
                   'rx="5" fill="%s" stroke="%s"/><text x="%d" y="%d" text-anchor="middle" '
                   'font-weight="bold">%s</text><text x="%d" y="%d" text-anchor="middle" '
                   'fill="#555">%s</text></g>' % (
                       _e(server["id"]), n["x"] - NODE_W // 2, n["y"] - NODE_H // 2, NODE_W,
                       NODE_H, fill, "#c33" if server.get("missing") else "#567", n["x"],
                       n["y"] - 3, _e(_name(server)[:20]), n["x"], n["y"] + 12, _e(sub)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- DOT --------------------------------------------------------------------------------


def _q(value):
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def dot(system):
    out = ["graph nats {", "  node [shape=box, style=rounded, fontname=sans];"]
    by_id = {s["id"]: s for s in system["servers"]}
    for i, cluster in enumerate(sorted(system["clusters"], key=lambda c: (c == "", c))):
        out.append("  subgraph cluster_%d {" % i)
        out.append("    label=%s;" % _q("cluster " + (cluster or "(none)")))
        for sid in system["clusters"][cluster]:
            server = by_id[sid]
            out.append("    %s [label=%s];" % (_q(sid), _q("%s\\n%s, %d clients" % (
                _name(server), server.get("impl", ""), server.get("clients", 0)))))
        out.append("  }")
    for server in system["servers"]:
        if not server.get("answered"):
            out.append("  %s [label=%s, style=dashed];" % (_q(server["id"]), _q(
                "%s\\nleaf [%s]" % (_name(server), server.get("account", "")))))
    styles = {"route": "", "gateway": ", style=bold, color=blue", "leaf": ", style=dashed"}
    for edge in system["edges"]:
        if edge["a"] in by_id and edge["b"] in by_id:
            out.append("  %s -- %s [label=%s%s];" % (
                _q(edge["a"]), _q(edge["b"]), _q(edge["kind"]), styles.get(edge["kind"], "")))
    out.append("}")
    return "\n".join(out) + "\n"
