"""Where a RAFT node keeps what must survive a crash: its term and vote, its
log, and its latest snapshot. The core only talks to this small interface, so
the log can later live in the JetStream file store instead.

* :class:`MemoryStorage` keeps everything in memory and models a crash: what was
  not ``sync()``-ed is lost (the simulations use it to check fsync discipline).
* :class:`FileStorage` keeps a directory: ``tav.idx`` (term and vote),
  ``log/<first index>.log`` segments of checksummed records, and
  ``snapshots/snap.<term>.<index>``.

The log holds entries after the snapshot in memory too (they are bounded by the
snapshot cadence); the files are for recovery.
"""

import os
import struct
import zlib
from dataclasses import dataclass

from .messages import Entry, decode_peers, encode_peers


@dataclass(slots=True, frozen=True)
class Snapshot:
    index: int      # the last log index the snapshot covers
    term: int       # the term of that entry
    peers: tuple    # the peer set as of ``index``
    data: bytes     # the application's state


class CorruptLog(Exception):
    """A record failed its checksum and is not a torn tail: the node must not
    vote or lead with this log (JETSTREAM-CLUSTER.md section 5)."""


class Storage:
    """The log and the persistent state of one node. Entries are contiguous:
    ``snapshot_index + 1 .. last_index``."""

    def __init__(self):
        self.term = 0
        self.vote = None
        self.snapshot = None
        self.snapshot_index = 0
        self.snapshot_term = 0
        self.entries = []

    # -- reading ----------------------------------------------------------------------

    @property
    def first_index(self):
        return self.snapshot_index + 1

    @property
    def last_index(self):
        return self.snapshot_index + len(self.entries)

    @property
    def last_term(self):
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index):
        """The term of the entry at ``index``; the snapshot's term at its index;
        None when the index is compacted away or beyond the log."""
        if index == self.snapshot_index:
            return self.snapshot_term
        if self.snapshot_index < index <= self.last_index:
            return self.entries[index - self.snapshot_index - 1].term
        return None

    def entry(self, index):
        return self.entries[index - self.snapshot_index - 1]

    def slice(self, lo, hi, max_bytes):
        """Entries ``lo..hi`` (inclusive), at least one, at most ``max_bytes``."""
        out, size = [], 0
        base = self.snapshot_index + 1
        for i in range(lo - base, hi - base + 1):
            e = self.entries[i]
            size += e.size()
            if out and size > max_bytes:
                break
            out.append(e)
        return out

    # -- writing ----------------------------------------------------------------------

    def save_state(self, term, vote):
        """Persist term and vote durably before returning (a vote is granted
        only after this)."""
        self.term, self.vote = term, vote
        self._write_state()

    def append(self, entries):
        for e in entries:
            assert e.index == self.last_index + 1, (e.index, self.last_index)
            self.entries.append(e)
        self._write_entries(entries)

    def truncate_after(self, index):
        """Drop the entries above ``index`` (an uncommitted suffix)."""
        assert index >= self.snapshot_index
        del self.entries[index - self.snapshot_index:]
        self._write_truncate(index)

    def save_snapshot(self, snapshot):
        """Keep ``snapshot`` durably and compact the log through its index.
        Entries after it stay when they agree with it; otherwise the log
        restarts at the snapshot (an installed snapshot replaces a divergent
        log)."""
        keep = self.term_at(snapshot.index) == snapshot.term and snapshot.index <= self.last_index
        self._write_snapshot(snapshot)
        if keep:
            del self.entries[:snapshot.index - self.snapshot_index]
        else:
            self.entries = []
        self.snapshot = snapshot
        self.snapshot_index, self.snapshot_term = snapshot.index, snapshot.term
        self._write_compact(keep)

    def sync(self):
        """Make every append and truncation so far durable (one fsync per batch)."""

    def close(self):
        """Release files."""

    # persistence hooks for subclasses
    def _write_state(self):
        pass

    def _write_entries(self, entries):
        pass

    def _write_truncate(self, index):
        pass

    def _write_snapshot(self, snapshot):
        pass

    def _write_compact(self, kept):
        pass


class MemoryStorage(Storage):
    """In memory; :meth:`crash` loses what was not synced (term, vote and
    snapshots are durable at once, as in :class:`FileStorage`)."""

    def __init__(self):
        super().__init__()
        self._durable = []
        self._dirty = False

    def _write_entries(self, entries):
        self._dirty = True

    def _write_truncate(self, index):
        self._dirty = True

    def _write_compact(self, kept):
        self._durable = list(self.entries)
        self._dirty = False

    def sync(self):
        if self._dirty:
            self._durable = list(self.entries)
            self._dirty = False

    def crash(self):
        """Forget everything not synced, as a kill -9 followed by a power loss."""
        self.entries = list(self._durable)
        self._dirty = False
        return self


# -- files ----------------------------------------------------------------------------

_REC = struct.Struct("<II")       # crc32 of the body, body length
_BODY = struct.Struct("<QQB")     # index, term, type
_TAV = struct.Struct("<QB")       # term, len(vote)
_SNAP = struct.Struct("<QQI")     # index, term, len(data)
_CRC = struct.Struct("<I")


def _no_fsync(fd):
    pass


def _off_loop(fn, *args):
    """Run the blocking ``fn(*args)`` in gevent's thread pool: the calling
    greenlet waits for it (ordering is kept), every other greenlet runs
    meanwhile. An fsync in the loop's own thread stops the whole process."""
    from gevent import get_hub

    return get_hub().threadpool.apply(fn, args)


def _fsync_all(fds, directory):
    """fsync each of ``fds`` (our own duplicates: whoever closes the files
    meanwhile cannot pull them from under us), then ``directory`` if given;
    the duplicates are closed."""
    try:
        for fd in fds:
            os.fsync(fd)
        if directory:
            _fsync_dir(directory)
    finally:
        for fd in fds:
            os.close(fd)


def _fsync_dir(path, fsync=None):
    fd = os.open(path, os.O_RDONLY)
    try:
        (fsync or os.fsync)(fd)
    finally:
        os.close(fd)


def _write_atomic(path, data, fsync=None):
    fsync = fsync or os.fsync
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path), fsync)


class FileStorage(Storage):
    """A directory of its own per RAFT group and node.

    ``fsync=True``: ``sync()`` fsyncs, so an acknowledgement means "on disk on
    a quorum" (``sync_interval: always``, with group commit: one fsync per
    batch). ``fsync=False``: ``sync()`` only hands the records to the OS, as
    Go's default (acks from the page cache; a kill -9 loses nothing, a power
    loss on a quorum can); simulations use it too and model lost writes
    themselves.

    The fsyncs on the replication path (``sync()``, and term and vote in
    ``save_state``) run in gevent's thread pool: the node's greenlet waits
    for them, so a vote is still granted and an entry still counted only
    once on disk, while the rest of the server keeps serving. ``sync()`` is
    the log's only fsync point: a new segment's directory entry and a
    rotated-out segment are fsynced by the next ``sync()``, so appends never
    wait (nor yield) in the middle of writing records. Truncations (rare: a
    follower's conflicting suffix), snapshots and recovery fsync in place."""

    def __init__(self, directory, segment_bytes=8 << 20, fsync=True):
        super().__init__()
        self._fsync = os.fsync if fsync else _no_fsync
        self._durable = fsync
        self._unsynced = []       # rotated-out segments the next sync() covers (flushed)
        self._dir_dirty = False   # a segment was created since the last sync()
        self.dir = directory
        self.log_dir = os.path.join(directory, "log")
        self.snap_dir = os.path.join(directory, "snapshots")
        self.segment_bytes = segment_bytes
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.snap_dir, exist_ok=True)
        self._where = []          # (segment first index, offset) per entry in memory
        self._segments = []       # first index of each segment file, ascending
        self._file = None         # the last segment, open for appending
        self._file_size = 0
        self._load_state()
        self._load_snapshot()
        self._load_log()

    # -- recovery -------------------------------------------------------------------------

    def _load_state(self):
        try:
            with open(os.path.join(self.dir, "tav.idx"), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return
        body, crc = raw[:-4], raw[-4:]
        if len(raw) < _TAV.size + 4 or _CRC.unpack(crc)[0] != zlib.crc32(body):
            raise CorruptLog("tav.idx fails its checksum")
        term, n = _TAV.unpack_from(body)
        self.term = term
        self.vote = body[_TAV.size:_TAV.size + n].decode() if n else None

    def _load_snapshot(self):
        names = [n for n in os.listdir(self.snap_dir) if n.startswith("snap.")
                 and not n.endswith(".tmp")]
        names.sort(key=lambda n: tuple(int(x) for x in n.split(".")[1:3]))
        for name in reversed(names):
            with open(os.path.join(self.snap_dir, name), "rb") as f:
                raw = f.read()
            snap = _decode_snapshot(raw)
            if snap is not None:
                self.snapshot = snap
                self.snapshot_index, self.snapshot_term = snap.index, snap.term
                return
        # No snapshot passes its checksum: a corrupt one must not be ignored
        # silently (its entries were compacted away).
        if names:
            raise CorruptLog("no snapshot in %s passes its checksum" % self.snap_dir)

    def _load_log(self):
        self._segments = sorted(int(n[:-4]) for n in os.listdir(self.log_dir)
                                if n.endswith(".log"))
        for k, first in enumerate(self._segments):
            path = self._segment_path(first)
            with open(path, "rb") as f:
                raw = f.read()
            pos, last_segment = 0, k == len(self._segments) - 1
            while pos < len(raw):
                if pos + _REC.size > len(raw):
                    break  # torn header
                crc, size = _REC.unpack_from(raw, pos)
                end = pos + _REC.size + size
                body = raw[pos + _REC.size:end]
                if end > len(raw) or zlib.crc32(body) != crc or size < _BODY.size:
                    if end >= len(raw) and last_segment:
                        break  # a torn tail: never synced, so never acknowledged
                    raise CorruptLog("%s: bad record at offset %d" % (path, pos))
                index, term, etype = _BODY.unpack_from(body)
                if index > self.snapshot_index:
                    if index != self.last_index + 1:
                        raise CorruptLog("%s: index %d after %d" % (path, index, self.last_index))
                    self.entries.append(Entry(index, term, etype, body[_BODY.size:]))
                    self._where.append((first, pos))
                pos = end
            if pos < len(raw):
                with open(path, "r+b") as f:
                    f.truncate(pos)
                    self._fsync(f.fileno())
        if self._segments:
            self._open_segment(self._segments[-1])

    # -- writing ------------------------------------------------------------------------

    def _segment_path(self, first):
        return os.path.join(self.log_dir, "%020d.log" % first)

    def _open_segment(self, first):
        if self._file is not None:
            self._file.close()
        path = self._segment_path(first)
        self._file = open(path, "ab")
        self._file_size = self._file.tell()
        if first not in self._segments:
            self._segments.append(first)
            self._dir_dirty = True  # its directory entry: durable with the next sync()

    def _write_state(self):
        vote = (self.vote or "").encode()
        body = _TAV.pack(self.term, len(vote)) + vote
        path, data = os.path.join(self.dir, "tav.idx"), body + _CRC.pack(zlib.crc32(body))
        if self._durable:
            # the caller (the node's greenlet) waits: on disk before a vote
            # is granted or a higher term acted on, as before
            _off_loop(_write_atomic, path, data)
        else:
            _write_atomic(path, data, _no_fsync)

    def _write_entries(self, entries):
        out = []
        for e in entries:
            if self._file is None or self._file_size >= self.segment_bytes:
                self._flush_records(out)
                if self._file is not None:
                    # no fsync here (no yield while records are half written):
                    # the next sync() covers the rotated-out segment
                    self._file.flush()
                    self._unsynced.append(self._file)
                    self._file = None
                self._open_segment(e.index)
            body = _BODY.pack(e.index, e.term, e.type) + e.data
            rec = _REC.pack(zlib.crc32(body), len(body)) + body
            out.append(rec)
            self._where.append((self._segments[-1], self._file_size))
            self._file_size += len(rec)
        self._flush_records(out)

    def _flush_records(self, records):
        if records:
            self._file.write(b"".join(records))
            records.clear()

    def _write_truncate(self, index):
        cut = len(self.entries)  # entries kept; _where still has the dropped ones
        if cut >= len(self._where):
            return
        first, offset = self._where[cut]
        del self._where[cut:]
        self._file.flush()
        for seg in [s for s in self._segments if s > first]:
            os.unlink(self._segment_path(seg))
            self._segments.remove(seg)
        self._open_segment(first)
        self._file.truncate(offset)
        self._file_size = offset
        self._fsync(self._file.fileno())

    def _write_snapshot(self, snapshot):
        body = (_SNAP.pack(snapshot.index, snapshot.term, len(snapshot.data))
                + encode_peers(snapshot.peers) + snapshot.data)
        name = "snap.%d.%d" % (snapshot.term, snapshot.index)
        _write_atomic(os.path.join(self.snap_dir, name), body + _CRC.pack(zlib.crc32(body)),
                      self._fsync)
        for old in os.listdir(self.snap_dir):
            if old != name:
                os.unlink(os.path.join(self.snap_dir, old))

    def _write_compact(self, kept):
        if not kept:
            self._where = []
            if self._file is not None:
                self._file.close()
                self._file = None
            for seg in self._segments:
                os.unlink(self._segment_path(seg))
            self._segments = []
            _fsync_dir(self.log_dir, self._fsync)
            return
        dropped = len(self._where) - len(self.entries)
        del self._where[:dropped]
        # Whole segments below the first kept entry go; a partly covered one
        # stays (its old records are skipped on recovery).
        keep_from = self._where[0][0] if self._where else self._segments[-1]
        for seg in [s for s in self._segments if s < keep_from]:
            os.unlink(self._segment_path(seg))
            self._segments.remove(seg)

    def sync(self):
        """Everything appended before the call is durable when it returns
        (with ``fsync``: the fsyncs run in the thread pool, other greenlets
        may append meanwhile; those wait for the next sync)."""
        files, self._unsynced = self._unsynced, []
        if self._file is not None:
            self._file.flush()
        if self._durable:
            fds = [os.dup(f.fileno()) for f in files]
            if self._file is not None:
                fds.append(os.dup(self._file.fileno()))
            directory, self._dir_dirty = self.log_dir if self._dir_dirty else None, False
            try:
                _off_loop(_fsync_all, fds, directory)
            except BaseException:
                self._dir_dirty = self._dir_dirty or directory is not None
                self._unsynced = files + self._unsynced
                raise
        for f in files:
            f.close()

    def close(self):
        for f in self._unsynced:
            f.close()
        self._unsynced = []
        if self._file is not None:
            self._file.close()
            self._file = None


def _decode_snapshot(raw):
    if len(raw) < _SNAP.size + 4:
        return None
    body, crc = raw[:-4], raw[-4:]
    if _CRC.unpack(crc)[0] != zlib.crc32(body):
        return None
    index, term, size = _SNAP.unpack_from(body)
    peers, used = decode_peers(body[_SNAP.size:])
    data = body[_SNAP.size + used:]
    if len(data) != size:
        return None
    return Snapshot(index, term, peers, bytes(data))
