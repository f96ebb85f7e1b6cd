"""Mirrors and sources of replicated streams (issue #15), with the real
nats-py JetStream API on a 3-server cluster: the stream leader alone reads
the origin through a consumer and proposes what it copies, every member
stores it when applied (plugins/jetstream/cluster/replica.py); after the
leader is killed, the new one goes on from what the group committed.
Compared sequence by sequence with the origin, on every member's own
store."""

import asyncio

from nats.js.api import StreamSource, SubjectTransform

from .clusterkit import (
    add_stream,
    connect,
    js_cluster,
    leader_index,
    read_replica,
    retry,
    wait_for,
)
from .test_jetstream_cluster_faults import all_hold


def _copies(cluster, stream, members=range(3)):
    """(seq, subject, data) of ``stream`` on each member, read from its
    store once every server is killed."""
    for i in range(cluster.n):
        cluster.kill(i)
    return [[(seq, subject, bytes(data)) for seq, subject, data in
             read_replica(cluster, i, stream)] for i in members]


async def _publish(js, subject, start, count):
    """Acked publishes; a retry after a lost PubAck is a duplicate (its
    Nats-Msg-Id), not a second message."""
    for i in range(start, start + count):
        await retry(lambda i=i: js.publish(subject, b"m%d" % i,
                                           headers={"Nats-Msg-Id": "%s-%d" % (subject, i)}))


def test_r3_mirror_keeps_the_origins_sequences_through_a_leader_kill(make_fault_cluster,
                                                                      run):
    cluster = js_cluster(make_fault_cluster, name="clm")

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="O", subjects=["o.>"], num_replicas=3)
        await _publish(js, "o.a", 0, 200)
        # a gap in the origin: the mirror keeps it as a gap
        await retry(lambda: js.delete_msg("O", 100))
        await add_stream(js, name="M", mirror=StreamSource(name="O"), num_replicas=3)
        await wait_for(lambda: all_hold(cluster, "M", 200), what="M holds 200 everywhere")
        info = await js.stream_info("M")
        assert info.mirror.name == "O" and info.state.messages == 199
        # the mirror's leader killed while the origin keeps growing
        lead = leader_index(cluster, "M")
        more = asyncio.ensure_future(_publish(js, "o.b", 200, 300))
        await asyncio.sleep(0.3)
        cluster.kill(lead)
        await more
        await wait_for(lambda: leader_index(cluster, "M") not in (None, lead),
                       what="a new leader of M")
        others = [i for i in range(3) if i != lead]
        await wait_for(lambda: all_hold(cluster, "M", 500, others), timeout=40,
                       what="M caught up on the two members left")
        cluster.restart(lead)
        await wait_for(lambda: all_hold(cluster, "M", 500) and all_hold(cluster, "O", 500),
                       timeout=40, what="M and O caught up on the restarted member")
        await nc.close()
        return lead

    run(body(), timeout=150)
    origin = _copies(cluster, "O", [0])[0]
    assert len(origin) == 499 and 100 not in [seq for seq, _, _ in origin]
    for i, copy in enumerate(_copies(cluster, "M")):
        assert copy == origin, "member %s differs from the origin" % cluster.names[i]


def test_r3_stream_sources_two_streams_exactly_once(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster, name="cls")

    async def body():
        nc = await connect(cluster, 1)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="A", subjects=["a.>"], num_replicas=1)
        await add_stream(js, name="B", subjects=["b.>"], num_replicas=3)
        await _publish(js, "a.x", 0, 60)
        await _publish(js, "b.keep", 0, 40)
        await _publish(js, "b.drop", 0, 20)
        await add_stream(js, name="S", subjects=["s.>"], num_replicas=3, sources=[
            StreamSource(name="A"),
            StreamSource(name="B", subject_transforms=[
                SubjectTransform(src="b.keep", dest="from.b")])])
        await _publish(js, "a.x", 60, 40)
        await wait_for(lambda: all_hold(cluster, "S", 140), what="S holds 100 + 40")
        # a step-down in the middle: the new leader goes on where the group is
        await retry(lambda: nc.request("$JS.API.STREAM.LEADER.STEPDOWN.S", b"", timeout=5))
        await _publish(js, "b.keep", 40, 10)
        await wait_for(lambda: all_hold(cluster, "S", 150), what="S holds 150")
        info = await js.stream_info("S")
        assert sorted(s.name for s in info.sources) == ["A", "B"]
        msg = await js.get_msg("S", 150)
        assert msg.subject == "from.b"
        # B: b.keep at 1-40, b.drop at 41-60, b.keep at 61-70
        assert msg.headers["Nats-Stream-Source"].split(" ")[:2] == ["B", "70"]
        await nc.close()

    run(body(), timeout=120)
    copies = _copies(cluster, "S")
    assert copies[0] == copies[1] == copies[2]
    got = sorted(data for _, _, data in copies[0])
    # every message of A (100) and every b.keep (50) once; no b.drop
    assert got == sorted([b"m%d" % i for i in range(100)] + [b"m%d" % i for i in range(50)])
    assert {subject for _, subject, _ in copies[0]} == {"a.x", "from.b"}


def test_r3_mirror_of_a_purged_origin_starts_at_its_first_sequence(make_fault_cluster, run):
    """The origin's first sequence is past the mirror's end: every member
    leaves the same gap (only the log writes a replicated store)."""
    cluster = js_cluster(make_fault_cluster, name="clp")

    async def body():
        nc = await connect(cluster, 2)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="O", subjects=["o"], num_replicas=1)
        await _publish(js, "o", 0, 30)
        await retry(lambda: js.purge_stream("O"))
        await add_stream(js, name="M", mirror=StreamSource(name="O"), num_replicas=3)
        await _publish(js, "o", 30, 10)
        await wait_for(lambda: all_hold(cluster, "M", 40), what="M holds 31..40 everywhere")
        info = await js.stream_info("M")
        assert (info.state.first_seq, info.state.messages) == (31, 10)
        await nc.close()

    run(body(), timeout=90)
    copies = _copies(cluster, "M")
    assert copies[0] == copies[1] == copies[2]
    assert [seq for seq, _, _ in copies[0]] == list(range(31, 41))
    assert [data for _, _, data in copies[0]] == [b"m%d" % i for i in range(30, 40)]
