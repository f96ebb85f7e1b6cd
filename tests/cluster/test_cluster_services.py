"""Service imports in a cluster: every server has the same accounts, so each
handles the requests of its own clients; a request reaches a responder on
another server exactly once and the response finds its way back."""

import asyncio

import nats
import nats.errors
import pytest

from pluggy_nats.testing.plugin import run

CONF = """
accounts {
  A: { users: [{user: a, password: a}], exports: [{service: "svc.>"}] }
  B: {
    users: [{user: b, password: b}]
    imports: [{service: {account: A, subject: "svc.x"}, to: "local.x"}]
  }
}
"""


def _cluster(make_server):
    s1 = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1", config=CONF)
    s2 = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1",
                     "--routes", s1.route_url, config=CONF)
    return s1, s2


async def _conn(server, user):
    return await nats.connect(server.url, user=user, password=user, allow_reconnect=False)


def _request_across(requester_server, responder_server):
    """(answers, requests seen by the responder) for 5 requests from B on one
    server to A's responder on the other."""

    async def main():
        a = await _conn(responder_server, "a")
        b = await _conn(requester_server, "b")
        seen = []

        async def handler(msg):
            seen.append(msg.data)
            await a.publish(msg.reply, b"re:" + msg.data)

        await a.subscribe("svc.>", cb=handler)
        await asyncio.sleep(0.01)
        await a.flush()
        reply = None
        for i in range(100):  # until the route carries A's interest across
            try:
                reply = await b.request("local.x", b"warmup%d" % i, timeout=0.5)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.1)
        assert reply is not None, "no route for the request"
        seen.clear()
        answers = [await b.request("local.x", b"r%d" % i, timeout=5) for i in range(5)]
        await asyncio.sleep(0.3)  # a duplicate request would arrive within this
        await a.close()
        await b.close()
        return [m.data for m in answers], list(seen)

    return run(main())


@pytest.mark.interop
def test_cluster_services_beside_the_go_server(make_server, go_nats_server):
    """A Go nats-server and ours in one cluster with the same accounts: requests
    and responses cross between them both ways, each request once."""
    go = go_nats_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1",
                        config=CONF)
    ours = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1",
                       "--routes", go.route_url, config=CONF)
    expected = ([b"re:r%d" % i for i in range(5)], [b"r%d" % i for i in range(5)])
    assert _request_across(ours, go) == expected
    assert _request_across(go, ours) == expected


def test_cluster_services_request_crosses_servers_once(make_server):
    s1, s2 = _cluster(make_server)
    expected = ([b"re:r%d" % i for i in range(5)], [b"r%d" % i for i in range(5)])
    assert _request_across(s1, s2) == expected
    assert _request_across(s2, s1) == expected


STREAM_CONF = """
accounts {
  A: { users: [{user: a, password: a}], exports: [{stream: "ev.>"}] }
  B: {
    users: [{user: b, password: b}]
    imports: [{stream: {account: A, subject: "ev.>"}, prefix: "from_a"}]
  }
}
"""


@pytest.mark.parametrize("first", ["ours", pytest.param("go", marks=pytest.mark.interop)])
def test_cluster_stream_imports_deliver_once(first, make_server, go_nats_server):
    """A stream import across a cluster (ours, or the Go server and ours): a
    subscriber in B gets each message of A once, on either server."""
    start = go_nats_server if first == "go" else make_server
    s1 = start("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1", config=STREAM_CONF)
    s2 = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1",
                     "--routes", s1.route_url, config=STREAM_CONF)
    assert _stream_once(s1, s2) == [[b"m%d" % i for i in range(5)]] * 2
    assert _stream_once(s2, s1) == [[b"m%d" % i for i in range(5)]] * 2


def _stream_once(s1, s2):
    """What B's subscribers on s1 and s2 get of 5 messages A publishes on s1."""

    async def main():
        a1 = await _conn(s1, "a")
        b1 = await _conn(s1, "b")
        b2 = await _conn(s2, "b")
        sub1 = await b1.subscribe("from_a.>")
        sub2 = await b2.subscribe("from_a.>")
        for nc in (b1, b2):
            await asyncio.sleep(0.01)
            await nc.flush()
        # until the route carries B's interest from s2 to s1
        for i in range(100):
            await a1.publish("ev.warmup", b"%d" % i)
            try:
                await sub2.next_msg(timeout=0.1)
                break
            except nats.errors.TimeoutError:
                pass
        await asyncio.sleep(0.3)
        for sub in (sub1, sub2):
            while True:
                try:
                    await sub.next_msg(timeout=0.05)
                except nats.errors.TimeoutError:
                    break
        for i in range(5):
            await a1.publish("ev.x", b"m%d" % i)
        await a1.flush()
        got = []
        for sub in (sub1, sub2):
            out = []
            while True:
                try:
                    out.append((await sub.next_msg(timeout=0.5)).data)
                except nats.errors.TimeoutError:
                    break
            got.append(out)
        for nc in (a1, b1, b2):
            await nc.close()
        return got

    return run(main())
