"""``/topz``: one server's view, and the whole system's gathered over $SYS,
on the composed system of conftest.py (a Go server among ours)."""

import signal
import time

from pluggy_nats.testing.raw import wait_for

from .topology_helpers import get, topz


def by_kind(view, kind):
    return [link for link in view["links"] if link["kind"] == kind]


def test_topz_local_view(system, raw_client):
    # Traffic that crosses the gateway and the leaf, so counters move.
    sub = raw_client(system["B0"])
    sub.send(b'CONNECT {"verbose":false,"user":"app","pass":"app"}\r\nSUB topz.count 1\r\nPING\r\n')
    sub.expect(rb"PONG\r\n")
    pub = raw_client(system["A0"])
    pub.send(b'CONNECT {"verbose":false}\r\n')

    def crossed():
        pub.send(b"PUB topz.count 2\r\nhi\r\nPING\r\n")
        pub.expect(rb"PONG\r\n")
        try:
            sub.expect(rb"MSG topz.count 1 2\r\nhi\r\n", timeout=0.2)
            return True
        except AssertionError:
            return False

    wait_for(crossed, timeout=15, message="a message from A0 to B0")
    view = topz(system["A0"])["server"]
    assert (view["name"], view["cluster"], view["gateway"], view["impl"]) == (
        "py-A-0", "A", "A", "pluggy-nats")
    routes = by_kind(view, "route")
    assert [r["peer_name"] for r in routes] == ["go-A-1"]
    assert routes[0]["connections"] >= 1 and routes[0]["peer_id"]
    gateways = by_kind(view, "gateway")
    assert {g["peer_cluster"] for g in gateways} == {"B"}
    out = [g for g in gateways if g["direction"] == "out"]
    assert len(out) == 1 and out[0]["out_msgs"] >= 1 and out[0]["rtt_ms"] >= 0
    leafs = by_kind(view, "leaf")
    assert sorted((x["peer_name"], x["role"], x["account"]) for x in leafs) == [
        ("J0", "hub", "APP"), ("J0", "hub", "SYS"), ("LA", "hub", "APP")]
    assert all(x["rtt_ms"] > 0 for x in leafs)  # the hub's first PING measured it
    for link in view["links"]:
        for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes", "pending_bytes"):
            assert isinstance(link[key], int) and link[key] >= 0, (link, key)
    # The Go leaf's hub is the Go server: A0 knows nothing of it.
    assert "LG" not in {x["peer_name"] for x in view["links"]}


def test_topz_system_lists_every_server_and_link(system):
    for asked in ("A0", "B0"):
        body = topz(system[asked], "?system=1&timeout=10")  # ends when complete
        assert body["partial"] is False, (body["missing"], body["errors"])
        servers = {s["name"]: s for s in body["servers"]}
        answered = {n for n, s in servers.items() if s["answered"]}
        assert answered == {"py-A-0", "go-A-1", "py-B-0", "J0"}  # J0: over a SYS leaf
        assert {n: s["reachable"] for n, s in servers.items() if not s["answered"]} == {
            "LA": False, "LG": False, "TB": False}
        assert servers["go-A-1"]["impl"] == "nats-server"  # from Go's own answers
        names = {s["id"]: s["name"] for s in body["servers"]}
        assert {c: sorted(names[i] for i in members)
                for c, members in body["clusters"].items()} == {
            "A": ["go-A-1", "py-A-0"], "B": ["py-B-0"], "": ["J0"]}
        edges = {(e["kind"], names[e["a"]], names[e["b"]]) for e in body["edges"]}
        assert ("route", *sorted(("py-A-0", "go-A-1"))) in {
            (k, *sorted((a, b))) for k, a, b in edges if k == "route"}
        gateway = {(a, b) for k, a, b in edges if k == "gateway"}
        assert {a for a, _ in gateway} == {"py-A-0", "go-A-1", "py-B-0"}  # each one outbound
        assert all(b.startswith("py-B") for a, b in gateway if not a.startswith("py-B"))
        assert {(a, b) for k, a, b in edges if k == "leaf"} == {
            ("py-A-0", "LA"), ("go-A-1", "LG"), ("py-B-0", "TB"), ("py-A-0", "J0")}
        j0 = next(e for e in body["edges"] if e["kind"] == "leaf" and names[e["b"]] == "J0")
        assert j0["account"] == "APP, SYS"  # two leaf links, one edge
        assert {(x["name"], x["leader"], x.get("mirror")) for x in body["streams"]} == {
            ("ORDERS", "J0", None), ("ORDERS_COPY", "J0", "ORDERS")}
        assert servers["J0"]["jetstream"] is True
        tenant = next(e for e in body["edges"] if e["kind"] == "leaf" and names[e["b"]] == "TB")
        assert tenant["account"] == "T"
        assert body["elapsed_ms"] < body["timeout_ms"]


def test_topz_partial_when_a_server_does_not_answer(system):
    b0 = system["B0"]
    b0.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        body = topz(system["A0"], "?system=1&timeout=1.5")
        took = time.monotonic() - started
    finally:
        b0.signal(signal.SIGCONT)
    assert body["partial"] is True
    missing = {m.get("server_id") for m in body["missing"]}
    b0_id = next(s["id"] for s in body["servers"] if s["id"] in missing)
    assert missing == {b0_id}
    assert {s["name"] for s in body["servers"] if s["answered"]} == {"py-A-0", "go-A-1", "J0"}
    assert took < 5
    wait_for(lambda: not topz(system["A0"], "?system=1")["partial"], timeout=20,
             message="B0 answering again")


def test_topz_partial_when_a_system_leaf_does_not_answer(system):
    """J0 hangs off A0 by a system-account leaf: A0's LEAFZ names it, so the
    gathering waits for it and says so when it stays silent."""
    j0 = system["J0"]
    j0.signal(signal.SIGSTOP)
    try:
        body = topz(system["A0"], "?system=1&timeout=1.5")
    finally:
        j0.signal(signal.SIGCONT)
    assert body["partial"] is True
    assert body["missing"] == [{"server_name": "J0", "endpoint": "*"}]
    wait_for(lambda: not topz(system["A0"], "?system=1")["partial"], timeout=20,
             message="J0 answering again")


def test_topz_bad_input(system):
    for query, words in [("?system=maybe", "system: not a boolean"),
                         ("?system=1&timeout=soon", "timeout: not a number"),
                         ("?system=1&timeout=100", "timeout: must be between")]:
        status, body = get(system["A0"], "/topz" + query)
        assert status == 400 and words in body["error"], (query, body)


def test_topz_leaf_side(system):
    view = topz(system["LA"])["server"]
    assert [(x["kind"], x["role"], x["peer_name"], x["account"]) for x in view["links"]] == [
        ("leaf", "spoke", "py-A-0", "APP")]


def test_duration_parsing():
    from pluggy_nats_plugins.topology.view import duration_ms

    assert [duration_ms(t) for t in ("0s", "272µs", "1.5ms", "2s", "1m2.5s", "850ns")] == [
        0.0, 0.272, 1.5, 2000.0, 62500.0, 0.001]
    assert [duration_ms(t) for t in ("", "fast", "1.5", "3x", None)] == [None] * 5


def test_topz_without_a_system_account(make_server):
    server = make_server("-m", "-1", config="no_system_account: true\n")
    body = topz(server, "?system=1")
    assert body["partial"] is True
    assert body["errors"] == ["no system account on this server: only its own view"]
    assert [(s["name"], s["answered"]) for s in body["servers"]] == [(
        get(server, "/varz")[1]["server_name"], True)]
    status, explained = get(server, "/explainz?account=$G&subject=a.b")
    assert status == 200 and explained["partial"] is True
    assert explained["origin"]["server_id"] == body["servers"][0]["id"]


def test_topz_over_sys_is_each_servers_own_view(system):
    """``$SYS.REQ.SERVER.PING.TOPZ``: every one of our servers reachable over
    $SYS answers with its own view (never a gathering inside a request)."""
    import json

    from pluggy_nats_plugins.topology.client import SysClient

    client = SysClient(system.url("B0", "sys", "sys"))
    try:
        client.publish("$SYS.REQ.SERVER.PING.TOPZ", client.prefix + ".1.TOPZ", b"{}")
        answers = []
        while (item := client.receive(1.0)) is not None:
            answers.append(json.loads(item[1]))
    finally:
        client.close()
    views = {a["data"]["server"]["name"]: a["data"]["server"] for a in answers}
    assert set(views) == {"py-A-0", "py-B-0", "J0"}  # the Go server has no TOPZ
    assert {link["kind"] for link in views["py-B-0"]["links"]} == {"gateway", "leaf"}
