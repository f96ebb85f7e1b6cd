"""A gateway peer that stops reading is cut after the gateway's
``write_deadline``, as nats-server does (a slow consumer on a link:
"Slow Consumer (Write Deadline)", counted in ``/varz``
``slow_consumer_stats.gateways``), and the rest of the server keeps serving.

Cluster A's outbound to B goes through a TcpProxy that ``stall()``s: the
connection stays open, nothing is read, A's writes block. Run with A ours and
A Go (the reference), B ours."""

import asyncio

import nats
import pytest

from pluggy_nats.testing.faults import TcpProxy
from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.raw import wait_for, wait_for_mesh
from pluggy_nats.testing.supercluster import gateway_block

pytestmark = pytest.mark.interop

CHUNK = b"x" * (512 * 1024)


def slow_gateways(server):
    return server.monitor("varz")["slow_consumer_stats"]["gateways"]


def outbound_cid(server, remote):
    out = server.monitor("gatewayz")["outbound_gateways"].get(remote)
    return out["connection"]["cid"] if out else None


@pytest.mark.parametrize("a_is_go", [False, True], ids=["ours", "go"])
def test_stalled_gateway_peer_is_cut_after_write_deadline(launcher, a_is_go):
    port_a, port_b = free_port(), free_port()
    proxy = TcpProxy(port_b, name="a-to-b")
    try:
        b = launcher.start(pluggy_nats_command(), ["-m", "-1", "-n", "b"], name="B",
                           # B advertises the proxy: A learns no way around it
                           config=gateway_block("B", port_b, {"A": [
                               "nats://127.0.0.1:%d" % port_a]},
                               extra='  advertise: "127.0.0.1:%d"' % proxy.port))
        a = launcher.start(require_go_nats_server() if a_is_go else pluggy_nats_command(),
                           ["-m", "-1", "-n", "a"], name="A",
                           config=gateway_block("A", port_a, {"B": [
                               "nats://127.0.0.1:%d" % proxy.port]},
                               extra='  write_deadline: "1s"'))
        wait_for_mesh([a, b], timeout=30)

        async def main():
            far = await nats.connect(b.url, allow_reconnect=False)
            near = await nats.connect(a.url, allow_reconnect=False)
            pub = await nats.connect(a.url, allow_reconnect=False, pending_size=64 << 20)
            far_sub = await far.subscribe("big")
            near_sub = await near.subscribe("local")
            await far.flush()
            await near.flush()
            await asyncio.sleep(0.5)  # B's interest reaches A
            await pub.publish("big", b"before")
            await pub.flush()
            assert (await far_sub.next_msg(timeout=10)).data == b"before"

            stalled = outbound_cid(a, "B")
            proxy.stall()
            for _ in range(60):  # 30 MB: more than the kernel buffers on the way hold
                await pub.publish("big", CHUNK)
            await pub.flush(timeout=30)
            # Cut past the deadline (plus the time to fill the buffers), counted.
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_for(
                lambda: outbound_cid(a, "B") != stalled, timeout=20,
                message="A cuts its stalled outbound to B"))
            assert slow_gateways(a) >= 1
            # A keeps serving its own clients.
            await pub.publish("local", b"still here")
            await pub.flush()
            assert (await near_sub.next_msg(timeout=5)).data == b"still here"

            proxy.heal()  # A dials B again (through the proxy or B's gossiped URL)
            await far_sub.unsubscribe()
            fresh = await far.subscribe("after")
            await far.flush()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while True:
                await pub.publish("after", b"again")
                await pub.flush()
                try:
                    msg = await fresh.next_msg(timeout=0.5)
                    break
                except nats.errors.TimeoutError:
                    assert loop.time() < deadline, "the gateway never came back"
            assert msg.data == b"again"
            for nc in (far, near, pub):
                await nc.close()

        run(main())
        if not a_is_go:
            assert "Slow Consumer" in a.logs() or "slow_consumer" in a.logs()
    finally:
        proxy.close()
