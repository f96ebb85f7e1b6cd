"""Clustered JetStream under faults (kill -9, SIGSTOP, cut routes), on
three of our servers behind the fault harness's proxies: no acknowledged
message is lost or duplicated, every replica ends identical, and a server
that was away catches up. The seeded randomized run is in
test_jetstream_cluster_jepsen.py."""

import asyncio
import time

import nats.errors

from .clusterkit import add_stream, connect, js_cluster, leader_index, read_replica, wait_for


async def publish_acked(js, subject, payload, msg_id, deadline):
    """Publish until acknowledged; the retry keeps the Nats-Msg-Id, so a
    message stored before a lost ack is answered as a duplicate."""
    while True:
        try:
            ack = await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id},
                                   timeout=1.0)
            return ack
        except (asyncio.TimeoutError, nats.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def all_hold(cluster, stream, last_seq, indices=None):
    from .clusterkit import monitor

    for i in indices or range(cluster.n):
        try:
            data = monitor(cluster, i, "/jsz?streams=true")
        except OSError:
            return False
        found = [d for acc in data.get("account_details", []) for d in acc["stream_detail"]
                 if d["name"] == stream]
        if not found or found[0]["state"]["last_seq"] != last_seq:
            return False
    return True


def check_copies(cluster, stream, acked):
    """Every acknowledged (seq -> payload) is stored once at its seq, on every
    replica, and the replicas are identical."""
    copies = [read_replica(cluster, i, stream) for i in range(cluster.n)]
    for copy in copies[1:]:
        assert copy == copies[0], "replicas differ"
    stored = {seq: data for seq, _, data in copies[0]}
    payloads = [data for _, _, data in copies[0]]
    assert len(payloads) == len(set(payloads)), "a message was stored twice"
    for seq, data in acked.items():
        assert stored.get(seq) == data, "acked seq %d lost or moved" % seq
    return copies[0]


def test_leader_kill_9_loses_no_acked_message(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)
    acked = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="K", subjects=["k"], num_replicas=3)
        killed = None
        deadline = time.monotonic() + 60
        for i in range(300):
            if i == 100:
                killed = leader_index(cluster, "K")
                cluster.kill(killed)
            if i == 200:
                cluster.restart(killed)
            data = b"m-%d" % i
            ack = await publish_acked(js, "k", data, "id-%d" % i, deadline)
            assert ack.seq not in acked or acked[ack.seq] == data
            acked[ack.seq] = data
        assert sorted(acked) == list(range(1, 301))
        await wait_for(lambda: all_hold(cluster, "K", 300), timeout=30,
                       what="every server holds seq 300")
        await nc.close()

    run(body(), timeout=120)
    cluster.close()
    assert len(check_copies(cluster, "K", acked)) == 300


def test_paused_leader_is_replaced_and_rejoins_as_follower(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)
    acked = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="P", subjects=["p"], num_replicas=3)
        for i in range(50):
            acked[(await js.publish("p", b"a-%d" % i)).seq] = b"a-%d" % i
        paused = leader_index(cluster, "P")
        if paused == 0:  # keep our client's server running
            await nc.close()
            nc = await connect(cluster, 1)
            js = nc.jetstream(timeout=5)
        cluster.pause(paused)
        deadline = time.monotonic() + 40
        for i in range(50, 150):
            data = b"a-%d" % i
            acked[(await publish_acked(js, "p", data, "p-%d" % i, deadline)).seq] = data
        new = leader_index(cluster, "P")
        assert new is not None and new != paused
        cluster.resume(paused)
        await wait_for(lambda: all_hold(cluster, "P", 150), timeout=30,
                       what="the resumed server caught up")
        # the group still has a leader with the old one back (it may win a
        # later election, so which one is not asserted)
        await wait_for(lambda: leader_index(cluster, "P") is not None,
                       what="a leader after the resume")
        await nc.close()

    run(body(), timeout=120)
    cluster.close()
    assert len(check_copies(cluster, "P", acked)) == 150


def test_server_down_a_while_catches_up(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)
    acked = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="C", subjects=["c.>"], num_replicas=3)
        await wait_for(lambda: leader_index(cluster, "C") is not None, what="leader")
        down = next(i for i in (1, 2) if i != leader_index(cluster, "C"))
        cluster.kill(down)
        acks = await asyncio.gather(*[js.publish("c.%d" % (i % 7), b"c-%d" % i)
                                      for i in range(400)])
        for i, ack in enumerate(acks):
            acked[ack.seq] = b"c-%d" % i
        cluster.restart(down)
        await wait_for(lambda: all_hold(cluster, "C", 400), timeout=30,
                       what="the restarted server caught up")
        await nc.close()

    run(body(), timeout=120)
    cluster.close()
    assert len(check_copies(cluster, "C", acked)) == 400
