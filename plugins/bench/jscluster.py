"""Clustered JetStream beside Go: the same 3-server cluster (the fault
harness's, routes through its proxies, Go's timers), ours then Go's.

* R3 async publish: ``--msgs`` messages with 256 PubAcks in flight, msgs/s,
  and msgs per CPU-second of the three servers together (less sensitive to
  what else the machine runs than the wall clock);
* failover: ``--kills`` times, kill -9 the stream leader and time until the
  next publish (sent every 0.1 s from a client on another server) is
  acknowledged; the killed server is restarted and caught up before the next.

    python -m pluggy_nats_plugins.bench.jscluster --msgs 50000 --kills 3
    python -m pluggy_nats_plugins.bench.jscluster --msgs 20000 --kills 0 --sync-always
"""

import argparse
import json
import statistics
import tempfile
import time

from pluggy_nats.testing.faults import FaultCluster
from pluggy_nats.testing.launch import go_nats_server_command

from .compare import tree_cpu
from .jetstream import Conn, publish_acked
from .proto import ProtocolError, payload

STREAM = "BENCHR3"
SUBJECT = b"bench.r3"


def _conns(cluster):
    out = []
    for i in range(cluster.n):
        conn = Conn("nats://127.0.0.1:%d" % cluster.ports[i], 10.0,
                    inbox=b"_INBOX.r3bench%d" % i)
        conn.send(b"SUB %s.* 1\r\n" % conn.inbox)
        out.append(conn)
    return out


def _request(conn, subject, body, timeout):
    try:
        return conn.request(subject, body, time.monotonic() + timeout)
    except (ProtocolError, OSError):
        return None


def _leader(conns, cluster, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for conn in conns:
            info = _request(conn, "$JS.API.STREAM.INFO." + STREAM, b"", 2.0)
            leader = ((info or {}).get("cluster") or {}).get("leader")
            if leader in cluster.names:
                return cluster.names.index(leader)
        time.sleep(0.2)
    raise ProtocolError("no stream leader")


def _acked_once(conn, timeout):
    """One publish; True if acknowledged within ``timeout``."""
    data = b"failover"
    reply = conn.inbox + b".fo"
    conn.send(b"PUB %s %s %d\r\n%s\r\n" % (SUBJECT, reply, len(data), data))
    deadline = time.monotonic() + timeout
    conn.sock.settimeout(timeout)
    try:
        while time.monotonic() < deadline:
            for subj, _, _, msg in conn.frames():
                if subj == reply and b'"seq"' in msg:
                    return True
    except (OSError, ProtocolError):
        return False
    finally:
        conn.sock.settimeout(10.0)
    return False


def run(go, msgs, kills, workdir, sync_always=False):
    command = go_nats_server_command() if go else None
    cluster = FaultCluster(workdir, 3, "gor3" if go else "pyr3",
                           jetstream="sync_interval: always" if sync_always else True,
                           go=(0, 1, 2) if go else (), go_command=command)
    cluster.start(30)
    try:
        conns = _conns(cluster)
        deadline = time.monotonic() + 60
        while True:
            resp = _request(conns[0], "$JS.API.STREAM.CREATE." + STREAM, {
                "name": STREAM, "subjects": [SUBJECT.decode()], "num_replicas": 3}, 5.0)
            if resp and "error" not in resp:
                break
            if time.monotonic() > deadline:
                raise ProtocolError("stream create: %s" % resp)
            time.sleep(0.5)
        leader = _leader(conns, cluster)
        client = conns[(leader + 1) % 3]  # publishes cross a route to the leader
        data = payload(128)
        frame = b"PUB %s %s.ack %d\r\n%s\r\n" % (SUBJECT, client.inbox, len(data), data)
        pids = [server.proc.pid for server in cluster.servers]
        cpu0 = sum(tree_cpu(pid) for pid in pids)
        t0 = time.monotonic()
        errors = publish_acked(client, frame, msgs, 256, 120)
        rate = msgs / (time.monotonic() - t0)
        cpu = sum(tree_cpu(pid) for pid in pids) - cpu0
        failovers = []
        for _ in range(kills):
            leader = _leader(conns, cluster)
            other = next(i for i in range(3) if i != leader)
            cluster.kill(leader)
            t0 = time.monotonic()
            while not _acked_once(conns[other], 0.25):
                if time.monotonic() - t0 > 60:
                    raise ProtocolError("no leader 60 s after the kill")
            failovers.append(time.monotonic() - t0)
            cluster.restart(leader, 30)
            conns[leader] = _conns(cluster)[leader]
            time.sleep(3)  # the restarted server catches up
        return {"impl": "go" if go else "ours", "r3_pub_msgs_per_s": rate,
                "r3_pub_msgs_per_cpu_s": msgs / cpu if cpu > 0 else None,
                "pub_errors": errors, "failover_s": failovers}
    finally:
        cluster.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--msgs", type=int, default=50_000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--sync-always", action="store_true",
                    help="jetstream { sync_interval: always } on every server")
    o = ap.parse_args(argv)
    results = {}
    for go in (False, True):
        with tempfile.TemporaryDirectory(prefix="jscluster-bench-") as d:
            results["go" if go else "ours"] = res = run(go, o.msgs, o.kills, d, o.sync_always)
            print(json.dumps(res), flush=True)
    ours, go = results["ours"], results["go"]
    print("R3 async publish: ours %.0f msgs/s, Go %.0f msgs/s, ratio %.2f"
          % (ours["r3_pub_msgs_per_s"], go["r3_pub_msgs_per_s"],
             ours["r3_pub_msgs_per_s"] / go["r3_pub_msgs_per_s"]))
    if ours["r3_pub_msgs_per_cpu_s"] and go["r3_pub_msgs_per_cpu_s"]:
        print("R3 async publish per server CPU-second (3 servers): ours %.0f, Go %.0f, "
              "ratio %.2f" % (ours["r3_pub_msgs_per_cpu_s"], go["r3_pub_msgs_per_cpu_s"],
                              ours["r3_pub_msgs_per_cpu_s"] / go["r3_pub_msgs_per_cpu_s"]))
    if not ours["failover_s"] or not go["failover_s"]:
        return
    mo, mg = statistics.median(ours["failover_s"]), statistics.median(go["failover_s"])
    print("failover (kill -9 of the stream leader to the next ack), median: ours %.2f s, "
          "Go %.2f s, ratio %.2f" % (mo, mg, mo / mg))


if __name__ == "__main__":
    main()
