"""Consumers through nats-py: pull (fetch, status replies), push, acks,
redelivery, ordered consumers, retention policies."""

import asyncio
import json

import pytest
from nats.errors import TimeoutError
from nats.js import api as jsapi

from pluggy_nats.testing.plugin import run

from .conftest import api, connect


async def _publish(js, subject, n, start=0):
    for i in range(start, start + n):
        await js.publish(subject, b"m%d" % i)


def test_jetstream_pull_fetch_and_ack(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="W", subjects=["w.>"])
        await _publish(js, "w.a", 10)
        psub = await js.pull_subscribe("w.>", durable="pull")
        msgs = await psub.fetch(4, timeout=2)
        assert [m.data for m in msgs] == [b"m0", b"m1", b"m2", b"m3"]
        md = msgs[0].metadata
        assert (md.sequence.stream, md.sequence.consumer, md.num_delivered,
                md.num_pending) == (1, 1, 1, 9)
        assert msgs[0].reply.startswith("$JS.ACK.W.pull.1.1.1.")
        for m in msgs:
            await m.ack_sync()  # double ack: the server answers
        msgs = await psub.fetch(100, timeout=1)
        assert len(msgs) == 6
        await msgs[0].ack()
        await msgs[1].term()
        await msgs[2].in_progress()
        await msgs[2].ack()
        await msgs[3].nak()
        again = await psub.fetch(1, timeout=2)
        assert again[0].data == msgs[3].data and again[0].metadata.num_delivered == 2
        for m in again + msgs[4:]:
            await m.ack()
        await asyncio.sleep(0.1)
        ci = await js.consumer_info("W", "pull")
        assert ci.num_ack_pending == 0 and ci.ack_floor.stream_seq == 10
        assert ci.delivered.consumer_seq == 11 and ci.num_pending == 0
        with pytest.raises(TimeoutError):
            await psub.fetch(1, timeout=0.5)
        await nc.close()

    run(main())


def test_jetstream_pull_status_replies(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s"])
        await api(nc, "$JS.API.CONSUMER.CREATE.S.p", {"stream_name": "S", "config": {
            "name": "p", "ack_policy": "explicit", "max_batch": 5, "max_waiting": 1,
            "inactive_threshold": 60_000_000_000}})
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox + ".*")

        async def status(body):
            await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.p", json.dumps(body).encode(),
                             reply=inbox + ".x")
            m = await sub.next_msg(timeout=2)
            return m.headers.get("Status"), m.headers.get("Description")

        assert await status({"batch": 1, "no_wait": True}) == ("404", "No Messages")
        assert await status({"batch": 10}) == ("409", "Exceeded MaxRequestBatch of 5")
        assert await status({"batch": 1, "expires": 200_000_000}) == ("408", "Request Timeout")
        assert await status({"batch": 1, "expires": 100_000_000,
                             "idle_heartbeat": 80_000_000}) == \
            ("400", "Bad Request - heartbeat value too large")
        # one waiting request fills max_waiting 1
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.p",
                         json.dumps({"batch": 1, "expires": 2_000_000_000}).encode(),
                         reply=inbox + ".y")
        assert await status({"batch": 1, "expires": 1_000_000_000}) == \
            ("409", "Exceeded MaxWaiting")
        await js.publish("s", b"one")
        m = await sub.next_msg(timeout=2)
        assert m.subject == "s" and m.data == b"one"  # its own subject, to the inbox
        # heartbeats while a pull waits
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.p", json.dumps(
            {"batch": 1, "expires": 1_000_000_000, "idle_heartbeat": 200_000_000}).encode(),
            reply=inbox + ".z")
        m = await sub.next_msg(timeout=2)
        assert (m.headers.get("Status"), m.headers.get("Description")) == \
            ("100", "Idle Heartbeat")
        await api(nc, "$JS.API.CONSUMER.DELETE.S.p")
        found = False
        for _ in range(10):
            m = await sub.next_msg(timeout=2)
            if m.headers and m.headers.get("Status") == "409":
                assert m.headers.get("Description") == "Consumer Deleted"
                found = True
                break
        assert found
        await nc.close()

    run(main())


def test_jetstream_push_and_redelivery(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="R", subjects=["r"])
        await _publish(js, "r", 3)
        sub = await js.subscribe("r", durable="push", manual_ack=True,
                                 config=jsapi.ConsumerConfig(ack_wait=0.3, max_deliver=2))
        got = [await sub.next_msg(timeout=2) for _ in range(3)]
        assert [m.data for m in got] == [b"m0", b"m1", b"m2"]
        await got[0].ack()
        await got[2].ack()
        m = await sub.next_msg(timeout=2)  # m1 after ack_wait
        assert m.data == b"m1" and m.metadata.num_delivered == 2
        with pytest.raises(TimeoutError):  # max_deliver 2: not again
            await sub.next_msg(timeout=0.8)
        ci = await js.consumer_info("R", "push")
        assert ci.num_ack_pending == 0 and ci.num_redelivered == 0
        await nc.close()

    run(main())


def test_jetstream_nak_delay_and_backoff(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="B", subjects=["b"])
        await js.publish("b", b"x")
        psub = await js.pull_subscribe("b", durable="d", config=jsapi.ConsumerConfig(
            backoff=[0.2, 0.6], max_deliver=4))
        (m,) = await psub.fetch(1, timeout=2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        (m,) = await psub.fetch(1, timeout=3)  # redelivered after backoff[0]
        assert m.metadata.num_delivered == 2 and loop.time() - t0 >= 0.15
        t0 = loop.time()
        await m.nak(delay=0.5)
        (m,) = await psub.fetch(1, timeout=3)
        assert m.metadata.num_delivered == 3 and loop.time() - t0 >= 0.4
        await m.ack()
        await nc.close()

    run(main())


def test_jetstream_deliver_policies(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="P", subjects=["p.*"])
        for i, s in enumerate("abab"):
            await js.publish("p." + s, b"%d" % i)

        async def first(**cfg):
            name = "c%d" % len(cfg)
            ci = await js.add_consumer("P", jsapi.ConsumerConfig(**cfg))
            psub = await js.pull_subscribe_bind(durable=ci.name, stream="P")
            msgs = await psub.fetch(10, timeout=0.5)
            await js.delete_consumer("P", ci.name)
            del name
            return [m.data for m in msgs]

        assert await first(deliver_policy=jsapi.DeliverPolicy.LAST) == [b"3"]
        assert await first(deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE,
                           opt_start_seq=3) == [b"2", b"3"]
        assert await first(deliver_policy=jsapi.DeliverPolicy.LAST_PER_SUBJECT,
                           filter_subject="p.*") == [b"2", b"3"]
        with pytest.raises(TimeoutError):
            await first(deliver_policy=jsapi.DeliverPolicy.NEW)
        await nc.close()

    run(main())


def test_jetstream_ordered_consumer(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.>"])
        await _publish(js, "o.x", 50)
        sub = await js.subscribe("o.>", ordered_consumer=True)
        got = [(await sub.next_msg(timeout=2)).data for _ in range(50)]
        assert got == [b"m%d" % i for i in range(50)]
        await _publish(js, "o.y", 5, start=50)
        got = [(await sub.next_msg(timeout=2)).data for _ in range(5)]
        assert got == [b"m%d" % i for i in range(50, 55)]
        await nc.close()

    run(main())


def test_jetstream_workqueue_and_interest(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="WQ", subjects=["wq.>"], retention="workqueue")
        await js.add_consumer("WQ", durable_name="a", filter_subject="wq.a",
                              ack_policy="explicit")
        with pytest.raises(Exception) as exc:
            await js.add_consumer("WQ", durable_name="b", filter_subject="wq.a",
                                  ack_policy="explicit")
        assert exc.value.err_code == 10100
        await _publish(js, "wq.a", 3)
        psub = await js.pull_subscribe_bind(durable="a", stream="WQ")
        for m in await psub.fetch(3, timeout=2):
            await m.ack_sync()
        si = await js.stream_info("WQ")
        assert si.state.messages == 0 and si.state.last_seq == 3

        await js.add_stream(name="IN", subjects=["in"], retention="interest")
        await js.publish("in", b"nobody")
        si = await js.stream_info("IN")
        assert (si.state.messages, si.state.first_seq, si.state.last_seq) == (0, 2, 1)
        await js.add_consumer("IN", durable_name="x", ack_policy="explicit")
        await js.add_consumer("IN", durable_name="y", ack_policy="explicit")
        await js.publish("in", b"both")
        px = await js.pull_subscribe_bind(durable="x", stream="IN")
        py = await js.pull_subscribe_bind(durable="y", stream="IN")
        (m,) = await px.fetch(1, timeout=2)
        await m.ack_sync()
        assert (await js.stream_info("IN")).state.messages == 1
        (m,) = await py.fetch(1, timeout=2)
        await m.ack_sync()
        assert (await js.stream_info("IN")).state.messages == 0
        await nc.close()

    run(main())


def test_jetstream_ephemeral_inactive(js_server, wait_for):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="E", subjects=["e"])
        ci = await js.add_consumer("E", jsapi.ConsumerConfig(
            name="eph", inactive_threshold=0.3))
        assert ci.config.inactive_threshold == 0.3
        for _ in range(60):
            names = await api(nc, "$JS.API.CONSUMER.NAMES.E")
            if not names["consumers"]:
                break
            await asyncio.sleep(0.05)
        assert names["consumers"] == []
        await nc.close()

    run(main())


def test_jetstream_replay_original_and_ack_all(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="RO", subjects=["ro"])
        await js.publish("ro", b"a")
        await asyncio.sleep(0.4)
        await js.publish("ro", b"b")
        sub = await js.subscribe("ro", durable="orig", manual_ack=True,
                                 config=jsapi.ConsumerConfig(replay_policy="original",
                                                             ack_policy="all"))
        loop = asyncio.get_running_loop()
        m1 = await sub.next_msg(timeout=2)
        t1 = loop.time()
        m2 = await sub.next_msg(timeout=2)
        assert (m1.data, m2.data) == (b"a", b"b")
        assert loop.time() - t1 >= 0.3  # the original gap
        await m2.ack_sync()  # ack all: both
        ci = await js.consumer_info("RO", "orig")
        assert ci.num_ack_pending == 0 and ci.ack_floor.stream_seq == 2
        await nc.close()

    run(main())


def test_jetstream_push_heartbeats_and_flow_control(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="HB", subjects=["hb"])
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await js.add_consumer("HB", jsapi.ConsumerConfig(
            durable_name="hb", deliver_subject=inbox, idle_heartbeat=0.2,
            flow_control=True, ack_policy="none"))
        m = await sub.next_msg(timeout=2)
        assert m.headers.get("Status") == "100" and \
            m.headers.get("Description") == "Idle Heartbeat"
        assert m.headers.get("Nats-Last-Consumer") == "0"
        big = b"x" * 200_000
        for _ in range(8):  # 1.6 MB: past the flow control threshold
            await js.publish("hb", big)
        seen_fc = False
        got = 0
        while got < 8:
            m = await sub.next_msg(timeout=2)
            if m.headers and m.headers.get("Status") == "100":
                if m.headers.get("Description") == "FlowControl Request":
                    assert m.reply.startswith("$JS.FC.HB.hb.")
                    await nc.publish(m.reply, b"")
                    seen_fc = True
                continue
            got += 1
        assert seen_fc
        await nc.close()

    run(main())


def test_jetstream_pull_next_ack_and_max_bytes(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="NX", subjects=["nx"])
        for i in range(3):
            await js.publish("nx", b"%d" % i * 100)
        await js.add_consumer("NX", durable_name="n", ack_policy="explicit")
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NX.n", b"1", reply=inbox)
        m = await sub.next_msg(timeout=2)
        assert m.data == b"0" * 100
        # +NXT acks this one and asks for the next, to the same inbox
        await nc.publish(m.reply, b"+NXT", reply=inbox)
        m = await sub.next_msg(timeout=2)
        assert m.data == b"1" * 100
        await nc.publish(m.reply, b"+ACK")
        # max_bytes smaller than the next message: 409
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NX.n",
                         json.dumps({"batch": 5, "max_bytes": 50,
                                     "expires": 1_000_000_000}).encode(), reply=inbox)
        m = await sub.next_msg(timeout=2)
        assert (m.headers["Status"], m.headers["Description"]) == \
            ("409", "Message Size Exceeds MaxBytes")
        ci = await js.consumer_info("NX", "n")
        assert ci.ack_floor.stream_seq == 2 and ci.num_pending == 1
        await nc.close()

    run(main())


def test_jetstream_push_rate_limit(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="RL", subjects=["rl"])
        for _ in range(5):
            await js.publish("rl", b"x" * 1000)
        # 16000 bits/s = 2 KB/s: each ~1 KB message takes about half a second
        sub = await js.subscribe("rl", durable="slow", config=jsapi.ConsumerConfig(
            rate_limit_bps=16_000, ack_policy="none"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(3):
            await sub.next_msg(timeout=3)
        assert loop.time() - t0 >= 0.8  # 3 KB at 2 KB/s
        await nc.close()

    run(main())


def test_jetstream_pull_replay_original(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="RP", subjects=["rp"])
        await js.publish("rp", b"a")
        await asyncio.sleep(0.4)
        await js.publish("rp", b"b")
        psub = await js.pull_subscribe("rp", durable="orig", config=jsapi.ConsumerConfig(
            replay_policy="original"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = []
        while len(got) < 2 and loop.time() - t0 < 5:
            try:
                got += await psub.fetch(2, timeout=1)
            except TimeoutError:
                pass
        assert [m.data for m in got] == [b"a", b"b"]
        assert loop.time() - t0 >= 0.3  # the original gap between them
        await nc.close()

    run(main())


@pytest.mark.parametrize("subscribers", [1, 2])
def test_push_flow_control_window_holds_back_until_answered(js_server, subscribers):
    """Go's push flow control window (``needFlowControl``): with nobody
    answering, no more than the first window (2 MiB) plus one message goes
    out, whatever the backlog (a 64 MiB object store get used to be cut as
    a slow consumer at the client's 64 MiB max_pending); each answer moves
    the window on (and doubles it) until everything is delivered. One
    subscriber takes the run path (direct.py), two the one-by-one path."""
    srv = js_server()
    size, count = 64 * 1024, 100  # 6.4 MiB of backlog

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="FC", subjects=["fc"])
        for _ in range(count):
            await js.publish("fc", b"x" * size)
        got, requests, stalled = [], [], []

        async def on_msg(msg):
            if msg.headers and msg.headers.get("Status") == "100":
                if msg.reply:
                    requests.append(msg.reply)
                elif msg.headers.get("Nats-Consumer-Stalled"):
                    stalled.append(msg.headers["Nats-Consumer-Stalled"])
                return
            got.append(len(msg.data))
        subs = [await nc.subscribe("fc.deliver", cb=on_msg if i == 0 else _ignore)
                for i in range(subscribers)]
        await js.add_consumer("FC", jsapi.ConsumerConfig(
            durable_name="fc", deliver_subject="fc.deliver", idle_heartbeat=0.5,
            flow_control=True, ack_policy="none"))
        await asyncio.sleep(2.0)  # unanswered: the first window, no more
        window = 2 * 1024 * 1024
        assert requests, "no flow control request"
        assert window // size <= len(got) <= window // size + 1, len(got)
        assert stalled and stalled[-1] == requests[-1]  # heartbeats name the request
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        answered = 0
        while len(got) < count and loop.time() < end:
            while answered < len(requests):
                await nc.publish(requests[answered], b"")
                answered += 1
            await asyncio.sleep(0.05)
        assert len(got) == count and sum(got) == count * size
        for sub in subs:
            await sub.unsubscribe()
        await nc.close()

    run(main(), timeout=60)


async def _ignore(msg):
    pass


def test_consumer_reset_answers_as_go(js_server, go_nats_server, tmp_path):
    """CONSUMER.RESET (to the ack floor, then to a sequence) answers as Go
    2.15.1: delivery counting starts again at 1, no ``last_active``, the
    pending counts; the next delivery names the reset sequence."""
    keys = ("delivered", "ack_floor", "num_pending", "num_ack_pending", "reset_seq",
            "num_redelivered")

    async def walk(server):
        nc = await connect(server)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o"])
        await _publish(js, "o", 10)
        await api(nc, "$JS.API.CONSUMER.CREATE.O.P", {"stream_name": "O", "config": {
            "durable_name": "P", "ack_policy": "explicit"}})
        sub = await js.pull_subscribe_bind("P", "O")
        msgs = await sub.fetch(6, timeout=2)
        for msg in msgs[:3]:
            await msg.ack()
        await asyncio.sleep(0.2)
        out = []
        for body in (b"", b'{"seq": 8}'):
            resp = await api(nc, "$JS.API.CONSUMER.RESET.O.P", body)
            out.append({k: resp.get(k) for k in keys})
        out.append((await sub.fetch(1, timeout=2))[0].reply.split(".")[4:7])
        await nc.close()
        return out

    ours = run(walk(js_server()))
    theirs = run(walk(go_nats_server("-js", "-sd", str(tmp_path / "go"))))
    assert ours == theirs
    assert ours[0]["reset_seq"] == 4 and ours[2] == ["1", "8", "1"]
