"""/jsz, the /varz jetstream block, advisories, and the JetStream domain."""

import json
import urllib.request

from nats.js import api as jsapi

from pluggy_nats.testing.plugin import run

from .conftest import api, connect


def _get(server, path):
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_jetstream_jsz_varz_and_advisories(js_server):
    srv = js_server("-m", "-1")

    async def main():
        nc = await connect(srv)
        events = await nc.subscribe("$JS.EVENT.ADVISORY.>")
        js = nc.jetstream()
        await js.add_stream(name="MON", subjects=["mon"])
        await js.publish("mon", b"x")
        await js.add_consumer("MON", durable_name="watcher")
        await js.delete_consumer("MON", "watcher")
        seen = {}
        for _ in range(6):  # 3 API audits, stream created, consumer created and deleted
            m = await events.next_msg(timeout=2)
            seen.setdefault(m.subject, json.loads(m.data)["type"])
        assert seen["$JS.EVENT.ADVISORY.STREAM.CREATED.MON"] == \
            "io.nats.jetstream.advisory.v1.stream_action"
        assert seen["$JS.EVENT.ADVISORY.CONSUMER.CREATED.MON.watcher"] == \
            "io.nats.jetstream.advisory.v1.consumer_action"
        assert seen["$JS.EVENT.ADVISORY.CONSUMER.DELETED.MON.watcher"] == \
            "io.nats.jetstream.advisory.v1.consumer_action"
        assert seen["$JS.EVENT.ADVISORY.API"] == "io.nats.jetstream.advisory.v1.api_audit"
        await nc.close()

    run(main())
    jsz = _get(srv, "/jsz")
    assert (jsz["streams"], jsz["messages"], jsz["consumers"]) == (1, 1, 0)
    assert jsz["api"]["level"] == 5 and jsz["api"]["total"] >= 3
    assert jsz["config"]["store_dir"]
    detail = _get(srv, "/jsz?streams=1&config=1")
    streams = detail["account_details"][0]["stream_detail"]
    assert streams[0]["name"] == "MON" and streams[0]["config"]["subjects"] == ["mon"]
    varz = _get(srv, "/varz")
    assert varz["jetstream"]["config"]["sync_interval"] == 120_000_000_000
    assert varz["jetstream"]["stats"]["api"]["level"] == 5


def test_jetstream_ack_sample_metrics(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        metrics = await nc.subscribe("$JS.EVENT.METRIC.CONSUMER.ACK.SM.sampled")
        js = nc.jetstream()
        await js.add_stream(name="SM", subjects=["sm"])
        await js.publish("sm", b"x")
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.SM.bad", {"stream_name": "SM", "config": {
            "name": "bad", "ack_policy": "explicit", "sample_freq": "lots"}})
        assert resp["error"]["err_code"] == 10095
        psub = await js.pull_subscribe("sm", durable="sampled", config=jsapi.ConsumerConfig(
            sample_freq="100%"))
        (m,) = await psub.fetch(1, timeout=2)
        await m.ack_sync()
        event = json.loads((await metrics.next_msg(timeout=2)).data)
        assert event["type"] == "io.nats.jetstream.metric.v1.consumer_ack"
        assert (event["stream_seq"], event["consumer_seq"], event["deliveries"]) == (1, 1, 1)
        assert event["ack_time"] > 0
        await nc.close()

    run(main())


def test_jetstream_domain(js_server, tmp_path):
    srv = js_server(config="jetstream { domain: hub, store_dir: '%s' }" % (tmp_path / "d"))

    async def main():
        nc = await connect(srv)
        resp = await api(nc, "$JS.hub.API.STREAM.CREATE.D", {"name": "D"})
        assert resp["config"]["name"] == "D"
        js = nc.jetstream(domain="hub")
        ack = await js.publish("D", b"x")
        assert ack.domain == "hub" and ack.seq == 1
        info = await js.stream_info("D")
        assert info.state.messages == 1
        await nc.close()

    run(main())


def test_jetstream_bench_scenario(js_server):
    """``pluggy-nats bench js`` runs end to end (figures are measured elsewhere)."""
    import subprocess
    import sys

    srv = js_server()
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", "js", "--url", srv.url,
           "--msgs", "3000", "--json", "-", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert res["ok"] and res["sent"] == 3000 and res["pub_errors"] == 0
    assert res["pub_msgs_per_s"] > 0 and res["drain_msgs_per_s"] > 0
