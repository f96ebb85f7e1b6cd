"""The RAFT log on disk (checksummed records, torn tail cut on open) and the
wire encoding of RAFT messages."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluggy_nats.raft.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    InstallSnapshot,
    VoteRequest,
    VoteResponse,
    WireError,
    decode,
    encode,
)
from pluggy_nats.raft.storage import CorruptLog, FileStorage, Snapshot


def entries(first, n, term=1):
    return [Entry(i, term, 0, b"data-%d" % i) for i in range(first, first + n)]


def segment_files(directory):
    log = os.path.join(directory, "log")
    return sorted(os.path.join(log, n) for n in os.listdir(log))


def test_raft_file_log_survives_reopen(tmp_path):
    s = FileStorage(str(tmp_path))
    s.save_state(7, "nodeB")
    s.append(entries(1, 10))
    s.sync()
    s.close()
    s = FileStorage(str(tmp_path))
    assert (s.term, s.vote) == (7, "nodeB")
    assert s.entries == entries(1, 10)
    s.append(entries(11, 1))  # appending continues where it was
    s.sync()
    assert FileStorage(str(tmp_path)).last_index == 11


def test_raft_file_log_cuts_a_torn_tail(tmp_path):
    s = FileStorage(str(tmp_path))
    s.append(entries(1, 5))
    s.sync()
    s.close()
    path = segment_files(str(tmp_path))[-1]
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 3)  # the last record half written
    s = FileStorage(str(tmp_path))
    assert s.last_index == 4
    assert os.path.getsize(path) < size - 3  # cut on disk too
    s.append(entries(5, 1, term=2))
    s.sync()
    assert FileStorage(str(tmp_path)).entry(5).term == 2


def test_raft_file_log_refuses_a_corrupt_record_before_the_tail(tmp_path):
    s = FileStorage(str(tmp_path))
    s.append(entries(1, 5))
    s.sync()
    s.close()
    path = segment_files(str(tmp_path))[-1]
    with open(path, "r+b") as f:
        f.seek(12)
        byte = f.read(1)
        f.seek(12)
        f.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(CorruptLog):
        FileStorage(str(tmp_path))


def test_raft_file_log_truncate_and_segments(tmp_path):
    s = FileStorage(str(tmp_path), segment_bytes=200)
    s.append(entries(1, 30))
    s.sync()
    assert len(segment_files(str(tmp_path))) > 3
    s.truncate_after(12)
    s.append(entries(13, 3, term=5))
    s.sync()
    s.close()
    s = FileStorage(str(tmp_path))
    assert s.last_index == 15 and [e.term for e in s.entries[-4:]] == [1, 5, 5, 5]


def test_raft_file_log_compacts_on_snapshot(tmp_path):
    s = FileStorage(str(tmp_path), segment_bytes=200)
    s.append(entries(1, 40))
    s.sync()
    before = len(segment_files(str(tmp_path)))
    s.save_snapshot(Snapshot(30, 1, ("a", "b"), b"state@30"))
    assert len(segment_files(str(tmp_path))) < before
    assert s.first_index == 31 and s.term_at(30) == 1 and s.term_at(29) is None
    s.close()
    s = FileStorage(str(tmp_path))
    assert s.snapshot == Snapshot(30, 1, ("a", "b"), b"state@30")
    assert [e.index for e in s.entries] == list(range(31, 41))
    # A snapshot that does not match the log replaces it entirely.
    s.save_snapshot(Snapshot(50, 3, ("a",), b"state@50"))
    assert s.entries == [] and s.last_index == 50 and s.last_term == 3
    s.append(entries(51, 2, term=3))
    s.sync()
    s.close()
    s = FileStorage(str(tmp_path))
    assert s.snapshot_index == 50 and s.last_index == 52


def test_raft_file_log_refuses_a_corrupt_snapshot(tmp_path):
    s = FileStorage(str(tmp_path))
    s.append(entries(1, 3))
    s.save_snapshot(Snapshot(3, 1, ("a",), b"state"))
    s.close()
    snap_dir = os.path.join(str(tmp_path), "snapshots")
    (name,) = os.listdir(snap_dir)
    with open(os.path.join(snap_dir, name), "r+b") as f:
        f.seek(-6, 2)
        f.write(b"X")
    with pytest.raises(CorruptLog):
        FileStorage(str(tmp_path))


MESSAGES = [
    VoteRequest(5, "abcdefgh", 4, 100, True),
    VoteResponse(5, "ABCDEFGH", True),
    AppendEntries(9, "leader01", 10, 8, 7, tuple(Entry(11 + i, 9, i % 6, b"x" * i)
                                                  for i in range(4))),
    AppendEntries(9, "leader01", 10, 8, 7, ()),
    AppendResponse(9, "f0", False, 3),
    InstallSnapshot(2, "n1", 77, 2, ("n1", "n2", "n3"), b"\x00snapshot"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_raft_wire_round_trip(msg):
    assert decode(encode(msg)) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_raft_wire_garbage_is_refused_cleanly(data):
    try:
        decode(data)
    except WireError:
        pass


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_raft_wire_truncated_message_is_refused(msg):
    raw = encode(msg)
    for cut in range(len(raw) - 1):
        try:
            decoded = decode(raw[:cut])
        except WireError:
            continue
        assert decoded != msg


# -- fsync off the loop: a slow disk stops one greenlet, not the server -----------------


@pytest.fixture
def slow_disk(monkeypatch):
    """Every fsync takes 0.2 s more, blocking its thread as a slow disk does
    (the real fsync still runs). Returns the list of finished fsyncs."""
    import gevent.monkey

    real_sleep = gevent.monkey.get_original("time", "sleep")
    real_fsync = os.fsync
    done = []

    def fsync(fd):
        real_sleep(0.2)
        real_fsync(fd)
        done.append(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return done


def _ticks_during(fn):
    """How often another greenlet ran while ``fn()`` waited."""
    import gevent

    ticks = []

    def ticker():
        while True:
            gevent.sleep(0.01)
            ticks.append(1)

    g = gevent.spawn(ticker)
    gevent.sleep(0)
    try:
        fn()
    finally:
        g.kill()
    return len(ticks)


def test_raft_sync_and_vote_fsync_let_other_greenlets_run(tmp_path, slow_disk):
    s = FileStorage(str(tmp_path))
    s.append(entries(1, 50))
    before = len(slow_disk)
    # with the fsync in the loop's thread the ticker would not run at all
    assert _ticks_during(s.sync) >= 5
    assert len(slow_disk) > before  # ... and sync() returned after the fsync, not before
    before = len(slow_disk)
    assert _ticks_during(lambda: s.save_state(3, "nodeC")) >= 5
    assert len(slow_disk) >= before + 2  # the file and its directory, before returning
    s.close()
    s = FileStorage(str(tmp_path), fsync=False)
    assert (s.term, s.vote, s.last_index) == (3, "nodeC", 50)


def test_raft_append_during_a_sync_waits_for_the_next(tmp_path, slow_disk):
    """Entries appended (and segments rotated) by another greenlet while a
    sync runs are written whole and in order, and the next sync covers them."""
    import gevent

    s = FileStorage(str(tmp_path), segment_bytes=300)
    s.append(entries(1, 5))

    def writer():
        for i in range(6, 40):
            s.append(entries(i, 1))
            gevent.sleep(0.005)

    g = gevent.spawn(writer)
    s.sync()
    g.join()
    s.sync()
    s.close()
    assert len(segment_files(str(tmp_path))) > 3
    assert FileStorage(str(tmp_path), fsync=False).entries == entries(1, 39)
