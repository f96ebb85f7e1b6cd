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
