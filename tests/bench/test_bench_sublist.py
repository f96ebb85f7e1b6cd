"""Micro-benchmarks of the subject index (run: pytest tests/bench --benchmark-only).

One sublist of 100k subscriptions: literal subjects of 3-5 tokens from a
12-word vocabulary, 10% with one ``*`` token, 5% ending in ``>``, 10% queue
subscriptions. Batched benchmarks (insert/remove) time BATCH operations per
round; ``extra_info["ns_per_op"]`` holds the per-operation figure.
"""

import itertools
import random

import pytest

from pluggy_nats.sublist import CACHE_MAX, Sublist

N = 100_000
BATCH = 1_000
VOCAB = [b"orders", b"eu", b"us", b"created", b"updated", b"v1", b"v2", b"item",
         b"user", b"42", b"stock", b"price"]


class Sub:
    __slots__ = ("subject", "queue", "weight")

    def __init__(self, subject, queue=None, weight=1):
        self.subject = subject
        self.queue = queue
        self.weight = weight


def literal(rng):
    return [rng.choice(VOCAB) for _ in range(rng.randint(3, 5))]


def make_sub(rng, kind=None):
    toks = literal(rng)
    r = rng.random() if kind is None else {"literal": 0.5, "pwc": 0.0, "fwc": 0.12}[kind]
    if r < 0.10:
        toks[rng.randrange(len(toks))] = b"*"
    elif r < 0.15:
        toks[-1] = b">"
    queue = b"q%d" % rng.randrange(4) if rng.random() < 0.10 else None
    return Sub(b".".join(toks), queue)


@pytest.fixture(scope="module")
def world():
    rng = random.Random(2024)
    sl = Sublist()
    for _ in range(N):
        sl.insert(make_sub(rng))
    probes = list(dict.fromkeys(b".".join(literal(rng)) for _ in range(40_000)))
    return sl, probes, rng


def warm(sl, probes):
    sl.clear_cache()
    for p in probes[:CACHE_MAX]:
        sl.match(p)


def per_op(benchmark, n):
    benchmark.extra_info["ns_per_op"] = round(benchmark.stats.stats.mean / n * 1e9, 1)


def test_match_cache_hit(benchmark, world):
    sl, probes, _ = world
    subject = probes[0]
    sl.match(subject)
    r = benchmark(sl.match, subject)
    benchmark.extra_info["fanout"] = len(r.psubs) + len(r.qsubs)
    per_op(benchmark, 1)


def test_match_cache_miss(benchmark, world):
    sl, probes, _ = world
    sl.clear_cache()
    # Cycling through far more distinct subjects than the cache holds (FIFO
    # eviction) makes every call a miss; sweeps are included, amortized.
    nxt = itertools.cycle(probes).__next__
    match = sl.match
    before = sl.stats()
    benchmark(lambda: match(nxt()))
    after = sl.stats()
    hits = (after["cache_hit_rate"] * after["num_matches"]
            - before["cache_hit_rate"] * before["num_matches"])
    assert hits < 0.01 * (after["num_matches"] - before["num_matches"]) + 1
    fanouts = [len(sl.match(p).psubs) + len(sl.match(p).qsubs) for p in probes[:2000]]
    benchmark.extra_info["avg_fanout"] = round(sum(fanouts) / len(fanouts), 1)
    per_op(benchmark, 1)


def test_match_cache_miss_no_interest(benchmark, world):
    sl, _, _ = world
    sl.clear_cache()
    subjects = [b"nobody.%d.listens" % i for i in range(40_000)]
    nxt = itertools.cycle(subjects).__next__
    match = sl.match
    benchmark(lambda: match(nxt()))
    per_op(benchmark, 1)


def _batch(world, kind):
    sl, probes, rng = world
    return sl, probes, [make_sub(rng, kind) for _ in range(BATCH)]


@pytest.mark.parametrize("kind", ["literal", "pwc", "fwc"])
def test_insert(benchmark, world, kind):
    """A burst of BATCH inserts into the 100k index, starting with a full cache."""
    sl, probes, batch = _batch(world, kind)

    def setup():
        for s in batch:
            sl.remove(s)
        warm(sl, probes)

    def run():
        insert = sl.insert
        for s in batch:
            insert(s)

    benchmark.pedantic(run, setup=setup, rounds=20)
    per_op(benchmark, BATCH)
    for s in batch:
        sl.remove(s)


@pytest.mark.parametrize("kind", ["literal", "pwc", "fwc"])
def test_remove(benchmark, world, kind):
    """A burst of BATCH removes from the 100k index, starting with a full cache."""
    sl, probes, batch = _batch(world, kind)

    def setup():
        for s in batch:
            sl.insert(s)
        warm(sl, probes)

    def run():
        remove = sl.remove
        for s in batch:
            remove(s)

    benchmark.pedantic(run, setup=setup, rounds=20)
    per_op(benchmark, BATCH)


@pytest.mark.parametrize("kind", ["literal", "pwc", "fwc"])
@pytest.mark.parametrize("op", ["insert", "remove"])
def test_change_hot_cache(benchmark, world, op, kind):
    """One insert or remove while publishes keep a full cache hot (steady state):
    for a wildcard sub this is the selective cache scan."""
    sl, probes, rng = world
    subs = iter([make_sub(rng, kind) for _ in range(1000)])
    hot = probes[:CACHE_MAX]
    done = []

    def setup():
        s = next(subs)
        if op == "remove":
            sl.insert(s)
        else:
            done.append(s)
        warm(sl, probes)
        for p in hot:
            sl.match(p)
        return (s,), {}

    benchmark.pedantic(sl.insert if op == "insert" else sl.remove, setup=setup, rounds=200)
    per_op(benchmark, 1)
    for s in done:
        sl.remove(s)


def test_insert_remove_no_cache(benchmark, world):
    """Subscribe + unsubscribe of a literal sub with an empty cache (the trie alone)."""
    sl, _, batch = _batch(world, "literal")
    sl.clear_cache()

    def run():
        insert = sl.insert
        remove = sl.remove
        for s in batch:
            insert(s)
            remove(s)

    benchmark(run)
    per_op(benchmark, BATCH)
