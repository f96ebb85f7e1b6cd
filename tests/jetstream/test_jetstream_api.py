"""JetStream on one server through nats-py's JetStream API: enabling, the
stream and consumer API, publishing with PubAcks and headers."""

import asyncio
import json

import pytest
from nats.errors import NoRespondersError, TimeoutError
from nats.js import api as jsapi
from nats.js.errors import APIError, NotFoundError

from pluggy_nats.testing.plugin import run

from .conftest import api, connect


def test_jetstream_not_enabled_without_flag(server):
    async def main():
        nc = await connect(server)
        with pytest.raises(NoRespondersError):
            await nc.request("$JS.API.INFO", b"", timeout=1)
        await nc.close()

    run(main())


def test_jetstream_account_info_and_config_block(make_server, tmp_path):
    config = """
    jetstream {
        store_dir: "%s"
        max_mem: 64MB
        max_file: 1GB
        sync_interval: always
        limits { max_ack_pending: 100 }
    }
    """ % (tmp_path / "sd")
    srv = make_server(config=config)

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        info = await js.account_info()
        assert info.api.level >= 1
        assert info.streams == 0
        resp = await api(nc, "$JS.API.INFO")
        assert resp["type"] == "io.nats.jetstream.api.v1.account_info_response"
        assert resp["limits"]["max_memory"] == -1
        await js.add_stream(name="S", subjects=["s.>"])
        # the server limit on max_ack_pending is applied as default and checked
        ci = await js.add_consumer("S", durable_name="d", ack_policy="explicit")
        assert ci.config.max_ack_pending == 100
        with pytest.raises(APIError) as exc:
            await js.add_consumer("S", durable_name="e", ack_policy="explicit",
                                  max_ack_pending=500)
        assert exc.value.err_code == 10121
        ack = await js.publish("s.1", b"x")
        assert ack.seq == 1
        with pytest.raises(APIError) as exc:  # over the server's max_mem
            await js.add_stream(name="BIG", subjects=["big"], storage="memory",
                                max_bytes=100 * 1024 * 1024)
        assert exc.value.err_code == 10023
        await nc.close()

    run(main())
    assert (tmp_path / "sd" / "jetstream").is_dir()


def test_jetstream_account_without_jetstream(make_server, tmp_path):
    config = """
    jetstream { store_dir: "%s" }
    accounts {
        A { jetstream: { max_streams: 1, max_consumers: 1 }, users [{user: a, password: a}] }
        B { users [{user: b, password: b}] }
    }
    """ % (tmp_path / "sd")
    srv = make_server(config=config)

    async def main():
        nb = await connect(srv, user="b", password="b")
        resp = await api(nb, "$JS.API.INFO")
        assert resp["error"] == {"code": 503, "err_code": 10039,
                                 "description": "JetStream not enabled for account"}
        await nb.close()
        na = await connect(srv, user="a", password="a")
        js = na.jetstream()
        info = await js.account_info()
        assert info.limits.max_streams == 1
        await js.add_stream(name="ONE", subjects=["one"])
        with pytest.raises(APIError) as exc:
            await js.add_stream(name="TWO", subjects=["two"])
        assert exc.value.err_code == 10027
        await js.add_consumer("ONE", durable_name="c1")
        with pytest.raises(APIError) as exc:
            await js.add_consumer("ONE", durable_name="c2")
        assert exc.value.err_code == 10026
        await na.close()

    run(main())


def test_jetstream_stream_crud(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        si = await js.add_stream(name="ORDERS", subjects=["orders.*"])
        assert si.config.max_msgs == -1
        assert si.config.duplicate_window == 120.0
        # idempotent create, conflicting create
        await js.add_stream(name="ORDERS", subjects=["orders.*"])
        with pytest.raises(APIError) as exc:
            await js.add_stream(name="ORDERS", subjects=["other"])
        assert exc.value.err_code == 10058
        with pytest.raises(APIError) as exc:
            await js.add_stream(name="OVER", subjects=["orders.new"])
        assert exc.value.err_code == 10065
        for i in range(5):
            await js.publish("orders.%d" % (i % 2), b"o%d" % i)
        si = await js.stream_info("ORDERS")
        assert (si.state.messages, si.state.first_seq, si.state.last_seq) == (5, 1, 5)
        resp = await api(nc, "$JS.API.STREAM.INFO.ORDERS", {"subjects_filter": ">"})
        assert resp["state"]["subjects"] == {"orders.0": 3, "orders.1": 2}
        assert await js.delete_msg("ORDERS", 2)
        resp = await api(nc, "$JS.API.STREAM.INFO.ORDERS", {"deleted_details": True})
        assert resp["state"]["deleted"] == [2]
        assert resp["state"]["num_deleted"] == 1
        msg = await js.get_msg("ORDERS", seq=3)
        assert msg.data == b"o2" and msg.subject == "orders.0"
        last = await js.get_last_msg("ORDERS", "orders.1")
        assert last.seq == 4
        with pytest.raises(NotFoundError):
            await js.get_msg("ORDERS", seq=2)
        si = await js.update_stream(name="ORDERS", subjects=["orders.*"], max_msgs=10)
        assert si.config.max_msgs == 10
        with pytest.raises(APIError) as exc:
            await js.update_stream(name="ORDERS", subjects=["orders.*"], storage="memory")
        assert exc.value.err_code == 10052
        names = await js.streams_info()
        assert [s.config.name for s in names] == ["ORDERS"]
        assert await js.purge_stream("ORDERS", subject="orders.0")
        si = await js.stream_info("ORDERS")
        assert si.state.messages == 1
        resp = await api(nc, "$JS.API.STREAM.PURGE.ORDERS")
        assert resp == {"type": "io.nats.jetstream.api.v1.stream_purge_response",
                        "success": True, "purged": 1}
        assert await js.delete_stream("ORDERS")
        with pytest.raises(NotFoundError):
            await js.stream_info("ORDERS")
        await nc.close()

    run(main())


def test_jetstream_api_errors(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", b"{nope")
        assert resp["error"]["err_code"] == 10025
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "X", "max_age": -1})
        assert resp["error"] == {"code": 500, "err_code": 10052,
                                 "description": "max age can not be negative"}
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "Y"})
        assert resp["error"]["err_code"] == 10056
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "X", "retention": "forever"})
        assert resp["error"]["err_code"] == 10025
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "X", "max_msgs": "ten"})
        assert resp["error"]["err_code"] == 10025
        resp = await api(nc, "$JS.API.STREAM.CREATE.X",
                         {"name": "X", "subjects": ["a", "a.>", "a"]})
        assert resp["error"]["err_code"] == 10052
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "X", "num_replicas": 3})
        assert resp["error"]["err_code"] == 10074
        resp = await api(nc, "$JS.API.STREAM.INFO.NONE")
        assert set(resp) == {"type", "error", "total", "offset", "limit"}
        resp = await api(nc, "$JS.API.STREAM.LEADER.STEPDOWN.NONE")
        assert resp["error"]["err_code"] == 10010
        with pytest.raises((TimeoutError, NoRespondersError)):
            await nc.request("$JS.API.NO.SUCH.THING", b"", timeout=0.5)
        resp = await api(nc, "$JS.API.STREAM.CREATE.X", {"name": "X"})
        assert resp["config"]["subjects"] == ["X"] and resp["did_create"] is True
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c1", {"stream_name": "X", "config": {
            "durable_name": "c2"}})
        assert resp["error"]["err_code"] == 10017
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c1.a.b", {
            "stream_name": "X", "config": {"filter_subject": "x"}})
        assert resp["error"]["err_code"] == 10131
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X", {
            "stream_name": "X", "config": {"durable_name": "d"}})
        assert resp["error"]["err_code"] == 10020
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {
            "stream_name": "X", "config": {"flow_control": True, "deliver_subject": "ds"}})
        assert resp["error"]["err_code"] == 10108
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {
            "stream_name": "X", "config": {"deliver_policy": "by_start_sequence"}})
        assert resp["error"]["err_code"] == 10094
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {
            "stream_name": "X", "config": {"idle_heartbeat": 1000000000}})
        assert resp["error"]["err_code"] == 10088
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {
            "stream_name": "X", "action": "update", "config": {}})
        assert resp["error"]["err_code"] == 10149
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {"stream_name": "X", "config": {}})
        assert resp["name"] == "c"
        resp = await api(nc, "$JS.API.CONSUMER.CREATE.X.c", {
            "stream_name": "X", "action": "create", "config": {"max_deliver": 3}})
        assert resp["error"]["err_code"] == 10148
        resp = await api(nc, "$JS.API.CONSUMER.INFO.X.nope")
        assert resp["error"]["err_code"] == 10014
        await nc.close()

    run(main())


def test_jetstream_publish_headers(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="P", subjects=["p.>"], allow_rollup_hdrs=True,
                            max_msg_size=100)
        a1 = await js.publish("p.a", b"1", headers={"Nats-Msg-Id": "id1"})
        dup = await js.publish("p.a", b"1", headers={"Nats-Msg-Id": "id1"})
        assert dup.duplicate and dup.seq == a1.seq
        raw = await nc.request("p.a", b"1", headers={"Nats-Msg-Id": "id1"})
        assert raw.data == b'{"stream":"P","seq":1,"duplicate": true}'
        await js.publish("p.b", b"2", headers={"Nats-Expected-Last-Sequence": "1"})
        with pytest.raises(APIError) as exc:
            await js.publish("p.b", b"3", headers={"Nats-Expected-Last-Sequence": "1"})
        assert exc.value.err_code == 10071 and "wrong last sequence: 2" in exc.value.description
        with pytest.raises(APIError) as exc:
            await js.publish("p.b", b"3", headers={"Nats-Expected-Stream": "Q"})
        assert exc.value.err_code == 10060
        await js.publish("p.b", b"3", headers={"Nats-Expected-Last-Subject-Sequence": "2"})
        with pytest.raises(APIError) as exc:
            await js.publish("p.b", b"4", headers={"Nats-Expected-Last-Subject-Sequence": "2"})
        assert exc.value.err_code == 10071
        await js.publish("p.c", b"4", headers={"Nats-Msg-Id": "id2"})
        # the last message's id ("" for a message without one), as Go tracks it
        await js.publish("p.c", b"5", headers={"Nats-Expected-Last-Msg-Id": "id2"})
        with pytest.raises(APIError) as exc:
            await js.publish("p.c", b"6", headers={"Nats-Expected-Last-Msg-Id": "zzz"})
        assert exc.value.err_code == 10070
        with pytest.raises(APIError) as exc:
            await js.publish("p.c", b"x" * 200)
        assert exc.value.err_code == 10054
        with pytest.raises(APIError) as exc:
            await js.publish("p.c", b"7", headers={"Nats-TTL": "5s"})
        assert exc.value.err_code == 10166
        ack = await js.publish("p.b", b"roll", headers={"Nats-Rollup": "sub"})
        si = await js.stream_info("P")
        assert si.state.messages == 4  # p.a, 2 x p.c, and the p.b rollup
        await js.publish("p.z", b"all", headers={"Nats-Rollup": "all"})
        si = await js.stream_info("P")
        assert si.state.messages == 1 and si.state.first_seq == ack.seq + 1
        # no_ack streams never answer
        await js.add_stream(name="N", subjects=["n"], no_ack=True)
        with pytest.raises(TimeoutError):
            await nc.request("n", b"x", timeout=0.3)
        si = await js.stream_info("N")
        assert si.state.messages == 1
        await nc.close()

    run(main())


def test_jetstream_discard_new_and_ttl(js_server, wait_for):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="D", subjects=["d"], max_msgs=2, discard="new")
        await js.publish("d", b"1")
        await js.publish("d", b"2")
        with pytest.raises(Exception) as exc:
            await js.publish("d", b"3")
        assert getattr(exc.value, "err_code", None) == 10077
        await js.add_stream(name="T", subjects=["t.>"], allow_msg_ttl=True)
        with pytest.raises(APIError) as exc:
            await js.publish("t.a", b"x", headers={"Nats-TTL": "500ms"})
        assert exc.value.err_code == 10165
        await js.publish("t.a", b"x", headers={"Nats-TTL": "1s"})
        await js.publish("t.b", b"y", headers={"Nats-TTL": "never"})
        for _ in range(60):
            si = await js.stream_info("T")
            if si.state.messages == 1:
                break
            await asyncio.sleep(0.05)
        assert si.state.messages == 1
        await js.add_stream(name="AGE", subjects=["age"], max_age=0.3)
        await js.publish("age", b"x")
        for _ in range(60):
            si = await js.stream_info("AGE")
            if si.state.messages == 0:
                break
            await asyncio.sleep(0.05)
        assert si.state.messages == 0 and si.state.last_seq == 1
        await nc.close()

    run(main())


def test_jetstream_consumer_api(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="C", subjects=["c.>"])
        for i in range(4):
            await js.publish("c.%s" % ("x" if i % 2 else "y"), b"%d" % i)
        ci = await js.add_consumer("C", durable_name="dur", filter_subject="c.x",
                                   ack_policy="explicit")
        assert ci.num_pending == 2 and ci.config.ack_wait == 30.0
        ci = await js.add_consumer("C", jsapi.ConsumerConfig(
            name="multi", filter_subjects=["c.x", "c.y"]))
        assert ci.num_pending == 4
        names = await api(nc, "$JS.API.CONSUMER.NAMES.C")
        assert names["consumers"] == ["dur", "multi"]
        lst = await js.consumers_info("C")
        assert {c.name for c in lst} == {"dur", "multi"}
        resp = await api(nc, "$JS.API.CONSUMER.PAUSE.C.dur",
                         {"pause_until": "2099-01-01T00:00:00Z"})
        assert resp["paused"] is True and resp["pause_remaining"] > 0
        info = await api(nc, "$JS.API.CONSUMER.INFO.C.dur")
        assert info["paused"] is True
        resp = await api(nc, "$JS.API.CONSUMER.PAUSE.C.dur", {})
        assert resp["paused"] is False
        assert await js.delete_consumer("C", "multi")
        with pytest.raises(NotFoundError):
            await js.consumer_info("C", "multi")
        await nc.close()

    run(main())


def test_jetstream_atomic_batch(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="AB", subjects=["ab.>"])
        hdr = {"Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "1"}
        raw = await nc.request("ab.1", b"x", headers=hdr)
        assert json.loads(raw.data)["error"]["err_code"] == 10174  # not allowed
        await api(nc, "$JS.API.STREAM.UPDATE.AB", {"name": "AB", "subjects": ["ab.>"],
                                                   "allow_atomic": True})
        for i in (1, 2):
            raw = await nc.request("ab.%d" % i, b"%d" % i, headers={
                "Nats-Batch-Id": "b1", "Nats-Batch-Sequence": str(i)})
            assert raw.data == b""  # staged
        si = await js.stream_info("AB")
        assert si.state.messages == 0
        raw = await nc.request("ab.3", b"3", headers={
            "Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "3", "Nats-Batch-Commit": "1"})
        assert json.loads(raw.data) == {"stream": "AB", "seq": 3, "batch": "b1", "count": 3}
        assert (await js.stream_info("AB")).state.messages == 3
        # a gap abandons the batch
        await nc.request("ab.1", b"x", headers={"Nats-Batch-Id": "b2",
                                                "Nats-Batch-Sequence": "1"})
        raw = await nc.request("ab.1", b"x", headers={
            "Nats-Batch-Id": "b2", "Nats-Batch-Sequence": "3", "Nats-Batch-Commit": "1"})
        assert json.loads(raw.data)["error"]["err_code"] == 10176
        assert (await js.stream_info("AB")).state.messages == 3
        await nc.close()

    run(main())


async def publish_batch(nc, batch_id, msgs):
    """Publish ``msgs`` [(subject, data, extra headers)] as one atomic batch
    (Nats-Batch-Id/-Sequence, Nats-Batch-Commit on the last); returns the
    decoded answer to the commit (staged messages must be answered empty)."""
    for i, (subject, data, extra) in enumerate(msgs, 1):
        headers = dict({"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)}, **extra)
        if i == len(msgs):
            headers["Nats-Batch-Commit"] = "1"
        raw = await nc.request(subject, data, headers=headers, timeout=5)
        if i < len(msgs):
            assert raw.data == b"", raw.data
    return json.loads(raw.data)


def test_atomic_batch_refused_partway_stores_nothing(js_server):
    """A batch whose third message fails a check (or a limit) is refused
    whole: none of its messages is stored, the next batch goes on as usual
    (Go checks every message before it commits any)."""
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await api(nc, "$JS.API.STREAM.CREATE.AT", {
            "name": "AT", "subjects": ["at.>"], "allow_atomic": True, "max_msgs": 6,
            "discard": "new", "allow_msg_counter": False})
        await js.publish("at.x", b"before")
        refused = [
            # an expected last sequence on a later message (Go: first only)
            [("at.a", b"1", {}), ("at.b", b"2", {}),
             ("at.c", b"3", {"Nats-Expected-Last-Sequence": "3"})],
            # a wrong expected subject sequence
            [("at.a", b"1", {}), ("at.b", b"2", {}),
             ("at.x", b"3", {"Nats-Expected-Last-Subject-Sequence": "7"})],
            # one Nats-Msg-Id twice
            [("at.a", b"1", {"Nats-Msg-Id": "m"}), ("at.b", b"2", {}),
             ("at.c", b"3", {"Nats-Msg-Id": "m"})],
            # over max_msgs with discard new at its sixth message
            [("at.%d" % i, b"x", {}) for i in range(6)],
        ]
        codes = []
        for n, msgs in enumerate(refused):
            answer = await publish_batch(nc, "r%d" % n, msgs)
            codes.append(answer.get("error", {}).get("err_code"))
            info = await js.stream_info("AT")
            assert (info.state.messages, info.state.last_seq) == (1, 1), (n, answer)
        assert codes == [10164, 10071, 10201, 10077]
        answer = await publish_batch(nc, "ok", [
            ("at.a", b"1", {"Nats-Expected-Last-Sequence": "1"}), ("at.b", b"2", {}),
            ("at.x", b"3", {"Nats-Expected-Last-Subject-Sequence": "1"})])
        assert answer == {"stream": "AT", "seq": 4, "batch": "ok", "count": 3}
        assert (await js.get_msg("AT", 2)).data == b"1"
        await nc.close()

    run(main())


def test_jetstream_jwt_account_limits(make_server, tmp_path):
    """Operator mode: JetStream limits come from each account's JWT."""
    from pluggy_nats.testing.operator import Trust

    trust = Trust(tmp_path)
    a = trust.account("A", limits={"mem_storage": -1, "disk_storage": -1, "streams": 1,
                                   "consumer": -1})
    b = trust.account("B")
    srv = make_server("-js", "-sd", str(tmp_path / "sd"), config=trust.config())

    async def main():
        na = await connect(srv, user_credentials=trust.user_creds(a, "ua"))
        js = na.jetstream()
        info = await js.account_info()
        assert info.limits.max_streams == 1
        await js.add_stream(name="JW", subjects=["jw"])
        with pytest.raises(APIError) as exc:
            await js.add_stream(name="JW2", subjects=["jw2"])
        assert exc.value.err_code == 10027
        await na.close()
        nb = await connect(srv, user_credentials=trust.user_creds(b, "ub"))
        resp = await api(nb, "$JS.API.INFO")
        assert resp["error"]["err_code"] == 10039
        await nb.close()

    run(main())


def test_jetstream_counters(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await api(nc, "$JS.API.STREAM.CREATE.CN", {"name": "CN", "subjects": ["cn.>"],
                                                   "allow_msg_counter": True})
        vals = []
        for incr in ("+5", "-2", "10"):
            raw = await nc.request("cn.hits", b"", headers={"Nats-Incr": incr})
            vals.append(json.loads(raw.data)["val"])
        assert vals == ["5", "3", "13"]
        msg = await js.get_msg("CN", subject="cn.hits")
        assert json.loads(msg.data) == {"val": "13"}
        raw = await nc.request("cn.hits", b"", headers={"Nats-Incr": "one"})
        assert json.loads(raw.data)["error"]["err_code"] == 10171
        await nc.close()

    run(main())


def test_burst_of_publishes_reaches_the_stream_as_a_run(js_server):
    """600 publishes sent without waiting reach the stream's subscription as
    runs (the client's segment handed over at once): every one is answered
    in order, a too-big one gets Go's 10054 at its place, a header message
    and a subject transform keep working, and the stream holds the rest at
    their sequences."""
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="RUN", subjects=["run.*"], max_msg_size=64,
                            subject_transform=jsapi.SubjectTransform(src="run.*",
                                                                     dest="stored.{{wildcard(1)}}"))
        answers = []

        async def on_answer(msg):
            answers.append(json.loads(msg.data))

        inbox = nc.new_inbox()
        await nc.subscribe(inbox, cb=on_answer)
        await nc.flush()
        sent = []
        for i in range(600):
            subject = "run.b" if 200 <= i < 205 else "run.a"
            data = b"x" * 100 if i == 300 else b"m-%d" % i
            headers = {"X-Mid": "1"} if i == 450 else None
            await nc.publish(subject, data, reply=inbox, headers=headers)
            sent.append((subject, data))
        await nc.flush()
        for _ in range(100):
            if len(answers) >= 600:
                break
            await asyncio.sleep(0.05)
        assert len(answers) == 600
        assert answers[300]["error"]["err_code"] == 10054
        kept = [(s, d) for i, (s, d) in enumerate(sent) if i != 300]
        assert [a.get("seq") for i, a in enumerate(answers) if i != 300] == \
            list(range(1, 600))
        for seq in (1, 200, 300, 450, 599):
            msg = await js.get_msg("RUN", seq)
            subject, data = kept[seq - 1]
            assert (msg.subject, msg.data) == ("stored." + subject[4:], data)
        await nc.close()

    run(main())


@pytest.mark.parametrize("discard", ["new", "old"])
def test_burst_into_a_full_stream_answers_as_one_at_a_time(js_server, discard):
    """A run of publishes into a stream with max_msgs 250: with discard new the
    first 250 get sequences 1..250 and the rest Go's 10077 (no sequence
    skipped), with discard old all 300 are stored and the first 50 dropped."""
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="FULL", subjects=["full"], max_msgs=250,
                            discard=jsapi.DiscardPolicy(discard))
        answers = []

        async def on_answer(msg):
            answers.append(json.loads(msg.data))

        inbox = nc.new_inbox()
        await nc.subscribe(inbox, cb=on_answer)
        await nc.flush()
        for i in range(300):
            await nc.publish("full", b"m-%d" % i, reply=inbox)
        await nc.flush()
        for _ in range(100):
            if len(answers) >= 300:
                break
            await asyncio.sleep(0.05)
        assert len(answers) == 300
        info = await js.stream_info("FULL")
        if discard == "new":
            assert [a.get("seq") for a in answers[:250]] == list(range(1, 251))
            assert {a["error"]["err_code"] for a in answers[250:]} == {10077}
            assert (info.state.messages, info.state.first_seq, info.state.last_seq) == \
                (250, 1, 250)
        else:
            assert [a.get("seq") for a in answers] == list(range(1, 301))
            assert (info.state.messages, info.state.first_seq, info.state.last_seq) == \
                (250, 51, 300)
            assert (await js.get_msg("FULL", 51)).data == b"m-50"
        await nc.close()

    run(main())
