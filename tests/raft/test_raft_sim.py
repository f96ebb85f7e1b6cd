"""RAFT safety under seeded random faults, on the in-memory network.

Each schedule runs a 3- or 5-node group (plus two spare nodes) through
crashes that lose unsynced writes, restarts, partitions, message loss,
duplication and delay, snapshots, leader transfers and membership changes
while clients propose; then everything heals and the group must commit a
last entry on every member. The checker in :mod:`pluggy_nats.raft.sim`
asserts election safety, leader completeness, state-machine safety and log
matching throughout. The default run checks ``RAFT_SCHEDULES`` schedules
(200) from ``RAFT_SEED`` (0); ``-m soak`` checks 5,000 longer ones.
"""

import os
import time

import pytest

from pluggy_nats.raft import core, storage
from pluggy_nats.raft.core import LEADER
from pluggy_nats.raft.messages import (
    NORMAL,
    PEER_STATE,
    AppendResponse,
    Entry,
    VoteResponse,
    encode_peers,
)
from pluggy_nats.raft.sim import SafetyViolation, SimCluster, random_schedule
from pluggy_nats.raft.storage import MemoryStorage

FIRST_SEED = int(os.environ.get("RAFT_SEED", "0"))
SCHEDULES = int(os.environ.get("RAFT_SCHEDULES", "200"))


def run_schedules(first, count, duration, directory=None):
    started = time.monotonic()
    totals = {"proposed": 0, "faults": 0, "committed": 0, "elections": 0, "messages": 0,
              "torn_bytes": 0}
    for seed in range(first, first + count):
        where = None if directory is None else os.path.join(directory, str(seed))
        summary = random_schedule(seed, duration=duration, directory=where)
        for key in totals:
            totals[key] += summary[key]
    print("\nraft schedules (%s logs): seeds %d..%d (%d schedules, %.1fs simulated each) "
          "in %.1fs: %s" % ("file" if directory else "memory", first, first + count - 1, count,
                            duration, time.monotonic() - started, totals))
    return totals


def test_raft_random_fault_schedules():
    totals = run_schedules(FIRST_SEED, SCHEDULES, duration=2.0)
    # The schedules did exercise the group: faults, elections, commits.
    assert totals["faults"] > SCHEDULES * 10
    assert totals["elections"] > SCHEDULES
    assert totals["committed"] > totals["proposed"] * 0.5


def test_raft_random_fault_schedules_on_file_logs(tmp_path):
    """The same with the file log: a crash keeps a random part of the unsynced
    tail (a torn write), recovery cuts it."""
    totals = run_schedules(FIRST_SEED + 50_000, 20, duration=2.0, directory=str(tmp_path))
    assert totals["torn_bytes"] > 0 and totals["elections"] > 20


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_raft_random_fault_schedules_soak():
    run_schedules(FIRST_SEED + 100_000, int(os.environ.get("RAFT_SOAK_SCHEDULES", "5000")),
                  duration=5.0)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_raft_random_fault_schedules_on_file_logs_soak(tmp_path):
    run_schedules(FIRST_SEED + 200_000, int(os.environ.get("RAFT_SOAK_FILE_SCHEDULES", "500")),
                  duration=5.0, directory=str(tmp_path))


def test_raft_schedule_replays_from_its_seed():
    assert random_schedule(12345) == random_schedule(12345)
    assert random_schedule(12345) != random_schedule(12346)


# -- the checker fails a broken core ------------------------------------------------------

def _first_violation(seeds):
    for seed in seeds:
        try:
            random_schedule(seed)
        except SafetyViolation as exc:
            return seed, exc
    return None


def test_raft_checker_catches_acks_before_fsync(monkeypatch):
    """A log that is never synced loses acknowledged entries on a crash."""
    monkeypatch.setattr(storage.MemoryStorage, "sync", lambda self: None)
    found = _first_violation(range(200))
    assert found is not None, "200 schedules did not notice a log that never syncs"


def test_raft_checker_catches_votes_for_stale_logs(monkeypatch):
    """Granting votes without the up-to-date check elects leaders missing commits."""
    handler = core.RaftCore._on_vote_request

    def careless(self, msg):
        handler(self, core.VoteRequest(msg.term, msg.src, 1 << 60, 1 << 60, msg.transfer))

    monkeypatch.setitem(core.RaftCore._handlers, core.VoteRequest, careless)
    found = _first_violation(range(200))
    assert found is not None, "200 schedules did not notice votes for stale logs"


# -- scenarios ----------------------------------------------------------------------------

def elect(cluster, timeout=5.0):
    waited = 0.0
    while waited < timeout:
        cluster.run(0.1)
        waited += 0.1
        leader = cluster.leader()
        if leader is not None and leader.app.index >= leader.core.term_start_index:
            return leader
    raise AssertionError("no leader after %.1fs" % timeout)


def commit(cluster, node_id, n, prefix=b"x"):
    indexes = [cluster.propose(node_id, prefix + b"%d" % i) for i in range(n)]
    assert None not in indexes
    cluster.run(0.5)
    return indexes[-1]


def test_raft_elects_one_leader_and_replicates():
    cluster = SimCluster(1, ["a", "b", "c"])
    leader = elect(cluster)
    last = commit(cluster, leader.id, 50)
    assert [n.app.index for n in cluster.alive()] == [last] * 3
    assert [n.app.values for n in cluster.alive()] == [50] * 3
    assert sum(n.core.role == LEADER for n in cluster.alive()) == 1


def test_raft_leader_crash_elects_a_new_one_that_keeps_every_commit():
    cluster = SimCluster(2, ["a", "b", "c"])
    first = elect(cluster)
    last = commit(cluster, first.id, 20)
    cluster.crash(first.id)
    second = elect(cluster)
    assert second.id != first.id and second.core.term > first.core.term
    assert second.app.index >= last
    last = commit(cluster, second.id, 5)
    cluster.restart(first.id)
    cluster.run(1.0)
    assert cluster.nodes[first.id].app.index == last
    cluster.checker.check_logs(cluster.storages)


def test_raft_divergent_follower_log_is_repaired():
    """An old leader's uncommitted entries are replaced by the new leader's."""
    cluster = SimCluster(3, ["a", "b", "c"])
    old = elect(cluster)
    commit(cluster, old.id, 3)
    others = [n for n in ["a", "b", "c"] if n != old.id]
    cluster.partition([old.id], others)
    for i in range(10):
        cluster.propose(old.id, b"lost%d" % i)  # never reach a quorum
    cluster.run(0.2)
    new = elect(cluster)
    assert new.id != old.id
    last = commit(cluster, new.id, 4, b"kept")
    cluster.heal()
    cluster.run(1.5)
    healed = cluster.nodes[old.id]
    assert healed.app.index >= last
    assert healed.storage.last_term == new.core.term
    assert b"lost0" not in [e.data for e in healed.storage.entries]
    cluster.checker.check_logs(cluster.storages)


def test_raft_restarted_follower_catches_up_from_a_snapshot():
    cluster = SimCluster(4, ["a", "b", "c"])
    leader = elect(cluster)
    follower = next(n for n in ["a", "b", "c"] if n != leader.id)
    cluster.crash(follower)
    commit(cluster, leader.id, 100)
    assert cluster.request(leader.id, "snapshot")
    assert leader.storage.snapshot_index > 100 and leader.storage.entries == []
    last = commit(cluster, leader.id, 5)
    cluster.restart(follower)
    cluster.run(1.0)
    node = cluster.nodes[follower]
    assert node.storage.snapshot_index == leader.storage.snapshot_index
    assert node.app.index == last and node.app.digest == leader.app.digest


def test_raft_membership_add_then_remove():
    cluster = SimCluster(5, ["a", "b", "c"], spares=["d"])
    leader = elect(cluster)
    commit(cluster, leader.id, 10)
    cluster.request(leader.id, "add_peer", "d")
    cluster.run(1.0)
    assert leader.core.peers == {"a", "b", "c", "d"}
    assert cluster.nodes["d"].app.index == leader.app.index
    victim = next(n for n in ["a", "b", "c"] if n != leader.id)
    assert cluster.request(leader.id, "remove_peer", victim)
    cluster.run(1.0)
    assert victim not in leader.core.peers
    assert cluster.nodes[victim].core.peers == leader.core.peers  # it learnt its removal
    cluster.crash(next(n for n in ["a", "b", "c", "d"] if n not in (leader.id, victim)))
    last = commit(cluster, leader.id, 3)  # 2 of the 3 remaining members suffice
    assert leader.app.index == last


def test_raft_learner_down_promoted_catches_up_when_back():
    """A learner that never answers (its server is down) made a voter by
    ``promote`` (a stream move whose target is down): the group of four
    commits with three, and the peer catches up once it is back."""
    cluster = SimCluster(13, ["a", "b", "c"], spares=["d"])
    leader = elect(cluster)
    commit(cluster, leader.id, 10)
    cluster.crash("d")
    cluster.request(leader.id, "add_peer", "d")
    cluster.run(0.5)
    assert "d" in leader.core.learners and "d" not in leader.core.peers
    cluster.request(leader.id, "promote", "d")
    cluster.run(0.5)
    assert leader.core.peers == {"a", "b", "c", "d"} and not leader.core.learners
    last = commit(cluster, leader.id, 5)  # 3 of 4 voters answer: a quorum
    assert leader.app.index == last
    cluster.restart("d")
    cluster.run(1.5)
    assert cluster.nodes["d"].app.index == leader.app.index
    cluster.checker.check_logs(cluster.storages)


def test_raft_leader_removing_itself_hands_over():
    cluster = SimCluster(6, ["a", "b", "c"])
    leader = elect(cluster)
    assert cluster.request(leader.id, "remove_peer", leader.id)
    cluster.run(2.0)
    assert leader.core.role != LEADER
    new = elect(cluster)
    assert new.id != leader.id and leader.id not in new.core.peers


def test_raft_leader_transfer_to_the_preferred_peer():
    cluster = SimCluster(7, ["a", "b", "c"])
    leader = elect(cluster)
    commit(cluster, leader.id, 10)
    preferred = max(n for n in ["a", "b", "c"] if n != leader.id)
    term = leader.core.term
    assert cluster.request(leader.id, "step_down", preferred) == preferred
    cluster.run(0.2)  # well under an election timeout
    new = cluster.leader()
    assert new is not None and new.id == preferred and new.core.term == term + 1
    assert cluster.propose(leader.id, b"to old") is None
    assert cluster.propose(preferred, b"to new") is not None


def test_raft_isolated_follower_does_not_depose_the_leader_on_return():
    """Pre-vote: a follower cut off for many election timeouts keeps its term,
    so when it returns the leader leads on (no election)."""
    cluster = SimCluster(8, ["a", "b", "c"])
    leader = elect(cluster)
    term = leader.core.term
    follower = next(n for n in ["a", "b", "c"] if n != leader.id)
    cluster.partition([follower], [n for n in ["a", "b", "c"] if n != follower])
    commit(cluster, leader.id, 5)
    cluster.run(3.0)  # about ten election timeouts
    assert cluster.nodes[follower].core.term == term
    cluster.heal()
    last = commit(cluster, leader.id, 5)
    assert leader.core.role == LEADER and leader.core.term == term
    assert cluster.nodes[follower].app.index == last


def test_raft_leader_commits_an_old_term_entry_only_with_one_of_its_own():
    """Raft 5.4.2 (the paper's figure 8): an entry of an earlier term on a
    majority is not committed by counting; it commits when an entry of the
    leader's own term does."""
    store = MemoryStorage()
    store.append([Entry(1, 1, PEER_STATE, encode_peers(["a", "b", "c"])),
                  Entry(2, 2, NORMAL, b"old")])
    store.save_state(3, None)
    leader = core.RaftCore("a", store, ["a", "b", "c"], core.RaftConfig.scaled(0.05))
    leader.tick(10.0)                                  # pre-vote for term 4
    leader.receive(VoteResponse(4, "b", True, True), 10.0)
    leader.receive(VoteResponse(4, "b", True), 10.0)   # elected in term 4
    assert leader.role == LEADER and leader.term == 4
    leader.ready()                                     # its term-4 entry (index 3) synced
    leader.receive(AppendResponse(4, "b", True, 2), 10.1)
    leader.ready()
    assert leader.commit_index == 0                    # index 2 is on a majority, not committed
    leader.receive(AppendResponse(4, "b", True, 3), 10.2)
    assert leader.ready().committed[-1].index == 3 and leader.commit_index == 3


def test_raft_observer_votes_but_never_leads():
    """An observer (Go's SetObserver: a leaf extending its hub's meta group)
    replicates and votes, so the others keep a quorum through it, but never
    campaigns: not after its leaders crash one by one, and not for a leader
    transfer naming it. A leader made an observer hands its lead on."""
    cluster = SimCluster(11, ["a", "b", "c"])
    cluster.nodes["c"].core.set_observer(True)
    for _ in range(3):
        leader = elect(cluster)
        assert leader.id != "c"
        last = commit(cluster, leader.id, 5)
        assert cluster.nodes["c"].app.index == last  # it replicates
        cluster.crash(leader.id)
        cluster.run(3.0)  # many election timeouts: only the other voter may win
        alive = cluster.leader()
        assert alive is None or alive.id != "c"
        cluster.restart(leader.id)
    leader = elect(cluster)
    term = leader.core.term
    assert cluster.request(leader.id, "step_down", "c") == "c"
    cluster.run(2.0)
    assert cluster.nodes["c"].core.role != LEADER and cluster.leader() is not None
    assert cluster.leader().core.term >= term
    # the leader itself turned observer: the other voter takes over
    leader = elect(cluster)
    other = ({"a", "b"} - {leader.id}).pop()
    leader.core.set_observer(True)
    cluster._flush(leader)
    cluster.run(1.0)
    assert cluster.leader() is not None and cluster.leader().id == other
    # out of observer mode, c can lead again
    cluster.nodes["c"].core.set_observer(False)
    cluster.crash(other)
    cluster.run(3.0)
    assert cluster.leader() is not None and cluster.leader().id == "c"
    cluster.checker.check_logs(cluster.storages)
