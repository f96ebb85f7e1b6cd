"""``pluggy-nats bench``: the counting reader, and small runs of the scenarios
against a real server (ours), checking the JSON report is exact and sane."""

import json
import os
import random
import subprocess
import sys

import pytest
from pluggy_nats_plugins.bench.proto import TAG, MsgCounter, TaggedBatches, xor_lanes

# ----------------------------------------------------------------------------- counting reader


def _msg(sid, data, subject=b"bench.s", reply=None):
    head = b"MSG %s %d" % (subject, sid) + (b" " + reply if reply else b"")
    return head + b" %d\r\n" % len(data) + data + b"\r\n"


def _feed_in_pieces(counter, stream, rng, max_piece=97):
    """Feed ``stream`` split at random points, like recv() would deliver it."""
    buf = bytearray(len(stream) + 16)
    start = end = 0
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, max_piece)
        chunk = stream[pos:pos + n]
        buf[end:end + len(chunk)] = chunk
        end += len(chunk)
        pos += n
        start = counter.feed(buf, start, end)
    return start, end


@pytest.mark.parametrize("verify", [False, True])
def test_counter_exact_with_random_splits(verify):
    rng = random.Random(7)
    tags_xor = 0
    parts = []
    expected = 0
    for i in range(3000):
        if i % 500 == 0:
            parts.append(b"PING\r\n")
        if i % 700 == 3:
            parts.append(_msg(1, b""))  # warm-up probe
        if i % 900 == 5:
            parts.append(_msg(1, b"x" * 5))  # another size: not counted
        # payloads full of things that look like frames: they must not be counted
        body = bytearray(bytes(TAG) + b"\r\nMSG 1 ")
        tag = rng.getrandbits(64) if verify else 12345  # equal frames: the fast path
        body[:TAG] = tag.to_bytes(TAG, "little")
        tags_xor ^= tag
        parts.append(_msg(1, bytes(body)))
        expected += 1
    stream = b"".join(parts)
    counter = MsgCounter(16, verify=verify)
    for max_piece in (7, 4096):
        counter = MsgCounter(16, verify=verify)
        start, end = _feed_in_pieces(counter, stream, random.Random(max_piece), max_piece)
        assert start == end == len(stream)
        assert counter.count == expected
        assert counter.probes == 5
        assert counter.other == 4
        assert counter.pings == 6
        if verify:
            assert counter.tagxor == tags_xor


def test_counter_detects_a_changed_payload_as_other_frame():
    frames = [_msg(1, b"a" * 16) for _ in range(100)]
    frames[60] = _msg(2, b"a" * 16)  # another sid: same size, still counted (slow path)
    frames[61] = _msg(1, b"a" * 17)  # another size
    stream = b"".join(frames)
    counter = MsgCounter(16)
    buf = bytearray(stream)
    assert counter.feed(buf, 0, len(buf)) == len(buf)
    assert (counter.count, counter.other) == (99, 1)


def test_tagged_batches_xor_matches_what_a_counter_sees():
    tb = TaggedBatches(b"bench.s", 16, 50, verify=True)
    sent_xor = 0
    msgs = []
    for k in (50, 50, 13):
        data, x = tb.make(k)
        sent_xor ^= x
        # the server turns each PUB into a MSG with the same payload
        flen = tb.flen
        for i in range(k):
            frame = bytes(data[i * flen:(i + 1) * flen])
            payload = frame[frame.index(b"\r\n") + 2:-2]
            msgs.append(_msg(3, payload))
    counter = MsgCounter(16, verify=True)
    buf = bytearray(b"".join(msgs))
    assert counter.feed(buf, 0, len(buf)) == len(buf)
    assert counter.count == 113
    assert counter.tagxor == sent_xor != 0


def test_rotating_subjects_counted_on_the_fast_path_with_verification():
    """``--subjects N``: frames differ in the subject index, which the counter
    masks like the tags; a frame of another subject prefix is not counted."""
    tb = TaggedBatches(b"bench.s", 16, 37, verify=True, subjects=12)
    data, sent_xor = tb.make(37)
    flen = tb.flen
    msgs = []
    for i in range(37):
        frame = bytes(data[i * flen:(i + 1) * flen])
        subject = frame.split()[1]
        assert subject == b"bench.s.%02d" % (i % 12)
        msgs.append(_msg(4, frame[frame.index(b"\r\n") + 2:-2], subject=subject))
    msgs.insert(20, _msg(4, b"y" * 16, subject=b"other.s.05"))  # same shape, wrong prefix
    counter = MsgCounter(16, verify=True, vary=(len(b"MSG bench.s."), 2))
    buf = bytearray(b"".join(msgs))
    assert counter.feed(buf, 0, len(buf)) == len(buf)
    assert counter.count == 38  # the counter counts sizes, subjects are the server's job...
    assert counter.tagxor != sent_xor  # ...but the stray frame's bytes break the tag XOR
    counter = MsgCounter(16, verify=True, vary=(len(b"MSG bench.s."), 2))
    buf = bytearray(b"".join(msgs[:20] + msgs[21:]))
    assert counter.feed(buf, 0, len(buf)) == len(buf)
    assert (counter.count, counter.tagxor) == (37, sent_xor)


def test_xor_lanes():
    rng = random.Random(1)
    for n in (1, 2, 3, 7, 64, 1000):
        lanes = [rng.getrandbits(64) for _ in range(n)]
        value = int.from_bytes(b"".join(v.to_bytes(8, "little") for v in lanes), "little")
        want = 0
        for v in lanes:
            want ^= v
        assert xor_lanes(value, n) == want


# ----------------------------------------------------------------------------- the CLI


def bench(*args, timeout=60):
    """Run ``pluggy-nats bench ARGS --json -``; return (exit code, parsed JSON)."""
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", *args, "--json", "-", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_bench_pub(make_server):
    server = make_server()
    rc, res = bench("pub", "--url", server.url, "--msgs", "20000", "--size", "16")
    assert rc == 0, res
    assert res["ok"] and res["error"] is None
    assert res["sent"] == 20000
    assert res["msgs_per_s"] > 0 and res["secs"] > 0


def test_bench_pubsub_counts_exactly(make_server):
    server = make_server()
    rc, res = bench("pubsub", "--url", server.url, "--msgs", "30001", "--size", "100",
                    "--verify")
    assert rc == 0, res
    assert res["ok"], res
    assert res["sent"] == res["delivered"] == res["expected"] == 30001
    assert res.get("lost") is None and res.get("duplicates") is None
    assert res["verified"] is True
    assert res["msgs_per_s"] > 0 and res["pub_per_s"] > 0


def test_bench_pubsub_over_websocket_counts_exactly(make_server):
    """The generator speaks WebSocket for ws:// URLs (the ``ws`` compare case)."""
    server = make_server(config="websocket { listen: 127.0.0.1:-1, no_tls: true }\n")
    rc, res = bench("pubsub", "--url", server.ws_url, "--msgs", "20001", "--size", "700",
                    "--verify")
    assert rc == 0, res
    assert res["ok"], res
    assert res["sent"] == res["delivered"] == 20001 and res["verified"] is True


def test_bench_fanout_and_queue(make_server):
    server = make_server()
    rc, res = bench("fanout", "--url", server.url, "--msgs", "5000", "--subs", "3")
    assert rc == 0, res
    assert res["per_sub"] == [5000, 5000, 5000] and res["delivered"] == 15000
    rc, res = bench("queue", "--url", server.url, "--msgs", "8000", "--pubs", "2", "--subs", "3")
    assert rc == 0, res
    assert res["sent"] == res["delivered"] == 8000
    assert sum(res["per_sub"]) == 8000 and res["verified"] is True


def test_bench_rotating_subjects_exactly_once(make_server):
    server = make_server()
    rc, res = bench("fanout", "--url", server.url, "--msgs", "6000", "--subs", "3",
                    "--subjects", "10", "--verify")
    assert rc == 0, res
    assert res["subjects"] == 10 and res["verified"] is True
    assert res["per_sub"] == [6000, 6000, 6000]


def test_bench_literal_subjects_exactly_once(make_server):
    """``--literal``: each subscriber holds one subscription per subject
    (real traffic: neighbouring messages reach different subscriptions);
    every message arrives once, verified, at every subscriber."""
    server = make_server()
    rc, res = bench("fanout", "--url", server.url, "--msgs", "6000", "--subs", "2",
                    "--subjects", "50", "--literal", "--verify")
    assert rc == 0, res
    assert res["subjects"] == 50 and res["verified"] is True
    assert res["per_sub"] == [6000, 6000]


def test_bench_req_with_many_requesters(make_server):
    """The reqmany case: several requesters at once, each with its own inbox."""
    server = make_server()
    rc, res = bench("req", "--url", server.url, "--msgs", "400", "--pubs", "4")
    assert rc == 0, res
    assert res["sent"] == 400 and res["pubs"] == 4
    assert 0 < res["lat_us"]["p50"]


def test_bench_req(make_server):
    server = make_server()
    rc, res = bench("req", "--url", server.url, "--msgs", "300")
    assert rc == 0, res
    assert res["sent"] == 300
    lat = res["lat_us"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]


def test_bench_conns_measures_server_rss(make_server):
    server = make_server()
    rc, res = bench("conns", "--url", server.url, "--conns", "200", "--pid", str(server.pid))
    assert rc == 0, res
    assert res["conns"] == 200 and res["failed"] == 0
    assert res["rss_after"] >= res["rss_before"] > 0
    assert res["kb_per_conn"] is not None


def test_bench_reports_failure_when_nothing_is_delivered(make_server):
    """A subscriber on a server the publisher's messages never reach: the run
    fails (warm-up never sees a probe) instead of reporting a rate."""
    a, b = make_server(), make_server()
    rc, res = bench("cluster", "--url", a.url, "--sub-url", b.url, "--msgs", "1000",
                    "--timeout", "1")
    assert rc == 1
    assert res["ok"] is False and "warm-up" in res["error"]


def test_bench_sink_is_faster_than_needed():
    """The built-in fake server: the generator's own ceiling."""
    rc, res = bench("pubsub", "--sink", "--msgs", "200000", "--verify")
    assert rc == 0, res
    assert res["delivered"] == 200000 and res["sink"] is True


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_bench_compare_smoke(tmp_path):
    out = tmp_path / "cmp.json"
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", "compare",
           "--server", "a=%s -m pluggy_nats serve" % sys.executable,
           "--server", "b=%s -m pluggy_nats serve" % sys.executable,
           "--reps", "1", "--only", "pubsub", "--sizes", "16", "--msgs", "5000",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ratio a/b" in proc.stdout
    data = json.loads(out.read_text())
    runs = data["runs"]["pubsub/16B"]
    assert [r["delivered"] for r in runs["a"] + runs["b"]] == [5000, 5000]
    assert data["summary"]["pubsub/16B"]["a"]["ok"] == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_bench_compare_with_auth_against_go(tmp_path):
    """``--auth``: both servers require a password (one config file), the
    generator logs in, and every message still arrives (a cluster too)."""
    from pluggy_nats.testing.plugin import require_go_nats_server

    go = require_go_nats_server()[0]
    out = tmp_path / "cmp.json"
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", "compare", "--auth",
           "--server", "py=%s -m pluggy_nats serve" % sys.executable, "--server", "go=" + go,
           "--reps", "1", "--only", "pubsub,queue,cluster", "--sizes", "16", "--msgs", "5000",
           "--verify", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())["runs"]
    for case in ("pubsub/16B", "queue/16B", "cluster/16B"):
        for label in ("py", "go"):
            (res,) = runs[case][label]
            assert res["ok"] and res["delivered"] == 5000, (case, label, res.get("error"))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_bench_compare_js_cases_against_go(tmp_path):
    """``js``/``jsdrain``: both servers start with JetStream on a store directory,
    every message is published, acked and drained, and each phase has its own rate
    and server CPU per message (enough messages for Go's to span clock ticks)."""
    from pluggy_nats.testing.plugin import require_go_nats_server

    go = require_go_nats_server()[0]
    out = tmp_path / "cmp.json"
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", "compare",
           "--server", "py=%s -m pluggy_nats serve" % sys.executable, "--server", "go=" + go,
           "--reps", "1", "--only", "js,jsdrain", "--sizes", "16", "--msgs", "20000",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())["runs"]
    for case, rate in (("js/16B", "pub_msgs_per_s"), ("jsdrain/16B", "drain_msgs_per_s")):
        for label in ("py", "go"):
            (res,) = runs[case][label]
            assert res["ok"] and res["sent"] == 20000 and res["pub_errors"] == 0, (case, label)
            assert res["msgs_per_s"] == res[rate] > 0, (case, label)
            assert res["msgs_per_cpu_s"] and res["msgs_per_cpu_s"] > 0, (case, label)


def test_bench_logs_in_with_url_credentials(make_server, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text("authorization { user: u, password: 'p@ss' }\n")
    server = make_server("-c", str(conf))
    url = server.url.replace("://", "://u:p%40ss@")
    rc, res = bench("pubsub", "--url", url, "--msgs", "2000")
    assert rc == 0 and res["delivered"] == 2000, res
    rc, res = bench("pubsub", "--url", server.url, "--msgs", "2000", "--timeout", "2")
    assert rc == 1 and not res["ok"]  # no credentials: refused
