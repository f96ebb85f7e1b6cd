"""The memory store: messages in a dict by sequence, nothing on disk."""

from array import array
from bisect import bisect_left, bisect_right

from .base import StreamStore
from .consumer import MemoryConsumerStore


class MemoryStore(StreamStore):
    kind = "memory"

    def __init__(self, config):
        super().__init__(config)
        self._data = {}  # seq -> (subject, ts, hdr, data, ttl)
        # Sequences in store order; removed ones linger until compacted (bisectable).
        self._order = array("Q")
        self._head = 0
        self._consumers = {}
        self._meta = None

    @staticmethod
    def _msg_size(subject, hdr, data):
        return len(subject) + len(hdr) + len(data) + 16  # Go's memStoreMsgSize

    def _e_append(self, seq, ts, subject, hdr, data, ttl):
        self._data[seq] = (subject, ts, hdr, data, ttl)
        self._order.append(seq)
        return len(subject) + len(hdr) + len(data) + 16

    def _e_load(self, seq):
        return self._data.get(seq)

    def _e_meta(self, seq):
        rec = self._data.get(seq)
        if rec is None:
            return None
        return rec[0], len(rec[0]) + len(rec[2]) + len(rec[3]) + 16, rec[4], rec[1]

    def _e_remove(self, seq, erase, subject):
        del self._data[seq]
        self._tidy()

    def _e_skip(self, seq, count):
        pass

    def _e_persist_purge(self, floor):
        pass

    def _e_drop_below(self, floor):
        order, data = self._order, self._data
        i = self._head
        while i < len(order) and order[i] < floor:
            data.pop(order[i], None)
            i += 1
        self._head = i
        self._tidy()

    def _tidy(self):
        order, data = self._order, self._data
        head = self._head
        while head < len(order) and order[head] not in data:
            head += 1
        self._head = head
        if head > 1024 and head * 2 > len(order):
            del order[:head]
            self._head = 0
        elif len(order) > 4096 and len(data) * 2 < len(order) - head:
            self._order = array("Q", data)  # dict order is sequence order
            self._head = 0

    def _e_next_live(self, seq, hi):
        order, data = self._order, self._data
        i = bisect_left(order, seq, self._head)
        n = len(order)
        while i < n:
            s = order[i]
            if s > hi:
                return None
            if s in data:
                return s
            i += 1
        return None

    def _e_prev_live(self, seq, lo):
        order, data = self._order, self._data
        i = bisect_right(order, seq, self._head) - 1
        while i >= self._head:
            s = order[i]
            if s < lo:
                return None
            if s in data:
                return s
            i -= 1
        return None

    def _e_count_live(self, lo, hi):
        if lo <= self._first and hi >= self._last:
            return self._msgs
        order, data = self._order, self._data
        i = bisect_left(order, lo, self._head)
        j = bisect_right(order, hi, self._head)
        return sum(1 for s in order[i:j] if s in data)

    def _e_deleted(self, lo, hi):
        data = self._data
        return [s for s in range(lo, hi + 1) if s not in data]

    # -- consumers, meta, lifecycle -----------------------------------------------------

    def consumer_store(self, name):
        self._check_open()
        store = self._consumers.get(name)
        if store is None:
            store = self._consumers[name] = MemoryConsumerStore(self._consumers, name)
        return store

    def consumer_names(self):
        return list(self._consumers)

    def write_meta(self, blob):
        self._meta = bytes(blob)

    def read_meta(self):
        return self._meta

    def delete(self):
        super().delete()
        self._data.clear()
        self._order = array("Q")
        self._consumers.clear()
