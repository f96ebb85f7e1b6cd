"""Micro-benchmark of the stream stores: appends/s, loads/s, and RSS of a big file stream.

    python -m pluggy_nats_plugins.jetstream.store.bench [--msgs 200000] [--rss-msgs 1000000]
    python -m pluggy_nats_plugins.jetstream.store.bench --compare-engines

``--compare-engines`` is the measurement the engine was chosen by: a bare segmented log
(pwrite per record + CRC32) against SQLite in WAL mode, and CRC32 against BLAKE2b.

Each figure is one run on whatever else the machine is doing: read it as such.
"""

import argparse
import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from array import array

from . import StoreConfig, open_stream_store

PAYLOAD = b"x" * 16


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


CPU = {}  # label -> rate per CPU second of the last measurement with that label


def rate(n, fn, label=None):
    """n / wall seconds; also n / CPU seconds under ``label`` (fairer on a shared machine,
    flattering where the time is fsync waits)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    if label:
        CPU[label] = n / max(1e-9, time.process_time() - c)
    return n / (time.perf_counter() - t)


def bench_kind(kind, n, sync_every, directory):
    store = open_stream_store(kind, directory, StoreConfig("B"))

    def append():
        put, sync = store.store_msg, store.sync
        for i in range(n):
            put("bench.sub", b"", PAYLOAD)
            if sync_every and i % sync_every == sync_every - 1:
                sync()

    def load():
        get = store.load_msg
        for seq in range(1, n + 1):
            get(seq)

    def drain():
        nxt, seq = store.load_next, 1
        while (m := nxt(None, seq)) is not None:
            seq = m.seq + 1

    def drain_filtered():
        nxt, seq = store.load_next, 1
        while (m := nxt(["bench.*"], seq)) is not None:
            seq = m.seq + 1

    out = {k: rate(n, fn, k) for k, fn in (("append", append), ("load", load), ("next", drain),
                                             ("next_filtered", drain_filtered))}
    out["cpu"] = dict(CPU)
    store.close()
    return out


def rss_child(directory, n):
    """In a fresh process: RSS after writing n messages, after reopen, after a rebuild."""
    base = rss_mb()
    store = open_stream_store("file", directory, StoreConfig("R"))
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        store.store_msg("bench.sub", b"", PAYLOAD)
    written, written_cpu = time.perf_counter() - t, time.process_time() - c
    store.sync()
    after_write = rss_mb()
    store.close()
    t = time.perf_counter()
    store = open_stream_store("file", directory, StoreConfig("R"))
    reopen_s = time.perf_counter() - t
    assert store.state().msgs == n
    after_reopen = rss_mb()
    store._close_fds()  # a crash: no index written at close
    os.unlink(os.path.join(directory, "msgs", "index.db"))
    t = time.perf_counter()
    store = open_stream_store("file", directory, StoreConfig("R"))
    rebuild_s = time.perf_counter() - t
    assert store.state().msgs == n
    print("rss_base_mb=%.1f rss_written_mb=%.1f rss_reopened_mb=%.1f rss_rebuilt_mb=%.1f "
          "write_s=%.1f (cpu %.1f) reopen_s=%.2f rebuild_s=%.1f disk_mb=%.1f" % (
              base, after_write, after_reopen, rss_mb(), written, written_cpu, reopen_s,
              rebuild_s,
              sum(os.path.getsize(os.path.join(directory, "msgs", f))
                  for f in os.listdir(os.path.join(directory, "msgs"))) / 2**20))
    store.close()


def compare_engines(directory, n=200_000):
    """The timeboxed engine comparison (docs/architecture.md, JetStream storage)."""
    rec = b"y" * 60
    crc = rate(n, lambda: [zlib.crc32(rec) for _ in range(n)])
    blake = rate(n, lambda: [hashlib.blake2b(rec, digest_size=8).digest() for _ in range(n)])
    print("checksum of a 60 B record: crc32 %.0f/s, blake2b-64 %.0f/s" % (crc, blake))
    head = struct.Struct("<IQqH")
    subject = b"orders.new"

    def log(fsync_every):
        path = os.path.join(directory, "log.blk")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        offs, pos = array("Q"), 0

        def append():
            nonlocal pos
            for seq in range(1, n + 1):
                body = head.pack(len(subject) + 42, seq, 0, len(subject)) + subject + PAYLOAD
                record = body + zlib.crc32(body).to_bytes(4, "little")
                os.write(fd, record)  # in the OS before the ack: survives kill -9
                offs.append(pos)
                pos += len(record)
                if fsync_every and seq % fsync_every == 0:
                    os.fsync(fd)

        def load():
            for seq in range(1, n + 1):
                os.pread(fd, 64, offs[seq - 1])

        out = rate(n, append), rate(n, load)
        os.close(fd)
        os.unlink(path)
        return out

    def lite(commit_every, synchronous):
        path = os.path.join(directory, "s.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("pragma journal_mode=wal")
        db.execute("pragma synchronous=" + synchronous)
        db.execute("create table m(seq integer primary key, subj text, ts int, hdr blob, "
                   "data blob)")

        def append():
            db.execute("begin")
            for seq in range(1, n + 1):
                db.execute("insert into m values(?,?,?,?,?)", (seq, "orders.new", 0, b"", PAYLOAD))
                if seq % commit_every == 0:  # a commit = in the OS (WAL): survives kill -9
                    db.execute("commit")
                    db.execute("begin")
            db.execute("commit")

        def load():
            for seq in range(1, n + 1):
                db.execute("select subj, ts, hdr, data from m where seq=?", (seq,)).fetchone()

        out = rate(n, append), rate(n, load)
        db.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        return out

    rows = [("log, write per record", log(0)), ("log, + fsync per 256", log(256)),
            ("sqlite WAL, commit per record, synchronous=OFF", lite(1, "OFF")),
            ("sqlite WAL, commit per 256, synchronous=OFF", lite(256, "OFF")),
            ("sqlite WAL, commit per 256, synchronous=FULL", lite(256, "FULL"))]
    for label, (w, r) in rows:
        print("%-48s append %9.0f/s  load by seq %9.0f/s" % (label, w, r))
    print("rss %.0f MB" % rss_mb())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--msgs", type=int, default=200_000)
    ap.add_argument("--rss-msgs", type=int, default=1_000_000, help="0 skips the RSS run")
    ap.add_argument("--compare-engines", action="store_true")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.rss_msgs)
        return
    tmp = tempfile.mkdtemp(prefix="js-store-bench-")
    try:
        if args.compare_engines:
            compare_engines(tmp)
            return
        print("%d messages of %d B, one subject; rates per second" % (args.msgs, len(PAYLOAD)))
        for kind, sync_every in (("memory", 0), ("file", 0), ("file", 256)):
            d = os.path.join(tmp, "%s-%d" % (kind, sync_every))
            r = bench_kind(kind, args.msgs, sync_every, d)
            label = kind + (" fsync/%d" % sync_every if sync_every else "")
            for what, fig in (("wall", r), ("cpu", r["cpu"])):
                print("%-16s %-4s append %9.0f  load_msg %9.0f  load_next %9.0f  "
                      "load_next(filter) %9.0f" % (label, what, fig["append"], fig["load"],
                                                   fig["next"], fig["next_filtered"]))
        if args.rss_msgs:
            d = os.path.join(tmp, "rss")
            out = subprocess.run([sys.executable, "-m", __spec__.name, "--rss-child", d,
                                  "--rss-msgs", str(args.rss_msgs)],
                                 capture_output=True, text=True, check=True)
            print("file store, %d x %d B: %s" % (args.rss_msgs, len(PAYLOAD), out.stdout.strip()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
