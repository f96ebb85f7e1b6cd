"""Mixed clusters: the Go nats-server and pluggy-nats in one full mesh, with
route pooling at the Go default (3 pooled + a pinned $SYS route per pair)."""

import asyncio
import collections

import nats
import pytest

from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop

LAYOUTS = {
    "go_seed_py_joiners": (0,),
    "py_seed_go_joiner": (2,),
    "py_seed_two_go": (1, 2),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_interop_cluster_mixed(make_cluster, layout):
    servers = make_cluster(3, go=LAYOUTS[layout])

    async def main():
        clients = [await nats.connect(s.url, allow_reconnect=False) for s in servers]
        # every pair, both directions, with headers
        subs = [await nc.subscribe("mix.>") for nc in clients]
        for nc in clients:
            await nc.flush()
        await asyncio.sleep(0.3)
        for i, nc in enumerate(clients):
            await nc.publish("mix.%d" % i, b"m%d" % i, headers={"From": str(i)})
            await nc.flush()
        for sub in subs:
            got = sorted([(await sub.next_msg(timeout=3)).data for _ in range(3)])
            assert got == [b"m0", b"m1", b"m2"]
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.2)
        # request/reply to a responder on each server from every other
        for i, nc in enumerate(clients):
            async def responder(msg, i=i):
                await msg.respond(b"r%d" % i)
            await nc.subscribe("svc.%d" % i, cb=responder)
            await nc.flush()
        await asyncio.sleep(0.3)
        for i in range(3):
            for j, nc in enumerate(clients):
                if i != j:
                    assert (await nc.request("svc.%d" % i, b"", timeout=3)).data == b"r%d" % i
        # a queue group with a member on every server: each message exactly once
        counts = collections.Counter()
        for i, nc in enumerate(clients):
            async def member(msg, i=i):
                counts[i] += 1
            await nc.subscribe("work", queue="q", cb=member)
            await nc.flush()
        await asyncio.sleep(0.5)
        for n in range(600):
            await clients[n % 3].publish("work", b"%d" % n)
        for nc in clients:
            await nc.flush()
        for _ in range(100):
            if sum(counts.values()) >= 600:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert sum(counts.values()) == 600
        assert len(counts) == 3 and min(counts.values()) > 100, counts
        for nc in clients:
            await nc.close()

    run(main(), timeout=90)


def test_interop_cluster_go_peer_asking_for_compression(make_server, go_nats_server):
    """We answer compression "off"; a Go peer configured for s2 falls back to
    plain routes instead of breaking (PROTOCOL.md R7)."""
    ours = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1")
    go = go_nats_server(config="cluster { name: c1, listen: 127.0.0.1:-1, "
                               "routes: [%s], compression: s2_fast }\n" % ours.route_url)

    async def main():
        sub_nc = await nats.connect(ours.url, allow_reconnect=False)
        pub_nc = await nats.connect(go.url, allow_reconnect=False)
        sub = await sub_nc.subscribe("comp.>")
        await sub_nc.flush()
        payload = b"compressible " * 500
        for _ in range(100):
            await pub_nc.publish("comp.x", payload)
            try:
                msg = await sub.next_msg(timeout=0.1)
                break
            except nats.errors.TimeoutError:
                pass
        else:
            raise AssertionError("nothing crossed the route")
        assert msg.data == payload
        await sub_nc.close()
        await pub_nc.close()

    run(main())
