"""The monitoring port (-m): nats-server's JSON field names and types (compared
live with the Go server), /connz paging, sorting and the ring of closed
connections, /subsz?test=, /accountz, /healthz (200 and 503), JSONP, the index
page, and a 400 with a JSON message (never a traceback) for bad parameters."""

import json
import urllib.error
import urllib.request

import pytest

from pluggy_nats.testing.launch import Launcher, pluggy_nats_command
from pluggy_nats.testing.raw import RawClient, wait_for


def connect_line(name, lang="raw", protocol=0):
    opts = {"verbose": False, "pedantic": False, "name": name, "lang": lang,
            "version": "1.0", "protocol": protocol, "headers": True}
    return b"CONNECT " + json.dumps(opts).encode() + b"\r\n"


def sync(client):
    """PING and wait for the PONG (a server RTT PING may come first: answer it)."""
    client.send(b"PING\r\n")
    m = client.expect(rb".*?PONG\r\n")
    if b"PING\r\n" in m.group(0):
        client.send(b"PONG\r\n")


def http(server, path):
    """(status, parsed JSON or text, content type) of GET path on server's -m port."""
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            status, body, ctype = resp.status, resp.read().decode(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        status, body, ctype = exc.code, exc.read().decode(), exc.headers["Content-Type"]
    if ctype and ctype.startswith("application/json"):
        return status, json.loads(body), ctype
    return status, body, ctype


def get(server, path):
    status, body, _ = http(server, path)
    assert status == 200, (path, status, body)
    return body


# -- one server shared by the tests that do not need their own ---------------------


@pytest.fixture(scope="module")
def mon(tmp_path_factory):
    launcher = Launcher(str(tmp_path_factory.mktemp("monitor")))
    try:
        yield launcher.start(pluggy_nats_command(), ["-m", "-1"], name="mon")
    finally:
        launcher.close()


@pytest.fixture
def client(mon):
    clients = []

    def make(name, commands=b""):
        c = RawClient("127.0.0.1", mon.port)
        clients.append(c)
        c.send(connect_line(name) + commands)
        sync(c)
        return c

    yield make
    for c in clients:
        c.close()


def conns_named(server, prefix, query=""):
    data = get(server, "/connz?limit=4096&" + query)
    return [c for c in data["connections"] if c.get("name", "").startswith(prefix)]


# -- the field comparison with nats-server --------------------------------------------


def shape(value):
    """Field names and JSON types, recursively; the elements of a list are merged
    (every key any element has), since which entry comes first is not fixed."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged = None
        for item in value:
            s = shape(item)
            merged = s if merged is None else merge(merged, s)
        return [merged] if merged is not None else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    return "string"


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if k in out else v
        return out
    return a


# Floats in nats-server's structs: Go prints 2.0 as 2, so an int there is fine.
FLOAT_FIELDS = {"cpu", "auth_timeout", "tls_timeout", "cache_hit_rate", "avg_fanout"}


def differences(go, py, path):
    """Paths whose name or type differs: 'missing' (Go has it), 'extra' (we do),
    'type go/py'."""
    out = []
    if isinstance(go, dict) and isinstance(py, dict):
        for k in sorted(set(go) | set(py)):
            p = "%s.%s" % (path, k)
            if k not in py:
                out.append((p, "missing"))
            elif k not in go:
                out.append((p, "extra"))
            else:
                out += differences(go[k], py[k], p)
    elif isinstance(go, list) and isinstance(py, list):
        if go and py:
            out += differences(go[0], py[0], path + "[]")
        elif go and not py:
            out.append((path + "[]", "missing (empty here)"))
    elif go != py:
        numbers = {"int", "float"}
        leaf = path.rsplit(".", 1)[-1]
        if not (go in numbers and py in numbers and leaf in FLOAT_FIELDS):
            out.append((path, "type %s/%s" % (go, py)))
    return out


# Every difference we keep, and why. A path ending in "." covers everything under it.
ALLOWED = {
    "varz.pluggy_nats": "extra: our own version beside the nats-server version we follow",
    "varz.feature_flags.": "JetStream feature flags: we have none of those features",
    "accountz_g.account_detail.imports": "nats-server's built-in $SYS service imports "
                                         "(we have no service imports)",
}


def allowed(path):
    return path in ALLOWED or any(p.endswith(".") and path.startswith(p) for p in ALLOWED)


# The same requests, in the same order, on both servers (so http_req_stats match).
REQUESTS = [
    ("connz_all", "/connz?subs=detail&state=all"),
    ("connz_auth", "/connz?subs=1&auth=1"),
    ("connz_closed", "/connz?state=closed&sort=stop"),
    ("subsz", "/subsz"),
    ("subsz_test", "/subsz?subs=1&test=bar.x"),
    ("accountz", "/accountz"),
    ("accountz_g", "/accountz?acc=$G"),
    ("healthz", "/healthz"),
    ("varz", "/varz"),
]


def populate(server):
    """Two clients with subscriptions (one a queue group) that exchanged a message,
    and one that came and went (the closed-connection ring)."""
    clients = []
    for i in range(2):
        c = RawClient("127.0.0.1", server.port)
        c.send(connect_line("c%d" % i, lang="python3") + b"SUB foo.%d 1\r\nSUB bar.> q 2\r\n"
               b"PUB foo.0 2\r\nhi\r\n" % i)
        sync(c)
        clients.append(c)
    gone = RawClient("127.0.0.1", server.port)
    gone.send(connect_line("gone", lang="python3"))
    sync(gone)
    gone.close()
    wait_for(lambda: get(server, "/connz?state=closed")["total"] >= 1,
             message="the closed connection in the ring")
    return clients


@pytest.mark.interop
def test_varz_connz_fields_and_types_match_go(go_nats_server, make_server):
    """Done-when of the issue: /varz and /connz (and the other core endpoints) have
    nats-server 2.15's field names and JSON types for the same setup."""
    go = go_nats_server("-m", "-1")
    py = make_server("-m", "-1")
    go_clients, py_clients = populate(go), populate(py)
    try:
        go_data = {name: get(go, path) for name, path in REQUESTS}
        py_data = {name: get(py, path) for name, path in REQUESTS}
    finally:
        for c in go_clients + py_clients:
            c.close()
    assert py_data["connz_all"]["total"] == go_data["connz_all"]["total"] == 3
    found = []
    for name, _ in REQUESTS:
        found += differences(shape(go_data[name]), shape(py_data[name]), name)
    unexpected = [d for d in found if not allowed(d[0])]
    assert not unexpected, "fields that differ from nats-server: %s" % unexpected
    # The key lists the issue names explicitly, present with the same types.
    for key in ("server_id", "server_name", "version", "proto", "host", "port", "max_payload",
                "max_pending", "ping_interval", "ping_max", "write_deadline", "start", "now",
                "uptime", "mem", "cpu", "cores", "connections", "total_connections", "routes",
                "remotes", "leafnodes", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                "slow_consumers", "subscriptions", "config_load_time", "system_account",
                "slow_consumer_stats", "http_req_stats"):
        assert key in py_data["varz"], key
    # Same endpoints counted (the counts depend on how often populate() polled).
    assert set(py_data["varz"]["http_req_stats"]) == set(go_data["varz"]["http_req_stats"])


@pytest.mark.interop
def test_connz_values_agree_with_go(go_nats_server, make_server):
    """Beyond names and types: the figures of the same traffic agree."""
    go = go_nats_server("-m", "-1")
    py = make_server("-m", "-1")
    go_clients, py_clients = populate(go), populate(py)
    try:
        for server in (go, py):
            data = get(server, "/connz?subs=1&state=all")
            by_name = {c["name"]: c for c in data["connections"]}
            assert by_name["c0"]["subscriptions"] == 2
            assert by_name["c0"]["in_msgs"] == 1 and by_name["c0"]["out_msgs"] == 2
            assert sorted(by_name["c0"]["subscriptions_list"]) == ["bar.>", "foo.0"]
            assert by_name["gone"]["reason"] == "Client Closed"
            assert by_name["gone"]["idle"] == "0s"
            varz = get(server, "/varz")
            assert varz["connections"] == 2 and varz["total_connections"] == 3
            assert varz["in_msgs"] == 2 and varz["out_msgs"] == 2
            assert varz["in_client_msgs"] == 2 and varz["subscriptions"] >= 4
    finally:
        for c in go_clients + py_clients:
            c.close()


# -- /connz ------------------------------------------------------------------------------


def test_connz_paging_and_sort(mon, client):
    a = client("page-a", b"SUB x.1 1\r\n")
    b = client("page-b", b"SUB x.1 1\r\nSUB x.2 2\r\nSUB x.3 3\r\n")
    c = client("page-c", b"SUB x.1 1\r\nSUB x.2 2\r\n")
    a.send(b"PUB x.1 5\r\nhello\r\nPUB x.1 5\r\nhello\r\n")
    sync(a)
    mine = {x.info["client_id"] for x in (a, b, c)}

    def ordered(sort):
        data = get(mon, "/connz?limit=4096&sort=" + sort)
        return [x["name"] for x in data["connections"] if x["cid"] in mine]

    assert ordered("cid") == ["page-a", "page-b", "page-c"]
    assert ordered("subs") == ["page-b", "page-c", "page-a"]
    assert ordered("msgs_from")[0] == "page-a"
    assert ordered("bytes_from")[0] == "page-a"
    assert ordered("uptime") == ["page-c", "page-b", "page-a"]  # youngest first
    for key in ("start", "pending", "msgs_to", "bytes_to", "last", "idle", "rtt"):
        assert sorted(ordered(key)) == ["page-a", "page-b", "page-c"], key

    everything = get(mon, "/connz?limit=4096")
    total = everything["total"]
    assert everything["num_connections"] == total == len(everything["connections"])
    page = get(mon, "/connz?offset=1&limit=2")
    assert page["offset"] == 1 and page["limit"] == 2 and page["total"] == total
    assert page["num_connections"] == 2
    assert [x["cid"] for x in page["connections"]] == \
        [x["cid"] for x in everything["connections"]][1:3]
    beyond = get(mon, "/connz?offset=100000")
    assert beyond["connections"] == [] and beyond["num_connections"] == 0
    assert get(mon, "/connz?limit=0")["limit"] == 1024  # 0 = the default, as nats-server

    one = get(mon, "/connz?cid=%d" % b.info["client_id"])
    assert one["limit"] == 1 and [x["name"] for x in one["connections"]] == ["page-b"]


def test_connz_subscription_lists_and_auth_fields(mon, client):
    c = client("subs-a", b"SUB s.one 1\r\nSUB s.* workers 2\r\n")
    cid = c.info["client_id"]
    [plain] = [x for x in get(mon, "/connz?cid=%d" % cid)["connections"]]
    assert plain["subscriptions"] == 2
    assert "subscriptions_list" not in plain and "account" not in plain
    [listed] = get(mon, "/connz?subs=1&cid=%d" % cid)["connections"]
    assert sorted(listed["subscriptions_list"]) == ["s.*", "s.one"]
    [detail] = get(mon, "/connz?subs=detail&cid=%d" % cid)["connections"]
    by_sid = {d["sid"]: d for d in detail["subscriptions_list_detail"]}
    assert by_sid["1"] == {"subject": "s.one", "sid": "1", "msgs": 0, "cid": cid}
    assert by_sid["2"]["qgroup"] == "workers"
    [authd] = get(mon, "/connz?auth=true&cid=%d" % cid)["connections"]
    assert authd["name_tag"] == "$G" and "account" not in authd  # $G is left out
    assert get(mon, "/connz?acc=$G&cid=%d" % cid)["num_connections"] == 1
    assert get(mon, "/connz?acc=NOPE")["connections"] == []
    assert get(mon, "/connz?user=nobody")["connections"] == []


def test_connz_closed_ring_keeps_reasons(mon, client):
    ok = client("ring-ok")
    ok_cid = ok.info["client_id"]
    ok.close()
    bad = client("ring-bad")
    bad_cid = bad.info["client_id"]
    bad.send(b"SUB foo\r\n")  # a SUB without a sid: a protocol error closes it
    bad.expect_closed()

    def closed():
        data = get(mon, "/connz?state=closed&limit=4096")
        return {x["cid"]: x for x in data["connections"]}

    ring = wait_for(lambda: (lambda r: r if ok_cid in r and bad_cid in r else None)(closed()),
                    message="both closed connections in the ring")
    assert ring[ok_cid]["reason"] == "Client Closed"
    assert ring[bad_cid]["reason"] in ("Protocol Violation", "Parse Error")
    for entry in (ring[ok_cid], ring[bad_cid]):
        assert entry["stop"] >= entry["start"]
    open_cids = {x["cid"] for x in get(mon, "/connz?limit=4096")["connections"]}
    assert ok_cid not in open_cids
    both = get(mon, "/connz?state=all&limit=4096")
    assert {ok_cid, bad_cid} <= {x["cid"] for x in both["connections"]}
    by_stop = get(mon, "/connz?state=closed&sort=stop&limit=4096")["connections"]
    assert [x["stop"] for x in by_stop] == sorted((x["stop"] for x in by_stop), reverse=True)
    by_reason = get(mon, "/connz?state=closed&sort=reason&limit=4096")["connections"]
    assert [x["reason"] for x in by_reason] == sorted(x["reason"] for x in by_reason)
    assert get(mon, "/connz?state=closed&cid=%d" % ok_cid)["connections"][0]["cid"] == ok_cid


# -- /varz, /subsz, /accountz, /healthz, index, JSONP ------------------------------------------


def test_varz_counts_survive_closed_connections(mon, client):
    before = get(mon, "/varz")
    c = client("varz-a", b"SUB v 1\r\nPUB v 3\r\nabc\r\n")
    sync(c)
    c.close()
    wait_for(lambda: get(mon, "/varz")["total_connections"] > before["total_connections"])
    after = wait_for(lambda: (lambda v: v if v["in_msgs"] >= before["in_msgs"] + 1 else None)(
        get(mon, "/varz")), message="the closed client's message in /varz")
    assert after["in_bytes"] >= before["in_bytes"] + 3
    assert after["out_msgs"] >= before["out_msgs"] + 1
    assert after["in_client_msgs"] == after["in_msgs"]  # no routes here
    assert isinstance(after["ping_interval"], int) and after["ping_interval"] == 120 * 10**9
    assert after["write_deadline"] == 10 * 10**9 and after["max_payload"] == 1048576
    assert after["http_req_stats"]["/varz"] >= 2
    assert after["slow_consumer_stats"] == {"clients": 0, "routes": 0, "gateways": 0,
                                            "leafs": 0}


def test_subsz_test_subject(mon, client):
    client("subsz-a", b"SUB t.a.b 1\r\nSUB t.* 2\r\nSUB t.> q 3\r\nSUB other 4\r\n")
    data = get(mon, "/subsz?test=t.a.b")
    assert data["total"] == 2 and "subscriptions_list" not in data  # t.a.b and t.>
    assert data["num_subscriptions"] >= 4
    listed = get(mon, "/subsz?subs=1&test=t.x")
    assert sorted(s["subject"] for s in listed["subscriptions_list"]) == ["t.*", "t.>"]
    queue = [s for s in listed["subscriptions_list"] if s["subject"] == "t.>"][0]
    assert queue["qgroup"] == "q" and queue["account"] == "$G"
    assert get(mon, "/subsz?test=nothing.here")["total"] == 0
    paged = get(mon, "/subsz?subs=1&test=t.x&limit=1")
    assert len(paged["subscriptions_list"]) == 1 and paged["total"] == 2
    assert get(mon, "/subscriptionsz?test=t.a.b")["total"] == 2


def test_accountz(mon, client):
    client("acc-a", b"SUB acc.x 1\r\n")
    listing = get(mon, "/accountz")
    assert set(listing) == {"server_id", "now", "system_account", "accounts"}
    assert {"$G", "$SYS"} <= set(listing["accounts"])
    assert listing["system_account"] == "$SYS"
    detail = get(mon, "/accountz?acc=$G")["account_detail"]
    assert detail["account_name"] == "$G" and detail["client_connections"] >= 1
    assert detail["subscriptions"] >= 1 and "is_system" not in detail
    assert get(mon, "/accountz?acc=$SYS")["account_detail"]["is_system"] is True
    status, body, _ = http(mon, "/accountz?acc=NOPE")
    assert status == 400 and body == {"error": "Account NOPE does not exist"}


def test_healthz_ok_and_index(mon):
    status, body, ctype = http(mon, "/healthz")
    assert (status, body) == (200, {"status": "ok"}) and ctype == "application/json"
    status, page, ctype = http(mon, "/")
    assert status == 200 and ctype.startswith("text/html")
    for path in ("/varz", "/connz", "/subsz", "/accountz", "/healthz"):
        assert 'href=".%s"' % path in page
    assert http(mon, "/nothing")[0] == 404


def test_jsonp(mon):
    status, body, ctype = http(mon, "/varz?callback=show.varz")
    assert status == 200 and ctype == "application/javascript"
    assert body.startswith("show.varz(") and body.endswith(")")
    assert json.loads(body[len("show.varz("):-1])["server_id"]
    status, body, _ = http(mon, "/connz?callback=cb&limit=x")  # errors are wrapped too
    assert status == 400 and body.startswith("cb(")
    status, body, _ = http(mon, "/varz?callback=alert(1)//")
    assert status == 400 and "callback" in body["error"]


@pytest.mark.parametrize("path", [
    "/connz?limit=x", "/connz?limit=-5", "/connz?offset=-1", "/connz?offset=1.5",
    "/connz?sort=bogus", "/connz?sort=stop", "/connz?sort=reason&state=all",
    "/connz?state=sleeping", "/connz?cid=-1", "/connz?cid=abc", "/connz?subs=maybe",
    "/connz?auth=2", "/subsz?test=foo.*", "/subsz?test=foo..bar", "/subsz?offset=x",
    "/subsz?subs=yes", "/healthz?details=x", "/healthz?js-enabled-only=perhaps",
    "/accountz?acc=missing",
])
def test_bad_parameters_are_400_with_a_message(mon, path):
    status, body, ctype = http(mon, path)
    assert status == 400, (path, status, body)
    assert ctype == "application/json"
    assert isinstance(body, dict) and set(body) == {"error"} and body["error"]
    assert "Traceback" not in body["error"]


# -- /healthz when not ready: in-process, on a server that was never started ---------------


def test_healthz_503_until_ready():
    from pluggy_nats_plugins import monitor
    from pluggy_nats_plugins.monitor.http import MonitorServer

    from pluggy_nats import Server

    server = Server(port=0, http_port=-1, plugins=[monitor], autoload=False)
    http_plugin = server.pluginmanager.get_plugin("monitor-http")
    assert isinstance(http_plugin, MonitorServer)
    server.hook.nats_monitor_endpoints(registry=http_plugin.registry)

    def call(path, query=""):
        seen = {}

        def start_response(status, headers):
            seen["status"] = status

        body = b"".join(http_plugin.wsgi({"PATH_INFO": path, "QUERY_STRING": query},
                                         start_response))
        return seen["status"], json.loads(body)

    status, body = call("/healthz")
    assert status.startswith("503") and body["status"] == "error" and body["error"]
    status, body = call("/healthz", "details=true")
    assert status.startswith("503") and body["errors"][0]["type"] == "CONNECTION"
    server.ready.set()
    assert call("/healthz") == ("200 OK", {"status": "ok"})
    server._shutting_down = True
    assert call("/healthz")[0].startswith("503")


def test_go_style_durations():
    from pluggy_nats_plugins.monitor.endpoints import go_duration, rtt_string, uptime_string

    assert [go_duration(ns) for ns in (0, 850, 370_000, 370_500, 1_500_000, 2_250_000_000,
                                       90 * 10**9, 3600 * 10**9)] == \
        ["0s", "850ns", "370µs", "370.5µs", "1.5ms", "2.25s", "1m30s", "1h0m0s"]
    assert rtt_string(0.0003705) == "370µs"  # nats-server truncates to µs under 1 ms
    assert [uptime_string(s) for s in (0, 59, 61, 3661, 90061, 366 * 86400)] == \
        ["0s", "59s", "1m1s", "1h1m1s", "1d1h1m1s", "1y1d0h0m0s"]
