"""Mirrors and sources on one server, republish, subject transforms."""

import asyncio

from nats.js import api as jsapi

from pluggy_nats.testing.plugin import run

from .conftest import connect


async def _until(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await pred():
            return True
        await asyncio.sleep(0.05)
    return False


def test_jetstream_mirror_and_sources(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="ORIGIN", subjects=["o.>"])
        await js.add_stream(name="OTHER", subjects=["x.>"])
        for i in range(5):
            await js.publish("o.%d" % (i % 2), b"o%d" % i)
        await js.delete_msg("ORIGIN", 2)
        await js.add_stream(name="MIRROR", mirror=jsapi.StreamSource(name="ORIGIN"))

        async def mirrored():
            return (await js.stream_info("MIRROR")).state.messages == 4

        assert await _until(mirrored)
        msg = await js.get_msg("MIRROR", 3)  # the origin's sequence numbers
        assert msg.data == b"o2" and msg.subject == "o.0"
        await js.publish("o.1", b"live")
        assert await _until(lambda: _last_is(js, "MIRROR", 6))
        info = await js.stream_info("MIRROR")
        assert info.mirror.name == "ORIGIN" and info.mirror.lag == 0

        await js.add_stream(name="AGG", sources=[
            jsapi.StreamSource(name="ORIGIN", filter_subject="o.1"),
            jsapi.StreamSource(name="OTHER")])
        await js.publish("x.a", b"other")

        async def aggregated():
            # o.1 holds o3 and live (o1 was deleted), x.a one
            return (await js.stream_info("AGG")).state.messages == 3

        assert await _until(aggregated), (await js.stream_info("AGG")).state
        psub = await js.pull_subscribe("", durable="agg", stream="AGG")
        got = await psub.fetch(3, timeout=2)
        assert sorted(m.data for m in got) == [b"live", b"o3", b"other"]
        assert all(m.headers and "Nats-Stream-Source" in m.headers for m in got)
        await nc.close()

    run(main())


async def _last_is(js, stream, seq):
    return (await js.stream_info(stream)).state.last_seq == seq


def test_jetstream_republish_and_transform(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        watch = await nc.subscribe("repub.>")
        await js.add_stream(name="RP", subjects=["rp.>"], republish=jsapi.RePublish(
            src="rp.>", dest="repub.>"))
        await js.publish("rp.a", b"hello")
        m = await watch.next_msg(timeout=2)
        assert m.subject == "repub.a" and m.data == b"hello"
        assert m.headers["Nats-Stream"] == "RP" and m.headers["Nats-Sequence"] == "1"
        assert m.headers["Nats-Subject"] == "rp.a"
        await js.add_stream(name="TR", subjects=["in.*"], subject_transform=jsapi.SubjectTransform(
            src="in.*", dest="stored.{{wildcard(1)}}"))
        await js.publish("in.x", b"t")
        msg = await js.get_msg("TR", 1)
        assert msg.subject == "stored.x"
        await nc.close()

    run(main())


# -- durable sourcing (Go 2.14+: a consumer the user made, in `consumer`) -----------

def _fc_consumer(stream, name, deliver, policy="flow_control", max_ack_pending=100):
    return ("$JS.API.CONSUMER.CREATE.%s.%s" % (stream, name),
            {"stream_name": stream, "config": {
                "durable_name": name, "deliver_subject": deliver, "ack_policy": policy,
                "max_ack_pending": max_ack_pending, "deliver_policy": "all"}})


def test_durable_source_and_mirror_survive_a_restart(js_server):
    """A source and a mirror fed by durable ``flow_control`` consumers: 300
    messages (three times max_ack_pending, so only the flow control replies'
    acks let them through), every one once, the consumers' ack floors at the
    end; the server restarted mid-way (the consumers are reset from their
    ack floors, what the streams already hold is skipped), then 100 more."""
    from .conftest import api

    srv = js_server()

    async def phase(first, count, restart_done):
        nc = await connect(srv)
        js = nc.jetstream()
        if not restart_done:
            await js.add_stream(name="ORIGIN", subjects=["o.>"])
            for subject, body in (_fc_consumer("ORIGIN", "DS", "dsrc.s"),
                                  _fc_consumer("ORIGIN", "DM", "dsrc.m")):
                made = await api(nc, subject, body)
                assert made.get("config", {}).get("ack_policy") == "flow_control", made
            made = await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "sources": [
                {"name": "ORIGIN", "consumer": {"name": "DS", "deliver_subject": "dsrc.s"}}]})
            assert "error" not in made, made
            made = await api(nc, "$JS.API.STREAM.CREATE.M", {"name": "M", "mirror": {
                "name": "ORIGIN", "consumer": {"name": "DM", "deliver_subject": "dsrc.m"}}})
            assert "error" not in made, made
            assert made["config"]["mirror"]["consumer"] == {"name": "DM",
                                                            "deliver_subject": "dsrc.m"}
        for i in range(first, first + count):
            await js.publish("o.%d" % (i % 3), b"m%d" % i)
        total = first + count

        async def held():
            s, m = await js.stream_info("S"), await js.stream_info("M")
            return s.state.messages == total and m.state.last_seq == total
        assert await _until(held, timeout=20), (await js.stream_info("S")).state
        # every message once in the source, by its Nats-Stream-Source sequence
        seqs = []
        for seq in range(1, total + 1):
            msg = await js.get_msg("S", seq)
            seqs.append(int(msg.headers["Nats-Stream-Source"].split(" ")[1]))
        assert sorted(seqs) == list(range(1, total + 1))
        assert (await js.get_msg("M", total)).data == b"m%d" % (total - 1)

        async def acked():
            infos = [await js.consumer_info("ORIGIN", c) for c in ("DS", "DM")]
            return all(i.ack_floor.stream_seq == total and not i.num_ack_pending
                       for i in infos)
        assert await _until(acked, timeout=10), [await js.consumer_info("ORIGIN", c)
                                                 for c in ("DS", "DM")]
        await nc.close()

    run(phase(0, 300, False), timeout=60)
    srv.stop()
    srv.start()
    run(phase(300, 100, True), timeout=60)


def test_durable_source_errors_as_go(js_server, go_nats_server, tmp_path):
    """The config refusals of durable sourcing (10213 mirror, 10215 source,
    10216 one consumer twice) and the source's error when the consumer is
    not ``flow_control`` (10217 in the stream's source info), asked of Go
    2.15.1 and of ours."""
    from .conftest import api

    bad = [
        {"name": "B1", "sources": [{"name": "ORIGIN", "consumer": {
            "name": "a.b", "deliver_subject": "x"}}]},
        {"name": "B2", "sources": [{"name": "ORIGIN", "consumer": {
            "name": "C", "deliver_subject": "x.*"}}]},
        {"name": "B3", "sources": [{"name": "ORIGIN", "opt_start_seq": 3, "consumer": {
            "name": "C", "deliver_subject": "x"}}]},
        {"name": "B4", "sources": [{"name": "ORIGIN", "filter_subject": "o.1", "consumer": {
            "name": "C", "deliver_subject": "x"}}]},
        {"name": "B5", "mirror": {"name": "ORIGIN", "consumer": {
            "name": "", "deliver_subject": "x"}}},
        {"name": "B6", "mirror": {"name": "ORIGIN", "filter_subject": "o.1", "consumer": {
            "name": "C", "deliver_subject": "x"}}},
        {"name": "B7", "sources": [
            {"name": "ORIGIN", "consumer": {"name": "C", "deliver_subject": "x"}},
            {"name": "ORIGIN", "subject_transforms": [{"src": "o.>", "dest": "p.>"}],
             "consumer": {"name": "C", "deliver_subject": "y"}}]},
    ]

    async def answers(server):
        nc = await connect(server)
        js = nc.jetstream()
        await js.add_stream(name="ORIGIN", subjects=["o.>"])
        out = []
        for cfg in bad:
            resp = await api(nc, "$JS.API.STREAM.CREATE." + cfg["name"], cfg)
            out.append((cfg["name"], (resp.get("error") or {}).get("err_code")))
        subject, body = _fc_consumer("ORIGIN", "EXPL", "dsrc.e", policy="explicit")
        await api(nc, subject, body)
        await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "sources": [
            {"name": "ORIGIN", "consumer": {"name": "EXPL", "deliver_subject": "dsrc.e"}}]})

        async def source_error():
            info = await api(nc, "$JS.API.STREAM.INFO.S")
            errs = [s.get("error") for s in info.get("sources") or [] if s.get("error")]
            return errs[0]["err_code"] if errs else None
        loop = asyncio.get_running_loop()
        end, err = loop.time() + 10, None
        while err is None and loop.time() < end:
            err = await source_error()
            await asyncio.sleep(0.1)
        out.append(("S source", err))
        await nc.close()
        return out

    ours = run(answers(js_server()), timeout=40)
    go = go_nats_server("-js", "-sd", str(tmp_path / "go"))
    theirs = run(answers(go), timeout=40)
    assert ours == theirs
    assert [code for _, code in ours] == [10215, 10215, 10215, 10215, 10213, 10213, 10216,
                                          10217]
