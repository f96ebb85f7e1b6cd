"""Clusters of pluggy-nats servers joined by routes, driven by nats-py clients."""

import asyncio
import collections
import json
import urllib.request

import nats
import pytest
from nats.errors import NoRespondersError

from pluggy_nats.testing.plugin import run


async def connect(server, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats.connect(server.url, **kw)


async def settle(*clients):
    for nc in clients:
        await nc.flush()


def interest_on_all(servers, subject, count=1, timeout=5.0):
    """Wait until every server's /subsz?test= sees ``count`` subscriptions for
    ``subject`` (local or remote)."""
    from pluggy_nats.testing.raw import wait_for

    def ok():
        for s in servers:
            url = "http://127.0.0.1:%d/subsz?test=%s" % (s.http_port, subject)
            with urllib.request.urlopen(url, timeout=2) as resp:
                if json.load(resp).get("total", 0) < count:
                    return False
        return True

    wait_for(ok, timeout=timeout, message="interest in %s on every server" % subject)


def test_cluster_pubsub_wildcards_headers_exactly_once(make_cluster):
    servers = make_cluster(3, args=("-m", "-1"))

    async def main():
        clients = [await connect(s) for s in servers]
        subs = [await nc.subscribe("orders.>") for nc in clients]
        await settle(*clients)
        interest_on_all(servers, "orders.x", count=3)
        for i, nc in enumerate(clients):
            await nc.publish("orders.%d" % i, b"from %d" % i, headers={"Origin": str(i)})
            await nc.flush()
        for sub in subs:
            got = sorted([(m.data, m.headers["Origin"]) for m in
                          [await sub.next_msg(timeout=3) for _ in range(3)]])
            assert got == [(b"from 0", "0"), (b"from 1", "1"), (b"from 2", "2")]
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)  # one hop: no duplicates via a third node
        for nc in clients:
            await nc.close()

    run(main())


def test_cluster_queue_group_weighted_across_nodes(make_cluster):
    """1 member on node 0 and 3 on node 2: publishes from node 1 split about
    25/75 (uniform over members, not local-first), each message exactly once."""
    servers = make_cluster(3, args=("-m", "-1"))

    async def main():
        a, b, c = [await connect(s) for s in servers]
        counts = collections.Counter()
        total = 2000
        done = asyncio.Event()

        def member(name):
            async def cb(msg):
                counts[name] += 1
                if sum(counts.values()) == total:
                    done.set()
            return cb

        await a.subscribe("jobs", queue="workers", cb=member("a"))
        for i in range(3):
            await c.subscribe("jobs", queue="workers", cb=member("c%d" % i))
        await settle(a, c)
        interest_on_all(servers, "jobs", count=1)
        from pluggy_nats.testing.raw import wait_for

        def weight_seen():
            url = "http://127.0.0.1:%d/subsz?test=jobs" % servers[1].http_port
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.load(resp).get("total", 0) >= 2
        wait_for(weight_seen, message="both nodes' queue interest on node 1")
        await asyncio.sleep(0.2)  # the weight (3) follows the first RS+
        for i in range(total):
            await b.publish("jobs", b"%d" % i)
        await b.flush()
        await asyncio.wait_for(done.wait(), 15)
        await asyncio.sleep(0.2)
        assert sum(counts.values()) == total
        share_a = counts["a"] / total
        assert 0.15 < share_a < 0.35, counts
        for nc in (a, b, c):
            await nc.close()

    run(main())


def test_cluster_request_reply_and_no_responders(make_cluster):
    servers = make_cluster(3)

    async def main():
        a, b, c = [await connect(s) for s in servers]

        async def responder(msg):
            await msg.respond(b"pong:" + msg.data)

        await c.subscribe("svc.ping", cb=responder)
        await c.flush()
        for _ in range(100):
            try:
                reply = await a.request("svc.ping", b"1", timeout=0.5)
                break
            except (NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.05)
        assert reply.data == b"pong:1"
        assert (await b.request("svc.ping", b"2", timeout=2)).data == b"pong:2"
        with pytest.raises(NoRespondersError):
            await b.request("svc.nobody", b"?", timeout=2)
        for nc in (a, b, c):
            await nc.close()

    run(main())


def test_cluster_five_nodes_from_one_seed(make_cluster):
    """Gossip: every node only knows the seed, yet all pairs exchange messages
    (make_cluster checks each pair) and clients learn every server's URL."""
    servers = make_cluster(5)

    async def main():
        nc = await connect(servers[3])
        await nc.flush()
        known = {u.netloc for u in nc.servers}
        await nc.close()
        return known

    known = run(main())
    assert {"127.0.0.1:%d" % s.port for s in servers} <= known


def test_cluster_node_killed_and_restarted(make_cluster, launcher):
    """Clients fail over when their server is killed; a node that rejoins gets
    all interest again and its clients reach subscribers elsewhere."""
    servers = make_cluster(3)
    urls = [s.url for s in servers]

    async def main():
        received = []
        reconnected = asyncio.Event()

        async def on_reconnect():
            reconnected.set()

        sub_client = await nats.connect(servers=[urls[1], urls[0], urls[2]],
                                        reconnect_time_wait=0.1, max_reconnect_attempts=50,
                                        reconnected_cb=on_reconnect, dont_randomize=True)
        sub = await sub_client.subscribe("events")
        pub = await nats.connect(urls[2], allow_reconnect=False)
        await sub_client.flush()
        for _ in range(50):
            await pub.publish("events", b"before")
            try:
                received.append((await sub.next_msg(timeout=0.1)).data)
                break
            except nats.errors.TimeoutError:
                pass
        assert received == [b"before"]
        servers[1].kill()
        await asyncio.wait_for(reconnected.wait(), 10)
        await sub_client.flush()
        for _ in range(100):
            await pub.publish("events", b"after")
            try:
                if (await sub.next_msg(timeout=0.1)).data == b"after":
                    break
            except nats.errors.TimeoutError:
                pass
        else:
            raise AssertionError("no message after failover")
        # a new node joins through the seed; its client reaches the subscriber
        node = launcher.start(servers[0].command, ["--cluster", "nats://127.0.0.1:-1",
                                                   "--cluster_name", "c1",
                                                   "--routes", servers[0].route_url],
                              name="rejoined")
        late = await nats.connect(node.url, allow_reconnect=False)
        for _ in range(100):
            await late.publish("events", b"rejoined")
            try:
                if (await sub.next_msg(timeout=0.1)).data == b"rejoined":
                    break
            except nats.errors.TimeoutError:
                pass
        else:
            raise AssertionError("rejoined node's message never arrived")
        for nc in (sub_client, pub, late):
            await nc.close()

    run(main(), timeout=90)


def test_cluster_raw_route_peer_speaks_the_route_protocol(make_server, raw_client):
    """A hand-written peer on the cluster port: our INFO, its CONNECT+INFO, then
    RS+ makes us route a client's message to it as RMSG; garbage closes only
    that route and the server carries on."""
    server = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1", "-m", "-1")
    from pluggy_nats.testing.raw import RawClient

    peer = RawClient("127.0.0.1", server.cluster_port)
    assert peer.info["cluster"] == "c1" and peer.info["route_pool_size"] == 3
    peer.send(b'CONNECT {"echo":true,"verbose":false,"pedantic":false,"headers":true,'
              b'"name":"NPEER","cluster":"c1","lnoc":true}\r\n'
              b'INFO {"server_id":"NPEER","server_name":"peer","cluster":"c1",'
              b'"route_pool_size":3,"route_pool_idx":2,"host":"127.0.0.1","port":1}\r\n'
              b"RS+ $G routed.> q 2\r\nRS+ $G routed.x\r\nPING\r\n")
    peer.expect(rb"PONG\r\n")
    client = raw_client(server)
    client.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n'
                b"PUB routed.x reply.1 5\r\nhello\r\nPING\r\n")
    client.expect(rb"PONG\r\n")
    # one frame for the peer: plain interest plus the queue group it must serve
    peer.expect(rb"RMSG \$G routed.x \+ reply.1 q 5\r\nhello\r\n")
    with urllib.request.urlopen("http://127.0.0.1:%d/routez?subs=1" % server.http_port) as r:
        routez = json.load(r)
    assert routez["num_routes"] == 1
    assert routez["routes"][0]["remote_name"] == "peer"
    assert "routed.x" in routez["routes"][0]["subscriptions_list"]
    peer.send(b"THIS IS NOT A ROUTE VERB\r\n")
    peer.expect(rb"-ERR 'Unknown Protocol Operation'\r\n")
    peer.expect_closed()
    client.send(b"PING\r\n")
    client.expect(rb"PONG\r\n")


def test_cluster_route_to_self_is_dropped(make_server, raw_client, wait_for):
    """A routes list that names the server itself (common when every node gets
    the same list): the self route is closed and not dialled again."""
    from pluggy_nats.testing.launch import free_port

    port = free_port()
    url = "nats://127.0.0.1:%d" % port
    server = make_server("--cluster", url, "--cluster_name", "c1", "--routes", url, "-D")
    wait_for(lambda: "Duplicate Route" in server.logs(), message="self route closed")
    c = raw_client(server)
    c.send(b"PING\r\n")
    c.expect(rb"PONG\r\n")
    closes = server.logs().count("Duplicate Route")
    import time

    time.sleep(0.5)
    assert server.logs().count("Duplicate Route") == closes  # not dialled again


def test_cluster_burst_arrives_once_and_in_order(make_cluster):
    """A burst of like frames is forwarded as batches (RMSG runs) and delivered
    from them in order: plain subs on B and C, a queue group spread over both."""
    servers = make_cluster(3, args=("-m", "-1"))
    total = 2000

    async def main():
        clients = [await connect(s) for s in servers]
        plain = [await nc.subscribe("burst", pending_msgs_limit=total * 2)
                 for nc in clients[1:]]
        extra = [await connect(s) for s in servers[1:]]
        queue = [await nc.subscribe("burstq", queue="q", pending_msgs_limit=total * 2)
                 for nc in extra]
        await settle(*clients, *extra)
        interest_on_all(servers, "burst", count=2)
        interest_on_all(servers, "burstq", count=2)
        for subject in ("burst", "burstq"):  # plain interest only, then a queue group
            for n in range(total):
                await clients[0].publish(subject, b"%06d" % n)
        await clients[0].flush()
        for sub in plain:
            got = [int((await sub.next_msg(timeout=10)).data) for _ in range(total)]
            assert got == list(range(total))
        shares = []
        for sub in queue:
            share = []
            while True:
                try:
                    share.append(int((await sub.next_msg(timeout=1)).data))
                except nats.errors.TimeoutError:
                    break
            assert share == sorted(share)
            shares += share
        assert sorted(shares) == list(range(total))
        for nc in clients + extra:
            await nc.close()

    run(main())


def test_cluster_second_route_from_the_same_side_does_not_replace_the_first(make_server,
                                                                             raw_client):
    """A peer that dials the same pool slot twice (seen when an explicit and a
    gossiped URL name the same server): the connection already carrying
    traffic stays, the new one is closed. Replacing the first dropped the
    messages written to it (found by a 3-node bench run that stalled)."""
    server = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1")
    from pluggy_nats.testing.raw import RawClient

    # "N0..." sorts below every real server id, which made the old rule
    # (keep the newer connection when the peer's id is smaller) replace it.
    hello = (b'CONNECT {"echo":true,"verbose":false,"pedantic":false,"headers":true,'
             b'"name":"N0PEER","cluster":"c1","lnoc":true}\r\n'
             b'INFO {"server_id":"N0PEER","server_name":"peer","cluster":"c1",'
             b'"route_pool_size":3,"route_pool_idx":2,"host":"127.0.0.1","port":1}\r\n')
    first = RawClient("127.0.0.1", server.cluster_port)
    first.send(hello + b"RS+ $G twice.x\r\nPING\r\n")
    first.expect(rb"PONG\r\n")
    second = RawClient("127.0.0.1", server.cluster_port)
    second.send(hello + b"PING\r\n")
    second.expect_closed()
    client = raw_client(server)
    client.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n'
                b"PUB twice.x 5\r\nhello\r\nPING\r\n")
    client.expect(rb"PONG\r\n")
    first.expect(rb"RMSG \$G twice.x 5\r\nhello\r\n")
