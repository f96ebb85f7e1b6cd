"""THROW-AWAY in-memory stand-in for ``store/`` (JS-STORE-API.md), used until the
js-store branch is merged; then this file is deleted. Same names, same
semantics, nothing on disk (a "file" store is a memory store here)."""

import time
from dataclasses import dataclass, field

from pluggy_nats.subjects import subject_matches


class StoreError(Exception):
    pass


class ErrMaxMsgs(StoreError):
    pass


class ErrMaxBytes(StoreError):
    pass


class ErrMaxMsgsPerSubject(StoreError):
    pass


class ErrMaxMsgSize(StoreError):
    pass


class ErrStoreClosed(StoreError):
    pass


class ErrStorageFull(StoreError):
    pass


@dataclass
class StoreConfig:
    name: str
    subjects: list = ()
    max_msgs: int = -1
    max_bytes: int = -1
    max_age_ns: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard_new: bool = False
    discard_new_per_subject: bool = False
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl_ns: int = 0
    block_size: int = 0
    sync_always: bool = False


@dataclass
class StoredMsg:
    subject: str
    seq: int
    ts: int
    hdr: bytes
    data: bytes


@dataclass
class StreamState:
    msgs: int
    bytes: int
    first_seq: int
    first_ts: int
    last_seq: int
    last_ts: int
    num_subjects: int
    num_deleted: int
    deleted: list = None


@dataclass
class ConsumerState:
    delivered_consumer_seq: int = 0
    delivered_stream_seq: int = 0
    ack_floor_consumer_seq: int = 0
    ack_floor_stream_seq: int = 0
    pending: dict = field(default_factory=dict)
    redelivered: dict = field(default_factory=dict)


def _size(subject, hdr, data):
    return len(subject) + len(hdr) + len(data) + 16


def _match_any(filters, subject):
    if not filters:
        return True
    s = subject.encode()
    return any(f == ">" or subject_matches(f.encode(), s) for f in filters)


class ConsumerStore:
    def __init__(self, owner, name):
        self.owner = owner
        self.name = name

    def update(self, state):
        self.owner._consumers[self.name] = state

    def load(self):
        return self.owner._consumers.get(self.name)

    def delete(self):
        self.owner._consumers.pop(self.name, None)


class StreamStore:
    def __init__(self, config):
        self.config = config
        self.msgs = {}  # seq -> StoredMsg, insertion (= seq) order
        self.ttls = {}  # seq -> expiry ns
        self.first_seq = 1
        self.last_seq = 0
        self.last_ts = 0
        self.bytes = 0
        self._consumers = {}
        self._meta = None
        self.closed = False

    # -- writes
    def _check(self, subject, hdr, data):
        if self.closed:
            raise ErrStoreClosed("closed")
        c = self.config
        size = _size(subject, hdr, data)
        if c.max_msg_size >= 0 and len(hdr) + len(data) > c.max_msg_size:
            raise ErrMaxMsgSize("message size exceeds maximum allowed")
        if c.discard_new:
            if c.max_msgs > 0 and len(self.msgs) >= c.max_msgs:
                raise ErrMaxMsgs("maximum messages exceeded")
            if c.max_bytes > 0 and self.bytes + size > c.max_bytes:
                raise ErrMaxBytes("maximum bytes exceeded")
            if c.discard_new_per_subject and c.max_msgs_per_subject > 0:
                if sum(1 for m in self.msgs.values() if m.subject == subject) >= \
                        c.max_msgs_per_subject:
                    raise ErrMaxMsgsPerSubject("maximum messages per subject exceeded")

    def _append(self, subject, hdr, data, seq, ts, ttl_ns):
        msg = StoredMsg(subject, seq, ts, hdr, data)
        if not self.msgs:
            self.first_seq = seq
        self.msgs[seq] = msg
        self.bytes += _size(subject, hdr, data)
        self.last_seq = seq
        self.last_ts = ts
        if ttl_ns > 0:
            self.ttls[seq] = ts + ttl_ns
        self._enforce(subject)

    def _enforce(self, subject):
        c = self.config
        if c.max_msgs_per_subject > 0:
            same = [s for s, m in self.msgs.items() if m.subject == subject]
            for s in same[:max(0, len(same) - c.max_msgs_per_subject)]:
                self.remove_msg(s)
        while c.max_msgs > 0 and len(self.msgs) > c.max_msgs:
            self.remove_msg(next(iter(self.msgs)))
        while c.max_bytes > 0 and self.bytes > c.max_bytes and self.msgs:
            self.remove_msg(next(iter(self.msgs)))

    def store_msg(self, subject, hdr, data, ttl_ns=0):
        self._check(subject, hdr, data)
        ts = max(time.time_ns(), self.last_ts + 1)
        seq = self.last_seq + 1
        self._append(subject, hdr, data, seq, ts, ttl_ns)
        return seq, ts

    def store_raw(self, subject, hdr, data, seq, ts, ttl_ns=0):
        if seq <= self.last_seq:
            raise StoreError("sequence %d not above %d" % (seq, self.last_seq))
        self._append(subject, hdr, data, seq, ts, ttl_ns)

    def skip_msgs(self, seq, count):
        self.last_seq = max(self.last_seq, seq + count - 1)
        if not self.msgs:
            self.first_seq = self.last_seq + 1

    # -- reads
    def load_msg(self, seq):
        return self.msgs.get(seq)

    def load_next(self, filter_subjects, start_seq):
        for seq in range(max(start_seq, self.first_seq), self.last_seq + 1):
            m = self.msgs.get(seq)
            if m is not None and _match_any(filter_subjects, m.subject):
                return m
        return None

    def load_last(self, subject_filter):
        for m in reversed(self.msgs.values()):
            if _match_any([subject_filter], m.subject):
                return m
        return None

    def load_prev(self, filter_subjects, start_seq):
        for seq in range(min(start_seq, self.last_seq), self.first_seq - 1, -1):
            m = self.msgs.get(seq)
            if m is not None and _match_any(filter_subjects, m.subject):
                return m
        return None

    def seq_for_time(self, ts):
        for m in self.msgs.values():
            if m.ts >= ts:
                return m.seq
        return self.last_seq + 1

    def remove_msg(self, seq, erase=False):
        m = self.msgs.pop(seq, None)
        if m is None:
            return False
        self.ttls.pop(seq, None)
        self.bytes -= _size(m.subject, m.hdr, m.data)
        if self.msgs:
            self.first_seq = next(iter(self.msgs))
        else:
            self.first_seq = self.last_seq + 1
        return True

    def purge(self, subject=None, seq=0, keep=0):
        if subject in (None, "", ">") and not seq and not keep:
            n = len(self.msgs)
            self.msgs.clear()
            self.ttls.clear()
            self.bytes = 0
            self.first_seq = self.last_seq + 1
            return n
        cands = [m.seq for m in self.msgs.values()
                 if not subject or _match_any([subject], m.subject)]
        if seq:
            cands = [s for s in cands if s < seq]
        elif keep:
            cands = cands[:max(0, len(cands) - keep)]
        for s in cands:
            self.remove_msg(s)
        if seq and not self.msgs and not subject:
            self.first_seq = max(self.first_seq, seq)
            self.last_seq = max(self.last_seq, seq - 1)
        return len(cands)

    def compact(self, seq):
        cands = [s for s in self.msgs if s < seq]
        for s in cands:
            self.remove_msg(s)
        if not self.msgs:
            self.last_seq = max(self.last_seq, seq - 1)
            self.first_seq = self.last_seq + 1
        return len(cands)

    def state(self, with_deleted=False):
        first = self.msgs.get(self.first_seq)
        subjects = {m.subject for m in self.msgs.values()}
        span = (self.last_seq - self.first_seq + 1) if self.msgs else 0
        deleted = None
        if with_deleted:
            deleted = [s for s in range(self.first_seq, self.last_seq + 1) if s not in self.msgs]
        return StreamState(len(self.msgs), self.bytes, self.first_seq, first.ts if first else 0,
                           self.last_seq, self.last_ts, len(subjects),
                           max(0, span - len(self.msgs)), deleted)

    def subjects_state(self, filter_subject=">"):
        out = {}
        for m in self.msgs.values():
            if _match_any([filter_subject], m.subject):
                out[m.subject] = out.get(m.subject, 0) + 1
        return out

    def num_pending(self, start_seq, filter_subjects=None, last_per_subject=False):
        if last_per_subject:
            return sum(1 for s in self.last_seq_per_subject(filter_subjects).values()
                       if s >= start_seq)
        return sum(1 for m in self.msgs.values()
                   if m.seq >= start_seq and _match_any(filter_subjects, m.subject))

    def last_seq_per_subject(self, filter_subjects=None):
        out = {}
        for m in self.msgs.values():
            if _match_any(filter_subjects, m.subject):
                out[m.subject] = m.seq
        return out

    def expire(self, now_ns):
        removed = []
        c = self.config
        for m in list(self.msgs.values()):
            due = self.ttls.get(m.seq)
            if (c.max_age_ns and m.ts + c.max_age_ns <= now_ns) or (due and due <= now_ns):
                self.remove_msg(m.seq)
                removed.append(m)
        return removed

    def next_expiry(self):
        best = None
        if self.config.max_age_ns and self.msgs:
            best = next(iter(self.msgs.values())).ts + self.config.max_age_ns
        if self.ttls:
            t = min(self.ttls.values())
            best = t if best is None else min(best, t)
        return best

    def update_config(self, config):
        self.config = config
        for m in list(self.msgs.values())[-1:]:
            self._enforce(m.subject)
        while config.max_msgs_per_subject > 0 and self._over_per_subject():
            pass

    def _over_per_subject(self):
        counts = self.subjects_state()
        for subject, n in counts.items():
            if n > self.config.max_msgs_per_subject:
                self._enforce(subject)
                return True
        return False

    def sync(self):
        pass

    def flush_state(self):
        pass

    def close(self):
        self.closed = True

    def delete(self):
        self.close()
        self.msgs.clear()

    def consumer_store(self, name):
        return ConsumerStore(self, name)

    def consumer_names(self):
        return list(self._consumers)

    def write_meta(self, data):
        self._meta = data

    def read_meta(self):
        return self._meta


def open_stream_store(kind, directory, config):
    return StreamStore(config)
