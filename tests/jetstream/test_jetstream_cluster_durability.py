"""Clustered JetStream, what an acknowledgement leaves behind on the replicas:
under workqueue and interest retention an ack removes the message on every
replica (through the stream's log) and it stays removed after a failover;
with ``sync_interval: always`` a PubAck means the message is on a quorum's
disks, so killing two of three servers right after it loses nothing."""

import json
import time

import nats.errors
import pytest

from .clusterkit import (
    add_stream,
    connect,
    js_cluster,
    leader_index,
    monitor,
    read_replica,
    retry,
    wait_for,
)
from .test_jetstream_cluster_faults import all_hold, check_copies, publish_acked


def _state(cluster, i, stream):
    """(messages, first_seq) of server ``i``'s own copy, None if unreachable."""
    try:
        data = monitor(cluster, i, "/jsz?streams=true")
    except OSError:
        return None
    for acc in data.get("account_details", []):
        for d in acc.get("stream_detail", []):
            if d["name"] == stream:
                return d["state"]["messages"], d["state"]["first_seq"]
    return None


def _everywhere(cluster, stream, want):
    return all(_state(cluster, i, stream) == want for i in range(cluster.n))


async def _take(sub, n, ack):
    got = []
    while len(got) < n:
        for msg in await sub.fetch(n - len(got), timeout=5):
            got.append((msg.metadata.sequence.stream, msg.metadata.num_delivered))
            await ack(msg, len(got))
    return got


def test_retention_acks_remove_on_every_replica_and_survive_failover(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="WQ", subjects=["wq.>"], num_replicas=3,
                         retention="workqueue")
        await add_stream(js, name="INT", subjects=["int.>"], num_replicas=3,
                         retention="interest")
        # an interest stream with no consumer drops at once: consumers first
        ca = await retry(lambda: js.pull_subscribe("int.>", "a", stream="INT"))
        cb = await retry(lambda: js.pull_subscribe("int.>", "b", stream="INT"))
        for i in range(40):
            await js.publish("wq.%d" % (i % 4), b"w%d" % i)
            await js.publish("int.x", b"i%d" % i)
        wq = await retry(lambda: js.pull_subscribe("wq.>", "worker", stream="WQ"))

        async def mixed(msg, k):  # double acks, then plain ones (they go with the
            await (msg.ack_sync() if k <= 15 else msg.ack())  # next state, ~100 ms)

        async def sync(msg, k):
            await msg.ack_sync()

        got = await _take(wq, 25, mixed)
        assert [s for s, _ in got] == list(range(1, 26))
        await _take(ca, 30, sync)
        await _take(cb, 10, sync)
        # removed on every replica, not only where the consumer runs
        await wait_for(lambda: _everywhere(cluster, "WQ", (15, 26)),
                       what="acked workqueue messages gone on every replica")
        await wait_for(lambda: _everywhere(cluster, "INT", (30, 11)),
                       what="messages both consumers acked gone on every replica")
        # the leader dies: the new one holds exactly what was left
        killed = leader_index(cluster, "WQ")
        cluster.kill(killed)
        info = await retry(lambda: js.stream_info("WQ"), what="WQ info after the kill")
        assert (info.state.messages, info.state.first_seq) == (15, 26)
        info = await retry(lambda: js.stream_info("INT"), what="INT info after the kill")
        assert (info.state.messages, info.state.first_seq) == (30, 11)
        # the worker continues where it was: first delivery of 26
        more = await retry(lambda: _take(wq, 5, sync), what="fetch after the kill")
        assert more == [(s, 1) for s in range(26, 31)]
        cluster.restart(killed)
        await wait_for(lambda: _everywhere(cluster, "WQ", (10, 31)), timeout=40,
                       what="the restarted server applied the removals it missed")
        await nc.close()

    run(body(), timeout=150)
    cluster.close()
    for stream, first, count in (("WQ", 31, 10), ("INT", 11, 30)):
        copies = [read_replica(cluster, i, stream) for i in range(3)]
        assert copies[0] == copies[1] == copies[2], "%s replicas differ" % stream
        assert [seq for seq, _, _ in copies[0]] == list(range(first, first + count))


def test_sync_always_acked_message_survives_kill_9_of_a_quorum(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster, jetstream="sync_interval: always")
    acked = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="D", subjects=["d"], num_replicas=3)
        deadline = time.monotonic() + 60
        for i in range(20):
            ack = await publish_acked(js, "d", b"m-%d" % i, "id-%d" % i, deadline)
            acked[ack.seq] = b"m-%d" % i
        # an atomic batch is answered once its last message is committed: not
        # while both followers are stopped
        await add_stream(js, name="AB", subjects=["ab"], num_replicas=3, allow_atomic=True)
        await wait_for(lambda: leader_index(cluster, "AB") is not None, what="AB leader")
        ab_leader = leader_index(cluster, "AB")
        nc2 = await connect(cluster, ab_leader)
        answers = await nc2.subscribe("answers.ab")
        for i in (1, 2):
            await nc2.publish("ab", b"%d" % i, reply="answers.ab", headers={
                "Nats-Batch-Id": "b1", "Nats-Batch-Sequence": str(i)})
            assert (await answers.next_msg(timeout=5)).data == b""  # staged
        followers = [i for i in range(3) if i != ab_leader]
        for i in followers:
            cluster.pause(i)
        await nc2.publish("ab", b"3", reply="answers.ab", headers={
            "Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "3", "Nats-Batch-Commit": "1"})
        with pytest.raises(nats.errors.TimeoutError):  # well below the leader's 1 s
            await answers.next_msg(timeout=0.4)        # lost-quorum step-down here
        for i in followers:
            cluster.resume(i)
        ack = json.loads((await answers.next_msg(timeout=10)).data)
        assert ack == {"stream": "AB", "seq": 3, "batch": "b1", "count": 3}
        await nc2.close()
        await wait_for(lambda: _everywhere(cluster, "AB", (3, 1)),
                       what="the batch on every replica")
        await wait_for(lambda: leader_index(cluster, "D") is not None, what="D leader")
        leader = leader_index(cluster, "D")
        survivor = (leader + 1) % 3
        victims = [i for i in range(3) if i != survivor]
        await nc.close()
        nc = await connect(cluster, survivor)
        js = nc.jetstream(timeout=5)
        ack = await js.publish("d", b"last", headers={"Nats-Msg-Id": "last"})
        for i in victims:  # the leader and a follower, right after the PubAck
            cluster.kill(i)
        acked[ack.seq] = b"last"
        for i in victims:
            cluster.restart(i)
        await wait_for(lambda: all_hold(cluster, "D", ack.seq), timeout=40,
                       what="every server holds the last acked message")
        await nc.close()

    run(body(), timeout=150)
    cluster.close()
    assert len(check_copies(cluster, "D", acked)) == 21


def test_atomic_batch_refused_partway_leaves_nothing_on_any_replica(make_fault_cluster, run):
    """A batch refused at its last message, by a check (an expected last
    sequence, Go: first message only) or by max_msgs with discard new
    (counted for the whole batch before proposing, as Go), is answered with
    Go's error, not a PubAck, and no member keeps any of it."""
    cluster = js_cluster(make_fault_cluster)
    out = {"answers": []}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="AR", subjects=["ar"], num_replicas=3, allow_atomic=True,
                         max_msgs=3, discard="new")
        await wait_for(lambda: leader_index(cluster, "AR") is not None, what="AR leader")
        nc2 = await connect(cluster, leader_index(cluster, "AR"))
        answers = await nc2.subscribe("answers.ar")
        batches = [("b1", 3, {"Nats-Expected-Last-Sequence": "2"}), ("b2", 4, {})]
        for batch_id, n, last_headers in batches:
            for i in range(1, n + 1):
                headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)}
                if i == n:
                    headers.update(last_headers, **{"Nats-Batch-Commit": "1"})
                await nc2.publish("ar", b"%d" % i, reply="answers.ar", headers=headers)
            for _ in range(n - 1):
                assert (await answers.next_msg(timeout=5)).data == b""  # staged
            out["answers"].append(json.loads((await answers.next_msg(timeout=10)).data))
        # what follows is stored as usual, at the sequence after the last stored
        ack = await retry(lambda: js.publish("ar", b"after"))
        out["after"] = ack.seq
        await wait_for(lambda: _everywhere(cluster, "AR", (1, ack.seq)),
                       what="only the later message on every replica")
        await nc2.close()
        await nc.close()

    run(body(), timeout=90)
    cluster.close()
    codes = [a.get("error", {}).get("err_code") for a in out["answers"]]
    assert codes == [10164, 10077], out["answers"]
    assert out["after"] == 1
    for i in range(3):
        assert [data for _, _, data in read_replica(cluster, i, "AR")] == [b"after"]


def test_retry_of_a_message_in_flight_is_answered_after_its_commit(make_fault_cluster, run):
    """A retry (same Nats-Msg-Id) while the first publish waits for its
    commit is a duplicate, answered only once the first is committed."""
    cluster = js_cluster(make_fault_cluster)
    out = {}

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="IF", subjects=["if"], num_replicas=3)
        await wait_for(lambda: leader_index(cluster, "IF") is not None, what="IF leader")
        leader = leader_index(cluster, "IF")
        nc2 = await connect(cluster, leader)
        answers = await nc2.subscribe("answers.if")
        followers = [i for i in range(3) if i != leader]
        for i in followers:
            cluster.pause(i)
        for _ in range(2):
            await nc2.publish("if", b"x", reply="answers.if", headers={"Nats-Msg-Id": "x"})
        with pytest.raises(nats.errors.TimeoutError):  # not committed, not answered
            await answers.next_msg(timeout=0.4)
        for i in followers:
            cluster.resume(i)
        out["answers"] = [json.loads((await answers.next_msg(timeout=10)).data)
                          for _ in range(2)]
        await wait_for(lambda: all_hold(cluster, "IF", 1), what="every replica holds it")
        await nc2.close()
        await nc.close()

    run(body(), timeout=60)
    cluster.close()
    assert out["answers"] == [{"stream": "IF", "seq": 1},
                              {"stream": "IF", "seq": 1, "duplicate": True}]
    for i in range(3):
        assert [data for _, _, data in read_replica(cluster, i, "IF")] == [b"x"]
