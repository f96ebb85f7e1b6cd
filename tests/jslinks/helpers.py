"""Shared helpers for the JetStream-across-links tests."""

import asyncio

import nats


def js_conf(domain, store):
    return 'jetstream { domain: %s, store_dir: "%s" }\n' % (domain, store)


async def connect(server, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats.connect(server.url, **kw)


async def until(pred, timeout=20.0, interval=0.1, message="condition"):
    """Poll the coroutine function ``pred`` until it returns truthy."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last = None
    while True:
        try:
            last = await pred()
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.NotFoundError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if loop.time() > end:
            raise AssertionError("timed out waiting for %s (last: %r)" % (message, last))
        await asyncio.sleep(interval)


async def create_stream(js, timeout=40.0, **cfg):
    """``js.add_stream`` once the meta group has its first leader (10008, or
    no answer, until then)."""
    from nats.js.api import StreamConfig

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            return await js.add_stream(StreamConfig(**cfg))
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError):
            if loop.time() > end:
                raise
            await asyncio.sleep(0.2)


async def retrying(call, tries=80):
    """``call()`` until interest in the other side's API has crossed."""
    for i in range(tries):
        try:
            return await call()
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            if i == tries - 1:
                raise
            await asyncio.sleep(0.1)


async def messages(js, stream, count):
    """``[(seq, subject, data)]`` of the first ``count`` messages of ``stream``
    (gets by sequence; deleted ones skipped)."""
    out = []
    info = await js.stream_info(stream)
    seq = info.state.first_seq
    while len(out) < count and seq <= info.state.last_seq:
        try:
            m = await js.get_msg(stream, seq)
            out.append((m.seq, m.subject, m.data))
        except nats.js.errors.NotFoundError:
            pass
        seq += 1
    return out
