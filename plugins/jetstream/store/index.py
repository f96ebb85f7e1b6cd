"""In-memory indexes shared by both stores: subject filters, per-subject counts, TTL wheel.

All of them are compact: no Python object per message (a TTL'd message costs 16 bytes in
an ``array``), one small list per distinct subject.
"""

import heapq
import re
from array import array

_SECOND = 1_000_000_000


_compiled = {}
_literals = {}


def _cached(cache, filters, build):
    """Per-filter-list memo: a consumer asks with the same filters for every message."""
    if isinstance(filters, str):
        filters = [filters]
    key = tuple(filters)
    try:
        return cache[key]
    except KeyError:
        pass
    if len(cache) > 1024:
        cache.clear()
    value = cache[key] = build(key)
    return value


def compile_filters(filters):
    """A predicate ``str -> bool`` for a list of subject filters (None, [] or ">" = all).

    Literal filters test by set membership; wildcards by one compiled regular expression.
    Returns None when every subject matches, so callers can skip the test entirely."""
    if not filters:
        return None
    return _cached(_compiled, filters, _compile)


def literal_filters(filters):
    """The filters as a tuple of literal subjects, or None if any has a wildcard."""
    if not filters:
        return None
    return _cached(_literals, filters,
                   lambda key: None if any(_is_wild(f) for f in key) else key)


def _compile(filters):
    if ">" in filters:
        return None
    literals = {f for f in filters if not _is_wild(f)}
    wild = [f for f in filters if _is_wild(f)]
    if not wild:
        if len(literals) == 1:
            only = next(iter(literals))
            return only.__eq__
        return literals.__contains__
    rx = re.compile("|".join(_filter_regex(f) for f in wild))
    fullmatch = rx.fullmatch
    if not literals:
        return lambda s: fullmatch(s) is not None
    return lambda s: s in literals or fullmatch(s) is not None


def _is_wild(f):
    return ("*" in f or ">" in f) and any(tok in ("*", ">") for tok in f.split("."))


def _filter_regex(f):
    parts = []
    for tok in f.split("."):
        if tok == "*":
            parts.append(r"[^.]+")
        elif tok == ">":
            parts.append(r".+")
        else:
            parts.append(re.escape(tok))
    return r"\.".join(parts)


def count_subject(table, subject, seq):
    """Count ``seq`` (the newest so far) in a subject -> [count, first, last] table."""
    entry = table.get(subject)
    if entry is None:
        table[subject] = [1, seq, seq]
    else:
        entry[0] += 1
        entry[2] = seq


class SubjectIndex:
    """subject -> [count, first (a lower bound, exact when count == 1), last (exact)]."""

    __slots__ = ("subjects",)

    def __init__(self):
        self.subjects = {}

    def add(self, subject, seq):
        count_subject(self.subjects, subject, seq)

    def clear(self):
        self.subjects.clear()

    def matching(self, match):
        """(subject, entry) for every subject the predicate accepts (None = all)."""
        if match is None:
            return self.subjects.items()
        return [(s, e) for s, e in self.subjects.items() if match(s)]

    def dump(self):
        return self.subjects

    def load(self, data):
        self.subjects = {s: list(e) for s, e in data.items()}


class TtlWheel:
    """Per-message expiry times, bucketed by second: {second: array of (seq, expires_ns)}.

    Entries of messages removed otherwise stay until their bucket is due; the caller
    checks that a due sequence is still stored."""

    __slots__ = ("buckets", "heap")

    def __init__(self):
        self.buckets = {}
        self.heap = []  # bucket keys, smallest first

    def add(self, seq, expires):
        key = expires // _SECOND
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = array("q")
            heapq.heappush(self.heap, key)
        bucket.append(seq)
        bucket.append(expires)

    def next_expiry(self):
        while self.heap:
            bucket = self.buckets.get(self.heap[0])
            if bucket:
                return min(bucket[1::2])
            self.buckets.pop(heapq.heappop(self.heap), None)
        return None

    def pop_due(self, now):
        """Sequences whose expiry is <= now, in expiry order."""
        due = []
        while self.heap and self.heap[0] <= now // _SECOND:
            key = self.heap[0]
            bucket = self.buckets.get(key, ())
            keep = array("q")
            for i in range(0, len(bucket), 2):
                if bucket[i + 1] <= now:
                    due.append((bucket[i + 1], bucket[i]))
                else:
                    keep.append(bucket[i])
                    keep.append(bucket[i + 1])
            if keep:
                self.buckets[key] = keep
                break
            heapq.heappop(self.heap)
            self.buckets.pop(key, None)
        due.sort()
        return [seq for _, seq in due]

    def clear(self):
        self.buckets.clear()
        self.heap.clear()

    def dump(self):
        return {k: v.tobytes() for k, v in self.buckets.items() if v}

    def load(self, data):
        self.clear()
        for key, raw in data.items():
            bucket = array("q")
            bucket.frombytes(raw)
            self.buckets[key] = bucket
            self.heap.append(key)
        heapq.heapify(self.heap)
