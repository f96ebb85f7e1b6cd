"""StreamStore: the stream semantics both stores share, over a few engine primitives.

Limits, discard policies, the per-subject index, purge/compact, expiry by age and TTL and
the subject delete markers live here once. An engine (``memstore``, ``filestore``) only
stores records by sequence and answers "which sequences are live". Every mutation is
"engine persists, then ``_note_*`` updates the counters", and the file store's recovery
replays its records through the same ``_note_*`` calls, so a reopened store is the store
that was written.
"""

import time

from .index import SubjectIndex, TtlWheel, compile_filters, literal_filters
from .types import (
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgSize,
    ErrMaxMsgsPerSubject,
    ErrStoreClosed,
    StoredMsg,
    StoreError,
    StreamState,
)

MARKER_REASON = b"Nats-Marker-Reason"


def go_duration(ns):
    """Whole-second Go ``time.Duration.String()`` (markers' ``Nats-TTL``: "1h2m3s")."""
    secs = max(1, ns // 1_000_000_000)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


class StreamStore:
    """One stream's messages. Synchronous; the caller serialises calls."""

    kind = ""

    def __init__(self, config):
        self.config = config
        self._msgs = 0
        self._bytes = 0
        self._first = 1  # when empty: last + 1, as Go reports it
        self._last = 0
        self._last_ts = 0
        self._subjects = SubjectIndex()
        self._ttls = TtlWheel()
        self._age_cursor = 0  # live messages below it are all exempt from max_age
        self._first_ts = (0, 0)  # (first seq, its timestamp), cached for state()
        self._closed = False
        self.lost = []  # sequences found corrupt/torn on open (file store)
        self.lost_bytes = 0

    # -- engine primitives ------------------------------------------------------------

    def _e_append(self, seq, ts, subject, hdr, data, ttl):
        """Store a message; returns its size as Go counts it (state.bytes, max_bytes)."""
        raise NotImplementedError

    def _e_append_run(self, items):
        """``_e_append`` (ttl 0) for each ``(subject, hdr, data, seq, ts)`` of
        ``items`` in order; returns ``(appended, their size as Go counts it,
        the StoreError that stopped the rest or None)``. Engines may do it
        without a call per message."""
        size = n = 0
        append, last = self._e_append, self._last
        try:
            for subject, hdr, data, seq, ts in items:
                if seq <= last:
                    raise _not_above(seq, last)
                size += append(seq, ts, subject, hdr, data, 0)
                last = seq
                n += 1
        except StoreError as exc:
            return n, size, exc
        return n, size, None

    def _e_load(self, seq):
        """(subject, ts, hdr, data, ttl) of a live message, or None."""
        raise NotImplementedError

    def _e_meta(self, seq):
        """(subject, size, ttl, ts) of a live message without its payload, or None."""
        raise NotImplementedError

    def _e_remove(self, seq, erase, subject):
        raise NotImplementedError

    def _e_skip(self, seq, count):
        raise NotImplementedError

    def _e_persist_purge(self, floor):
        """Persist "every sequence below floor is gone"."""
        raise NotImplementedError

    def _e_drop_below(self, floor):
        """Forget every sequence below floor in the engine's index."""
        raise NotImplementedError

    def _e_next_live(self, seq, hi):
        """The first live sequence in [seq, hi], or None."""
        raise NotImplementedError

    def _e_prev_live(self, seq, lo):
        """The last live sequence in [lo, seq], or None."""
        raise NotImplementedError

    def _e_count_live(self, lo, hi):
        raise NotImplementedError

    def _e_deleted(self, lo, hi):
        raise NotImplementedError

    def _e_skip_to(self, seq, hi, subjects):
        """A sequence >= seq before which none of these literal subjects occurs (engines
        with per-block subject sets skip whole blocks; the default skips nothing)."""
        return seq

    def _e_count_matching(self, lo, hi, match):
        """Live messages in [lo, hi] whose subject matches (engines may do better)."""
        return sum(1 for _ in self._scan(match, lo, hi))

    def _msg_size(self, subject, hdr, data):
        raise NotImplementedError

    # -- bookkeeping shared by writes and recovery ------------------------------------

    def _note_append(self, seq, ts, subject, size, ttl):
        if self._msgs == 0:
            self._first = seq
        self._msgs += 1
        self._bytes += size
        self._last = seq
        self._last_ts = ts
        self._subjects.add(subject, seq)
        if ttl > 0:
            self._ttls.add(seq, ts + ttl)

    def _note_remove(self, seq, subject, size):
        self._msgs -= 1
        self._bytes -= size
        subjects = self._subjects.subjects
        entry = subjects.get(subject)
        if entry is not None:
            entry[0] -= 1
            if entry[0] <= 0:
                del subjects[subject]
            else:
                if seq == entry[2]:
                    entry[2] = self._scan_back(subject, seq - 1, entry[1])
                if seq == entry[1]:
                    entry[1] = seq + 1
                if entry[0] == 1:
                    entry[1] = entry[2]
        if self._msgs == 0:
            self._first = self._last + 1
        elif seq == self._first:
            nxt = self._e_next_live(seq + 1, self._last)
            self._first = self._last + 1 if nxt is None else nxt

    def _note_gap(self, last):
        """Sequences up to ``last`` are used (skipped or purged) without messages."""
        if last > self._last:
            self._last = last
        if self._msgs == 0:
            self._first = self._last + 1

    # -- writes -----------------------------------------------------------------------

    def _check_open(self):
        if self._closed:
            raise ErrStoreClosed("store is closed")

    def store_msg(self, subject, hdr, data, ttl_ns=0):
        """Append; enforces limits (discard old removes oldest; discard new raises ErrMax*).
        ``ttl_ns`` > 0 expires the message then; < 0 means "never" (exempt from max_age)."""
        self._check_open()
        self._check_limits(subject, hdr, data)
        ts = time.time_ns()
        if ts <= self._last_ts:
            ts = self._last_ts + 1  # keep time order with sequence order (seq_for_time)
        seq = self._last + 1
        self._append(seq, ts, subject, hdr, data, ttl_ns)
        self._enforce_limits(subject)
        return seq, ts

    def store_raw(self, subject, hdr, data, seq, ts, ttl_ns=0):
        """Append at a given seq/ts (mirrors, RAFT apply); gaps become deleted sequences."""
        self._check_open()
        if seq <= self._last:
            raise StoreError("sequence %d is not above the last sequence %d" % (seq, self._last))
        self._check_limits(subject, hdr, data)
        self._append(seq, ts, subject, hdr, data, ttl_ns)
        self._enforce_limits(subject)

    def store_raw_run(self, items):
        """``store_raw`` for each ``(subject, hdr, data, seq, ts)`` of ``items``
        in order (a mirror's run): the limits are checked per message only
        where the config has any. Returns how many were stored and the error
        that stopped the rest (None when all were)."""
        self._check_open()
        c = self.config
        limited = c.max_msg_size >= 0 or c.discard_new or c.max_msgs > 0 or \
            c.max_bytes > 0 or c.max_msgs_per_subject > 0
        if not limited:
            return self._append_run(items)
        append, note = self._e_append, self._note_append
        n = 0
        try:
            for subject, hdr, data, seq, ts in items:
                if seq <= self._last:
                    raise StoreError("sequence %d is not above the last sequence %d"
                                     % (seq, self._last))
                if limited:
                    self._check_limits(subject, hdr, data)
                note(seq, ts, subject, append(seq, ts, subject, hdr, data, 0), 0)
                n += 1
                if limited:
                    self._enforce_limits(subject)
        except StoreError as exc:
            return n, exc
        return n, None

    def _append_run(self, items):
        """``store_raw_run`` with no limits to check: the engine appends the
        run, then its bookkeeping (``_note_append``'s) is done once, the
        subject index message by message."""
        if not items:
            return 0, None
        n, size, err = self._e_append_run(items)
        if not n:
            return 0, err
        done = items[:n] if n < len(items) else items
        if self._msgs == 0:
            self._first = done[0][3]
        self._msgs += n
        self._bytes += size
        self._last = done[-1][3]
        self._last_ts = done[-1][4]
        subjects = self._subjects.subjects
        for subject, _, _, seq, _ in done:  # count_subject, inline
            entry = subjects.get(subject)
            if entry is None:
                subjects[subject] = [1, seq, seq]
            else:
                entry[0] += 1
                entry[2] = seq
        return n, err

    def _append(self, seq, ts, subject, hdr, data, ttl):
        self._note_append(seq, ts, subject, self._e_append(seq, ts, subject, hdr, data, ttl), ttl)

    def skip_msgs(self, seq, count):
        """Reserve ``count`` sequences from ``seq`` as deleted (mirror gaps)."""
        self._check_open()
        if count <= 0:
            return
        if seq <= self._last:
            raise StoreError("sequence %d is not above the last sequence %d" % (seq, self._last))
        self._e_skip(seq, count)
        self._note_gap(seq + count - 1)

    def _check_limits(self, subject, hdr, data):
        c = self.config
        if c.max_msg_size >= 0 and len(hdr) + len(data) > c.max_msg_size:
            raise ErrMaxMsgSize("message size exceeds maximum allowed")
        if not c.discard_new:
            return
        # As Go: a message that will replace its subject's oldest is not "new" for the
        # stream-wide limits (a full KV bucket still takes updates of existing keys).
        replaces = None
        if c.max_msgs_per_subject > 0:
            entry = self._subjects.subjects.get(subject)
            if entry is not None and entry[0] >= c.max_msgs_per_subject:
                if c.discard_new_per_subject:
                    raise ErrMaxMsgsPerSubject("maximum messages per subject exceeded")
                replaces = entry
        if c.max_msgs > 0 and self._msgs >= c.max_msgs and replaces is None:
            raise ErrMaxMsgs("maximum messages exceeded")
        if c.max_bytes > 0:
            size = self._msg_size(subject, hdr, data)
            if self._bytes + size > c.max_bytes:
                freed = 0
                if replaces is not None:
                    meta = self._e_meta(self._subject_first(subject, replaces))
                    freed = meta[1] if meta else 0
                if self._bytes + size - freed > c.max_bytes:
                    raise ErrMaxBytes("maximum bytes exceeded")

    def stage_batch(self):
        """A :class:`StagedBatch` to check an atomic batch's messages against
        before any of them is stored."""
        return StagedBatch(self)

    def _subject_msgs(self, subject):
        entry = self._subjects.subjects.get(subject)
        return entry[0] if entry is not None else 0

    def _enforce_limits(self, subject=None):
        c = self.config
        if c.max_msgs_per_subject > 0:
            subjects = self._subjects.subjects
            names = [subject] if subject is not None else [
                s for s, e in subjects.items() if e[0] > c.max_msgs_per_subject]
            for name in names:
                entry = subjects.get(name)
                while entry is not None and entry[0] > c.max_msgs_per_subject:
                    self._remove(self._subject_first(name, entry))
                    entry = subjects.get(name)
        if c.discard_new:
            return  # as Go: discard new refuses new messages, it never drops old ones
        if c.max_msgs > 0:
            while self._msgs > c.max_msgs:
                self._remove(self._first)
        if c.max_bytes > 0:
            while self._bytes > c.max_bytes and self._msgs:
                self._remove(self._first)

    def _remove(self, seq, erase=False):
        meta = self._e_meta(seq)
        if meta is None:
            return False
        self._e_remove(seq, erase, meta[0])
        self._note_remove(seq, meta[0], meta[1])
        return True

    def remove_msg(self, seq, erase=False):
        """Delete one message (``erase`` also overwrites it on disk); False if absent."""
        self._check_open()
        if seq < self._first or seq > self._last:
            return False
        return self._remove(seq, erase)

    def purge(self, subject=None, seq=0, keep=0):
        """STREAM.PURGE semantics: ``subject`` filter, below ``seq`` (exclusive), or all but
        the last ``keep``. Returns how many messages went."""
        self._check_open()
        if subject in (None, "", ">"):
            if seq:
                return self.compact(seq)
            if keep:
                if keep >= self._msgs:
                    return 0
                return self.compact(self._nth_live_from_end(keep))
            return self.compact(self._last + 1)
        match = compile_filters([subject])
        lits = literal_filters([subject])
        hi = self._last if not seq else min(self._last, seq - 1)
        if lits:
            entry = self._subjects.subjects.get(subject)
            if entry is None:
                return 0
            cands = list(self._scan(match, self._subject_first(subject, entry),
                                    min(hi, entry[2])))
        else:
            cands = list(self._scan(match, self._first, hi))
        if keep:
            cands = cands[:-keep] if keep < len(cands) else []
        for s in cands:
            self._remove(s)
        return len(cands)

    def _nth_live_from_end(self, n):
        seq = self._last
        for _ in range(n):
            seq = self._e_prev_live(seq, self._first)
            if seq is None:
                return self._first
            last_found = seq
            seq -= 1
        return last_found

    def compact(self, seq):
        """Remove every message below ``seq``; returns how many went."""
        self._check_open()
        if seq <= self._first and self._msgs:
            return 0
        if not self._msgs and seq <= self._last + 1:
            return 0
        self._e_persist_purge(seq)
        return self._apply_compact(seq)

    def _apply_compact(self, floor):
        """Drop everything below ``floor`` (also the file store's replay of a purge)."""
        if floor > self._last:
            removed = self._msgs
            self._e_drop_below(floor)
            self._msgs = self._bytes = 0
            self._subjects.clear()
            self._ttls.clear()
            self._note_gap(floor - 1)
            self._first = floor
            return removed
        subjects = self._subjects.subjects
        removed = freed = 0
        touched = set()
        for cur in list(self._scan(None, self._first, floor - 1)):
            meta = self._e_meta(cur)
            if meta is None:
                continue
            entry = subjects.get(meta[0])
            if entry is not None:
                entry[0] -= 1
                touched.add(meta[0])
            removed += 1
            freed += meta[1]
        for subject in touched:
            entry = subjects[subject]
            if entry[0] <= 0:
                del subjects[subject]
            elif entry[0] == 1:
                entry[1] = entry[2]
            else:
                entry[1] = max(entry[1], floor)
        self._msgs -= removed
        self._bytes -= freed
        self._e_drop_below(floor)
        nxt = self._e_next_live(floor, self._last) if self._msgs else None
        self._first = self._last + 1 if nxt is None else nxt
        return removed

    # -- reads ------------------------------------------------------------------------

    def _stored(self, seq):
        rec = self._e_load(seq)
        if rec is None:
            return None
        return StoredMsg(rec[0], seq, rec[1], rec[2], rec[3])

    def load_msg(self, seq):
        self._check_open()
        if seq < self._first or seq > self._last:
            return None
        return self._stored(seq)

    def load_run(self, start_seq, count):
        """Up to ``count`` live messages from ``start_seq`` on, in order, as
        ``(seq, subject bytes, ts, hdr, data)`` tuples: a pull consumer's batch
        (unfiltered) in one call instead of a ``load_next`` per message."""
        self._check_open()
        lo = max(start_seq, self._first)
        if lo > self._last or not self._msgs or count <= 0:
            return []
        return self._e_load_run(lo, self._last, count)

    def _e_load_run(self, seq, hi, count):
        """Engines with a faster sequential read override this."""
        out = []
        while len(out) < count:
            seq = self._e_next_live(seq, hi)
            if seq is None:
                break
            rec = self._e_load(seq)
            if rec is not None:
                out.append((seq, rec[0].encode(), rec[1], rec[2], rec[3]))
            seq += 1
        return out

    def _scan(self, match, lo, hi):
        """Live sequences in [lo, hi] whose subject the predicate accepts (None = all)."""
        seq = lo
        next_live, meta = self._e_next_live, self._e_meta
        while seq <= hi:
            seq = next_live(seq, hi)
            if seq is None:
                return
            if match is None:
                yield seq
            else:
                m = meta(seq)
                if m is not None and match(m[0]):
                    yield seq
            seq += 1

    def _scan_back(self, subject, hi, lo):
        """The last live sequence in [lo, hi] with this subject (0 if none)."""
        seq = hi
        while seq >= lo:
            seq = self._e_prev_live(seq, lo)
            if seq is None:
                break
            meta = self._e_meta(seq)
            if meta is not None and meta[0] == subject:
                return seq
            seq -= 1
        return 0

    def _subject_first(self, subject, entry):
        """The subject's first live sequence (tightens the index's lower bound)."""
        if entry[0] == 1:
            return entry[2]
        seq, hi, only = max(entry[1], self._first), entry[2], (subject,)
        while seq <= hi:
            seq = self._e_next_live(self._e_skip_to(seq, hi, only), hi)
            if seq is None:
                break
            meta = self._e_meta(seq)
            if meta is not None and meta[0] == subject:
                entry[1] = seq
                return seq
            seq += 1
        return entry[2]

    def load_next(self, filter_subjects, start_seq):
        """First message with seq >= start_seq whose subject matches any filter."""
        self._check_open()
        lo = max(start_seq, self._first)
        if lo > self._last or not self._msgs:
            return None
        match = compile_filters(filter_subjects)
        if match is None:
            seq = self._e_next_live(lo, self._last)
            return None if seq is None else self._stored(seq)
        hi = self._last
        lits = literal_filters(filter_subjects)
        if lits:
            entries = [(s, self._subjects.subjects[s]) for s in lits
                       if s in self._subjects.subjects]
            entries = [(s, e) for s, e in entries if e[2] >= lo]
            if not entries:
                return None
            if len(entries) == 1:
                subject, entry = entries[0]
                if entry[0] == 1 or entry[2] == lo:
                    return self._stored(entry[2])
                if lo <= entry[1]:
                    return self._stored(self._subject_first(subject, entry))
            lo = max(lo, min(e[1] for _, e in entries))
            hi = max(e[2] for _, e in entries)
        seq, next_live, load = lo, self._e_next_live, self._e_load
        skip = self._e_skip_to if lits else None
        while seq <= hi:  # one read per candidate: the subject comes with the message
            if skip is not None:
                seq = skip(seq, hi, lits)
            seq = next_live(seq, hi)
            if seq is None:
                return None
            rec = load(seq)
            if rec is not None and match(rec[0]):
                return StoredMsg(rec[0], seq, rec[1], rec[2], rec[3])
            seq += 1
        return None

    def load_prev(self, filter_subjects, start_seq):
        """Last message with seq <= start_seq whose subject matches any filter."""
        self._check_open()
        hi = min(start_seq, self._last)
        match = compile_filters(filter_subjects)
        lits = literal_filters(filter_subjects)
        lo = self._first
        if lits and len(lits) == 1:
            entry = self._subjects.subjects.get(lits[0])
            if entry is None:
                return None
            if entry[2] <= hi:
                return self._stored(entry[2])
            lo = max(lo, entry[1])
        seq = hi
        while seq >= lo:
            seq = self._e_prev_live(seq, lo)
            if seq is None:
                return None
            if match is None or match(self._e_meta(seq)[0]):
                return self._stored(seq)
            seq -= 1
        return None

    def load_last(self, subject_filter):
        """The last message matching the filter (KV get)."""
        self._check_open()
        match = compile_filters([subject_filter] if subject_filter else None)
        if match is None:
            seq = self._e_prev_live(self._last, self._first) if self._msgs else None
            return None if seq is None else self._stored(seq)
        if literal_filters([subject_filter]):
            entry = self._subjects.subjects.get(subject_filter)
            return None if entry is None else self._stored(entry[2])
        best = max((e[2] for _, e in self._subjects.matching(match)), default=0)
        return self._stored(best) if best else None

    def seq_for_time(self, ts):
        """The first sequence whose timestamp is >= ts (last_seq + 1 if none)."""
        self._check_open()
        if not self._msgs:
            return self._last + 1
        last_live = self._e_prev_live(self._last, self._first)
        if self._e_meta(last_live)[3] < ts:
            return self._last + 1
        lo, hi = self._first, last_live
        while lo < hi:
            mid = (lo + hi) // 2
            seq = self._e_next_live(mid, last_live)
            if self._e_meta(seq)[3] >= ts:
                hi = mid
            else:
                lo = seq + 1
        return self._e_next_live(lo, last_live)

    # -- state ------------------------------------------------------------------------

    def state(self, with_deleted=False):
        self._check_open()
        first_ts = 0
        if self._msgs:
            # The API asks for state() on many publishes: one read per first sequence.
            if self._first_ts[0] != self._first:
                meta = self._e_meta(self._first)
                self._first_ts = (self._first, meta[3] if meta else 0)
            first_ts = self._first_ts[1]
        span = self._last - self._first + 1 if self._msgs else 0
        deleted = None
        if with_deleted:
            deleted = self._e_deleted(self._first, self._last) if self._msgs else []
        return StreamState(self._msgs, self._bytes, self._first, first_ts, self._last,
                           self._last_ts, len(self._subjects.subjects),
                           max(0, span - self._msgs), deleted, list(self.lost) or None,
                           self.lost_bytes)

    def subjects_state(self, filter_subject=">"):
        """subject -> number of stored messages, for subjects matching the filter."""
        self._check_open()
        match = compile_filters([filter_subject] if filter_subject else None)
        return {s: e[0] for s, e in self._subjects.matching(match)}

    def last_seq_per_subject(self, filter_subjects=None):
        self._check_open()
        match = compile_filters(filter_subjects)
        return {s: e[2] for s, e in self._subjects.matching(match)}

    def num_pending(self, start_seq, filter_subjects=None, last_per_subject=False):
        """Messages at or above start_seq matching the filters (or subjects whose last
        message is there, with ``last_per_subject``)."""
        self._check_open()
        lo = max(start_seq, self._first)
        if lo > self._last or not self._msgs:
            return 0
        match = compile_filters(filter_subjects)
        if last_per_subject:
            return sum(1 for _, e in self._subjects.matching(match) if e[2] >= lo)
        if match is None:
            return self._e_count_live(lo, self._last)
        entries = [e for _, e in self._subjects.matching(match) if e[2] >= lo]
        if all(e[1] >= lo for e in entries):
            return sum(e[0] for e in entries)
        return self._e_count_matching(lo, max(e[2] for e in entries), match)

    # -- expiry -----------------------------------------------------------------------

    def expire(self, now_ns, removed=None):
        """Enforce max_age and per-message TTLs at ``now_ns``. With a subject delete marker
        TTL, a message that was its subject's last leaves a marker (stored here); the
        markers are returned. ``removed``, if a list, gets the removed sequences."""
        self._check_open()
        markers = []
        for seq in self._ttls.pop_due(now_ns):
            if self._first <= seq <= self._last:
                self._expire_one(seq, markers, removed)
        max_age = self.config.max_age_ns
        if max_age > 0 and self._msgs:
            cutoff = now_ns - max_age
            seq = max(self._first, self._age_cursor)
            while self._msgs:
                seq = self._e_next_live(seq, self._last)
                if seq is None:
                    break
                _, _, ttl, ts = self._e_meta(seq)
                if ttl == 0:
                    if ts > cutoff:
                        break
                    self._expire_one(seq, markers, removed)
                else:
                    # Exempt (own TTL or "never"); everything below is gone or exempt.
                    self._age_cursor = seq + 1
                seq += 1
        return markers

    def _expire_one(self, seq, markers, removed):
        marker_ttl = self.config.subject_delete_marker_ttl_ns
        meta = self._e_meta(seq)
        if meta is None:
            return  # removed otherwise before its time
        subject = meta[0]
        rec = self._e_load(seq) if marker_ttl > 0 else None
        if not self._remove(seq):
            return
        if removed is not None:
            removed.append(seq)
        if rec is not None and MARKER_REASON not in rec[2] \
                and subject not in self._subjects.subjects:
            hdr = ("NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: %s\r\n\r\n"
                   % go_duration(marker_ttl)).encode()
            ts = max(time.time_ns(), self._last_ts + 1)
            seq = self._last + 1
            self._append(seq, ts, subject, hdr, b"", marker_ttl)
            markers.append(StoredMsg(subject, seq, ts, hdr, b""))

    def next_expiry(self):
        """ns timestamp of the next age/TTL expiry (for the caller's timer), or None."""
        self._check_open()
        best = self._ttls.next_expiry()
        if self.config.max_age_ns > 0 and self._msgs:
            seq = max(self._first, self._age_cursor)
            while True:
                seq = self._e_next_live(seq, self._last)
                if seq is None:
                    break
                _, _, ttl, ts = self._e_meta(seq)
                if ttl == 0:
                    due = ts + self.config.max_age_ns
                    best = due if best is None else min(best, due)
                    break
                self._age_cursor = seq + 1
                seq += 1
        return best

    def update_config(self, config):
        """New limits applied at once."""
        self._check_open()
        self.config = config
        self._age_cursor = 0
        self._enforce_limits()

    # -- lifecycle (engines extend) ---------------------------------------------------

    def flush_writes(self):
        """Write what appends held back (engines with write-behind; see the file store)."""

    def take_write_failures(self):
        """[(seqs, StoreError)] of held writes that failed (write-behind engines)."""
        return []

    def sync(self):
        """fsync what is written (the only fsync point; group commit is the caller's)."""

    def flush_state(self):
        """Write the index so the next open is fast."""

    def close(self):
        self._closed = True

    def delete(self):
        self.close()


class StagedBatch:
    """The messages of an atomic batch checked so far, not stored: which
    subjects it writes, and Go's discard new check for it (jetstream_batching.go
    ``checkMsgHeadersPreClusteredProposal``): the stream's totals plus the
    batch's must stay within max_msgs and max_bytes, and with
    discard_new_per_subject each subject within max_msgs_per_subject
    (rollups exempt). Go counts a message that would replace its subject's
    oldest as new here too, so a batch is refused rather than half stored."""

    __slots__ = ("store", "subjects", "msgs", "bytes")

    def __init__(self, store):
        self.store = store
        self.subjects = {}   # subject -> messages of the batch on it
        self.msgs = self.bytes = 0

    def __contains__(self, subject):
        return subject in self.subjects

    def add(self, subject, hdr, data, rollup=""):
        store, c = self.store, self.store.config
        n = self.subjects[subject] = self.subjects.get(subject, 0) + 1
        self.msgs += 1
        self.bytes += store._msg_size(subject, hdr, data)
        if not c.discard_new:
            return
        if c.max_msgs > 0 and store._msgs + self.msgs > c.max_msgs:
            raise ErrMaxMsgs("maximum messages exceeded")
        if c.max_bytes > 0 and store._bytes + self.bytes > c.max_bytes:
            raise ErrMaxBytes("maximum bytes exceeded")
        if (c.discard_new_per_subject and c.max_msgs_per_subject > 0 and not rollup
                and store._subject_msgs(subject) + n > c.max_msgs_per_subject):
            raise ErrMaxMsgsPerSubject("maximum messages per subject exceeded")


def _not_above(seq, last):
    return StoreError("sequence %d is not above the last sequence %d" % (seq, last))
