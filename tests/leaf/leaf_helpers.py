"""Shared helpers for the leaf node tests."""

import asyncio

import nats

# (hub, leaf): which side runs the Go nats-server. Every basic test runs in all
# four pairings, so our side is checked against Go's behaviour both ways.
PAIRINGS = {"go-hub_go-leaf": (True, True), "py-hub_go-leaf": (False, True),
            "go-hub_py-leaf": (True, False), "py-hub_py-leaf": (False, False)}


async def connect(server, **kwargs):
    return await nats.connect(server.url, allow_reconnect=False, **kwargs)


async def until_delivered(pub, subject, sub, payload=b"probe", timeout=10.0):
    """Publish ``payload`` on ``subject`` until ``sub`` receives it (interest
    has crossed the link); the probes that arrive are consumed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await pub.publish(subject, payload)
        await pub.flush()
        try:
            msg = await sub.next_msg(timeout=0.2)
        except nats.errors.TimeoutError:
            if loop.time() > deadline:
                raise AssertionError("no delivery on %s across the link" % subject) from None
            continue
        await drain(sub)
        return msg


async def drain(sub, quiet=0.2):
    """Consume whatever is pending on ``sub`` until it is quiet."""
    got = []
    while True:
        try:
            got.append(await sub.next_msg(timeout=quiet))
        except nats.errors.TimeoutError:
            return got


async def exactly_once(pub, subject, sub, n=50):
    """Publish ``n`` numbered messages; ``sub`` gets each once, in order."""
    for i in range(n):
        await pub.publish(subject, b"%d" % i)
    await pub.flush()
    got = [m.data for m in await drain(sub, quiet=0.5)]
    assert got == [b"%d" % i for i in range(n)], got[:10]


def assert_hub_reaches_leaf(hub, leaf, prefix="check"):
    """A subscriber on ``leaf`` gets what a client of ``hub`` publishes, once
    each and in order (the link is up and its interest complete)."""
    from pluggy_nats.testing.plugin import run

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        sub = await nl.subscribe(prefix + ".>")
        await nl.flush()
        await until_delivered(nh, prefix + ".probe", sub)
        await exactly_once(nh, prefix + ".x", sub)
        await nh.close()
        await nl.close()

    run(main())
