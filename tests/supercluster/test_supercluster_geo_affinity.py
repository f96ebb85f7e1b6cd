"""Geo-affinity with three clusters (GATEWAY.md section 6, Go
``sendMsgToGateways`` walking ``gw.outo`` in RTT order): a queue group's
members in the publishing cluster A are served first; when A has none, the
remote cluster with the lowest RTT that has members; then the next one.

A's gateway to the far cluster goes through a TcpProxy that delays every
chunk (the far cluster advertises the proxy, so nobody learns a way around
it). Which cluster is far is a parameter, so the order is the RTT's, not the
names'. B runs the Go nats-server, A and C ours."""

import asyncio

import nats
import pytest

from pluggy_nats.testing.faults import TcpProxy
from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.raw import wait_for_mesh
from pluggy_nats.testing.supercluster import gateway_block

pytestmark = pytest.mark.interop

DELAY_MS = 60  # each way: the far cluster's RTT is at least 120 ms


@pytest.mark.parametrize("far", ["B", "C"])
def test_queue_served_locally_then_nearest_cluster(launcher, far):
    ports = {name: free_port() for name in "ABC"}
    proxy = TcpProxy(ports[far], name="to-" + far)
    proxy.delay(DELAY_MS)
    urls = {name: "nats://127.0.0.1:%d" % (proxy.port if name == far else port)
            for name, port in ports.items()}
    try:
        servers = {}
        for name in "ABC":
            extra = '  advertise: "127.0.0.1:%d"' % proxy.port if name == far else ""
            command = require_go_nats_server() if name == "B" else pluggy_nats_command()
            servers[name] = launcher.start(
                command, ["-m", "-1", "-n", name.lower()], name=name,
                config=gateway_block(name, ports[name], {
                    other: [urls[other]] for other in "ABC" if other != name}, extra))
        wait_for_mesh(list(servers.values()), timeout=30)
        near = "C" if far == "B" else "B"

        async def main():
            pub = await nats.connect(servers["A"].url, allow_reconnect=False)
            got = {name: [] for name in "ABC"}
            members = {}
            for name in "ABC":
                nc = await nats.connect(servers[name].url, allow_reconnect=False)

                async def cb(msg, name=name):
                    got[name].append(msg.data)
                members[name] = (nc, await nc.subscribe("jobs", queue="workers", cb=cb))
                await nc.flush()
            # queue interest crosses, and A measured its gateways' RTT
            await asyncio.sleep(1.5)

            async def burst(tag, expected):
                for name in got:
                    got[name].clear()
                for i in range(30):
                    await pub.publish("jobs", b"%s-%d" % (tag, i))
                await pub.flush()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 10
                while sum(map(len, got.values())) < 30 and loop.time() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.4)  # nothing more arrives anywhere
                counts = {name: len(v) for name, v in got.items()}
                assert counts == {n: (30 if n == expected else 0) for n in "ABC"}, (tag, counts)

            await burst(b"local", "A")
            for name in ("A", near):
                nc, sub = members[name]
                await sub.unsubscribe()
                await nc.flush()
                await asyncio.sleep(0.8)  # the interest change crosses the gateways
                await burst(b"after-" + name.encode(), near if name == "A" else far)
            for nc, _sub in members.values():
                await nc.close()
            await pub.close()

        run(main())
    finally:
        proxy.close()
