"""A deterministic in-memory network for RAFT cores: seeded message loss,
delay (and with it reordering), duplication, partitions, and crash/restart of
nodes (a crash loses what the node had not synced). Time is simulated, so a
run of seconds of cluster time takes milliseconds and replays exactly from its
seed.

:class:`SimCluster` drives :class:`~.core.RaftCore` objects exactly as the NATS
driver does (feed, ``ready()``, send, apply), with a small replicated
state machine (:class:`ChainApp`) on every node and a :class:`Checker` that
asserts the Raft safety properties as the run goes:

* election safety: at most one leader per term;
* leader completeness: a new leader holds every entry committed before;
* state-machine safety: every node applies the same entry at each index, in
  order, and a snapshot equals the state it stands for;
* log matching (:meth:`Checker.check_logs`): two logs with the same term at
  an index agree on every entry up to it.
"""

import hashlib
import heapq
import itertools
import os
import random
import struct

from .core import LEADER, ChangeInProgress, NotLeader, RaftConfig, RaftCore
from .messages import NORMAL, decode, encode
from .storage import FileStorage, MemoryStorage

_APP = struct.Struct("<Q8s")


class SafetyViolation(AssertionError):
    pass


class ChainApp:
    """The state is (index applied, hash chain of every entry applied)."""

    def __init__(self):
        self.index = 0
        self.digest = b"\0" * 8
        self.values = 0  # NORMAL entries applied

    def apply(self, entry):
        if entry.index != self.index + 1:
            raise SafetyViolation("applied %d after %d" % (entry.index, self.index))
        h = hashlib.blake2b(self.digest, digest_size=8)
        h.update(bytes([entry.type]))
        h.update(entry.data)
        self.digest = h.digest()
        self.index = entry.index
        if entry.type == NORMAL:
            self.values += 1

    def snapshot(self):
        return _APP.pack(self.index, self.digest)

    def restore(self, data):
        self.index, self.digest = _APP.unpack(data)


class Checker:
    def __init__(self):
        self.leaders = {}     # term -> node id
        self.committed = {}   # index -> (term, type, data)
        self.digests = {}     # index -> chain digest after applying it
        self.elections = 0

    def leader_elected(self, node):
        core = node.core
        other = self.leaders.setdefault(core.term, core.id)
        if other != core.id:
            raise SafetyViolation("two leaders in term %d: %s and %s" % (core.term, other, core.id))
        self.elections += 1
        storage = core.storage
        for index, (term, _, _) in self.committed.items():
            if index > storage.snapshot_index and storage.term_at(index) != term:
                raise SafetyViolation("leader %s of term %d lacks committed entry %d"
                                      % (core.id, core.term, index))

    def applied(self, node_id, entry, digest):
        seen = self.committed.setdefault(entry.index, (entry.term, entry.type, entry.data))
        if seen != (entry.term, entry.type, entry.data):
            raise SafetyViolation("%s applied %r at %d, others applied %r"
                                  % (node_id, entry, entry.index, seen))
        known = self.digests.setdefault(entry.index, digest)
        if known != digest:
            raise SafetyViolation("%s state differs after %d" % (node_id, entry.index))

    def installed(self, node_id, index, digest):
        known = self.digests.get(index)
        if known is not None and known != digest:
            raise SafetyViolation("%s installed a snapshot at %d that differs" % (node_id, index))

    def check_logs(self, storages):
        """Log matching over every pair of logs."""
        logs = list(storages.items())
        for (a, sa), (b, sb) in itertools.combinations(logs, 2):
            lo = max(sa.first_index, sb.first_index)
            hi = min(sa.last_index, sb.last_index)
            agreed = None
            for i in range(hi, lo - 1, -1):
                if sa.term_at(i) == sb.term_at(i):
                    agreed = i
                    break
            if agreed is None:
                continue
            for i in range(lo, agreed + 1):
                if sa.entry(i) != sb.entry(i):
                    raise SafetyViolation("logs of %s and %s differ at %d below matching %d"
                                          % (a, b, i, agreed))


class CrashableFileStorage(FileStorage):
    """A :class:`FileStorage` (without fsync) whose :meth:`crash` keeps a random
    part of what was written after the last sync, as a torn write-back would,
    then recovers from the files."""

    def __init__(self, directory, rng):
        self.rng = rng
        super().__init__(directory, segment_bytes=2048, fsync=False)
        self._mark()

    def _mark(self):
        self._synced_at = (self._segments[-1] if self._segments else None, self._file_size)

    def sync(self):
        super().sync()
        self._mark()

    def _write_truncate(self, index):
        super()._write_truncate(index)
        self._mark()  # truncation syncs at once

    def _write_compact(self, kept):
        super()._write_compact(kept)
        self.sync()

    torn_bytes = 0  # written but not synced, lost in crashes so far

    def crash(self):
        torn = self.torn_bytes
        if self._file is not None:
            self._file.flush()
            segment, synced = self._synced_at
            if segment != self._segments[-1]:
                synced = 0
            keep = self.rng.randint(synced, self._file_size)
            self._file.truncate(keep)
            torn += self._file_size - keep
        self.close()
        recovered = CrashableFileStorage(self.dir, self.rng)
        recovered.torn_bytes = torn
        return recovered


class SimNode:
    def __init__(self, cluster, node_id, storage, peers):
        self.id = node_id
        self.cluster = cluster
        self.storage = storage
        self.app = cluster.app_factory()
        seed = cluster.rng.getrandbits(64)
        self.core = RaftCore(node_id, storage, peers, cluster.config, random.Random(seed),
                             cluster.now)
        self.was_leader_term = None


class SimCluster:
    """``peers`` start as the group; ``spares`` run with no group until added."""

    def __init__(self, seed, peers, spares=(), config=None, delay=(0.001, 0.01), drop=0.0,
                 duplicate=0.0, wire=True, directory=None, app_factory=ChainApp):
        self.seed = seed
        self.app_factory = app_factory  # a ChainApp (sub)class: what each node runs
        self.rng = random.Random(seed)
        self.config = config or RaftConfig.scaled(0.05)
        self.delay = delay
        self.drop = drop
        self.duplicate = duplicate
        self.wire = wire
        self.now = 0.0
        self.queue = []
        self._seq = itertools.count()
        self.checker = Checker()
        self.initial = tuple(peers)
        self.storages = {}
        self.nodes = {}
        self.part = {}   # node -> partition label; different labels do not talk
        self.delivered = 0
        for node_id in list(peers) + list(spares):
            # With a directory, logs are files (torn tails on crash); else memory.
            self.storages[node_id] = MemoryStorage() if directory is None else \
                CrashableFileStorage(os.path.join(directory, node_id), self.rng)
            self._start(node_id, self.initial if node_id in peers else ())

    # -- faults ---------------------------------------------------------------------------

    def _start(self, node_id, peers=None):
        node = SimNode(self, node_id, self.storages[node_id],
                       self.initial if peers is None else peers)
        self.nodes[node_id] = node
        self._flush(node)

    def crash(self, node_id, mid_write=False):
        """kill -9 and power loss: unsynced writes are gone. ``mid_write``:
        first hand the node its next message (or, on a leader, a proposal)
        and crash before it syncs."""
        node = self.nodes.get(node_id)
        if node is not None:
            if mid_write:
                pending = [item for item in self.queue if item[2] == node_id]
                if pending:
                    item = min(pending)
                    self.queue.remove(item)
                    heapq.heapify(self.queue)
                    msg = decode(item[3]) if self.wire else item[3]
                    node.core.receive(msg, self.now)
                elif node.core.role == LEADER and node.core.transfer_to is None:
                    node.core.propose(b"torn")
            self.nodes[node_id] = None
            self.storages[node_id] = self.storages[node_id].crash()

    def restart(self, node_id):
        if self.nodes.get(node_id) is None:
            peers = self.initial if node_id in self.initial else ()
            self._start(node_id, peers)

    def partition(self, *groups):
        """Nodes in different groups cannot talk; nodes in no group talk to all."""
        self.part = {n: k for k, group in enumerate(groups) for n in group}

    def heal(self):
        self.part = {}

    def _linked(self, a, b):
        pa, pb = self.part.get(a), self.part.get(b)
        return pa is None or pb is None or pa == pb

    # -- running --------------------------------------------------------------------------

    def alive(self):
        return [n for n in self.nodes.values() if n is not None]

    def leader(self):
        """The leader of the highest term among live nodes, or None."""
        leaders = [n for n in self.alive() if n.core.role == LEADER]
        return max(leaders, key=lambda n: n.core.term) if leaders else None

    def run(self, duration):
        end = self.now + duration
        while True:
            deadline, node = end, None
            for n in self.alive():
                d = n.core.next_deadline()
                if d < deadline:
                    deadline, node = d, n
            if self.queue and self.queue[0][0] <= deadline:
                when, _, dst, msg = heapq.heappop(self.queue)
                self.now = when
                target = self.nodes.get(dst)
                if target is None:
                    continue
                if self.wire:
                    msg = decode(msg)
                if not self._linked(msg.src, dst):
                    continue
                self.delivered += 1
                target.core.receive(msg, when)
                self._flush(target)
            elif node is not None:
                self.now = max(self.now, deadline)
                node.core.tick(self.now)
                self._flush(node)
            else:
                self.now = end
                return

    def _flush(self, node):
        core = node.core
        ready = core.ready()
        if ready.snapshot is not None:
            node.app.restore(ready.snapshot.data)
            self.checker.installed(node.id, node.app.index, node.app.digest)
        for entry in ready.committed:
            node.app.apply(entry)
            self.checker.applied(node.id, entry, node.app.digest)
        if core.role == LEADER and node.was_leader_term != core.term:
            node.was_leader_term = core.term
            self.checker.leader_elected(node)
        rng = self.rng
        for dst, msg in ready.messages:
            if not self._linked(node.id, dst) or rng.random() < self.drop:
                continue
            payload = encode(msg) if self.wire else msg
            copies = 2 if rng.random() < self.duplicate else 1
            for _ in range(copies):
                lo, hi = self.delay
                when = self.now + lo + rng.random() * (hi - lo)
                heapq.heappush(self.queue, (when, next(self._seq), dst, payload))

    # -- client requests ---------------------------------------------------------------

    def propose(self, node_id, data):
        node = self.nodes.get(node_id)
        if node is None:
            return None
        try:
            index = node.core.propose(data)
        except NotLeader:
            return None
        self._flush(node)
        return index

    def request(self, node_id, op, *args):
        """Call a core method (``step_down``, ``add_peer``, ``remove_peer``,
        ``snapshot``) on a live node; False when it refuses."""
        node = self.nodes.get(node_id)
        if node is None:
            return False
        try:
            if op == "snapshot":
                result = node.core.snapshot(node.app.snapshot())
            else:
                result = getattr(node.core, op)(*args)
        except (NotLeader, ChangeInProgress, ValueError):
            return False
        self._flush(node)
        return result


def random_schedule(seed, duration=2.0, step=0.05, settle=10.0, directory=None):
    """Run one seeded random fault schedule, then heal everything and require
    the group to commit a last entry on every member. Raises
    :class:`SafetyViolation` (or AssertionError) on any broken property;
    returns a summary dict."""
    rng = random.Random(seed * 7919 + 17)
    n = rng.choice((3, 3, 5))
    ids = ["n%d" % i for i in range(n)]
    spares = ["s0", "s1"]
    cluster = SimCluster(seed, ids, spares, drop=rng.choice((0.0, 0.01, 0.05, 0.2)),
                         duplicate=rng.choice((0.0, 0.02)),
                         delay=(0.001, rng.choice((0.005, 0.02, 0.1))), wire=seed % 4 == 0,
                         directory=directory)
    everyone = ids + spares
    proposed = 0
    faults = 0
    t = 0.0
    while t < duration:
        cluster.run(step)
        t += step
        r = rng.random()
        leader = cluster.leader()
        if r < 0.45:
            target = leader.id if leader and rng.random() < 0.9 else rng.choice(everyone)
            for _ in range(rng.randint(1, 5)):
                proposed += cluster.propose(target, b"v%d" % proposed) is not None
            continue
        faults += 1
        if r < 0.52:
            cluster.crash(rng.choice(everyone), mid_write=rng.random() < 0.5)
        elif r < 0.62:
            down = [i for i in everyone if cluster.nodes.get(i) is None]
            if down:
                cluster.restart(rng.choice(down))
        elif r < 0.67:
            shuffled = everyone[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(shuffled) - 1)
            cluster.partition(shuffled[:cut], shuffled[cut:])
        elif r < 0.74:
            cluster.heal()
        elif r < 0.80:
            cluster.request(rng.choice(everyone), "snapshot")
        elif r < 0.84 and leader:
            others = sorted(leader.core.peers - {leader.id})
            pick = rng.choice(others) if others and rng.random() < 0.5 else None
            cluster.request(leader.id, "step_down", pick)
        elif r < 0.88 and leader:
            cluster.request(leader.id, "add_peer", rng.choice(everyone))
        elif r < 0.91 and leader and len(leader.core.peers) > 2:
            cluster.request(leader.id, "remove_peer", rng.choice(sorted(leader.core.peers)))
        elif r < 0.95:
            cluster.drop = rng.choice((0.0, 0.01, 0.05, 0.2, 0.5))
        else:
            cluster.delay = (0.001, rng.choice((0.005, 0.02, 0.1, 0.3)))
    # Heal: every node back, no loss; the group must make progress again.
    cluster.heal()
    cluster.drop = cluster.duplicate = 0.0
    cluster.delay = (0.001, 0.01)
    for node_id in everyone:
        cluster.restart(node_id)
    waited = 0.0
    while True:
        cluster.run(0.25)
        waited += 0.25
        leader = cluster.leader()
        index = cluster.propose(leader.id, b"final") if leader else None
        if index is not None:
            cluster.run(1.0)
            members = [cluster.nodes[p] for p in leader.core.peers]
            if all(m.app.index >= index for m in members):
                break
        if waited > settle:
            raise AssertionError("seed %d: no progress %.1fs after healing (leader %s)"
                                 % (seed, settle, leader and leader.id))
    for m in members:
        if cluster.checker.digests[m.app.index] != m.app.digest:
            raise SafetyViolation("seed %d: %s differs at %d" % (seed, m.id, m.app.index))
    cluster.checker.check_logs(cluster.storages)
    for store in cluster.storages.values():
        store.close()
    torn = sum(getattr(store, "torn_bytes", 0) for store in cluster.storages.values())
    return {"seed": seed, "nodes": n, "proposed": proposed, "faults": faults, "torn_bytes": torn,
            "committed": len(cluster.checker.committed), "elections": cluster.checker.elections,
            "messages": cluster.delivered}
