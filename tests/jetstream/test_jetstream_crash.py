"""Crash safety: publish with acks while the server is killed with SIGKILL at
seeded random moments, restart it on the same store directory, and check that
every acknowledged message is there once, at its sequence; a durable
consumer's ack floor survives too (after the state flush Go also needs).

The default run is short (2 kills per case); ``PLUGGY_NATS_CRASH_ROUNDS=50``
makes it a soak run."""

import asyncio
import os
import random

import nats
import pytest

from pluggy_nats.testing.plugin import run

ROUNDS = int(os.environ.get("PLUGGY_NATS_CRASH_ROUNDS", "2"))


async def _publish_until_killed(url, acked, start, inflight=16):
    """Publish payloads ``start, start+1, ...`` with acks until the server dies."""
    nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
    js = nc.jetstream(timeout=2)
    counter = [start]

    async def worker():
        while True:
            n = counter[0]
            counter[0] += 1
            try:
                ack = await js.publish("crash.x", b"%d" % n)
            except Exception:
                return
            acked[ack.seq] = n

    tasks = [asyncio.create_task(worker()) for _ in range(inflight)]
    try:
        await asyncio.gather(*tasks)
    finally:
        try:
            await nc.close()
        except Exception:
            pass
    return counter[0]


def _crash_rounds(srv, seed, rounds):
    rng = random.Random(seed)
    acked = {}

    async def main():
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="CRASH", subjects=["crash.>"])
        await nc.close()
        start = 0
        for _ in range(rounds):
            pub = asyncio.create_task(_publish_until_killed(srv.url, acked, start))
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            srv.kill()
            start = await asyncio.wait_for(pub, 10)
            srv.start()
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        info = await js.stream_info("CRASH")
        assert acked, "nothing was acknowledged before the kills"
        missing = []
        payloads = set()
        for seq, n in sorted(acked.items()):
            try:
                msg = await js.get_msg("CRASH", seq)
            except Exception:
                missing.append(seq)
                continue
            if msg.data != b"%d" % n:
                missing.append(seq)
        # each acked payload once: no other sequence holds it
        seq = info.state.first_seq
        while seq <= info.state.last_seq:
            try:
                msg = await js.get_msg("CRASH", seq)
                assert msg.data not in payloads, "payload %r stored twice" % msg.data
                payloads.add(msg.data)
            except nats.js.errors.NotFoundError:
                pass
            seq += 1
        await nc.close()
        assert not missing, "acked but lost or changed: %s" % missing[:20]
        assert info.state.last_seq >= max(acked)

    run(main(), timeout=90)


@pytest.mark.parametrize("sync", ["default", "always"])
def test_jetstream_crash_acked_messages_survive(js_server, tmp_path, sync):
    config = None
    if sync == "always":
        config = "jetstream { store_dir: '%s', sync_interval: always }" % (tmp_path / "sa")
    srv = js_server(config=config)
    _crash_rounds(srv, seed=1301 if sync == "default" else 1302, rounds=ROUNDS)


def test_jetstream_crash_consumer_ack_floor(js_server):
    """The ack floor and the delivered-but-unacked survive kill -9; those two
    are redelivered one ack wait (30 s) after their delivery, not at once:
    the next fetch gives the rest. Go 2.15.1, the same steps: ack floor 10,
    2 pending, then ``[b'12', ..., b'19']`` (its checkPending uses the
    deliveries' timestamps, also after a restart)."""
    srv = js_server()

    async def main():
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="FLOOR", subjects=["floor"])
        for i in range(20):
            await js.publish("floor", b"%d" % i)
        psub = await js.pull_subscribe("floor", durable="keep")
        msgs = await psub.fetch(12, timeout=2)
        for m in msgs[:10]:
            await m.ack_sync()
        await asyncio.sleep(0.5)  # past the consumer state flush
        await nc.close()
        srv.kill()
        srv.start()
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        ci = await js.consumer_info("FLOOR", "keep")
        assert ci.ack_floor.stream_seq == 10
        assert ci.num_ack_pending == 2
        psub = await js.pull_subscribe_bind(durable="keep", stream="FLOOR")
        got = await psub.fetch(10, timeout=2)
        assert [m.data for m in got] == [b"%d" % i for i in range(12, 20)]
        await nc.close()

    run(main(), timeout=60)


def test_jetstream_crash_emptied_stream_keeps_sequences(js_server):
    """nats-server#2068: an emptied stream must not restart at sequence 0."""
    srv = js_server()

    async def main():
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="EMPTY", subjects=["empty"])
        for i in range(3):
            await js.publish("empty", b"%d" % i)
        await js.purge_stream("EMPTY")
        await nc.close()
        srv.kill()
        srv.start()
        nc = await nats.connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        info = await js.stream_info("EMPTY")
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (0, 4, 3)
        ack = await js.publish("empty", b"next")
        assert ack.seq == 4
        await nc.close()

    run(main(), timeout=60)
