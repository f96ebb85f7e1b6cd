"""The meta group's assignment state machine (plugins/jetstream/cluster/meta.py):
placement as Go's selectPeerGroup, Go's errors for bad requests, and the state
replicated through RAFT on the in-memory network under faults: every member
ends with the same assignments, equal to a replay of the committed entries."""

import random

import pytest
from pluggy_nats_plugins.jetstream.cluster.meta import (
    ASSIGN_STREAM,
    MetaError,
    MetaState,
    PeerInfo,
    decode_op,
    propose_consumer,
    propose_remove_consumer,
    propose_remove_stream,
    propose_stream,
    select_peer_group,
)

from pluggy_nats.raft.messages import NORMAL
from pluggy_nats.raft.sim import ChainApp, SimCluster


def peers(n=5, cluster="c1", **kw):
    return [PeerInfo("id%d" % i, "s%d" % i, cluster, **kw) for i in range(n)]


# -- placement ----------------------------------------------------------------------------

def test_meta_placement_prefers_space_then_fewer_streams():
    ps = peers(4)
    ps[0].available, ps[1].available = 10, 50
    ps[2].streams = 3
    assert select_peer_group(ps, 1, "c1") == ["id3"]
    assert select_peer_group(ps, 3, "c1") == ["id3", "id2", "id1"]


def test_meta_placement_tags_exclusions_and_unique_tag():
    ps = peers(6)
    for i, p in enumerate(ps):
        p.tags = {"az:%d" % (i % 3), "ssd" if i < 4 else "hdd"}
    ps[5].tags.add("!jetstream")
    assert set(select_peer_group(ps, 4, "c1", tags=["ssd"])) == {"id0", "id1", "id2", "id3"}
    assert "id0" not in select_peer_group(ps, 3, "c1", tags=["!az:0"])
    chosen = select_peer_group(ps, 3, "c1", unique_tag="az:")
    assert sorted(next(t for t in ps[int(c[2:])].tags if t.startswith("az:"))
                  for c in chosen) == ["az:0", "az:1", "az:2"]
    with pytest.raises(MetaError) as err:
        select_peer_group(ps, 4, "c1", unique_tag="az:")
    assert err.value.err_code == 10005


def test_meta_placement_drops_offline_full_and_other_clusters():
    ps = peers(3) + peers(3, cluster="c2")
    ps[0].offline = True
    ps[1].available = 100
    assert select_peer_group(ps, 1, "c1", max_bytes=1000) == ["id2"]
    with pytest.raises(MetaError) as err:
        select_peer_group(ps, 2, "c1", max_bytes=1000)
    # Go's selectPeerError names the reasons
    assert err.value.to_json() == {
        "code": 400, "err_code": 10005,
        "description": "no suitable peers for placement, peer offline, insufficient storage"}


def test_meta_placement_spreads_ha_assets():
    ps = peers(4)
    ps[0].ha_assets = ps[1].ha_assets = 5
    assert sorted(select_peer_group(ps, 2, "c1")) == ["id2", "id3"]


# -- requests -----------------------------------------------------------------------------

def test_meta_requests_answer_go_errors():
    state = MetaState()
    config = {"name": "ORDERS", "subjects": ["orders.>"], "num_replicas": 3}
    entry = propose_stream(state, "A", config, peers(3), "c1", random.Random(1))
    changes = state.apply(entry)
    assert changes[0][:3] == ("stream_added", "A", "ORDERS")
    group = state.stream("A", "ORDERS")["group"]
    assert group["name"].startswith("S-R3F-") and len(group["name"]) == 14
    assert sorted(group["peers"]) == ["id0", "id1", "id2"]
    assert propose_stream(state, "A", config, peers(3), "c1") is None  # same create again
    cases = [
        (lambda: propose_stream(state, "A", dict(config, subjects=["x"]), peers(3), "c1"), 10058),
        (lambda: propose_stream(state, "A", dict(config, name="B", num_replicas=6),
                                peers(7), "c1"), 10052),
        (lambda: propose_stream(state, "A", dict(config, name="B", num_replicas=4),
                                peers(3), "c1"), 10005),
        (lambda: propose_consumer(state, "A", "ORDERS", "d", {"num_replicas": 5}), 10126),
        (lambda: propose_consumer(state, "A", "NOPE", "d", {}), 10059),
        (lambda: propose_remove_consumer(state, "A", "ORDERS", "nope"), 10014),
        (lambda: propose_remove_stream(state, "B", "ORDERS"), 10059),
    ]
    for call, code in cases:
        with pytest.raises(MetaError) as err:
            call()
        assert err.value.err_code == code
    state.apply(propose_consumer(state, "A", "ORDERS", "d", {"durable_name": "d"}))
    consumer = state.stream("A", "ORDERS")["consumers"]["d"]
    assert consumer["group"]["peers"] == group["peers"]  # defaults to the stream's peers
    state.apply(propose_consumer(state, "A", "ORDERS", "one", {"num_replicas": 1},
                                 random.Random(2)))
    assert len(state.stream("A", "ORDERS")["consumers"]["one"]["group"]["peers"]) == 1
    assert decode_op(entry)[0] == ASSIGN_STREAM
    copy = MetaState()
    copy.restore(state.snapshot())
    assert copy.snapshot() == state.snapshot() and copy.assigned_to("id1") == [("A", "ORDERS")]
    changes = state.apply(propose_remove_stream(state, "A", "ORDERS"))
    assert changes[0][0] == "stream_removed" and state.streams == {}


# -- replicated ---------------------------------------------------------------------------

class MetaApp(ChainApp):
    """The meta state on every simulated node, next to the checker's chain."""

    def __init__(self):
        super().__init__()
        self.meta = MetaState()

    def apply(self, entry):
        super().apply(entry)
        if entry.type == NORMAL:
            self.meta.apply(entry.data)

    def snapshot(self):
        return super().snapshot() + self.meta.snapshot()

    def restore(self, data):
        super().restore(data[:16])
        self.meta.restore(data[16:])


def run_meta_schedule(seed, steps=120):
    rng = random.Random(seed)
    ids = ["n0", "n1", "n2"]
    cluster = SimCluster(seed, ids, app_factory=MetaApp, drop=0.02)
    servers = [PeerInfo(i, i, "c1") for i in ids]
    for _ in range(steps):
        cluster.run(0.05)
        leader = cluster.leader()
        r = rng.random()
        if r < 0.6 and leader is not None:
            meta = leader.app.meta
            name = "S%d" % rng.randrange(6)
            try:
                if meta.stream("A", name) is None:
                    entry = propose_stream(meta, "A", {"name": name, "num_replicas":
                                                       rng.randint(1, 3)}, servers, "c1", rng)
                elif rng.random() < 0.3:
                    entry = propose_remove_stream(meta, "A", name)
                else:
                    entry = propose_consumer(meta, "A", name, "C%d" % rng.randrange(3), {}, rng)
            except MetaError:
                continue
            if entry is not None:
                cluster.propose(leader.id, entry)
        elif r < 0.7:
            cluster.crash(rng.choice(ids), mid_write=True)
        elif r < 0.85:
            for i in ids:
                cluster.restart(i)
        elif r < 0.9:
            cluster.partition([rng.choice(ids)], [])
        elif r < 0.95:
            cluster.heal()
        else:
            cluster.request(rng.choice(ids), "snapshot")
    cluster.heal()
    cluster.drop = 0.0
    for i in ids:
        cluster.restart(i)
    cluster.run(3.0)
    leader = cluster.leader()
    assert leader is not None
    index = cluster.propose(leader.id, b"\xff{}")  # an op Go does not know: ignored
    cluster.run(1.0)
    nodes = [cluster.nodes[i] for i in ids]
    assert all(n.app.index >= index for n in nodes)
    replay = MetaState()
    for i in sorted(cluster.checker.committed):
        term, etype, data = cluster.checker.committed[i]
        if etype == NORMAL:
            replay.apply(data)
    assert {n.app.meta.snapshot() for n in nodes} == {replay.snapshot()}
    return len(replay.streams)


def test_meta_assignments_replicated_under_faults():
    streams = [run_meta_schedule(seed) for seed in range(25)]
    assert sum(streams) > 25  # the schedules did create streams
