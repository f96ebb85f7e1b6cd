"""RAFT on real server processes over real routes: a replicated counter
(tests/raft/raftkv_plugin.py, loaded with --plugin) on 3 servers keeps every
acknowledged operation, exactly once and identical on every member, when its
leader is killed with -9 in the middle of a run of acknowledged writes, and the
killed server catches up after its restart."""

import asyncio
import json
import os
import time

import nats
import nats.errors

from pluggy_nats.raft.node import node_id_for

HERE = os.path.dirname(os.path.abspath(__file__))


def kv_cluster(make_fault_cluster, tmp_path, scale="0.1"):
    names = ["fc-%d" % i for i in range(3)]
    path = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "RAFTKV_PEERS": ",".join(names),
           "RAFTKV_DIR": str(tmp_path / "kv"), "RAFTKV_SCALE": scale}
    return make_fault_cluster(3, args=["--plugin", "raftkv_plugin"], env=env), names


async def state(nc, name):
    msg = await nc.request("kv.state.%s" % name, b"", timeout=2)
    return json.loads(msg.data)


async def settled_leader(nc, names, timeout=20):
    """The leader all members agree on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            views = [await state(nc, n) for n in names]
        except (asyncio.TimeoutError, nats.errors.Error):
            views = []
        leaders = {v["leader"] for v in views}
        if len(views) == len(names) and len(leaders) == 1 and None not in leaders:
            return views[0]["leader"], max(v["term"] for v in views)
        await asyncio.sleep(0.1)
    raise AssertionError("no agreed leader after %ds" % timeout)


async def add(nc, op, deadline):
    """Retry until acknowledged (a retry after a lost answer is deduplicated)."""
    while time.monotonic() < deadline:
        try:
            reply = await nc.request("kv.add", op.encode(), timeout=1.0)
            return json.loads(reply.data)
        except (asyncio.TimeoutError, nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.05)
    raise AssertionError("%s not acknowledged in time" % op)


def test_raft_counter_survives_leader_kill_9(make_fault_cluster, tmp_path, run):
    cluster, names = kv_cluster(make_fault_cluster, tmp_path)
    by_id = {node_id_for(n): i for i, n in enumerate(names)}

    async def body():
        ncs = [await nats.connect(s.url) for s in cluster.servers]
        leader, term = await settled_leader(ncs[0], names)
        victim = by_id[leader]
        client = ncs[(victim + 1) % 3]  # a connection that survives the kill
        acked = []
        deadline = time.monotonic() + 60
        started_kill = None
        for k in range(150):
            if k == 60:
                cluster.kill(victim)
                started_kill = time.monotonic()
            await add(client, "op-%d" % k, deadline)
            acked.append("op-%d" % k)
            if k == 60:
                print("\nfirst ack after kill -9 of the leader: %.2fs"
                      % (time.monotonic() - started_kill))
        survivors = [n for i, n in enumerate(names) if i != victim]
        new_leader, new_term = await settled_leader(client, survivors)
        assert new_leader != leader and new_term > term
        cluster.restart(victim)
        ncs[victim] = await nats.connect(cluster.servers[victim].url)

        async def converged():
            views = [await state(client, n) for n in names]
            return views if len({json.dumps(v["ops"]) for v in views}) == 1 \
                and len(views[0]["ops"]) >= len(acked) else None

        views = None
        for _ in range(200):
            try:
                views = await converged()
            except (asyncio.TimeoutError, nats.errors.Error):
                views = None
            if views:
                break
            await asyncio.sleep(0.1)
        assert views, "members did not converge after the restart"
        ops = views[0]["ops"]
        assert len(ops) == len(set(ops))          # exactly once
        assert set(acked) <= set(ops)             # every acknowledged op kept
        assert ops == sorted(ops, key=lambda op: int(op.split("-")[1]))  # in order
        assert views[victim]["snapshot_index"] > 0  # it restarted from, or received, a snapshot
        leader_view = next(v for v in views if v["state"] == "leader")
        assert sorted(leader_view["peers"]) == sorted(node_id_for(n) for n in names
                                                      if node_id_for(n) != leader_view["id"])
        assert all(p["last_replicated_index"] > 0 for p in leader_view["peers"].values())
        for nc in ncs:
            await nc.close()

    run(body(), timeout=110)
    for server in cluster.servers:
        assert "Traceback" not in server.logs(), server.logs()[-3000:]


async def converged(nc, names, acked, timeout=40):
    """Every member holds the same ops, every acknowledged one among them;
    on failure, says what each member last answered."""
    deadline = time.monotonic() + timeout
    last = {}
    while time.monotonic() < deadline:
        for n in names:
            try:
                last[n] = await state(nc, n)
            except (asyncio.TimeoutError, nats.errors.Error) as exc:
                last[n] = {"error": repr(exc)}
        views = [last[n] for n in names]
        if all("ops" in v for v in views) and len({json.dumps(v["ops"]) for v in views}) == 1 \
                and set(acked) <= set(views[0]["ops"]):
            ops = views[0]["ops"]
            assert len(ops) == len(set(ops))
            return views
        await asyncio.sleep(0.1)
    shown = ("error", "state", "term", "leader", "voted_for", "pterm", "pindex",
             "committed", "applied", "peers")
    raise AssertionError("members did not converge in %ds: %s" % (timeout, {
        n: {k: v.get(k) for k in shown} | {"ops": len(v.get("ops", ()))}
        for n, v in last.items()}))


def test_raft_counter_paused_then_partitioned_leader(make_fault_cluster, tmp_path, run):
    """SIGSTOP of the leader: the others elect a new one and keep acking; on
    SIGCONT the old leader follows with no divergent ops. Then the new
    leader's routes are blackholed: the majority side elects again, the isolated
    one cannot commit, and after the heal everyone agrees."""
    cluster, names = kv_cluster(make_fault_cluster, tmp_path)
    by_id = {node_id_for(n): i for i, n in enumerate(names)}

    async def body():
        ncs = [await nats.connect(s.url) for s in cluster.servers]
        deadline = time.monotonic() + 80
        acked = []

        async def write(client, n):
            for _ in range(n):
                op = "op-%d" % len(acked)
                await add(client, op, deadline)
                acked.append(op)

        leader, term = await settled_leader(ncs[0], names)
        first = by_id[leader]
        client = ncs[(first + 1) % 3]
        await write(client, 20)
        cluster.pause(first)
        await write(client, 20)
        second, second_term = await settled_leader(
            client, [n for i, n in enumerate(names) if i != first])
        assert second != leader and second_term > term
        cluster.resume(first)
        views = await converged(client, names, acked)
        assert views[first]["state"] == "follower" and views[first]["term"] >= second_term

        isolated = by_id[second]
        majority = [i for i in range(3) if i != isolated]
        client = ncs[majority[0]]
        cluster.partition([isolated], majority, blackhole=True)  # open but silent routes
        await write(client, 20)
        third, third_term = await settled_leader(client, [names[i] for i in majority])
        assert third != second and third_term > second_term
        cluster.heal_all()
        await converged(client, names, acked)
        for nc in ncs:
            await nc.close()

    run(body(), timeout=110)
    for server in cluster.servers:
        assert "Traceback" not in server.logs(), server.logs()[-3000:]
