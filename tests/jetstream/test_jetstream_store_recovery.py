"""File store recovery: kill -9 at random moments, torn tails, flipped bytes, bad disks."""

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pluggy_nats_plugins.jetstream.store import (
    StoreConfig,
    StoreError,
    open_stream_store,
)

# The writer proper: payload = its sequence, some deletes, a sync + report every batch,
# an index snapshot now and then (so recovery runs both the snapshot+tail and full paths).
WRITER = textwrap.dedent("""
    import random, sys
    from pluggy_nats_plugins.jetstream.store import StoreConfig, open_stream_store
    directory, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    s = open_stream_store("file", directory, StoreConfig("C", block_size=8192))
    n = 0
    while True:
        n += 1
        nxt = s.state().last_seq + 1
        seq, _ = s.store_msg("c.%d" % rnd.randrange(5), b"", b"payload-%d" % nxt)
        if n % 7 == 0 and seq > 3:
            print("R", seq - 3, flush=True)  # before: the parent may see it gone or not
            s.remove_msg(seq - 3)
        if n % 25 == 0:
            s.sync()
            print("S", s.state().last_seq, flush=True)
        if n % 400 == 0:
            s.flush_state()
""")


def crash_once(tmp_path, seed, name=None, before=None):
    """Run the writer, SIGKILL it at a seeded moment, reopen, check every synced record.

    ``name`` reuses a directory a previous round crashed; ``before`` is what that round
    found (seq -> present): nothing found absent may come back, nothing found present may
    go unless this round removed it. Returns (synced, what this round found)."""
    directory = str(tmp_path / (name or "crash-%d" % seed))
    rnd = random.Random(seed)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, directory, str(seed)],
                            stdout=subprocess.PIPE, text=True)
    synced, removed, maybe_removed = 0, set(), set()
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a speed test
        lines = [proc.stdout.readline()]
        while not lines[-1].startswith("S"):  # the first sync: the writer is running
            assert lines[-1] and time.monotonic() < deadline, lines  # EOF: the writer died
            lines.append(proc.stdout.readline())
        time.sleep(rnd.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        for line in lines + proc.stdout.readlines():
            if not line.endswith("\n"):
                break  # cut by the kill: the removal or sync it announces had not happened
            kind, _, value = line.partition(" ")
            if kind == "R":
                maybe_removed.add(int(value))
            elif kind == "S":  # removals announced before a sync are done and synced
                synced = int(value)
                removed |= maybe_removed
                maybe_removed.clear()
    finally:
        proc.kill()
        proc.wait()
    before = before or {}
    store = open_stream_store("file", directory, StoreConfig("C", block_size=8192))
    try:
        assert synced > 0
        st = store.state()
        # A kill can cut a write between two pages: a torn tail, but only of a record whose
        # store_msg never returned, so never of one synced (and acknowledged).
        assert st.last_seq >= synced and all(seq > synced for seq in st.lost or ())
        for seq in range(1, synced + 1):
            m = store.load_msg(seq)
            if seq in removed or before.get(seq) is False:
                assert m is None, seq
            elif seq not in maybe_removed:
                assert m is not None and m.seq == seq and m.data == b"payload-%d" % seq, seq
        seen, seq = [], 1
        while (m := store.load_next(None, seq)) is not None:
            assert m.data == b"payload-%d" % m.seq  # also what was written after the last sync
            seen.append(m.seq)
            seq = m.seq + 1
        assert seen == sorted(set(seen)) and len(seen) == st.msgs
        nxt = st.last_seq + 1
        assert store.store_msg("c.0", b"", b"payload-%d" % nxt)[0] == nxt
        found = {q: store.load_msg(q) is not None for q in range(1, nxt + 1)}
    finally:
        store.close()
    return synced, found


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_keeps_every_synced_record(tmp_path, seed):
    assert crash_once(tmp_path, seed)[0] > 0


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 130))
def test_kill_9_soak(tmp_path, seed):
    # The same directory crashed again and again: recovery of a recovered store.
    found = None
    for round_ in range(3):
        _, found = crash_once(tmp_path, seed * 10 + round_, name="crash", before=found)


def _filled(tmp_path, n=300, block_size=2048, name="S"):
    s = open_stream_store("file", str(tmp_path / name), StoreConfig(name, block_size=block_size))
    for i in range(n):
        s.store_msg("f.%d" % (i % 4), b"", b"payload-%d" % (i + 1))
    return s


def _blocks(store):
    return sorted(Path(store._msgdir).glob("*.blk"), key=lambda p: int(p.stem))


def test_flipped_byte_drops_that_record_and_the_rest_of_its_block(tmp_path):
    s = _filled(tmp_path)
    blk = s._blocks[1]
    victim = blk.base + 5
    off = blk.offs[5]
    last_in_block = blk.base + len(blk.offs) - 1
    s.close()
    path = _blocks(s)[1]
    raw = bytearray(path.read_bytes())
    raw[off + 40] ^= 0x55  # inside the record, past its header
    path.write_bytes(bytes(raw))
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    st = s.state()
    assert st.lost == list(range(victim, last_in_block + 1))
    assert st.lost_bytes > 0
    for seq in range(1, 301):
        m = s.load_msg(seq)
        if victim <= seq <= last_in_block:
            assert m is None
        else:
            assert m.data == b"payload-%d" % seq
    assert st.msgs == 300 - (last_in_block - victim + 1)
    assert s.store_msg("f.0", b"", b"more")[0] == 301
    s.close()


def test_damage_found_while_open_is_handled_not_raised(tmp_path):
    s = _filled(tmp_path)
    s.flush_state()
    blk = s._blocks[0]
    off = blk.offs[3]
    with open(blk.path, "r+b") as f:
        f.seek(off + 40)
        byte = f.read(1)
        f.seek(off + 40)
        f.write(bytes([byte[0] ^ 0xFF]))
    s._windows = []  # as if the page had left our read cache
    assert s.load_msg(4) is None
    assert 4 in s.state().lost and s.load_msg(3).data == b"payload-3"
    assert s.load_msg(300).data == b"payload-300"
    s.close()


def test_torn_tail_is_cut(tmp_path):
    s = _filled(tmp_path, n=50)
    s.close()
    last = _blocks(s)[-1]
    with open(last, "r+b") as f:
        f.truncate(last.stat().st_size - 5)
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    st = s.state()
    assert (st.msgs, st.last_seq) == (49, 49) and st.lost_bytes > 0
    assert s.load_msg(49).data == b"payload-49"
    assert s.store_msg("f.0", b"", b"x")[0] == 50
    s.close()
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    assert s.load_msg(50).data == b"x"
    s.close()


def test_index_missing_or_stale_is_rebuilt(tmp_path):
    s = _filled(tmp_path)
    s.remove_msg(10)
    s.purge(subject="f.1", keep=5)
    want = s.state(with_deleted=True)
    s.close()
    (Path(s._msgdir) / "index.db").unlink()
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    assert s.state(with_deleted=True) == want
    assert s.subjects_state() == {"f.0": 75, "f.1": 5, "f.2": 75, "f.3": 75}
    # Stale: snapshot, then more writes and a "crash" (no close): tail replayed.
    s.flush_state()
    s.store_msg("f.9", b"", b"late")
    s.remove_msg(11)
    s._close_fds()
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    assert s.load_last("f.9").data == b"late" and s.load_msg(11) is None
    assert s.state().msgs == want.msgs
    s.close()


def test_erase_after_the_snapshot_then_crash(tmp_path):
    s = _filled(tmp_path, n=10)
    s.flush_state()
    s.remove_msg(5, erase=True)  # rewrites a record below the snapshot's block size
    s._close_fds()  # crash
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    assert s.state().msgs == 9 and s.load_msg(5) is None and s.load_msg(6).seq == 6
    s.close()


@pytest.mark.parametrize("how", ["removed", "skipped"])
def test_sequences_survive_their_deleted_blocks(tmp_path, how):
    """nats-server#2068: after every block with messages is gone, a rebuild (no index)
    must still know the last sequence, or it would hand the same sequences out again."""
    s = _filled(tmp_path, n=100, block_size=1024)
    if how == "skipped":
        s.skip_msgs(101, 50)
    for seq in range(1, 101):
        s.remove_msg(seq)
    last = s.state().last_seq
    assert len(_blocks(s)) < 5  # the emptied front blocks were deleted
    s._close_fds()  # crash, and no index to help
    (Path(s._msgdir) / "index.db").unlink(missing_ok=True)
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=1024))
    assert s.state().last_seq == last and s.state().msgs == 0
    assert s.store_msg("f.0", b"", b"new")[0] == last + 1
    s.close()


def test_garbage_index_is_ignored(tmp_path):
    s = _filled(tmp_path, n=20)
    s.close()
    (Path(s._msgdir) / "index.db").write_bytes(b"\x00garbage" * 10)
    s = open_stream_store("file", str(tmp_path / "S"), StoreConfig("S", block_size=2048))
    assert s.state().msgs == 20
    s.close()


def test_directory_that_is_a_file_is_a_store_error(tmp_path):
    bad = tmp_path / "file"
    bad.write_text("not a directory")
    with pytest.raises(StoreError):
        open_stream_store("file", str(bad), StoreConfig("X"))
    with pytest.raises(StoreError):
        open_stream_store("file", str(bad / "sub"), StoreConfig("X"))
    with pytest.raises(StoreError):
        open_stream_store("file", None, StoreConfig("X"))


FULL_DISK = textwrap.dedent("""
    import resource, sys
    from pluggy_nats_plugins.jetstream.store import ErrStorageFull, StoreConfig, open_stream_store
    s = open_stream_store("file", sys.argv[1], StoreConfig("F"))
    for i in range(5):
        s.store_msg("f", b"", b"payload-%d" % (i + 1))
    before = s.state()
    # No file may grow past its size now: every write fails (EFBIG), as on a full disk.
    size = s._wblk.size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, resource.RLIM_INFINITY))
    for attempt in (lambda: s.store_msg("f", b"", b"x" * 100), lambda: s.remove_msg(1)):
        try:
            attempt()
            raise SystemExit("no error")
        except ErrStorageFull as exc:
            print("refused:", exc)
    assert s.state() == before and s.load_msg(1).data == b"payload-1", s.state()
    assert s._wblk.size == size  # the short write was cut back
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert s.store_msg("f", b"", b"ok")[0] == 6
    s.close()
    print("OK")
""")


def test_full_disk_is_storage_full_and_state_unchanged(tmp_path):
    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "F")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.endswith("OK\n"), out.stdout + out.stderr
    assert out.stdout.count("refused:") == 2
    s = open_stream_store("file", str(tmp_path / "F"), StoreConfig("F"))
    assert s.state().msgs == 6 and s.load_msg(6).data == b"ok"
    s.close()


def test_unwritable_consumer_and_meta_dirs_are_store_errors(tmp_path):
    s = _filled(tmp_path, n=1)
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(StoreError):
            s.consumer_store(bad)
    (tmp_path / "S" / "obs").write_text("in the way")
    with pytest.raises(StoreError):
        s.consumer_store("c")
    (tmp_path / "S" / "meta.dat.tmp").mkdir()  # the rename target's temp is a directory
    with pytest.raises(StoreError):
        s.write_meta(b"{}")
    s.close()


def test_per_subject_limit_after_reopen_with_write_behind(tmp_path):
    """A reopened store (no state file: as after kill -9) under write-behind:
    a new message on a subject at its limit evicts the old one, not itself
    (the block's subject counts were read while the new record was still held)."""
    cfg = StoreConfig(name="KV", subjects=["kv.>"], max_msgs_per_subject=1)
    first = open_stream_store("file", str(tmp_path / "s"), cfg)
    for seq in range(1, 4):
        first.store_raw("kv.k", b"", b"%d" % seq, seq, seq)
    first.flush_writes()  # abandoned, never closed: no state file
    store = open_stream_store("file", str(tmp_path / "s"), cfg)
    store.defer_writes = True
    store.store_raw("kv.k", b"", b"4", 4, 4)
    st = store.state()
    assert (st.msgs, st.first_seq, st.last_seq) == (1, 4, 4)
    store.close()
