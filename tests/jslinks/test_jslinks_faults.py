"""A leaf link that is cut, or flaps, while a mirror and a source run across
it: afterwards the mirror equals the origin sequence by sequence and the
source holds every message exactly once. The link goes through a TCP proxy
(pluggy_nats/testing/faults.py). The long flapping run is ``soak``; a short
seed runs by default."""

import asyncio
import os
import random

import pytest
from nats.js import api as jsapi

from pluggy_nats.testing.faults import TcpProxy
from pluggy_nats.testing.plugin import run

from .helpers import connect, js_conf, retrying, until


class _Via:
    """A hub as ``make_leaf`` sees it: its leafnode port is the proxy's."""

    def __init__(self, port):
        self.leaf_port = port


def _topology(make_hub, make_leaf, tmp_path, go_hub=False, go_leaf=False):
    hub = make_hub(go=go_hub, config=js_conf("hub", tmp_path / "hub"))
    proxy = TcpProxy(hub.leaf_port, name="leaflink")
    # only the proxy: a hub's gossiped URL would take the leaf around it
    leaf = make_leaf(_Via(proxy.port), go=go_leaf, config=js_conf("edge", tmp_path / "leaf"),
                     remote="ignore_discovered_servers: true")
    return hub, leaf, proxy


async def _setup(nh, nl):
    hjs, ljs = nh.jetstream(), nl.jetstream()
    await hjs.add_stream(name="ORIGIN", subjects=["o.>"])
    await ljs.add_stream(name="LOCAL", subjects=["edge.>"])
    await ljs.add_stream(name="M", mirror=jsapi.StreamSource(
        name="ORIGIN", external=jsapi.ExternalStream(api="$JS.hub.API")))
    await retrying(lambda: nh.jetstream(domain="edge").stream_info("LOCAL"))
    await hjs.add_stream(name="AGG", subjects=["agg.>"], sources=[jsapi.StreamSource(
        name="LOCAL", external=jsapi.ExternalStream(api="$JS.edge.API"))])
    return hjs, ljs


async def _publish_steadily(js, subject, count, pause):
    for i in range(count):
        await js.publish(subject, b"%d" % i)
        if pause:
            await asyncio.sleep(pause)


async def _check(hjs, ljs, count, origin="ORIGIN", mirror="M", agg="AGG", filt="edge.>"):
    """``mirror`` (at ``ljs``) equals ``origin`` (at ``hjs``) sequence by
    sequence; ``agg`` holds the ``count`` sourced messages once each, in order."""
    async def mirrored():
        return (await ljs.stream_info(mirror)).state.last_seq == count

    async def sourced():
        return (await hjs.stream_info(agg)).state.messages >= count

    await until(mirrored, timeout=40, message="the mirror holds all %d" % count)
    await until(sourced, timeout=40, message="the source holds all %d" % count)
    await asyncio.sleep(1.5)  # anything twice would arrive by now
    info = await ljs.stream_info(mirror)
    assert (info.state.first_seq, info.state.last_seq, info.state.messages) == (1, count, count)
    for seq in sorted({1, count // 3, count // 2, count} | set(
            random.Random(count).sample(range(1, count + 1), 10))):
        a, b = await hjs.get_msg(origin, seq), await ljs.get_msg(mirror, seq)
        assert (a.subject, a.data) == (b.subject, b.data), seq
    got = await hjs.stream_info(agg)
    assert got.state.messages == count, "the source holds %d of %d" % (
        got.state.messages, count)
    psub = await hjs.pull_subscribe(filt, durable="chk", stream=agg)
    seen = []
    while len(seen) < count:
        batch = await psub.fetch(min(256, count - len(seen)), timeout=5)
        seen += [int(m.headers["Nats-Stream-Source"].split(" ")[1]) for m in batch]
        for m in batch:
            await m.ack()
    assert seen == list(range(1, count + 1))  # each once, in order


def _flap(proxy, cycles, period, seed):
    """``cycles`` times: wait for the leaf to be linked, let it run about
    ``period``, cut for about ``period``, heal (a thread: the proxy is sync)."""
    rng = random.Random(seed)

    def run_flaps():
        import time

        for _ in range(cycles):
            deadline = time.monotonic() + 15
            while not proxy._pairs and time.monotonic() < deadline:
                time.sleep(0.05)  # the leaf is back: let traffic flow, then cut
            time.sleep(period * (0.5 + rng.random() * 0.5))
            proxy.cut()
            time.sleep(period * (0.5 + rng.random() * 0.5))
            proxy.heal()

    return asyncio.get_running_loop().run_in_executor(None, run_flaps)


def test_link_cut_in_the_middle(make_hub, make_leaf, tmp_path):
    hub, leaf, proxy = _topology(make_hub, make_leaf, tmp_path)
    try:
        async def main():
            nh, nl = await connect(hub), await connect(leaf)
            hjs, ljs = await _setup(nh, nl)
            pubs = asyncio.gather(_publish_steadily(hjs, "o.x", 300, 0.005),
                                  _publish_steadily(ljs, "edge.x", 300, 0.005))
            await asyncio.sleep(0.3)
            proxy.cut()
            await asyncio.sleep(2.0)
            proxy.heal()
            await pubs
            await _check(hjs, ljs, 300)
            await nh.close()
            await nl.close()

        run(main(), timeout=120)
    finally:
        proxy.close()


def _flapping(make_hub, make_leaf, tmp_path, cycles, count, seed):
    hub, leaf, proxy = _topology(make_hub, make_leaf, tmp_path)
    try:
        async def main():
            nh, nl = await connect(hub), await connect(leaf)
            hjs, ljs = await _setup(nh, nl)
            pause = cycles * 1.0 / count
            flaps = _flap(proxy, cycles, 1.0, seed)
            await asyncio.gather(_publish_steadily(hjs, "o.x", count, pause),
                                 _publish_steadily(ljs, "edge.x", count, pause))
            await flaps
            await _check(hjs, ljs, count)
            await nh.close()
            await nl.close()

        run(main(), timeout=120 + cycles * 3)
    finally:
        proxy.close()


def test_link_flapping_every_second_short(make_hub, make_leaf, tmp_path):
    """The short seed of the soak below: 4 flaps of about a second."""
    _flapping(make_hub, make_leaf, tmp_path, cycles=4, count=200, seed=7)


@pytest.mark.soak
def test_link_flapping_every_second_soak(make_hub, make_leaf, tmp_path):
    cycles = int(os.environ.get("JSLINKS_FLAPS", "60"))
    _flapping(make_hub, make_leaf, tmp_path, cycles=cycles, count=cycles * 50,
              seed=int(os.environ.get("JSLINKS_SEED", "1")))
