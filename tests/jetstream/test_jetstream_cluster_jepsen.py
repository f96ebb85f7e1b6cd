"""A seeded randomized fault run, Jepsen-style, on three of our servers:
clients publish with acks (each message has a Nats-Msg-Id and is retried
until acknowledged) and run KV compare-and-set updates while the harness
kills (-9, then restarts), pauses (SIGSTOP/SIGCONT) or cuts the routes of a
random server, one fault at a time, for a bounded time. Then a checker reads
every replica's store: every acknowledged publish is there exactly once at
its sequence, the replicas are identical, and no two compare-and-set updates
on the same revision both succeeded.

One short seed runs by default; ``pytest -m soak`` (tox -e soak) runs the
long ones. Each run prints its seed and the size of the history it checked."""

import asyncio
import random
import time

import nats.errors
import nats.js.errors
import pytest

from .clusterkit import add_stream, connect, js_cluster, read_replica, retry, wait_for
from .test_jetstream_cluster_faults import all_hold, check_copies

SHORT_SEED, SHORT_SECONDS = 1414, 8
SOAK_SEEDS, SOAK_SECONDS = (1414, 7, 99), 60


async def _publisher(js, w, acked, stop):
    i = 0
    while not stop.is_set():
        data = b"w%d-%d" % (w, i)
        deadline = time.monotonic() + 60
        while True:
            try:
                ack = await js.publish("j.%d" % w, data, headers={"Nats-Msg-Id": data.decode()},
                                       timeout=1.0)
                break
            except (asyncio.TimeoutError, nats.errors.Error):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        assert acked.get(ack.seq, data) == data, "seq %d acked for two messages" % ack.seq
        acked[ack.seq] = data
        i += 1


async def _cas_worker(kv, w, wins, stop):
    """Read the counter and write it back +1 expecting the revision read."""
    while not stop.is_set():
        try:
            entry = await kv.get("counter")
            rev = await asyncio.wait_for(kv.update(
                "counter", b"%d" % (int(entry.value) + 1), last=entry.revision), 2.0)
            wins.append((entry.revision, rev, w))
        except (asyncio.TimeoutError, nats.errors.Error, nats.js.errors.Error):
            await asyncio.sleep(0.05)  # lost or refused: an indeterminate or failed CAS


async def _faults(cluster, rng, stop, log):
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(1.0, 2.0))
        victim = rng.randrange(cluster.n)
        kind = rng.choice(["kill", "pause", "cut"])
        hold = rng.uniform(0.8, 2.0)
        log.append((round(time.monotonic(), 2), kind, victim))
        if kind == "kill":
            cluster.kill(victim)
            await asyncio.sleep(hold)
            await asyncio.get_running_loop().run_in_executor(None, cluster.restart, victim)
        elif kind == "pause":
            cluster.pause(victim)
            await asyncio.sleep(hold)
            cluster.resume(victim)
        else:
            others = [j for j in range(cluster.n) if j != victim]
            cluster.partition([victim], others)
            await asyncio.sleep(hold)
            cluster.heal_all()


def jepsen_run(cluster, seed, seconds, run):
    rng = random.Random(seed)
    acked, wins, log = {}, [], []

    async def body():
        # the client sits on server 0, which faults spare: a client's own
        # server dying is a client problem, not the one checked here
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="J", subjects=["j.>"], num_replicas=3)
        kv = await retry(lambda: js.create_key_value(bucket="cas", replicas=3))
        await retry(lambda: kv.put("counter", b"0"))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_publisher(js, w, acked, stop)) for w in range(2)]
        tasks += [asyncio.create_task(_cas_worker(kv, w, wins, stop)) for w in range(2)]
        faults = asyncio.create_task(_faults(_Spare(cluster, 0), rng, stop, log))
        await asyncio.sleep(seconds)
        stop.set()
        await faults
        await asyncio.gather(*tasks)
        cluster.heal_all()
        last = max(acked)
        await wait_for(lambda: all_hold(cluster, "J", last), timeout=60,
                       what="every replica holds seq %d" % last)
        kv_last = (await js.stream_info("KV_cas")).state.last_seq
        await wait_for(lambda: all_hold(cluster, "KV_cas", kv_last), timeout=60,
                       what="every KV replica holds seq %d" % kv_last)
        await nc.close()

    run(body(), timeout=seconds + 180)
    cluster.close()
    check_copies(cluster, "J", acked)
    revisions = [w[0] for w in wins]
    assert len(revisions) == len(set(revisions)), "two CAS updates won on one revision"
    kv_copies = [read_replica(cluster, i, "KV_cas") for i in range(cluster.n)]
    assert kv_copies[0] == kv_copies[1] == kv_copies[2]
    print("seed %d: %d acked publishes, %d CAS wins, faults %s"
          % (seed, len(acked), len(wins), log))
    assert acked and wins and log


class _Spare:
    """The cluster with one server spared from faults (the client's)."""

    def __init__(self, cluster, spare):
        self._c, self.spare = cluster, spare
        self.n = cluster.n - 1

    def _i(self, k):
        return [i for i in range(self._c.n) if i != self.spare][k]

    def kill(self, k):
        self._c.kill(self._i(k))

    def restart(self, k):
        self._c.restart(self._i(k))

    def pause(self, k):
        self._c.pause(self._i(k))

    def resume(self, k):
        self._c.resume(self._i(k))

    def partition(self, a, b):
        self._c.partition([self._i(k) for k in a], [self.spare] + [self._i(k) for k in b])

    def heal_all(self):
        self._c.heal_all()


def test_jepsen_short_seed(make_fault_cluster, run):
    jepsen_run(js_cluster(make_fault_cluster), SHORT_SEED, SHORT_SECONDS, run)


@pytest.mark.soak
@pytest.mark.parametrize("seed", SOAK_SEEDS)
def test_jepsen_soak(make_fault_cluster, run, seed):
    jepsen_run(js_cluster(make_fault_cluster), seed, SOAK_SECONDS, run)
