"""A leaf that stops reading is cut by its hub after the hub's
``leafnodes.write_deadline``, as nats-server does (a slow consumer on a
link: "Slow Consumer (Write Deadline)", counted in ``/varz``
``slow_consumer_stats.leafs``); the leaf dials again and interest is back.

The leaf dials its hub through a TcpProxy that ``stall()``s: the connection
stays open, nothing is read, the hub's writes block. The hub advertises the
proxy, so the leaf learns no way around it. Hub ours and Go, leaf ours."""

import asyncio
import types

import pytest
from leaf_helpers import connect, until_delivered

from pluggy_nats.testing.faults import TcpProxy
from pluggy_nats.testing.launch import free_port
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

CHUNK = b"x" * (512 * 1024)


def leaf_cid(hub):
    leafs = hub.monitor("leafz")["leafs"]
    return leafs[0]["id"] if leafs else None


@pytest.mark.parametrize("hub_is_go", [False, True], ids=["py-hub", "go-hub"])
def test_stalled_leaf_is_cut_after_write_deadline(make_hub, make_leaf, hub_is_go):
    port = free_port()
    proxy = TcpProxy(port, name="leaf-to-hub")
    try:
        hub = make_hub(go=hub_is_go, leaf_port=port, leafnodes='advertise: "127.0.0.1:%d", '
                       'write_deadline: "1s"' % proxy.port)
        leaf = make_leaf(types.SimpleNamespace(leaf_port=proxy.port))

        async def main():
            sub_nc = await connect(leaf)
            pub = await connect(hub, pending_size=64 << 20)
            sub = await sub_nc.subscribe("big")
            await sub_nc.flush()
            await until_delivered(pub, "big", sub)
            stalled = leaf_cid(hub)

            proxy.stall()
            for _ in range(60):  # 30 MB: more than the kernel buffers on the way hold
                await pub.publish("big", CHUNK)
            await pub.flush(timeout=30)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: wait_for(
                lambda: leaf_cid(hub) != stalled, timeout=20,
                message="the hub cuts its stalled leaf"))
            assert hub.monitor("varz")["slow_consumer_stats"]["leafs"] >= 1

            proxy.heal()  # the leaf dials again; its interest is sent again
            fresh = await sub_nc.subscribe("after")
            await sub_nc.flush()
            assert (await until_delivered(pub, "after", fresh, timeout=30)).data == b"probe"
            for nc in (sub_nc, pub):
                await nc.close()

        run(main())
    finally:
        proxy.close()
