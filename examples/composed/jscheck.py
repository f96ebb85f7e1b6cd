"""Check JetStream across the running example (README.md, "JetStream"):
create the streams, publish at both ends, and wait until the edge's mirror
equals ORDERS sequence by sequence and COLLECT holds every LOCAL message once.

    python jscheck.py [count]
"""

import asyncio
import sys

import nats
from nats.js import api

CENTRAL, EDGE = "nats://127.0.0.1:4255", "nats://127.0.0.1:4265"


async def until(pred, what, timeout=30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await pred():
        if loop.time() > end:
            raise SystemExit("timed out waiting for " + what)
        await asyncio.sleep(0.2)


async def main(count):
    nc_c, nc_e = await nats.connect(CENTRAL), await nats.connect(EDGE)
    central, edge = nc_c.jetstream(), nc_e.jetstream()
    await central.add_stream(name="ORDERS", subjects=["orders.>"])
    await edge.add_stream(name="LOCAL", subjects=["edge.>"])
    await edge.add_stream(name="ORDERS_MIRROR", mirror=api.StreamSource(
        name="ORDERS", external=api.ExternalStream(api="$JS.central.API")))
    await central.add_stream(name="COLLECT", sources=[api.StreamSource(
        name="LOCAL", external=api.ExternalStream(api="$JS.edge.API"))])
    base_o = (await central.stream_info("ORDERS")).state.last_seq
    base_l = (await edge.stream_info("LOCAL")).state.last_seq
    for i in range(count):
        await central.publish("orders.new", b"order %d" % i)
        await edge.publish("edge.reading", b"reading %d" % i)

    async def mirrored():
        return (await edge.stream_info("ORDERS_MIRROR")).state.last_seq == base_o + count

    async def collected():
        return (await central.stream_info("COLLECT")).state.messages == base_l + count

    await until(mirrored, "the edge mirror")
    await until(collected, "the central COLLECT")
    print("ORDERS_MIRROR at the edge holds %d, COLLECT at the centre holds %d" % (
        base_o + count, base_l + count))
    await nc_c.close()
    await nc_e.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
