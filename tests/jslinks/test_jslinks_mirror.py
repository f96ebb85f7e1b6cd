"""Mirrors and sources across a leaf link (plugins/jetstream/remote.py): the
origin's sequences kept, resume after the leaf is killed and restarted."""

import asyncio
import datetime

import nats
import pytest
from nats.js import api as jsapi

from pluggy_nats.testing.launch import free_port
from pluggy_nats.testing.plugin import run

from .helpers import connect, js_conf, messages, retrying, until

HUB_API = jsapi.ExternalStream(api="$JS.hub.API")


def _hub_and_leaf(make_hub, make_leaf, tmp_path, go_hub=False, go_leaf=False):
    # a fixed leafnode port: the leaf finds a restarted hub where it was
    hub = make_hub(go=go_hub, config=js_conf("hub", tmp_path / "hub"), leaf_port=free_port())
    leaf = make_leaf(hub, go=go_leaf, config=js_conf("edge", tmp_path / "leaf"))
    return hub, leaf


async def _publish(js, subject, start, count):
    futs = [await js.publish_async(subject, b"m%d" % i) for i in range(start, start + count)]
    await asyncio.gather(*futs)


async def _held(js, stream, count):
    return (await js.stream_info(stream)).state.messages == count


def test_mirror_1000_then_leaf_restart(make_hub, make_leaf, tmp_path):
    """1,000 messages mirrored to a leaf; the leaf killed, 500 more published
    at the hub, the leaf restarted: the mirror equals the origin sequence by
    sequence within seconds."""
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path)

    async def first():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await _publish(hjs, "o.a", 0, 600)
        await hjs.delete_msg("ORIGIN", 10)  # a gap the mirror keeps
        await ljs.add_stream(name="M", mirror=jsapi.StreamSource(name="ORIGIN",
                                                                  external=HUB_API))
        await _publish(hjs, "o.b", 600, 400)
        await until(lambda: _held(ljs, "M", 999), message="1000 mirrored")
        m = await ljs.get_msg("M", 11)
        assert (m.seq, m.subject, m.data) == (11, "o.a", b"m10")
        info = await ljs.stream_info("M")
        assert info.state.first_seq == 1 and info.state.last_seq == 1000
        assert info.mirror.name == "ORIGIN" and info.mirror.lag == 0
        await nh.close()
        await nl.close()

    run(first())
    leaf.kill()

    async def while_down():
        nh = await connect(hub)
        await _publish(nh.jetstream(), "o.c", 1000, 500)
        await nh.close()

    run(while_down())
    leaf.start()

    async def after():
        nh, nl = await connect(hub), await connect(leaf)
        ljs = nl.jetstream()
        await until(lambda: _held(ljs, "M", 1499), timeout=30, message="1500 after restart")
        got = await ljs.get_msg("M", 1500)
        assert (got.subject, got.data) == ("o.c", b"m1499")
        hinfo = await nh.jetstream().stream_info("ORIGIN")
        linfo = await ljs.stream_info("M")
        assert (linfo.state.first_seq, linfo.state.last_seq, linfo.state.messages) == \
            (hinfo.state.first_seq, hinfo.state.last_seq, hinfo.state.messages)
        for seq in (1, 9, 11, 600, 1000, 1001, 1499):
            a, b = await nh.jetstream().get_msg("ORIGIN", seq), await ljs.get_msg("M", seq)
            assert (a.subject, a.data) == (b.subject, b.data)
        await nh.close()
        await nl.close()

    run(after())


def test_source_from_leaf_into_hub(make_hub, make_leaf, tmp_path):
    """A hub stream sources a leaf's stream (through the leaf's domain) and
    one of its own: Nats-Stream-Source names the external origin."""
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await ljs.add_stream(name="LOCAL", subjects=["edge.>"])
        await hjs.add_stream(name="CENTRAL", subjects=["c.>"])
        for i in range(20):
            await ljs.publish("edge.%d" % (i % 3), b"e%d" % i)
            await hjs.publish("c.x", b"c%d" % i)
        await retrying(lambda: nh.jetstream(domain="edge").stream_info("LOCAL"))
        await hjs.add_stream(name="AGG", sources=[
            jsapi.StreamSource(name="LOCAL", external=jsapi.ExternalStream(api="$JS.edge.API"),
                               filter_subject="edge.1"),
            jsapi.StreamSource(name="CENTRAL")])
        await until(lambda: _held(hjs, "AGG", 7 + 20), message="sourced")
        psub = await hjs.pull_subscribe("edge.1", durable="agg", stream="AGG")
        got = await psub.fetch(7, timeout=5)
        assert [m.data for m in got] == [b"e%d" % i for i in range(1, 20, 3)]
        source = got[0].headers["Nats-Stream-Source"].split(" ")
        assert source[0].startswith("LOCAL:") and source[1] == "2" and source[2] == "edge.1"
        await nh.close()
        await nl.close()

    run(main())


GO_PAIRINGS = {"go-hub_py-leaf": (True, False), "py-hub_go-leaf": (False, True)}


@pytest.mark.parametrize("pairing", list(GO_PAIRINGS))
def test_mirror_and_source_with_go(make_hub, make_leaf, tmp_path, pairing):
    """A Go hub serving our leaf's mirror and source, our hub serving a Go
    leaf's: the leaf mirrors a hub stream and the hub sources the leaf's."""
    go_hub, go_leaf = GO_PAIRINGS[pairing]
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path, go_hub, go_leaf)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await ljs.add_stream(name="LOCAL", subjects=["edge.>"])
        await _publish(hjs, "o.a", 0, 200)
        await hjs.delete_msg("ORIGIN", 5)
        await _publish(ljs, "edge.x", 0, 50)
        await ljs.add_stream(name="M", mirror=jsapi.StreamSource(name="ORIGIN",
                                                                  external=HUB_API))
        await retrying(lambda: nh.jetstream(domain="edge").stream_info("LOCAL"))
        await hjs.add_stream(name="AGG", subjects=["agg.>"], sources=[jsapi.StreamSource(
            name="LOCAL", external=jsapi.ExternalStream(api="$JS.edge.API"),
            subject_transforms=[jsapi.SubjectTransform(src="edge.>", dest="from.edge.>")])])
        await _publish(hjs, "o.b", 200, 100)
        await _publish(ljs, "edge.y", 50, 50)
        await until(lambda: _held(ljs, "M", 299), message="mirror of 300")
        try:
            await until(lambda: _held(hjs, "AGG", 100), message="100 sourced")
        except AssertionError:
            info = await hjs.stream_info("AGG")
            raise AssertionError("AGG: %r sources %r" % (info.state, info.sources)) from None
        info = await ljs.stream_info("M")
        assert (info.state.first_seq, info.state.last_seq) == (1, 300)
        with pytest.raises(nats.js.errors.NotFoundError):
            await ljs.get_msg("M", 5)
        got = await ljs.get_msg("M", 300)
        assert (got.subject, got.data) == ("o.b", b"m299")
        last = await hjs.get_last_msg("AGG", "from.edge.>")
        assert (last.subject, last.data) == ("from.edge.y", b"m99")
        hdr = last.headers["Nats-Stream-Source"].split(" ")
        assert hdr[0].startswith("LOCAL:") and hdr[1] == "100"
        await nh.close()
        await nl.close()

    run(main())


def test_start_sequence_time_filters_and_several_sources(make_hub, make_leaf, tmp_path):
    """Across the link: a mirror from a start sequence, a source from a start
    time, and two external sources (one filtered and transformed) into one
    stream."""
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="A", subjects=["a.>"])
        await hjs.add_stream(name="B", subjects=["b.>"])
        await _publish(hjs, "a.x", 0, 10)
        await asyncio.sleep(0.2)
        cut = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        await asyncio.sleep(0.2)
        await _publish(hjs, "a.y", 10, 5)
        for i in range(6):
            await hjs.publish("b.%s" % ("keep" if i % 2 else "drop"), b"b%d" % i)
        await ljs.add_stream(name="FROM7", mirror=jsapi.StreamSource(
            name="A", opt_start_seq=7, external=HUB_API))
        await ljs.add_stream(name="MIX", sources=[
            jsapi.StreamSource(name="A", opt_start_time=cut, external=HUB_API),
            jsapi.StreamSource(name="B", external=HUB_API, subject_transforms=[
                jsapi.SubjectTransform(src="b.keep", dest="kept.b")])])
        await until(lambda: _held(ljs, "FROM7", 9), message="mirror from seq 7")
        info = await ljs.stream_info("FROM7")
        assert (info.state.first_seq, info.state.last_seq) == (7, 15)
        await until(lambda: _held(ljs, "MIX", 5 + 3), message="two sources")
        got = await messages(ljs, "MIX", 8)
        assert sorted(d for _s, _subj, d in got) == sorted(
            [b"m%d" % i for i in range(10, 15)] + [b"b1", b"b3", b"b5"])
        assert {subj for _s, subj, d in got if d.startswith(b"b")} == {"kept.b"}
        await nh.close()
        await nl.close()

    run(main())


def test_mirror_and_source_resume_after_hub_restart(make_hub, make_leaf, tmp_path):
    """The origin side restarts (the hub, holding ORIGIN and AGG): the leaf's
    mirror and the hub's source carry on from where they were."""
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path)

    async def before():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await ljs.add_stream(name="LOCAL", subjects=["edge.>"])
        await ljs.add_stream(name="M", mirror=jsapi.StreamSource(name="ORIGIN",
                                                                  external=HUB_API))
        await retrying(lambda: nh.jetstream(domain="edge").stream_info("LOCAL"))
        await hjs.add_stream(name="AGG", subjects=["agg.>"], sources=[jsapi.StreamSource(
            name="LOCAL", external=jsapi.ExternalStream(api="$JS.edge.API"))])
        await _publish(hjs, "o.a", 0, 100)
        await _publish(ljs, "edge.a", 0, 100)
        await until(lambda: _held(ljs, "M", 100), message="100 mirrored")
        await until(lambda: _held(hjs, "AGG", 100), message="100 sourced")
        await nh.close()
        await nl.close()

    run(before())
    hub.kill()

    async def while_down():
        nl = await connect(leaf)
        await _publish(nl.jetstream(), "edge.b", 100, 50)  # the leaf's own stream
        await nl.close()

    run(while_down())
    hub.start()

    async def after():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await _publish(hjs, "o.b", 100, 50)
        await until(lambda: _held(ljs, "M", 150), timeout=40, message="150 mirrored")
        await until(lambda: _held(hjs, "AGG", 150), timeout=40, message="150 sourced")
        await asyncio.sleep(1.0)
        assert (await hjs.stream_info("AGG")).state.messages == 150  # nothing twice
        last = await ljs.get_msg("M", 150)
        assert (last.subject, last.data) == ("o.b", b"m149")
        await nh.close()
        await nl.close()

    run(after())


RUN_PAIRINGS = {"py-hub_py-leaf": (False, False), **GO_PAIRINGS}


@pytest.mark.parametrize("pairing", list(RUN_PAIRINGS))
def test_mirror_of_mixed_runs_equals_origin(make_hub, make_leaf, tmp_path, pairing):
    """A backlog and a live burst crossing the link as runs (the hub's
    consumer frames them into the link, the leaf takes a read's run at once:
    jetstream/direct.py, links/jsdeliver.py claimed_run), with messages with
    headers, other subjects and deleted ones in between: the mirror equals
    the origin sequence by sequence (subject, payload, headers, gaps)."""
    go_hub, go_leaf = RUN_PAIRINGS[pairing]
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path, go_hub, go_leaf)

    async def burst(js, start, count):
        futs = []
        for i in range(start, start + count):
            subject = "o.h" if i % 7 == 3 else ("o.%d" % (i % 3))
            headers = {"K": "v%d" % i} if i % 7 == 3 else None
            futs.append(await js.publish_async(subject, b"m%d" % i, headers=headers))
        await asyncio.gather(*futs)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await burst(hjs, 0, 600)  # the backlog
        for seq in (2, 300, 301, 600):
            await hjs.delete_msg("ORIGIN", seq)
        await ljs.add_stream(name="M", mirror=jsapi.StreamSource(name="ORIGIN",
                                                                  external=HUB_API))
        await burst(hjs, 600, 600)  # live, while the backlog crosses
        await until(lambda: _held(ljs, "M", 1196), timeout=30, message="1196 mirrored")
        hinfo, linfo = await hjs.stream_info("ORIGIN"), await ljs.stream_info("M")
        assert (linfo.state.first_seq, linfo.state.last_seq, linfo.state.messages) == \
            (hinfo.state.first_seq, hinfo.state.last_seq, hinfo.state.messages) == \
            (1, 1200, 1196)
        for seq in range(1, 1201):
            if seq in (2, 300, 301, 600):
                with pytest.raises(nats.js.errors.NotFoundError):
                    await ljs.get_msg("M", seq)
                continue
            a, b = await hjs.get_msg("ORIGIN", seq), await ljs.get_msg("M", seq)
            assert (b.seq, b.subject, b.data) == (seq, a.subject, a.data)
            assert (b.headers or {}).get("K") == (a.headers or {}).get("K"), seq
        await nh.close()
        await nl.close()

    run(main())


def test_mirror_runs_with_limits(make_hub, make_leaf, tmp_path):
    """A mirror with its own max_msgs (discard old) fed by runs: the run is
    stored with the limits checked per message, the newest kept at their
    origin sequences."""
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await _publish(hjs, "o.a", 0, 1000)
        await ljs.add_stream(name="M", max_msgs=100, mirror=jsapi.StreamSource(
            name="ORIGIN", external=HUB_API))
        await until(lambda: _last(ljs, "M", 1000), message="mirror at 1000")
        info = await ljs.stream_info("M")
        assert (info.state.first_seq, info.state.last_seq, info.state.messages) == \
            (901, 1000, 100)
        got = await ljs.get_msg("M", 901)
        assert (got.subject, got.data) == ("o.a", b"m900")
        await _publish(hjs, "o.b", 1000, 10)
        await until(lambda: _last(ljs, "M", 1010), message="mirror at 1010")
        info = await ljs.stream_info("M")
        assert (info.state.first_seq, info.state.messages) == (911, 100)
        await nh.close()
        await nl.close()

    run(main())


async def _last(js, stream, seq):
    return (await js.stream_info(stream)).state.last_seq == seq


@pytest.mark.parametrize("pairing", list(GO_PAIRINGS))
def test_durable_source_across_a_leaf_with_go(make_hub, make_leaf, tmp_path, pairing):
    """Durable sourcing (Go 2.14+) across the leaf link, with Go on either
    side: the leaf's stream sources the hub's through a durable push
    consumer with ``ack_policy: flow_control`` that the user made (the
    source sends it a ``CONSUMER.RESET``, never a create). The consumer's
    acks are the flow control replies: once every message is sourced, its
    ack floor reaches the last one and nothing is pending."""
    import json

    go_hub, go_leaf = GO_PAIRINGS[pairing]
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path, go_hub, go_leaf)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
        await _publish(hjs, "o.a", 0, 100)
        created = json.loads((await nh.request("$JS.API.CONSUMER.CREATE.ORIGIN.DUR", json.dumps(
            {"stream_name": "ORIGIN", "config": {
                "durable_name": "DUR", "deliver_subject": "dsrc.edge", "ack_policy":
                "flow_control", "max_ack_pending": 1000, "deliver_policy": "all"}}).encode(),
            timeout=5)).data)
        assert created.get("config", {}).get("ack_policy") == "flow_control", created
        source = {"name": "ORIGIN", "external": {"api": "$JS.hub.API"},
                  "consumer": {"name": "DUR", "deliver_subject": "dsrc.edge"}}
        made = json.loads((await nl.request("$JS.API.STREAM.CREATE.S", json.dumps(
            {"name": "S", "sources": [source]}).encode(), timeout=5)).data)
        assert "error" not in made, made
        await until(lambda: _held(ljs, "S", 100), message="100 sourced")
        await _publish(hjs, "o.b", 100, 50)
        await until(lambda: _held(ljs, "S", 150), message="150 sourced")

        async def acked():
            info = await hjs.consumer_info("ORIGIN", "DUR")
            return info.ack_floor.stream_seq == 150 and info.num_ack_pending == 0
        try:
            await until(acked, timeout=15, message="DUR acked up to 150")
        except AssertionError:
            info = await hjs.consumer_info("ORIGIN", "DUR")
            raise AssertionError("DUR: ack floor %s, %d pending" % (
                info.ack_floor, info.num_ack_pending)) from None
        await nh.close()
        await nl.close()

    run(main(), timeout=90)


@pytest.mark.parametrize("pairing", ["py-hub_py-leaf"] + list(GO_PAIRINGS))
def test_source_of_a_recreated_origin_starts_over(make_hub, make_leaf, tmp_path, pairing):
    """Go 2.15's stream identity, ours and Go's on either side of the leaf
    link: ``Nats-Stream-Source`` ends with the origin's identity (the hash
    of its creation time, as Go computes it); a source whose origin is
    deleted and made again under the same name is refused its old identity
    (10225), starts over from the new origin's start and copies its
    messages (before, ours asked for sequence 11 of a 3-message stream and
    copied nothing)."""
    import json

    from pluggy_nats_plugins.jetstream.sources import go_hash

    go_hub, go_leaf = GO_PAIRINGS.get(pairing, (False, False))
    hub, leaf = _hub_and_leaf(make_hub, make_leaf, tmp_path, go_hub, go_leaf)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        hjs, ljs = nh.jetstream(), nl.jetstream()
        await hjs.add_stream(name="O", subjects=["o"])
        await _publish(hjs, "o", 0, 10)
        await ljs.add_stream(name="S", sources=[jsapi.StreamSource(name="O",
                                                                   external=HUB_API)])
        await until(lambda: _held(ljs, "S", 10), message="10 sourced")
        created = json.loads((await nh.request("$JS.API.STREAM.INFO.O", b"")).data)["created"]
        header = (await ljs.get_msg("S", 10)).headers["Nats-Stream-Source"].split(" ")
        assert len(header) == 6 and header[5] == go_hash(created), (header, created)
        await hjs.delete_stream("O")
        await hjs.add_stream(name="O", subjects=["o"])
        await _publish(hjs, "o", 100, 3)
        await until(lambda: _held(ljs, "S", 13), timeout=40, message="the new origin copied")
        last = await ljs.get_msg("S", 13)
        assert last.data == b"m102"
        assert last.headers["Nats-Stream-Source"].split(" ")[1] == "3"
        await nh.close()
        await nl.close()

    run(main(), timeout=90)
