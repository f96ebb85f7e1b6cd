"""Group commit: one fsync answers every ack that was waiting for it."""

import gevent
import gevent.event
import pytest
from pluggy_nats_plugins.jetstream.store import (
    GroupCommit,
    StoreConfig,
    StoreError,
    gevent_group_commit,
    open_stream_store,
)


def test_one_sync_releases_every_waiter_and_late_ones_wait_for_the_next():
    scheduled, synced, answers = [], [], []

    def sync():
        synced.append(len(answers))
        if len(synced) == 1:
            gc.add(lambda err: answers.append(("late", err)))  # arrives during the fsync

    gc = GroupCommit(sync, scheduled.append)
    for i in range(3):
        gc.add(lambda err, i=i: answers.append((i, err)))
    assert len(scheduled) == 1  # only the first waiter schedules a flush
    assert scheduled.pop()() == 3
    assert answers == [(0, None), (1, None), (2, None)] and gc.syncs == 1
    assert len(scheduled) == 1  # the late one got its own flush
    assert scheduled.pop()() == 1
    assert answers[-1] == ("late", None) and gc.syncs == 2


def test_a_failed_sync_is_every_waiters_error():
    def sync():
        raise StoreError("disk gone")

    scheduled, answers = [], []
    gc = GroupCommit(sync, scheduled.append)
    gc.add(answers.append)
    gc.add(answers.append)
    scheduled.pop()()
    assert [str(a) for a in answers] == ["disk gone", "disk gone"]


def test_gevent_group_commit_batches_concurrent_publishers(tmp_path):
    store = open_stream_store("file", str(tmp_path / "G"), StoreConfig("G", sync_always=True))
    gc = gevent_group_commit(store)
    acked = []

    def publish(i):
        seq, _ = store.store_msg("g", b"", b"%d" % i)
        done = gevent.event.AsyncResult()
        gc.add(done.set)
        assert done.get(timeout=10) is None
        acked.append(seq)

    gevent.joinall([gevent.spawn(publish, i) for i in range(200)], timeout=30, raise_error=True)
    assert sorted(acked) == list(range(1, 201))
    assert 1 <= gc.syncs < 200  # batched: far fewer fsyncs than acks
    store.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_sync_is_safe_on_both_stores(tmp_path, kind):
    store = open_stream_store(kind, str(tmp_path / "Y"), StoreConfig("Y"))
    store.store_msg("y", b"", b"1")
    store.sync()
    store.flush_state()
    assert store.state().msgs == 1
    store.close()
