"""Both stores against an obviously-correct model, over seeded random operation sequences.

The model is a plain dict by sequence with linear scans; the stores use their compact
indexes (per-subject lower bounds, offset arrays, front deletion, snapshots and replay).
Any divergence in what a reader can observe is a bug in the indexes.
"""

import random
import re

import pytest
from pluggy_nats_plugins.jetstream.store import StoreConfig, open_stream_store

SUBJECTS = ["a.x", "a.y", "b.x", "b.y.z", "c"]
FILTERS = [None, ["a.*"], ["b.>"], ["c"], ["a.x", "c"], ["*.x"], ["nope"], [">"]]


def matches(filters, subject):
    if not filters:
        return True
    for f in filters:
        tokens = {"*": "[^.]+", ">": ".+"}
        rx = r"\.".join(tokens.get(t, re.escape(t)) for t in f.split("."))
        if re.fullmatch(rx, subject):
            return True
    return False


class Model:
    def __init__(self, per_subject, max_msgs):
        self.msgs = {}
        self.last = 0
        self.per_subject = per_subject
        self.max_msgs = max_msgs

    @property
    def first(self):
        return min(self.msgs) if self.msgs else self.last + 1

    def store(self, seq, subject, data):
        self.msgs[seq] = (subject, data)
        self.last = seq
        if self.per_subject > 0:
            same = [s for s in sorted(self.msgs) if self.msgs[s][0] == subject]
            for s in same[:-self.per_subject]:
                del self.msgs[s]
        while self.max_msgs > 0 and len(self.msgs) > self.max_msgs:
            del self.msgs[min(self.msgs)]

    def purge(self, subject, seq, keep):
        cands = [s for s in sorted(self.msgs)
                 if (not subject or matches([subject], self.msgs[s][0])) and
                 (not seq or s < seq)]
        if keep:
            cands = cands[:-keep] if keep < len(cands) else []
        for s in cands:
            del self.msgs[s]
        if seq and not subject and seq > self.last + 1:
            self.last = seq - 1
        return len(cands)


def check(store, model, rnd):
    full = rnd.random() < 0.1  # the deleted list is O(span): now and then
    st = store.state(with_deleted=full)
    assert (st.msgs, st.first_seq, st.last_seq) == (len(model.msgs), model.first, model.last)
    span = model.last - model.first + 1 if model.msgs else 0
    assert st.num_deleted == span - len(model.msgs)
    if full and model.msgs:
        live = set(model.msgs)
        assert st.deleted == [s for s in range(model.first, model.last + 1) if s not in live]
    subjects = {}
    for subject, _ in model.msgs.values():
        subjects[subject] = subjects.get(subject, 0) + 1
    assert store.subjects_state() == subjects
    for _ in range(6):
        filters = rnd.choice(FILTERS)
        start = rnd.randint(0, model.last + 2)
        want = [s for s in sorted(model.msgs) if s >= start and matches(filters, model.msgs[s][0])]
        got = store.load_next(filters, start)
        assert (got.seq if got else None) == (want[0] if want else None), (filters, start)
        if got:
            assert (got.subject, got.data) == model.msgs[got.seq]
        assert store.num_pending(start, filters) == len(want), (filters, start)
        back = [s for s in sorted(model.msgs) if s <= start and matches(filters, model.msgs[s][0])]
        prev = store.load_prev(filters, start)
        assert (prev.seq if prev else None) == (back[-1] if back else None), (filters, start)
        last = [s for s in sorted(model.msgs) if matches(filters, model.msgs[s][0])]
        one = filters[0] if filters and len(filters) == 1 else ">"
        if not filters or len(filters) == 1:
            got_last = store.load_last(one)
            assert (got_last.seq if got_last else None) == (last[-1] if last else None), one
        per_subject = {}
        for s in sorted(model.msgs):
            if matches(filters, model.msgs[s][0]):
                per_subject[model.msgs[s][0]] = s
        assert store.last_seq_per_subject(filters) == per_subject


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_store_matches_model(tmp_path, kind, seed):
    run_model(tmp_path, kind, seed, 200)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(20, 50))
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_store_matches_model_soak(tmp_path, kind, seed):
    run_model(tmp_path, kind, seed, 1000)


def run_model(tmp_path, kind, seed, steps):
    rnd = random.Random(seed)
    per_subject = rnd.choice([0, 0, 2])
    max_msgs = rnd.choice([0, 0, 40])
    cfg = StoreConfig("M", max_msgs_per_subject=per_subject or -1, max_msgs=max_msgs or -1,
                      block_size=1024)
    directory = str(tmp_path / "M")
    store = open_stream_store(kind, directory, cfg)
    model = Model(per_subject, max_msgs)
    for step in range(steps):
        op = rnd.random()
        if op < 0.55:
            subject = rnd.choice(SUBJECTS)
            data = b"d%d" % step
            if rnd.random() < 0.1:
                seq = model.last + rnd.randint(1, 6000)  # mirror-like gap, maybe a big one
                store.store_raw(subject, b"", data, seq, step)
            else:
                seq, _ = store.store_msg(subject, b"", data)
            assert seq == (seq if seq > model.last else None)
            model.store(seq, subject, data)
        elif op < 0.72 and model.msgs:
            seq = rnd.choice(list(model.msgs)) if rnd.random() < 0.8 else model.last + 5
            assert store.remove_msg(seq, erase=rnd.random() < 0.2) == (seq in model.msgs)
            model.msgs.pop(seq, None)
        elif op < 0.80:
            subject = rnd.choice([None, "a.*", "c", "b.>"])
            seq = rnd.choice([0, 0, rnd.randint(1, model.last + 3)])
            keep = 0 if seq else rnd.choice([0, 1, 3])
            if subject is None and not seq and not keep and rnd.random() < 0.7:
                continue  # keep some history around
            assert store.purge(subject=subject, seq=seq, keep=keep) == \
                model.purge(subject, seq, keep)
        elif op < 0.84:
            count = rnd.randint(1, 50)
            store.skip_msgs(model.last + 1, count)
            model.last += count
        elif op < 0.90 and kind == "file":
            if rnd.random() < 0.5:
                store.close()
            else:  # a crash: no snapshot for what came after the last one
                if rnd.random() < 0.5:
                    store.flush_state()
                store._close_fds()
            store = open_stream_store(kind, directory, cfg)
        check(store, model, rnd)
    store.close()
