"""A hundred servers: the system view, its layout and SVG are built in
milliseconds, and the page draws them all in headless Chromium (served here by
a plain HTTP server with synthetic answers, so no hundred processes run)."""

import http.server
import json
import re
import threading
import time
from importlib.resources import files

from pluggy_nats_plugins.topology import render as draw
from pluggy_nats_plugins.topology.gather import Gathering
from pluggy_nats_plugins.topology.view import assemble

from .test_topology_page import render

CLUSTERS, PER_CLUSTER, LEAFS = 10, 10, 20


def sid(c, i):
    return "N%02d%02d" % (c, i) + "X" * 52


def answer(c, i, data):
    return {"server": {"id": sid(c, i), "name": "c%d-s%d" % (c, i), "cluster": "C%d" % c,
                       "ver": "2.15.1"}, "data": data}


def synthetic():
    return assemble(synthetic_answers())


def synthetic_answers():
    """$SYS answers of 10 full-mesh clusters of 10, every server with an
    outbound gateway to each other cluster, 20 leafs on the first servers."""
    answers = {ep: {} for ep in ("VARZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "JSZ")}
    conn = {"rtt": "1.2ms", "in_msgs": 10, "out_msgs": 20, "in_bytes": 100, "out_bytes": 200}
    for c in range(CLUSTERS):
        for i in range(PER_CLUSTER):
            me = sid(c, i)
            answers["VARZ"][me] = answer(c, i, {
                "server_id": me, "server_name": "c%d-s%d" % (c, i), "version": "2.15.1",
                "go": "go1.22", "cluster": {"name": "C%d" % c}, "connections": i})
            answers["ROUTEZ"][me] = answer(c, i, {"routes": [
                dict(conn, remote_id=sid(c, j), remote_name="c%d-s%d" % (c, j))
                for j in range(PER_CLUSTER) if j != i]})
            answers["GATEWAYZ"][me] = answer(c, i, {"outbound_gateways": {
                "C%d" % d: {"connection": dict(conn, name=sid(d, i))}
                for d in range(CLUSTERS) if d != c}, "inbound_gateways": {}})
            answers["LEAFZ"][me] = answer(c, i, {"leafs": [
                dict(conn, name="leaf-%d-%d" % (c, i), account="APP", is_spoke=False)
                for _ in range(1) if i < LEAFS // CLUSTERS]})
            answers["JSZ"][me] = answer(c, i, {"disabled": True})
    return answers


def test_hundred_servers_assemble_and_layout_fast():
    started = time.perf_counter()
    system = synthetic()
    built = time.perf_counter()
    places = draw.layout(system)
    svg = draw.svg(system, places)
    drawn = time.perf_counter()
    assert len([s for s in system["servers"] if s["answered"]]) == 100
    assert len(system["servers"]) == 120 and not system["partial"]
    # routes: 45 per cluster; gateways: one outbound per server per other cluster
    kinds = [e["kind"] for e in system["edges"]]
    assert kinds.count("route") == 450 and kinds.count("gateway") == 900
    assert kinds.count("leaf") == 20
    positions = {(n["x"], n["y"]) for n in places["nodes"].values()}
    assert len(positions) == 120  # no two servers in one place
    assert svg.count('class="server"') == 120
    print("100 servers: assemble %.1f ms, layout + svg %.1f ms, svg %d KB" % (
        (built - started) * 1000, (drawn - built) * 1000, len(svg) // 1024))
    assert built - started < 2 and drawn - built < 2  # generous: a loaded machine


def test_gathering_five_hundred_answers_is_cheap():
    """The in-server gathering checks completeness after every answer: with a
    hundred servers (500 answers) that stays milliseconds, not seconds."""
    answers = synthetic_answers()
    gathering = Gathering()
    started = time.perf_counter()
    for endpoint, per_server in answers.items():
        for response in per_server.values():
            gathering.add(endpoint, json.dumps(response).encode())
            gathering.complete()
    took = time.perf_counter() - started
    assert gathering.complete()
    print("500 answers gathered and checked in %.1f ms" % (took * 1000))
    assert took < 2


def test_page_draws_a_hundred_servers():
    system = synthetic()
    system["layout"] = draw.layout(system)
    body = json.dumps(system).encode()
    page = files("pluggy_nats_plugins.topology").joinpath("static/topology.html").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            data, ctype = (body, "application/json") if self.path.startswith("/topz") \
                else (page, "text/html")
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    started = time.monotonic()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        dom = render("http://127.0.0.1:%d/topology" % httpd.server_address[1], "--dump-dom")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(re.findall(r'<g class="server', dom)) == 120
    assert len(re.findall(r'<path class="edge', dom)) == 1370
    # (the browser's virtual time hides the drawing time: this is the whole run)
    print("page: 120 servers, 1370 links; Chromium run %.1f s" % (time.monotonic() - started))


def test_mirror_and_source_arrows_between_servers():
    """Streams on different servers: an arrow from each origin's leader to the
    mirror's or sourcing stream's leader (the live system keeps both on J0)."""
    answers = synthetic_answers()
    for c, i, streams in [(0, 0, [{"name": "ORDERS", "config": {"num_replicas": 3},
                                   "cluster": {"name": "C0", "leader": "c0-s0", "replicas": [
                                       {"name": "c0-s1"}, {"name": "c0-s2"}]}}]),
                          (1, 0, [{"name": "COPY", "config": {"mirror": {"name": "ORDERS"}},
                                   "cluster": {"leader": "c1-s0"}},
                                  {"name": "ALL", "config": {"sources": [{"name": "ORDERS"},
                                                                         {"name": "COPY"}]},
                                   "cluster": {"leader": "c1-s0"}}])]:
        answers["JSZ"][sid(c, i)] = answer(c, i, {"config": {}, "account_details": [
            {"name": "APP", "stream_detail": streams}]})
    system = assemble(answers)
    orders = next(s for s in system["streams"] if s["name"] == "ORDERS")
    assert (orders["replicas"], orders["leader"], orders["peers"]) == (
        3, "c0-s0", ["c0-s0", "c0-s1", "c0-s2"])
    assert sorted(draw.stream_arrows(system)) == [
        ("c0-s0", "c1-s0", "ORDERS -> ALL"), ("c0-s0", "c1-s0", "ORDERS -> COPY"),
        ("c1-s0", "c1-s0", "COPY -> ALL")]
    assert draw.svg(system).count('class="stream-arrow"') == 2  # none within one server
    assert "APP/COPY  R1  leader c1-s0  on c1-s0  mirror of ORDERS" in draw.text(system)


def test_text_names_what_is_missing():
    answers = synthetic_answers()
    del answers["ROUTEZ"][sid(3, 3)]
    answers["LEAFZ"][sid(0, 0)]["data"]["leafs"].append(
        {"name": "sysleaf", "account": "$SYS", "is_spoke": False})
    system = assemble(answers)
    assert system["partial"] is True
    out = draw.text(system)
    assert "missing: %s did not answer ROUTEZ" % sid(3, 3) in out
    assert "missing: sysleaf did not answer *" in out
