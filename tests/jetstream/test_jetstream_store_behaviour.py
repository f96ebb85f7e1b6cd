"""One behavioural suite over both stores: what a stream store must do, file or memory."""

import time
from pathlib import Path

import pytest
from pluggy_nats_plugins.jetstream.store import (
    ConsumerState,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgSize,
    ErrMaxMsgsPerSubject,
    ErrStoreClosed,
    StoreConfig,
    StoreError,
    open_stream_store,
)

SECOND = 1_000_000_000


@pytest.fixture(params=["memory", "file"])
def make(request, tmp_path):
    opened = []

    def make(name="S", **limits):
        limits.setdefault("block_size", 2048)  # several blocks even in small tests
        store = open_stream_store(request.param, str(tmp_path / name), StoreConfig(name, **limits))
        opened.append(store)
        return store

    make.kind = request.param
    make.reopen = lambda store, **limits: _reopen(make, store, **limits)
    yield make
    for store in opened:
        if not store._closed:
            store.close()


def _reopen(make, store, **limits):
    """File store: close and open again (the same state must come back); memory: itself."""
    if make.kind == "memory":
        return store
    store.close()
    return make(**limits)


def fill(store, n, subject="a", payload=b"x" * 16):
    return [store.store_msg(subject if isinstance(subject, str) else subject(i), b"", payload)[0]
            for i in range(n)]


def span(store):
    st = store.state()
    return st.msgs, st.first_seq, st.last_seq


def test_append_and_load_by_seq(make):
    s = make()
    seqs = fill(s, 300, subject=lambda i: "orders.%d" % (i % 3))
    assert seqs == list(range(1, 301))
    m = s.load_msg(200)
    assert (m.subject, m.seq, m.data, m.hdr) == ("orders.1", 200, b"x" * 16, b"")
    assert s.load_msg(0) is None and s.load_msg(301) is None
    st = s.state()
    assert (st.msgs, st.first_seq, st.last_seq, st.num_subjects, st.num_deleted) == \
        (300, 1, 300, 3, 0)
    assert st.first_ts <= st.last_ts and st.first_ts > 0
    s = make.reopen(s)
    assert s.load_msg(300).subject == "orders.2"
    assert s.state().msgs == 300


def test_headers_and_timestamps_kept(make):
    s = make()
    hdr = b"NATS/1.0\r\nFoo: bar\r\n\r\n"
    seq, ts = s.store_msg("h", hdr, b"body")
    s = make.reopen(s)
    m = s.load_msg(seq)
    assert (m.hdr, m.data, m.ts) == (hdr, b"body", ts)


def test_bytes_accounting_matches_go(make):
    s = make()
    s.store_msg("abc", b"", b"0123456789")
    s.store_msg("abc", b"NATS/1.0\r\n\r\n", b"0123456789")
    # Go: file 22+subj+hdr+msg+8 (+4 with headers); memory subj+hdr+msg+16.
    if make.kind == "file":
        expected = (30 + 3 + 10) + (30 + 3 + 12 + 10 + 4)
    else:
        expected = (3 + 10 + 16) + (3 + 12 + 10 + 16)
    assert s.state().bytes == expected


def test_empty_stream_reports_first_as_last_plus_one(make):
    s = make()
    fill(s, 5)
    assert s.purge() == 5
    assert span(s) == (0, 6, 5)
    s = make.reopen(s)
    assert span(s) == (0, 6, 5)
    assert s.store_msg("a", b"", b"")[0] == 6


def test_max_msgs_discard_old(make):
    s = make(max_msgs=10)
    fill(s, 25)
    assert span(s) == (10, 16, 25)
    assert s.load_msg(15) is None


def test_max_msgs_discard_new(make):
    s = make(max_msgs=3, discard_new=True)
    fill(s, 3)
    with pytest.raises(ErrMaxMsgs):
        s.store_msg("a", b"", b"x")
    assert s.state().msgs == 3


def test_max_bytes_both_policies(make):
    s = make(max_bytes=500)
    fill(s, 40)
    assert s.state().bytes <= 500 and s.state().last_seq == 40
    s = make.reopen(s, max_bytes=500)
    assert s.state().bytes <= 500 and s.state().last_seq == 40
    d = open_stream_store("memory", None, StoreConfig("D", max_bytes=100, discard_new=True))
    d.store_msg("a", b"", b"x" * 50)
    with pytest.raises(ErrMaxBytes):
        d.store_msg("a", b"", b"x" * 50)


def test_max_msg_size(make):
    s = make(max_msg_size=10)
    s.store_msg("a", b"", b"x" * 10)
    with pytest.raises(ErrMaxMsgSize):
        s.store_msg("a", b"", b"x" * 11)


def test_max_msgs_per_subject_keeps_history(make):
    s = make(max_msgs_per_subject=2)
    for i in range(10):
        s.store_msg("k.%d" % (i % 3), b"", b"%d" % i)
    assert s.subjects_state() == {"k.0": 2, "k.1": 2, "k.2": 2}
    assert [m for m in (s.load_msg(q) for q in range(1, 11)) if m] and \
        sorted(s.last_seq_per_subject().values()) == [8, 9, 10]
    assert s.load_last("k.0").data == b"9"
    assert s.load_next(["k.0"], 1).data == b"6"


def test_discard_new_per_subject_and_kv_replacement(make):
    s = make(max_msgs_per_subject=1, discard_new=True, discard_new_per_subject=True)
    s.store_msg("k", b"", b"1")
    with pytest.raises(ErrMaxMsgsPerSubject):
        s.store_msg("k", b"", b"2")
    # KV buckets: discard new without per-subject: an update replaces even when full.
    kv = make("KV", max_msgs_per_subject=1, max_msgs=2, discard_new=True)
    kv.store_msg("k1", b"", b"1")
    kv.store_msg("k2", b"", b"1")
    kv.store_msg("k1", b"", b"2")
    assert kv.load_last("k1").data == b"2" and kv.state().msgs == 2
    with pytest.raises(ErrMaxMsgs):
        kv.store_msg("k3", b"", b"1")


def test_remove_and_erase(make):
    s = make()
    fill(s, 10, subject=lambda i: "s.%d" % (i % 2))
    assert s.remove_msg(3) is True
    assert s.remove_msg(3) is False
    assert s.remove_msg(99) is False
    assert s.remove_msg(1, erase=True) is True
    st = s.state(with_deleted=True)
    assert (st.msgs, st.first_seq, st.num_deleted, st.deleted) == (8, 2, 1, [3])
    s = make.reopen(s)
    assert s.load_msg(1) is None and s.load_msg(3) is None and s.load_msg(2).seq == 2
    assert s.state(with_deleted=True).deleted == [3]
    if make.kind == "file":  # erase left no payload on disk
        blob = b"".join(p.read_bytes() for p in Path(s._msgdir).glob("*.blk"))
        assert blob.count(b"x" * 16) == 9


def test_remove_last_of_subject_moves_its_last(make):
    s = make()
    fill(s, 6, subject=lambda i: "s.%d" % (i % 2))  # s.0: 1,3,5  s.1: 2,4,6
    s.remove_msg(5)
    assert s.load_last("s.0").seq == 3
    assert s.last_seq_per_subject(["s.0"]) == {"s.0": 3}
    s.remove_msg(1)
    s.remove_msg(3)
    assert s.load_last("s.0") is None and "s.0" not in s.subjects_state()


def test_purge_variants(make):
    s = make()
    fill(s, 20, subject=lambda i: "p.%d" % (i % 2))  # p.0 odd seqs, p.1 even seqs
    assert s.purge(subject="p.0", keep=2) == 8
    assert [m.seq for m in (s.load_msg(q) for q in (17, 19)) if m] == [17, 19]
    assert s.purge(subject="p.1", seq=11) == 5  # 2,4,6,8,10
    assert s.subjects_state() == {"p.0": 2, "p.1": 5}
    assert s.purge(subject="p.*", keep=3) == 4
    assert s.state().msgs == 3
    t = make("T")
    fill(t, 10)
    assert t.purge(seq=4) == 3 and t.state().first_seq == 4
    assert t.purge(keep=2) == 5 and t.state().first_seq == 9
    assert t.purge(keep=5) == 0
    t = make.reopen(t, name="T")
    assert (t.state().msgs, t.state().first_seq) == (2, 9)


def test_compact_and_compact_beyond_last(make):
    s = make()
    fill(s, 30, subject=lambda i: "c.%d" % (i % 3))
    assert s.compact(11) == 10
    st = s.state()
    assert (st.msgs, st.first_seq) == (20, 11)
    assert s.subjects_state() == {"c.0": 6, "c.1": 7, "c.2": 7}
    assert s.load_next(["c.0"], 1).seq == 13
    assert s.compact(100) == 20
    assert span(s) == (0, 100, 99)
    s = make.reopen(s)
    assert span(s) == (0, 100, 99)
    assert s.store_msg("c", b"", b"")[0] == 100


def test_store_raw_and_skip_keep_origin_sequences(make):
    s = make()
    s.store_raw("m", b"", b"1", 5, 1000)
    s.skip_msgs(6, 3)
    s.store_raw("m", b"", b"2", 20, 2000)
    s.store_raw("m", b"", b"3", 100_000, 3000)  # a big gap: no huge index padding
    with pytest.raises(StoreError):
        s.store_raw("m", b"", b"old", 20, 4000)
    st = s.state(with_deleted=True)
    assert (st.msgs, st.first_seq, st.last_seq) == (3, 5, 100_000)
    assert st.num_deleted == 100_000 - 5 + 1 - 3 and len(st.deleted) == st.num_deleted
    s = make.reopen(s)
    assert [s.load_next(None, q).seq for q in (1, 6, 21)] == [5, 20, 100_000]
    assert s.store_msg("m", b"", b"4")[0] == 100_001
    e = make("E")
    e.skip_msgs(1, 10)
    e = make.reopen(e, name="E")
    assert (e.state().first_seq, e.state().last_seq) == (11, 10)


def test_filters_next_prev_last(make):
    s = make()
    subjects = ["a.b", "a.c", "x.y.z", "a.b", "q"]
    for subj in subjects * 4:
        s.store_msg(subj, b"", subj.encode())
    assert s.load_next(["a.*"], 3).seq == 4
    assert s.load_next(["x.>"], 4).seq == 8
    assert s.load_next(["q", "x.y.z"], 9).seq == 10
    assert s.load_next(["nope"], 1) is None
    assert s.load_next(None, 19).seq == 19
    assert s.load_prev(["a.c"], 11).seq == 7
    assert s.load_prev(["*.*"], 20).seq == 19
    assert s.load_prev(None, 5).seq == 5
    assert s.load_last("a.>").seq == 19
    assert s.load_last(">").seq == 20
    assert s.load_last("a.b").seq == 19
    assert s.num_pending(1, ["a.b"]) == 8
    assert s.num_pending(10, ["a.*"]) == 6
    assert s.num_pending(10) == 11
    assert s.num_pending(1, ["a.*"], last_per_subject=True) == 2
    assert s.subjects_state("a.*") == {"a.b": 8, "a.c": 4}
    assert s.last_seq_per_subject(["a.b", "q"]) == {"a.b": 19, "q": 20}


def test_seq_for_time(make):
    s = make()
    for i in range(50):
        s.store_raw("t", b"", b"", i + 1, 1000 + i * 10)
    s.remove_msg(26)
    assert s.seq_for_time(0) == 1
    assert s.seq_for_time(1250) == 27
    assert s.seq_for_time(1251) == 27
    assert s.seq_for_time(1249) == 27  # 25 is at 1240, 26 is gone
    assert s.seq_for_time(99999) == 51


def test_max_age_expiry(make):
    s = make(max_age_ns=SECOND)
    fill(s, 5)
    now = time.time_ns()
    assert s.next_expiry() == s.state().first_ts + SECOND
    assert s.expire(now) == []
    assert s.state().msgs == 5
    removed = []
    assert s.expire(now + 2 * SECOND, removed) == []
    assert removed == [1, 2, 3, 4, 5] and s.state().msgs == 0 and s.next_expiry() is None


def test_per_message_ttl_and_never(make):
    s = make(max_age_ns=10 * SECOND, allow_msg_ttl=True)
    a, ts = s.store_msg("a", b"", b"", ttl_ns=2 * SECOND)
    b, _ = s.store_msg("b", b"", b"", ttl_ns=-1)  # "never": exempt from max_age
    c, _ = s.store_msg("c", b"", b"")
    assert s.next_expiry() == ts + 2 * SECOND
    s = make.reopen(s, max_age_ns=10 * SECOND, allow_msg_ttl=True)
    removed = []
    s.expire(ts + 3 * SECOND, removed)
    assert removed == [a]
    s.expire(ts + 60 * SECOND, removed)
    assert removed == [a, c]
    assert s.load_msg(b) is not None


def test_subject_delete_markers_on_age_expiry(make):
    s = make(max_age_ns=SECOND, subject_delete_marker_ttl_ns=5 * SECOND, allow_msg_ttl=True)
    s.store_msg("kv.a", b"", b"1")
    s.store_msg("kv.a", b"", b"2")
    s.store_msg("kv.b", b"", b"1")
    markers = s.expire(time.time_ns() + 2 * SECOND)
    assert sorted(m.subject for m in markers) == ["kv.a", "kv.b"]
    m = s.load_last("kv.a")
    assert m.seq == markers[0].seq or m.seq == markers[1].seq
    assert b"Nats-Marker-Reason: MaxAge" in m.hdr and b"Nats-TTL: 5s" in m.hdr and m.data == b""
    # markers expire by their own TTL and leave no marker behind
    assert s.expire(time.time_ns() + 10 * SECOND) == []
    assert s.state().msgs == 0


def test_update_config_applies_limits_now(make):
    s = make()
    fill(s, 10, subject=lambda i: "u.%d" % (i % 2))
    s.update_config(StoreConfig("S", max_msgs_per_subject=2))
    assert s.state().msgs == 4
    s.update_config(StoreConfig("S", max_msgs=2, discard_new=True))
    assert s.state().msgs == 4  # as Go: discard new never drops what is stored
    s.update_config(StoreConfig("S", max_msgs=1))
    assert s.state().msgs == 1 and s.state().first_seq == 10


def test_consumer_state_and_meta(make):
    s = make()
    c = s.consumer_store("dur")
    assert c.load() is None
    state = ConsumerState(5, 9, 3, 7, {8: (4, 123), 9: (5, 456)}, {8: 2})
    c.update(state)
    c.write_meta(b'{"durable_name":"dur"}')
    s.write_meta(b'{"name":"S"}')
    s = make.reopen(s)
    assert s.consumer_names() == ["dur"]
    assert s.read_meta() == b'{"name":"S"}'
    c = s.consumer_store("dur")
    assert c.load() == state and c.read_meta() == b'{"durable_name":"dur"}'
    c.delete()
    assert s.consumer_names() == []


def test_closed_store_raises(make):
    s = make()
    s.close()
    with pytest.raises(ErrStoreClosed):
        s.store_msg("a", b"", b"")


def test_delete_removes_everything(make, tmp_path):
    s = make()
    fill(s, 10)
    s.delete()
    assert not (tmp_path / "S").exists()


def test_load_run_matches_load_next(make):
    """A consumer's batch read (load_run) gives what load_next gives one by one:
    across blocks, around deleted and erased messages, from any start, any count."""
    store = make()
    for i in range(300):
        store.store_msg("s.%d" % (i % 5), b"NATS/1.0\r\nI: %d\r\n\r\n" % i if i % 4 == 0
                        else b"", b"p%d" % i)
    for seq in (1, 2, 50, 51, 52, 199, 300):
        store.remove_msg(seq, erase=seq == 51)
    store = make.reopen(store)
    want = []
    seq = 1
    while (msg := store.load_next(None, seq)) is not None:
        want.append((msg.seq, msg.subject.encode(), msg.ts, bytes(msg.hdr), bytes(msg.data)))
        seq = msg.seq + 1
    assert len(want) == 293
    for start, count in ((1, 1000), (1, 7), (49, 10), (53, 256), (298, 5), (301, 3), (0, 0)):
        got = [tuple(bytes(x) if isinstance(x, (bytes, memoryview)) else x for x in r)
               for r in store.load_run(start, count)]
        expect = [w for w in want if w[0] >= start][:count]
        assert got == expect, (start, count)


def test_write_behind_holds_until_flush_and_reads_see_everything(tmp_path):
    """File store write-behind (the stream's per-read-batch write): appends are
    held, any read or delete writes them first, flush_writes writes them in one
    go, and a reopen finds exactly what was flushed."""
    store = open_stream_store("file", str(tmp_path / "wb"), StoreConfig("WB", block_size=2048))
    store.defer_writes = True
    fill(store, 3)
    blk = Path(tmp_path / "wb" / "msgs" / "1.blk")
    size0 = blk.stat().st_size
    fill(store, 5)
    assert blk.stat().st_size == size0  # held
    assert store.load_msg(7).data == b"x" * 16  # a read writes them first
    assert blk.stat().st_size > size0
    fill(store, 40)  # past one block: the held records go with their block
    store.remove_msg(10)  # a delete is written at once, after what was held
    store.flush_writes()
    assert store.take_write_failures() == []
    state = store.state()
    store.close()
    again = open_stream_store("file", str(tmp_path / "wb"), StoreConfig("WB", block_size=2048))
    assert (again.state().msgs, again.state().last_seq) == (state.msgs, state.last_seq) == (47, 48)
    again.close()


def test_write_behind_failure_takes_the_messages_back(tmp_path):
    """A held write that fails (the block file's descriptor is gone) leaves the
    index without those messages and names their sequences; the store goes on."""
    import os

    store = open_stream_store("file", str(tmp_path / "wbf"), StoreConfig("WBF"))
    store.defer_writes = True
    fill(store, 2)
    store.flush_writes()
    fill(store, 3)
    fd = store._wfd
    os.close(fd)
    store._wfd = os.open(os.devnull, os.O_RDONLY)  # writes now fail (EBADF)
    store.flush_writes()
    failures = store.take_write_failures()
    assert [seqs for seqs, _ in failures] == [[3, 4, 5]]
    assert isinstance(failures[0][1], StoreError)
    assert store.state().msgs == 2 and store.load_msg(4) is None
    os.close(store._wfd)
    store._wfd = os.open(str(tmp_path / "wbf" / "msgs" / "1.blk"), os.O_RDWR)
    fill(store, 1)
    store.flush_writes()
    assert store.take_write_failures() == []
    assert store.state().msgs == 3
    store.close()


@pytest.mark.parametrize("defer", [True, False], ids=["write_behind", "direct"])
def test_raw_run_stores_as_one_store_raw_each(make, defer):
    """``store_raw_run`` without limits (the engine's run append, the
    bookkeeping once per run) leaves the store exactly as ``store_raw`` per
    message: messages, a gap, several blocks, subject counts, bytes, and (file)
    what a reopen finds; a sequence not above the last stops the run there."""
    items = [("a.%d" % (i % 3), b"NATS/1.0\r\nK: v\r\n\r\n" if i % 7 == 0 else b"",
              b"p%d" % i * (i % 40), seq, 1_000 + seq)
             for i, seq in enumerate(list(range(1, 60)) + list(range(70, 130)))]
    one, run = make("ONE"), make("RUN")
    for store in (one, run):
        store.defer_writes = defer if make.kind == "file" else False
    for subject, hdr, data, seq, ts in items:
        one.store_raw(subject, hdr, data, seq, ts)
    assert run.store_raw_run(items[:50]) == (50, None)
    assert run.store_raw_run(items[50:]) == (len(items) - 50, None)
    n, err = run.store_raw_run([("a.0", b"", b"late", 129, 5), ("a.0", b"", b"x", 200, 6)])
    assert n == 0 and "not above" in str(err)

    def seen(store):
        st = store.state()
        msgs = []
        seq = 1
        while (msg := store.load_next(None, seq)) is not None:
            msgs.append((msg.seq, msg.subject, bytes(msg.hdr or b""), bytes(msg.data), msg.ts))
            seq = msg.seq + 1
        return ((st.msgs, st.bytes, st.first_seq, st.last_seq, st.last_ts, st.num_subjects,
                 st.num_deleted), store.subjects_state(None),
                store.last_seq_per_subject(None), msgs)

    if make.kind == "file":
        one.flush_writes()
        run.flush_writes()
    want = seen(one)
    assert want[0][0] == len(items) and seen(run) == want
    if make.kind == "file":
        run.close()
        assert seen(make("RUN")) == want
