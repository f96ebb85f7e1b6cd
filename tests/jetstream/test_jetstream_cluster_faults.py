"""Clustered JetStream under faults (kill -9, SIGSTOP, cut routes), on
three of our servers behind the fault harness's proxies: no acknowledged
message is lost or duplicated, every replica ends identical, and a server
that was away catches up. The seeded randomized run is in
test_jetstream_cluster_jepsen.py."""

import asyncio
import json
import time

import nats.errors
import pytest

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


def test_lost_proposal_msg_id_is_no_duplicate(make_fault_cluster, run):
    """Issue #14's lost ack: a leader cut off from its group proposes a
    message with a Nats-Msg-Id that never commits; another leader stores a
    different message at that sequence; the first leader leads again and the
    client's retry of the lost message must be stored (not answered as a
    duplicate at the sequence the other message holds)."""
    cluster = js_cluster(make_fault_cluster)
    acked = {}

    async def body():
        nc0 = await connect(cluster, 0)
        js0 = nc0.jetstream(timeout=5)
        await add_stream(js0, name="L", subjects=["l"], num_replicas=3)
        # leadership on server 0, where the client of the lost publish is
        await wait_for(lambda: leader_index(cluster, "L") is not None, what="a leader")
        if leader_index(cluster, "L") != 0:
            await js0.publish("l", b"first", headers={"Nats-Msg-Id": "first"})
            await nc0.request("$JS.API.STREAM.LEADER.STEPDOWN.L", json.dumps(
                {"placement": {"preferred": cluster.names[0]}}).encode(), timeout=5)
            await wait_for(lambda: leader_index(cluster, "L") == 0, what="server 0 leads")
        deadline = time.monotonic() + 40
        ack = await publish_acked(js0, "l", b"before", "before", deadline)
        acked[ack.seq] = b"before"
        cluster.partition([0], [1, 2])
        with pytest.raises(nats.errors.TimeoutError):  # proposed, never committed
            await js0.publish("l", b"lost", headers={"Nats-Msg-Id": "lost"}, timeout=1.0)
        nc1 = await connect(cluster, 1)
        js1 = nc1.jetstream(timeout=5)
        ack = await publish_acked(js1, "l", b"other", "other", deadline)
        acked[ack.seq] = b"other"
        cluster.heal_all()
        await wait_for(lambda: all_hold(cluster, "L", ack.seq), timeout=30,
                       what="server 0 back as a follower")
        while leader_index(cluster, "L") != 0:  # lead again where the proposal was
            try:
                await nc1.request("$JS.API.STREAM.LEADER.STEPDOWN.L", json.dumps(
                    {"placement": {"preferred": cluster.names[0]}}).encode(), timeout=2)
            except nats.errors.TimeoutError:
                pass
            await wait_for(lambda: leader_index(cluster, "L") is not None, what="a leader")
            assert time.monotonic() < deadline, "server 0 never led again"
        ack = await publish_acked(js0, "l", b"lost", "lost", deadline)
        acked[ack.seq] = b"lost"
        await wait_for(lambda: all_hold(cluster, "L", max(acked)), what="all hold the retry")
        await nc0.close()
        await nc1.close()

    run(body(), timeout=120)
    cluster.close()
    check_copies(cluster, "L", acked)
