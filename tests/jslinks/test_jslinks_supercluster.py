"""One JetStream meta group over a super-cluster (issue #15, JETSTREAM-CLUSTER.md
section 8): the meta group's RAFT traffic crosses the gateways, placement
picks the cluster (``placement.cluster``, else the requester's), a stream
placed in B is used from A, and a stream moves to another cluster with no
message lost. Ours only: our meta group never mixes with Go's."""

import asyncio
import os

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig, Placement, StreamConfig

from pluggy_nats.testing.plugin import run

from .helpers import connect, until
from .helpers import create_stream as _create

FAST_RAFT = {"PLUGGY_NATS_RAFT_SCALE": "0.1"}  # Go's timers x 0.1


def _supercluster(make_supercluster, spec, **env):
    return make_supercluster(spec, jetstream=True, env=dict(FAST_RAFT, **env),
                             args=("-m", "-1"))


async def _ready(js, subject, stream):
    """Until the stream leader's subject interest has crossed the gateway
    (the create's answer can overtake it, as with Go): one message stored."""
    async def stored():
        try:
            await js.publish(subject, b"probe", timeout=1)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError):
            return False
        await js.purge_stream(stream)
        return True
    await until(stored, timeout=20, message="the stream taking publishes")


def _meta_leader(server):
    return server.monitor("jsz").get("meta_cluster", {}).get("leader")


def test_supercluster_js_meta_group_and_placement(make_supercluster):
    """Both clusters' servers are peers of one meta group; a stream placed in
    B from a client in A is published to, read and acked from A; without a
    placement each client's stream lands in its own cluster, wherever the
    meta leader is; an unknown cluster is Go's 10005. A has two servers: the
    client on the second one, so requests also cross routes (relayed copies
    stay unanswered: the entry server hands them to the meta leader)."""
    sc = _supercluster(make_supercluster, {"A": 2, "B": 1})
    a, b = sc["A"][1], sc["B"][0]

    async def body():
        nca, ncb = await connect(a), await connect(b)
        jsa, jsb = nca.jetstream(), ncb.jetstream()
        info = await _create(jsa, name="ORDERS", subjects=["orders.>"],
                             placement=Placement(cluster="B"))
        assert info.cluster.name == "B" and info.cluster.leader == "py-B-0"
        meta = a.monitor("jsz")["meta_cluster"]
        everyone = {"py-A-0", "py-A-1", "py-B-0"}
        assert meta["cluster_size"] == 3 and meta["leader"] in everyone
        # the others, as this server (py-A-1) reports them
        assert {r["name"] for r in meta.get("replicas", [])} | {meta["leader"], "py-A-1"} == \
            everyone

        await _ready(jsa, "orders.0", "ORDERS")
        acks = await asyncio.gather(*[await jsa.publish_async("orders.%d" % (i % 3), b"%d" % i)
                                      for i in range(100)])
        assert [ack.seq for ack in acks] == list(range(2, 102))
        info = await jsa.stream_info("ORDERS")
        assert (info.state.messages, info.state.last_seq, info.cluster.name) == (100, 101, "B")
        sub = await jsa.pull_subscribe("orders.>", "work", config=ConsumerConfig(ack_wait=30))
        got = []
        while len(got) < 100:
            for msg in await sub.fetch(100 - len(got), timeout=5):
                got.append(int(msg.data))
                await msg.ack_sync()
        assert got == list(range(100))
        consumer = await jsa.consumer_info("ORDERS", "work")
        assert consumer.ack_floor.stream_seq == 101 and consumer.cluster.name == "B"

        # the default: the requester's cluster, whoever leads the meta group
        for js, name, cluster in ((jsa, "HOME_A", "A"), (jsb, "HOME_B", "B")):
            info = await _create(js, name=name, subjects=[name.lower()])
            assert info.cluster.name == cluster, (name, info.cluster, _meta_leader(a))
        with pytest.raises(nats.js.errors.BadRequestError) as err:
            await jsb.add_stream(StreamConfig(name="NOWHERE", placement=Placement(cluster="C")))
        assert err.value.err_code == 10005
        names = sorted(await jsb.streams_info(), key=lambda s: s.config.name)
        assert [s.config.name for s in names] == ["HOME_A", "HOME_B", "ORDERS"]
        await nca.close()
        await ncb.close()

    run(body(), 90)


def test_supercluster_js_stream_move(make_supercluster):
    """A stream of cluster A moved to B (STREAM.UPDATE with a new
    placement.cluster) while a client in A keeps publishing: the group takes
    B's peer, hands it the lead and drops A's; every message is there once,
    in order, the durable consumer keeps its acks, A's copy is deleted. The
    group's log is compacted every 20 entries, so B fetches the messages
    before the last snapshot from the leader (catchup.py)."""
    sc = _supercluster(make_supercluster, {"A": 1, "B": 1},
                       PLUGGY_NATS_JS_SNAPSHOT_ENTRIES="20")
    a = sc["A"][0]

    async def body():
        nc = await connect(a)
        js = nc.jetstream()
        info = await _create(js, name="MOVE", subjects=["move.>"],
                             placement=Placement(cluster="A"))
        assert info.cluster.name == "A"
        for i in range(100):
            await js.publish("move.x", b"%d" % i, headers={"Nats-Msg-Id": str(i)})
        sub = await js.pull_subscribe("move.>", "keep")
        for msg in await sub.fetch(40, timeout=5):
            await msg.ack_sync()

        published = [100]
        stop = asyncio.Event()

        async def publisher():
            while True:  # stops after an acknowledged publish
                i = published[0]
                try:  # no PubAck during the hand-over: retried, Nats-Msg-Id dedups
                    await js.publish("move.x", b"%d" % i, headers={"Nats-Msg-Id": str(i)},
                                     timeout=1)
                    published[0] += 1
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                        nats.js.errors.NoStreamResponseError):
                    await asyncio.sleep(0.05)
                    continue
                if stop.is_set():
                    return

        task = asyncio.ensure_future(publisher())
        await asyncio.sleep(0.3)
        cfg = info.config
        cfg.placement = Placement(cluster="B")
        await js.update_stream(cfg)

        async def moved():
            info = await js.stream_info("MOVE")
            return info.cluster.name == "B" and info.cluster.leader == "py-B-0" and \
                not info.cluster.replicas and info
        await until(moved, timeout=30, message="the stream in B alone")
        await asyncio.sleep(0.3)
        stop.set()
        await task
        total = published[0]
        assert total > 100

        info = await js.stream_info("MOVE")
        assert (info.state.messages, info.state.last_seq) == (total, total)
        seen = []
        for seq in range(1, total + 1):
            msg = await js.get_msg("MOVE", seq)
            seen.append(int(msg.data))
        assert seen == list(range(total))
        consumer = await js.consumer_info("MOVE", "keep")
        assert consumer.ack_floor.stream_seq == 40 and consumer.cluster.name == "B"
        msgs = await sub.fetch(1, timeout=5)
        assert int(msgs[0].data) == 40

        gone = os.path.join(os.path.dirname(a.logfile), "py-A-0", "store", "jetstream", "$G",
                            "rstreams", "MOVE")

        async def deleted():
            return not os.path.exists(gone)
        await until(deleted, timeout=10, message="A's copy deleted")
        await nc.close()

    run(body(), 90)
