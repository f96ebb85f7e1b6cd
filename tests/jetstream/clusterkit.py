"""Helpers for the clustered JetStream tests: a 3-server cluster with fast
RAFT timers (``PLUGGY_NATS_RAFT_SCALE``), waits that poll under load, and
each server's own view of a stream."""

import asyncio
import json
import time
import urllib.request

import nats
import nats.errors
import nats.js.errors

SCALE = "0.1"   # Go's timers x 0.1: elections in 0.4-0.9 s


def js_cluster(make_fault_cluster, n=3, name="jsc", scale=SCALE, jetstream=True, env=None,
               **kw):
    """``jetstream``: True, or extra lines for the servers' ``jetstream`` block;
    ``kw``: the fault cluster's ``conf``/``js_conf``; ``env`` is added."""
    return make_fault_cluster(n, name=name, jetstream=jetstream,
                              env=dict({"PLUGGY_NATS_RAFT_SCALE": scale}, **(env or {})), **kw)


def url(cluster, i):
    return "nats://127.0.0.1:%d" % cluster.ports[i]


def monitor(cluster, i, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (cluster.http_ports[i], path),
                                timeout=5) as resp:
        return json.loads(resp.read())


async def connect(cluster, i=0, **kw):
    servers = [url(cluster, j) for j in [i] + [j for j in range(cluster.n) if j != i]]
    # dont_randomize: the client is on server i (tests pick whom to fault)
    return await nats.connect(servers=servers, max_reconnect_attempts=-1,
                              reconnect_time_wait=0.1, dont_randomize=True, **kw)


async def retry(fn, timeout=30.0, what="request"):
    """Call ``fn`` until it stops failing with a cluster-transient error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await fn()
        except (asyncio.TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            if time.monotonic() > deadline:
                raise AssertionError("%s still failing after %ss: %r" % (what, timeout, exc))
            await asyncio.sleep(0.2)


async def add_stream(js, timeout=40.0, **cfg):
    """Create a stream once the meta group has a leader (first election)."""
    return await retry(lambda: js.add_stream(**cfg), timeout, "stream create")


async def local_info(nc, cluster, i, stream):
    """Server ``i``'s own copy of ``stream`` (its /jsz stream detail)."""
    data = monitor(cluster, i, "/jsz?streams=true")
    for acc in data.get("account_details", []):
        for detail in acc.get("stream_detail", []):
            if detail["name"] == stream:
                return detail
    return None


def read_replica(cluster, i, stream, account="$G"):
    """Every message server ``i`` stored for ``stream``, as (seq, subject,
    data), read from its store directory (stop or kill the server first)."""
    import os

    from pluggy_nats_plugins.jetstream.store import StoreConfig, open_stream_store

    directory = os.path.join(cluster.store_dir(i), "jetstream", account, "rstreams", stream)
    store = open_stream_store("file", directory, StoreConfig(name=stream))
    try:
        out, seq = [], 1
        while True:
            msg = store.load_next(None, seq)
            if msg is None:
                return out
            out.append((msg.seq, msg.subject, bytes(msg.data)))
            seq = msg.seq + 1
    finally:
        store.close()


async def wait_for(cond, timeout=30.0, what="condition", interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await cond() if asyncio.iscoroutinefunction(cond) else cond()
        except Exception as exc:  # polled: a server may be restarting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(interval)
    raise AssertionError("%s not reached in %ss (last: %r)" % (what, timeout, last))


def leader_index(cluster, stream):
    """Index of the server that leads ``stream`` (from the servers' own views)."""
    for i in range(cluster.n):
        try:
            data = monitor(cluster, i, "/jsz?streams=true")
        except OSError:
            continue
        for acc in data.get("account_details", []):
            for d in acc.get("stream_detail", []):
                if d["name"] == stream and d["cluster"].get("leader") == cluster.names[i]:
                    return i
    return None
