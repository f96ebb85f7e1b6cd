"""The file store: an append-only log in blocks, a checksum per record, a compact index.

Layout of a stream directory::

    msgs/<n>.blk   records, appended in order; a new block past ``block_size``
    msgs/index.db  snapshot of the in-memory index (flush_state/close), checksummed
    meta.dat       the API layer's stream config blob
    obs/<name>/    consumer state (see consumer.py)

Record (little endian)::

    len u32 | kind u8 | seq u64 | ts i64 | aux i64 | subj_len u16 | hdr_len u32 |
    subject | headers | payload | crc32 u32 (of everything before it)

``aux`` is the TTL of a message, the count of a SKIP. Kinds: MSG, TOMB (delete seq),
ERASED (a MSG overwritten in place), SKIP (seq, count), PURGE (everything below seq).
Deletes are records too, so the log alone rebuilds the stream.

Memory: one ``array('Q')`` of file offsets per block (8 bytes a message, DEL for a deleted
one), one small list per subject, a TTL wheel; payloads are read with ``pread`` through a
few 64 KiB windows, so a stream of millions of messages costs tens of MB, not its size.

Durability: every record is written to the OS before ``store_*`` returns (kill -9 loses
nothing); ``sync()`` fsyncs. On open the index snapshot is used if every block it names is
intact (whole-block BLAKE2b) and only the tails written after it are replayed; otherwise the
index is rebuilt from all blocks. A record failing its checksum ends its block: it and the
rest of that block are dropped (reported in ``lost``) and the block is cut there.
"""

import hashlib
import marshal
import os
import shutil
import struct
import zlib
from array import array
from bisect import bisect_right
from collections import OrderedDict

from .base import StreamStore, _not_above
from .consumer import FileConsumerStore
from .index import count_subject
from .types import ErrStorageFull, StoreError
from .util import atomic_write, fsync_dir, read_checked, store_error

HDR = struct.Struct("<IBQqqHI")
HDR_SIZE = HDR.size
CRC = struct.Struct("<I")
MIN_REC = HDR_SIZE + 4
KIND_MSG, KIND_TOMB, KIND_ERASED, KIND_SKIP, KIND_PURGE = 1, 2, 3, 4, 5
_KINDS = (KIND_MSG, KIND_TOMB, KIND_ERASED, KIND_SKIP, KIND_PURGE)
DEL = 0xFFFFFFFFFFFFFFFF
DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
GAP_MAX = 4096  # a bigger sequence gap starts a new block instead of padding the index
WINDOW = 64 * 1024
WINDOWS = 4
READ_FDS = 32
INDEX_VERSION = 2
_DEL_PAD = array("Q", [DEL])
_RUN = 1024
_SLEN = struct.Struct("<H")  # subj_len, 6 bytes before the end of the header


def go_size(rec_len, hdr_len):
    """Go's fileStoreMsgSize of a record of rec_len bytes, so max_bytes and state.bytes
    agree with nats-server: 22 + subject + headers + payload + 8 (+4 with headers)."""
    return rec_len - MIN_REC + 30 + (4 if hdr_len else 0)


def _next_live_index(offs, j):
    """The first index >= j not DEL, or -1; long DEL runs are skipped a chunk at a time in C
    (a KV stream's old blocks are mostly deleted)."""
    n = len(offs)
    stop = min(n, j + 16)
    while j < stop:
        if offs[j] != DEL:
            return j
        j += 1
    while j < n:
        k = min(n, j + _RUN)
        if offs[j:k].count(DEL) != k - j:
            break
        j = k
    while j < n:
        if offs[j] != DEL:
            return j
        j += 1
    return -1


def _prev_live_index(offs, j):
    """The last index <= j not DEL, or -1 (mirror of _next_live_index)."""
    stop = max(-1, j - 16)
    while j > stop:
        if offs[j] != DEL:
            return j
        j -= 1
    while j >= 0:
        k = max(0, j - _RUN + 1)
        if offs[k:j + 1].count(DEL) != j + 1 - k:
            break
        j = k - 1
    while j >= 0:
        if offs[j] != DEL:
            return j
        j -= 1
    return -1


class _Block:
    __slots__ = ("idx", "path", "base", "offs", "live", "size", "crc", "written", "synced",
                 "fss")

    def __init__(self, idx, path, base):
        self.idx = idx
        self.path = path
        self.base = base  # sequence of offs[0]
        self.offs = array("Q")
        self.live = 0
        self.size = 0  # bytes of whole records
        self.crc = None  # (size, digest of the first size bytes), cached for the index
        # Writes counted by the appender, the count covered by the last fsync: each has one
        # writer, so sync() in another thread never loses a write (no shared set to race).
        self.written = 0
        self.synced = 0
        # subject -> [live count, first (lower bound), last (upper bound)] in this block,
        # built when first needed (as Go's per-block fss): filtered counts and skips.
        self.fss = None


class FileStore(StreamStore):
    kind = "file"

    def __init__(self, directory, config):
        super().__init__(config)
        self.directory = directory
        self._msgdir = os.path.join(directory, "msgs")
        self._block_size = config.block_size or DEFAULT_BLOCK_SIZE
        self._blocks = []
        self._bases = []
        self._wblk = None
        self._wfd = None
        self._rfds = OrderedDict()
        self._windows = []  # [(block idx, file offset, bytes)], most recent first
        self._dir_changes = 0  # blocks created/deleted (appender) ...
        self._dir_synced = 0  # ... and how many of those the last directory fsync covers
        self._replaying = False
        self._write_failures = []
        self._lost_from = None
        self._lost_guess = 0
        try:
            os.makedirs(self._msgdir, exist_ok=True)
        except OSError as exc:
            raise store_error(exc, "creating %s" % self._msgdir)
        try:
            self._recover()
        except OSError as exc:
            self._close_fds()
            raise store_error(exc, "opening %s" % self._msgdir)

    @staticmethod
    def _msg_size(subject, hdr, data):
        return go_size(MIN_REC + len(subject) + len(hdr) + len(data), len(hdr))

    # -- blocks -----------------------------------------------------------------------

    def _rebase(self):
        self._bases = [b.base for b in self._blocks]

    def _locate(self, seq):
        i = bisect_right(self._bases, seq) - 1
        if i < 0:
            return None, 0
        blk = self._blocks[i]
        j = seq - blk.base
        if j >= len(blk.offs):
            return None, 0
        return blk, j

    def _new_block(self, base):
        self.flush_writes()  # the held records belong to the block being closed
        idx = self._blocks[-1].idx + 1 if self._blocks else 1
        path = os.path.join(self._msgdir, "%d.blk" % idx)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise store_error(exc, "creating block %d" % idx)
        if self._wfd is not None:
            os.close(self._wfd)
        blk = _Block(idx, path, base)
        blk.fss = {}  # empty and kept up to date from the start
        self._blocks.append(blk)
        self._rebase()
        self._wblk, self._wfd = blk, fd
        self._dir_changes += 1
        # Every block starts by recording the last sequence used so far: once the blocks
        # before it are deleted, a rebuild must not hand out those sequences again.
        self._write_ctl(KIND_SKIP, self._last + 1, 0)
        return blk

    def _fd(self, blk):
        if blk is self._wblk:
            return self._wfd
        fd = self._rfds.get(blk.idx)
        if fd is None:
            fd = self._rfds[blk.idx] = os.open(blk.path, os.O_RDONLY)
            if len(self._rfds) > READ_FDS:
                os.close(self._rfds.popitem(last=False)[1])
        else:
            self._rfds.move_to_end(blk.idx)
        return fd

    def _forget_block_io(self, blk):
        fd = self._rfds.pop(blk.idx, None)
        if fd is not None:
            os.close(fd)
        self._windows = [w for w in self._windows if w[0] != blk.idx]

    def _drop_empty_front(self):
        """Delete leading blocks without live messages (never the write block).

        Only from the front: a block's tombstones and purges concern earlier sequences
        only, so once every earlier block is gone nothing depends on them."""
        if self._replaying:
            return
        changed = False
        while len(self._blocks) > 1 and self._blocks[0].live == 0:
            blk = self._blocks.pop(0)
            self._forget_block_io(blk)
            try:
                os.unlink(blk.path)
            except OSError:
                pass
            changed = True
        if changed:
            self._dir_changes += 1
            self._rebase()

    # -- writing ----------------------------------------------------------------------

    # -- write-behind (the stream's choice, see flush_writes) --------------------------

    defer_writes = False  # appends are held until flush_writes(): one write for many
    _held = None  # the held records' parts, in order, for the write block
    _held_off = 0  # where they go in it

    def flush_writes(self):
        """Write the records appends held back (``defer_writes``) in one ``pwrite``.
        Reads, control records and every other file operation call this first,
        so the file is exact whenever anything looks at it. It never raises: on
        failure the held messages leave the index again and ``take_write_failures``
        names them (so their PubAcks become errors)."""
        held = self._held
        if held is None:
            return
        self._held = None
        blk, off = self._wblk, self._held_off
        data = b"".join(held)
        try:
            done = 0
            while done < len(data):
                n = os.pwrite(self._wfd, memoryview(data)[done:], off + done)
                if n <= 0:
                    raise ErrStorageFull("short write to block %d" % blk.idx)
                done += n
        except (OSError, StoreError) as exc:
            self._cut(blk, off)
            blk.size = off
            err = exc if isinstance(exc, StoreError) else store_error(
                exc, "writing block %d" % blk.idx)
            self._write_failures.append((self._unindex(blk, data), err))

    def take_write_failures(self):
        """[(seqs, StoreError)] of held writes that failed since the last call."""
        out, self._write_failures = self._write_failures, []
        return out

    def _unindex(self, blk, data):
        """The messages in ``data`` (records never written) leave the index."""
        seqs = []
        pos = 0
        while pos + HDR_SIZE <= len(data):
            n, kind, seq, _, _, slen, hlen = HDR.unpack_from(data, pos)
            if kind == KIND_MSG:
                j = seq - blk.base
                if 0 <= j < len(blk.offs) and blk.offs[j] != DEL:
                    subject = data[pos + HDR_SIZE:pos + HDR_SIZE + slen].decode("utf-8", "replace")
                    self._mark_removed(blk, j, subject)
                    self._note_remove(seq, subject, go_size(n, hlen))
                    seqs.append(seq)
            pos += n
        return seqs

    def _hold(self, blk, parts, n):
        """``_write`` for a message record under write-behind: kept for flush_writes."""
        off = blk.size
        held = self._held
        if held is None:
            self._held = held = []
            self._held_off = off
        held += parts
        blk.size = off + n
        blk.written += 1
        return off

    def _write(self, blk, parts, n):
        """Append one record to the write block; the offset it landed at."""
        off = blk.size
        try:
            written = os.pwritev(self._wfd, parts, off)
        except OSError as exc:
            self._cut(blk, off)
            raise store_error(exc, "writing block %d" % blk.idx)
        if written != n:
            self._cut(blk, off)
            raise ErrStorageFull("short write to block %d" % blk.idx)
        blk.size = off + n
        blk.written += 1
        return off

    def _cut(self, blk, size):
        try:
            os.ftruncate(self._fd(blk), size)
        except OSError:
            pass
        self._windows = [w for w in self._windows if w[0] != blk.idx]

    def _e_append(self, seq, ts, subject, hdr, data, ttl):
        sb = subject.encode()
        slen, hlen = len(sb), len(hdr)
        n = MIN_REC + slen + hlen + len(data)
        blk = self._wblk
        offs = blk.offs
        if not offs or seq != blk.base + len(offs) or blk.size + n > self._block_size:
            blk = self._block_for(seq, n)
            offs = blk.offs
        # one joined body, one CRC pass and two iovecs: cheaper than four CRC calls and
        # five iovecs for the small messages JetStream mostly stores
        body = b"".join((HDR.pack(n, KIND_MSG, seq, ts, ttl, slen, hlen), sb, hdr, data))
        offs.append((self._hold if self.defer_writes else self._write)(
            blk, (body, CRC.pack(zlib.crc32(body))), n))
        blk.live += 1
        if blk.fss is not None:
            count_subject(blk.fss, subject, seq)
        return go_size(n, hlen)

    def _e_append_run(self, items):
        """``_e_append`` for a run under write-behind, with no Python call
        per message (the records join the held writes as ``_hold`` does)."""
        if not self.defer_writes:
            return super()._e_append_run(items)
        block_size = self._block_size
        hdr_pack, crc_pack, crc32, join = HDR.pack, CRC.pack, zlib.crc32, b"".join
        n = size = 0
        last = self._last
        try:
            for subject, hdr, data, seq, ts in items:
                if seq <= last:
                    raise _not_above(seq, last)
                last = seq
                sb = subject.encode()
                slen, hlen = len(sb), len(hdr)
                rec = MIN_REC + slen + hlen + len(data)
                blk = self._wblk
                offs = blk.offs
                if not offs or seq != blk.base + len(offs) or blk.size + rec > block_size:
                    blk = self._block_for(seq, rec)
                    offs = blk.offs
                body = join((hdr_pack(rec, KIND_MSG, seq, ts, 0, slen, hlen), sb, hdr, data))
                off = blk.size
                held = self._held
                if held is None:
                    self._held = held = []
                    self._held_off = off
                held.append(body)
                held.append(crc_pack(crc32(body)))
                blk.size = off + rec
                blk.written += 1
                offs.append(off)
                blk.live += 1
                fss = blk.fss
                if fss is not None:  # count_subject, inline
                    entry = fss.get(subject)
                    if entry is None:
                        fss[subject] = [1, seq, seq]
                    else:
                        entry[0] += 1
                        entry[2] = seq
                size += rec - MIN_REC + 30 + (4 if hlen else 0)  # go_size
                n += 1
        except StoreError as exc:
            return n, size, exc
        return n, size, None

    def _block_for(self, seq, n):
        """The block a record of n bytes for seq goes to: roll over, rebase, pad gaps."""
        blk = self._wblk
        if blk.size and blk.size + n > self._block_size:
            blk = self._new_block(seq)
        if not blk.offs:
            if blk.base != seq:
                blk.base = seq
                self._rebase()
        else:
            gap = seq - blk.base - len(blk.offs)
            if gap > GAP_MAX:
                blk = self._new_block(seq)
            elif gap > 0:
                blk.offs.extend(_DEL_PAD * gap)
        return blk

    def _write_ctl(self, kind, seq, aux):
        # deletes, purges, skips are written at once (an API answer follows them
        # directly), after the messages held before them
        if self._held is not None:
            self.flush_writes()
        blk = self._wblk
        if blk.size and blk.size + MIN_REC > self._block_size:
            blk = self._new_block(self._last + 1)
        head = HDR.pack(MIN_REC, kind, seq, 0, aux, 0, 0)
        self._write(blk, (head, CRC.pack(zlib.crc32(head))), MIN_REC)

    def _e_remove(self, seq, erase, subject):
        blk, j = self._locate(seq)
        if erase:
            self._erase(blk, blk.offs[j])
        self._write_ctl(KIND_TOMB, seq, 0)
        self._mark_removed(blk, j, subject)

    def _mark_removed(self, blk, j, subject):
        blk.offs[j] = DEL
        blk.live -= 1
        fss = blk.fss
        if fss is not None:
            entry = fss.get(subject)
            if entry is not None:
                entry[0] -= 1
                if entry[0] <= 0:
                    del fss[subject]
        if blk.live == 0:
            self._drop_empty_front()

    def _erase(self, blk, off):
        """Overwrite a record in place: same length, kind ERASED, headers/payload zeroed."""
        buf, p = self._record(blk, off)
        n, _, seq, ts, ttl, slen, hlen = HDR.unpack_from(buf, p)
        head = HDR.pack(n, KIND_ERASED, seq, ts, ttl, slen, hlen)
        body = bytes(buf[p + HDR_SIZE:p + HDR_SIZE + slen]) + bytes(n - MIN_REC - slen)
        crc = zlib.crc32(body, zlib.crc32(head))
        try:
            fd = os.open(blk.path, os.O_WRONLY)
            try:
                os.pwrite(fd, head + body + CRC.pack(crc), off)
            finally:
                os.close(fd)
        except OSError as exc:
            raise store_error(exc, "erasing in block %d" % blk.idx)
        self._windows = [w for w in self._windows if w[0] != blk.idx]
        blk.crc = None
        blk.written += 1

    def _e_skip(self, seq, count):
        self._write_ctl(KIND_SKIP, seq, count)

    def _e_persist_purge(self, floor):
        self._write_ctl(KIND_PURGE, floor, 0)

    def _e_drop_below(self, floor):
        for blk in self._blocks:
            if blk.base >= floor:
                break
            k = min(len(blk.offs), floor - blk.base)
            if k and blk.live:
                blk.offs[0:k] = _DEL_PAD * k
                blk.live = len(blk.offs) - blk.offs.count(DEL)
                blk.fss = None
        self._drop_empty_front()

    # -- reading ----------------------------------------------------------------------

    def _record(self, blk, off):
        """(buffer, position) holding the whole record at ``off`` of ``blk``."""
        if self._held is not None:
            self.flush_writes()
        for w in self._windows:
            if w[0] == blk.idx:
                start, buf = w[1], w[2]
                p = off - start
                if 0 <= p and p + HDR_SIZE <= len(buf):
                    n = CRC.unpack_from(buf, p)[0]
                    if p + n <= len(buf):
                        return buf, p
        fd = self._fd(blk)
        buf = os.pread(fd, WINDOW, off)
        if len(buf) >= 4:
            n = CRC.unpack_from(buf, 0)[0]
            if n > len(buf):
                buf = os.pread(fd, n, off)
        self._windows.insert(0, (blk.idx, off, buf))
        del self._windows[WINDOWS:]
        return buf, 0

    def _header(self, seq):
        blk, j = self._locate(seq)
        if blk is None:
            return None
        off = blk.offs[j]
        if off == DEL:
            return None
        try:
            buf, p = self._record(blk, off)
            fields = HDR.unpack_from(buf, p)
        except (OSError, struct.error):
            return self._damaged()
        if fields[1] != KIND_MSG or fields[2] != seq or p + fields[0] > len(buf):
            return self._damaged()
        return buf, p, fields

    def _damaged(self):
        """A record changed under us (disk fault): re-verify everything from the blocks."""
        if not self._replaying:  # a replay reads only records it has just verified
            self._rebuild()
        return None

    def _e_load(self, seq):
        got = self._header(seq)
        if got is None:
            return None
        buf, p, (n, _, _, ts, ttl, slen, hlen) = got
        end = p + n - 4
        if zlib.crc32(memoryview(buf)[p:end]) != CRC.unpack_from(buf, end)[0]:
            return self._damaged()
        a = p + HDR_SIZE + slen
        b = a + hlen
        return (buf[p + HDR_SIZE:a].decode("utf-8", "replace"), ts, buf[a:b], buf[b:end], ttl)

    def _e_load_run(self, seq, hi, count):
        """Sequential reads through the block's offsets and the current read
        window: one header unpack and one CRC check per record, no lookup per
        sequence. A record that fails its check ends the run (and re-verifies
        the store, as a single load does)."""
        out = []
        blocks = self._blocks
        i = max(0, bisect_right(self._bases, seq) - 1)
        unpack, crc_at, crc32 = HDR.unpack_from, CRC.unpack_from, zlib.crc32
        while i < len(blocks) and len(out) < count:
            blk = blocks[i]
            base, offs = blk.base, blk.offs
            if base > hi:
                break
            j = max(0, seq - base)
            end = min(len(offs), hi - base + 1)
            buf, start, size = b"", 0, 0
            while j < end and len(out) < count:
                off = offs[j]
                j += 1
                if off == DEL:
                    continue
                p = off - start
                if 0 <= p and p + HDR_SIZE <= size:
                    n, kind, rseq, ts, _, slen, hlen = unpack(buf, p)
                if p < 0 or p + HDR_SIZE > size or p + n > size:  # past the window
                    try:
                        buf, p = self._record(blk, off)
                    except OSError:
                        self._damaged()
                        return out
                    start, size = off - p, len(buf)
                    n, kind, rseq, ts, _, slen, hlen = unpack(buf, p)
                stop = p + n - 4
                rec = buf[p:stop]  # one copy: cheaper than a memoryview for small records
                if kind != KIND_MSG or rseq != base + j - 1 or stop + 4 > size or \
                        crc32(rec) != crc_at(buf, stop)[0]:
                    self._damaged()
                    return out
                a = HDR_SIZE + slen
                b = a + hlen
                out.append((rseq, rec[HDR_SIZE:a], ts, rec[a:b], rec[b:]))
            i += 1
        return out

    def _e_meta(self, seq):
        got = self._header(seq)
        if got is None:
            return None
        buf, p, (n, _, _, ts, ttl, slen, hlen) = got
        a = p + HDR_SIZE
        return buf[a:a + slen].decode("utf-8", "replace"), go_size(n, hlen), ttl, ts

    def _e_next_live(self, seq, hi):
        blocks = self._blocks
        i = max(0, bisect_right(self._bases, seq) - 1)
        while i < len(blocks):
            blk = blocks[i]
            if blk.base > hi:
                return None
            if blk.live:
                j = _next_live_index(blk.offs, max(0, seq - blk.base))
                if j >= 0:
                    s = blk.base + j
                    return s if s <= hi else None
            i += 1
        return None

    def _e_prev_live(self, seq, lo):
        blocks = self._blocks
        i = bisect_right(self._bases, seq) - 1
        while i >= 0:
            blk = blocks[i]
            if blk.live:
                j = _prev_live_index(blk.offs, min(len(blk.offs) - 1, seq - blk.base))
                if j >= 0:
                    s = blk.base + j
                    return s if s >= lo else None
            if blk.base <= lo:
                return None
            i -= 1
        return None

    def _e_count_live(self, lo, hi):
        total = 0
        for blk in self._blocks:
            n = len(blk.offs)
            j0 = max(0, lo - blk.base)
            j1 = min(n, hi - blk.base + 1)
            if j1 <= j0:
                continue
            if j0 == 0 and j1 == n:
                total += blk.live
            else:
                part = blk.offs[j0:j1]
                total += len(part) - part.count(DEL)
        return total

    def _e_count_matching(self, lo, hi, match):
        """Whole blocks from their cached subject counts, the edge blocks by one read."""
        total = 0
        for blk in self._blocks:
            n = len(blk.offs)
            if not n or not blk.live or blk.base + n <= lo:
                continue
            if blk.base > hi:
                break
            j0, j1 = max(0, lo - blk.base), min(n, hi - blk.base + 1)
            if j0 == 0 and j1 == n:
                if blk.fss is None:
                    blk.fss = self._subject_counts(blk, 0, n)
                counts = blk.fss
            else:
                counts = self._subject_counts(blk, j0, j1)
            total += sum(e[0] for s, e in counts.items() if match(s))
        return total

    def _e_skip_to(self, seq, hi, subjects):
        i = max(0, bisect_right(self._bases, seq) - 1)
        blocks = self._blocks
        while i < len(blocks):
            blk = blocks[i]
            n = len(blk.offs)
            if blk.base > hi:
                return hi + 1
            if n and blk.live and blk.base + n > seq:
                if blk.fss is None:
                    blk.fss = self._subject_counts(blk, 0, n)
                best = None
                for subject in subjects:
                    entry = blk.fss.get(subject)
                    if entry is not None and entry[2] >= seq:
                        start = max(seq, entry[1])
                        best = start if best is None else min(best, start)
                if best is not None:
                    return best
            i += 1
        return hi + 1

    def _subject_counts(self, blk, j0, j1):
        """subject -> [count, first, last] of the live messages among blk.offs[j0:j1],
        from one read of that byte range."""
        offs = blk.offs
        live = [j for j in range(j0, j1) if offs[j] != DEL]
        counts = {}
        if not live:
            return counts
        self.flush_writes()  # the range may hold records not written yet (write-behind)
        fd = self._fd(blk)
        start, end = offs[live[0]], offs[live[-1]]
        tail = os.pread(fd, 4, end)
        if len(tail) < 4:
            return counts
        buf = os.pread(fd, end + CRC.unpack(tail)[0] - start, start)
        unpack = _SLEN.unpack_from
        base = blk.base
        for j in live:
            p = offs[j] - start + HDR_SIZE
            count_subject(counts, buf[p:p + unpack(buf, p - 6)[0]], base + j)
        return {s.decode("utf-8", "replace"): e for s, e in counts.items()}

    def _e_deleted(self, lo, hi):
        out = []
        nxt = lo
        for blk in self._blocks:
            end = blk.base + len(blk.offs)
            if end <= lo or not blk.offs:
                continue
            if blk.base > hi:
                break
            out.extend(range(nxt, min(blk.base, hi + 1)))
            out.extend(blk.base + j for j, off in enumerate(blk.offs)
                       if off == DEL and lo <= blk.base + j <= hi)
            nxt = max(nxt, end)
        out.extend(range(nxt, hi + 1))
        return out

    # -- recovery ---------------------------------------------------------------------

    def _block_files(self):
        found = []
        for name in os.listdir(self._msgdir):
            stem, dot, ext = name.partition(".")
            if dot and ext == "blk" and stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def _recover(self):
        idxs = self._block_files()
        self._replaying = True
        try:
            tails = self._load_index(idxs)
            if tails is None:
                self._reset_memory()
                tails = [(_Block(i, self._block_path(i), 0), 0) for i in idxs]
            for blk, start in tails:
                if not any(b is blk for b in self._blocks):
                    # Appended only when reached, so the bases stay sorted for bisect.
                    blk.base = self._last + 1
                    self._blocks.append(blk)
                    self._rebase()
                self._replay(blk, start)
        finally:
            self._replaying = False
        if self._lost_from is not None and self._lost_guess:  # damage in the last block
            self.lost.extend(range(self._lost_from, self._lost_guess + 1))
        self._lost_from = None
        self._lost_guess = 0
        if self._blocks:
            self._wblk = self._blocks[-1]
            self._wfd = os.open(self._wblk.path, os.O_RDWR)
        else:
            self._new_block(self._last + 1)
        self._drop_empty_front()

    def _block_path(self, idx):
        return os.path.join(self._msgdir, "%d.blk" % idx)

    def _reset_memory(self):
        self._msgs = self._bytes = 0
        self._first, self._last, self._last_ts = 1, 0, 0
        self._subjects.clear()
        self._ttls.clear()
        self._age_cursor = 0
        self._blocks = []
        self._bases = []

    def _replay(self, blk, start):
        """Apply the records of ``blk`` from ``start``; cut the block at a bad record."""
        with open(blk.path, "rb") as f:
            f.seek(start)
            buf = f.read()
        mv = memoryview(buf)
        pos, end = 0, len(buf)
        bad = False
        while pos < end:
            if end - pos < MIN_REC:
                bad = True
                break
            n, kind, seq, ts, aux, slen, hlen = HDR.unpack_from(buf, pos)
            if (n < MIN_REC or pos + n > end or MIN_REC + slen + hlen > n
                    or kind not in _KINDS
                    or zlib.crc32(mv[pos:pos + n - 4]) != CRC.unpack_from(buf, pos + n - 4)[0]):
                bad = True
                # The damaged record's own sequence, if its header still looks sane.
                if kind == KIND_MSG and self._last < seq <= self._last + 1_000_000:
                    self._lost_guess = seq
                break
            self._apply(blk, start + pos, kind, seq, ts, aux, buf, pos, slen, hlen, n)
            pos += n
        blk.size = start + pos
        if bad:
            self.lost_bytes += end - pos
            self._lost_from = self._last + 1
            os.truncate(blk.path, blk.size)
        self._rebase()

    def _apply(self, blk, off, kind, seq, ts, aux, buf, pos, slen, hlen, n):
        if kind == KIND_MSG or kind == KIND_ERASED:
            if seq <= self._last:
                return  # never written so; ignore rather than corrupt the index
            if self._lost_from is not None:
                self.lost.extend(range(self._lost_from, min(seq, self._lost_from + 1_000_000)))
                self._lost_from = None
                self._lost_guess = 0
            if not blk.offs:
                blk.base = seq
                self._rebase()
            else:
                gap = seq - blk.base - len(blk.offs)
                if gap > 0:
                    blk.offs.extend(_DEL_PAD * gap)
            if kind == KIND_ERASED:
                blk.offs.append(DEL)
                self._note_gap(seq)
                return
            blk.offs.append(off)
            blk.live += 1
            a = pos + HDR_SIZE
            subject = buf[a:a + slen].decode("utf-8", "replace")
            self._note_append(seq, ts, subject, go_size(n, hlen), aux)
        elif kind == KIND_TOMB:
            self._note_gap(seq)  # the sequence was used, even if its block is gone
            tblk, j = self._locate(seq)
            if tblk is not None and tblk.offs[j] != DEL:
                meta = self._e_meta(seq)
                self._mark_removed(tblk, j, meta[0] if meta else None)
                if meta is not None:
                    self._note_remove(seq, meta[0], meta[1])
        elif kind == KIND_SKIP:
            self._note_gap(seq + aux - 1)
        elif kind == KIND_PURGE:
            if seq > self._first or self._msgs == 0:
                self._apply_compact(seq)

    def _rebuild(self):
        """Forget the in-memory index and replay every block (after a read found damage)."""
        self._close_fds()
        self._windows = []
        self._blocks = []
        self._rebase()
        try:
            os.unlink(os.path.join(self._msgdir, "index.db"))
        except OSError:
            pass
        self._reset_memory()
        try:
            self._recover()
        except OSError as exc:
            raise store_error(exc, "rebuilding %s" % self._msgdir)

    # -- index snapshot ---------------------------------------------------------------

    def _block_digest(self, blk):
        """BLAKE2b of the block's first ``size`` bytes (cached per size), for the snapshot.

        Not CRC32: a record rewritten in place with its own CRC32 updated (an erase) leaves
        a CRC32 of the whole block unchanged (CRC is linear; a CRC'd message has a fixed
        residue), so the snapshot would wrongly pass."""
        if blk.crc is not None and blk.crc[0] == blk.size:
            return blk.crc[1]
        h = hashlib.blake2b(digest_size=16)
        with open(blk.path, "rb") as f:
            left = blk.size
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
        blk.crc = (blk.size, h.digest())
        return blk.crc[1]

    def flush_state(self):
        """Write the index snapshot (atomic rename) so the next open skips the replay."""
        if self._closed:
            return
        self.flush_writes()
        try:
            snapshot = {
                "v": INDEX_VERSION, "msgs": self._msgs, "bytes": self._bytes,
                "first": self._first, "last": self._last, "last_ts": self._last_ts,
                "age": self._age_cursor, "lost": self.lost, "lost_bytes": self.lost_bytes,
                "blocks": [(b.idx, b.base, b.size, b.live, b.offs.tobytes(), self._block_digest(b))
                           for b in self._blocks],
                "subjects": self._subjects.dump(), "ttls": self._ttls.dump(),
            }
            atomic_write(os.path.join(self._msgdir, "index.db"), marshal.dumps(snapshot), True)
        except OSError as exc:
            raise store_error(exc, "writing the index")

    def _load_index(self, idxs):
        """Restore from index.db; the (block, offset) tails still to replay, or None."""
        raw = read_checked(os.path.join(self._msgdir, "index.db"))
        if raw is None:
            return None
        try:
            snap = marshal.loads(raw)
            if snap.get("v") != INDEX_VERSION:
                return None
            listed = snap["blocks"]
            on_disk = set(idxs)
            blocks = []
            for idx, base, size, live, offs, crc in listed:
                if idx not in on_disk:
                    return None
                blk = _Block(idx, self._block_path(idx), base)
                if os.path.getsize(blk.path) < size:
                    return None
                blk.size = size
                if self._block_digest(blk) != crc:
                    return None
                blk.offs.frombytes(offs)
                blk.live = live
                blocks.append(blk)
            top = listed[-1][0] if listed else 0
            if any(i < top and i not in {b.idx for b in blocks} for i in idxs):
                return None
            self._subjects.load(snap["subjects"])
            self._ttls.load(snap["ttls"])
        except (ValueError, TypeError, KeyError, EOFError, OSError):
            self._subjects.clear()
            self._ttls.clear()
            return None
        self._msgs, self._bytes = snap["msgs"], snap["bytes"]
        self._first, self._last, self._last_ts = snap["first"], snap["last"], snap["last_ts"]
        self._age_cursor = snap["age"]
        self.lost, self.lost_bytes = list(snap["lost"]), snap["lost_bytes"]
        self._blocks = blocks
        self._rebase()
        tails = [(b, b.size) for b in blocks]
        tails += [(_Block(i, self._block_path(i), 0), 0) for i in idxs if i > top]
        return tails

    # -- consumers, meta, lifecycle -----------------------------------------------------

    def consumer_store(self, name):
        self._check_open()
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise StoreError("invalid consumer name %r" % (name,))  # never a path outside
        try:
            return FileConsumerStore(os.path.join(self.directory, "obs", name), name,
                                     self.config.sync_always)
        except OSError as exc:
            raise store_error(exc, "creating consumer %s" % name)

    def consumer_names(self):
        try:
            return sorted(os.listdir(os.path.join(self.directory, "obs")))
        except OSError:
            return []

    def write_meta(self, blob):
        atomic_write(os.path.join(self.directory, "meta.dat"), bytes(blob), True)

    def read_meta(self):
        return read_checked(os.path.join(self.directory, "meta.dat"))

    def sync(self):
        """fsync every block written since the last sync, and the directory if it changed.

        Safe to run in a worker thread beside appends (GroupCommit does): it reads the
        appender's counters before each fsync and uses file descriptors of its own."""
        if self._held is not None:
            self.flush_writes()
        try:
            dir_changes = self._dir_changes
            for blk in list(self._blocks):
                written = blk.written
                if written != blk.synced:
                    try:
                        fd = os.open(blk.path, os.O_RDONLY)
                    except FileNotFoundError:
                        continue  # deleted meanwhile: nothing to keep
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    blk.synced = written
            if dir_changes != self._dir_synced:
                fsync_dir(self._msgdir)
                self._dir_synced = dir_changes
        except OSError as exc:
            raise store_error(exc, "syncing")

    def _close_fds(self):
        for fd in self._rfds.values():
            os.close(fd)
        self._rfds.clear()
        if self._wfd is not None:
            os.close(self._wfd)
            self._wfd = None

    def close(self):
        if self._closed:
            return
        try:
            self.flush_state()
            self.sync()
        finally:
            self._close_fds()
            self._windows = []
            super().close()

    def delete(self):
        self._held = None
        self._close_fds()
        super().close()
        shutil.rmtree(self.directory, ignore_errors=True)
