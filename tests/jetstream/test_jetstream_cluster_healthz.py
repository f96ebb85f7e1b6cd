"""/healthz with JetStream's checks in a cluster, as nats-server answers
them (monitor.go healthz): ok while the meta group has a leader and every
stream group this server is in is current; 503 ``unavailable`` once the meta
leader is out of reach; ``js-server-only`` and ``js-enabled-only`` skip the
cluster checks; ``details`` lists the problems with their types."""

import json
import time
import urllib.error
import urllib.request

from .clusterkit import add_stream, connect, js_cluster, leader_index, retry, wait_for

META_DOWN = ("JetStream has not established contact with a meta leader",
             "JetStream is not current with the meta leader")


def _health(cluster, i, query=""):
    url = "http://127.0.0.1:%d/healthz%s" % (cluster.http_ports[i], query)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_checks_meta_and_stream_groups(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="H", subjects=["h"], num_replicas=3)
        await retry(lambda: js.publish("h", b"x"), what="publish")
        await wait_for(lambda: all(_health(cluster, i) == (200, {"status": "ok"})
                                   for i in range(3)), what="every server healthy")
        await nc.close()

    run(body(), timeout=90)
    # the other two die: server 0 loses its meta leader (or leadership); its
    # stream group may be reported first (it can notice sooner), then the
    # meta group, which goes before the streams
    cluster.kill(1)
    cluster.kill(2)
    deadline = time.monotonic() + 30
    while True:
        status, answer = _health(cluster, 0)
        if status == 503 and answer["error"] in META_DOWN:
            break
        if status == 503:
            assert answer["error"].startswith("JetStream stream '$G > H' is not current"), answer
        assert time.monotonic() < deadline, "still %s %s" % (status, answer)
        time.sleep(0.2)
    assert answer["status"] == "unavailable", answer
    status, answer = _health(cluster, 0, "?details=true")
    assert status == 503 and answer["status"] == "error"
    assert [e["type"] for e in answer["errors"]] == ["JETSTREAM"]
    assert answer["errors"][0]["error"] in META_DOWN
    for query in ("?js-server-only=true", "?js-enabled-only=true", "?js-enabled-only=1"):
        assert _health(cluster, 0, query) == (200, {"status": "ok"}), query
    assert _health(cluster, 0, "?js-meta-only=true")[0] == 503
    assert _health(cluster, 0, "?js-server-only=maybe")[0] == 400


def test_healthz_account_stream_consumer_filters(make_fault_cluster, run):
    """``account``/``stream``/``consumer`` narrow the checks to what this
    server carries (Go: a stream or consumer assigned to it): 200 when it is
    current, 404 with Go's text for an account without assignments, a stream
    this server is not a peer of, or a consumer not assigned."""
    cluster = js_cluster(make_fault_cluster)
    where = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="H3", subjects=["h3"], num_replicas=3)
        await add_stream(js, name="ONE", subjects=["one"], num_replicas=1)
        await retry(lambda: js.publish("h3", b"x"), what="publish")
        await retry(lambda: js.add_consumer("H3", durable_name="dur"), what="consumer")
        await wait_for(lambda: leader_index(cluster, "ONE") is not None, what="ONE placed")
        where["one"] = leader_index(cluster, "ONE")
        q = "?account=$G&stream=H3&consumer=dur"
        await wait_for(lambda: all(_health(cluster, i, q) == (200, {"status": "ok"})
                                   for i in range(3)), what="the consumer current everywhere")
        await nc.close()

    run(body(), timeout=90)
    one = where["one"]
    other = (one + 1) % 3
    for i in range(3):
        assert _health(cluster, i, "?account=$G") == (200, {"status": "ok"}), i
        assert _health(cluster, i, "?account=$G&stream=H3") == (200, {"status": "ok"}), i
        assert _health(cluster, i, "?account=NOPE") == (404, {
            "status": "unavailable", "error": 'JetStream account "NOPE" not found'}), i
        assert _health(cluster, i, "?account=$G&stream=H3&consumer=nope&details=1") == (404, {
            "status": "error", "errors": [{
                "type": "CONSUMER", "account": "$G", "stream": "H3", "consumer": "nope",
                "error": 'JetStream consumer "nope" not found for stream "H3" on account "$G"'}]})
        assert _health(cluster, i, "?account=$G&consumer=dur")[0] == 400
    assert _health(cluster, one, "?account=$G&stream=ONE") == (200, {"status": "ok"})
    # not a peer of ONE: not found here, as Go answers for an asset not assigned to it
    assert _health(cluster, other, "?account=$G&stream=ONE") == (404, {
        "status": "unavailable", "error": 'JetStream stream "ONE" not found on account "$G"'})
