"""The NATS client protocol as the load generator needs it: raw sockets,
pre-encoded frames, and a counting reader that costs almost nothing per message.

Counting reader
---------------
All messages of one benchmark subscription look the same on the wire: the
server writes ``MSG <subject> <sid> <size>\\r\\n<payload>\\r\\n`` with the same
subject, sid and size every time.  :class:`MsgCounter` parses the first such
frame the slow way (control line, size, payload skipped by its size) and keeps
its bytes as a *template*.  After that it consumes runs of frames by comparing
the receive buffer against the template repeated ``K`` times
(``bytearray.startswith(block, offset)``: one ``memcmp``), so a megabyte of
16-byte messages costs a few dozen microseconds of Python.  Nothing is found by
searching: the reader always stands on a frame boundary and advances by whole
frames, so bytes inside payloads are never mistaken for frames, and every
counted frame was compared byte for byte.  Anything that is not a template
frame (PING, -ERR, warm-up probes, other sizes, a different header) goes
through the slow parser one operation at a time.

Verification tags
-----------------
With ``verify`` the first 8 payload bytes of every message carry a fresh random
64-bit tag.  Publishers XOR together the tags they send; subscribers XOR the
tags they receive (gathered with strided slices into one buffer, folded as a
big integer: no Python per message).  Equal counts *and* equal XORs mean every
message arrived exactly once: a duplicate plus a loss would need two random
64-bit tags to collide.  The tag bytes are masked (zeroed in the receive
buffer) before the template comparison, so framing is still checked byte for
byte.
"""

import json
import os
import random
import socket
import time
from urllib.parse import unquote

CRLF = b"\r\n"
TAG = 8  # bytes of verification tag at the start of a payload
MAX_LINE = 64 * 1024


def payload(size):
    """The benchmark payload: lower-case letters (never protocol verbs)."""
    return bytes(97 + i % 26 for i in range(size))


def parse_url(url):
    """``nats://host:port`` (or ``host:port``) -> (host, port)."""
    rest = url
    if "://" in rest:
        rest = rest.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest or "127.0.0.1", 4222
    return host.strip("[]"), int(port)


def url_credentials(url):
    """``nats://user:pass@host:port`` -> {"user": ..., "pass": ...} ({} without)."""
    rest = url.split("://", 1)[-1]
    if "@" not in rest:
        return {}
    userinfo = rest.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    creds = {"user": unquote(user)}
    if password:
        creds["pass"] = unquote(password)
    return creds


def connect_line(name, url=""):
    opts = {"verbose": False, "pedantic": False, "tls_required": False, "name": name,
            "lang": "python-raw", "version": "1", "protocol": 1, "headers": False}
    opts.update(url_credentials(url))
    return b"CONNECT " + json.dumps(opts, separators=(",", ":")).encode() + CRLF


class ProtocolError(Exception):
    pass


def dial(url, timeout=10.0, name="pluggy-nats-bench"):
    """Connect, read INFO, send CONNECT + PING and wait for PONG.

    Returns (socket, info dict). The socket is left blocking with ``timeout``.
    """
    host, port = parse_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        deadline = time.monotonic() + timeout
        while CRLF not in buf:
            if time.monotonic() > deadline or len(buf) > MAX_LINE:
                raise ProtocolError("no INFO from %s" % url)
            chunk = sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed before INFO by %s" % url)
            buf += chunk
        line, _, rest = buf.partition(CRLF)
        if not line.startswith(b"INFO"):
            raise ProtocolError("expected INFO from %s, got %r" % (url, line[:80]))
        try:
            info = json.loads(line[4:].strip() or b"{}")
        except ValueError:
            info = {}
        sock.sendall(connect_line(name, url) + b"PING\r\n")
        wait_pong(sock, rest, deadline)
        return sock, info
    except BaseException:
        sock.close()
        raise


def wait_pong(sock, buf=b"", deadline=None, timeout=10.0):
    """Read control lines until PONG (only while nothing else is expected:
    MSG frames are skipped by their size). Answers PING; raises on -ERR."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    while True:
        while CRLF in buf:
            line, _, buf = buf.partition(CRLF)
            if line.startswith(b"PONG"):
                return buf
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ProtocolError("server: %s" % line.decode(errors="replace"))
            elif line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                size = int(line.rsplit(b" ", 1)[1])
                while len(buf) < size + 2:
                    buf += _recv(sock, deadline)
                buf = buf[size + 2:]
        if len(buf) > MAX_LINE:
            raise ProtocolError("control line too long")
        buf += _recv(sock, deadline)


def _recv(sock, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProtocolError("timed out waiting for PONG")
    old = sock.gettimeout()
    sock.settimeout(left)
    try:
        chunk = sock.recv(1 << 20)
    except socket.timeout:
        raise ProtocolError("timed out waiting for PONG")
    finally:
        sock.settimeout(old)
    if not chunk:
        raise ProtocolError("connection closed by server")
    return chunk


def xor_lanes(value, n):
    """XOR of the ``n`` 64-bit lanes of the integer ``value`` (little-endian lanes),
    by folding halves: O(size) big-integer operations, no per-lane Python."""
    while n > 1:
        half = n >> 1
        value = (value >> (64 * half)) ^ (value & ((1 << (64 * half)) - 1))
        n -= half
    return value


def frame_block_count(frame_len, target=256 * 1024):
    return max(1, target // frame_len)


class MsgCounter:
    """Counts MSG frames of payload size ``want`` in a receive buffer.

    ``feed(buf, start, end)`` consumes complete operations from ``buf[start:end]``
    (a bytearray the caller owns; tag bytes in it are overwritten) and returns
    the offset of the first unconsumed byte. Counters: ``count`` (frames of size
    ``want``), ``probes`` (size 0: warm-up), ``other`` (any other MSG/HMSG),
    ``tagxor``, ``pings`` (to be answered by the caller, then reset), ``pongs``,
    ``errors`` (-ERR lines).
    """

    def __init__(self, want, verify=False, vary=None):
        self.want = want
        self.verify = bool(verify) and want >= TAG
        # (offset, width) of control-line bytes that differ between otherwise
        # identical frames: the subject index with ``--subjects N``.
        self.vary = vary
        self.count = 0
        self.probes = 0
        self.other = 0
        self.tagxor = 0
        self.pings = 0
        self.pongs = 0
        self.errors = []
        self.last_msg = None  # (subject, reply, payload) of the last slow-path MSG
        self.keep_last = False
        self._tmpl = None
        self._misses = 0

    # -- template
    def _learn(self, frame, hdr_len):
        # Masked offsets are zeroed in the template and, by stride, in the
        # buffer before one comparison checks a whole run of frames: the tags
        # first (their bytes are XORed), then the varying subject bytes.
        masks = list(range(hdr_len, hdr_len + TAG)) if self.verify else []
        if self.vary:
            masks += range(self.vary[0], self.vary[0] + self.vary[1])
        if masks:
            frame = bytearray(frame)
            for j in masks:
                frame[j] = 0
            frame = bytes(frame)
        n = frame_block_count(len(frame))
        block = frame * n
        self._tmpl = (frame, len(frame), n, block, memoryview(block), masks,
                      bytes(n))  # zeros for masking
        self._misses = 0

    def feed(self, buf, start, end):
        p = start
        tmpl = self._tmpl
        mv = None
        while p < end:
            if tmpl is not None and end - p >= tmpl[1]:
                frame, flen, kmax, _block, bmv, masks, zeros = tmpl
                n = (end - p) // flen
                if n > kmax:
                    n = kmax
                stop = p + n * flen
                if not masks:
                    if buf.startswith(bmv[:n * flen], p):
                        self.count += n
                        p = stop
                        self._misses = 0
                        continue
                    m = 0
                    while m < n and buf.startswith(frame, p + m * flen):
                        m += 1
                    self.count += m
                    p += m * flen
                else:
                    if mv is None:
                        mv = memoryview(buf)
                    z = zeros[:n]
                    saved = []
                    for j in masks:
                        s = p + j
                        saved.append(bytes(mv[s:stop:flen]))
                        mv[s:stop:flen] = z
                    if buf.startswith(bmv[:n * flen], p):
                        m = n
                    else:
                        m = 0
                        while m < n and buf.startswith(frame, p + m * flen):
                            m += 1
                        for j, old in zip(masks, saved, strict=True):  # put back: may not be frames
                            mv[p + j:stop:flen] = old
                    if m:
                        self.count += m
                        if self.verify:
                            tags = bytearray(TAG * m)
                            for j in range(TAG):
                                tags[j::TAG] = saved[j][:m]
                            self.tagxor ^= xor_lanes(int.from_bytes(tags, "little"), m)
                        p += m * flen
                        if m == n:
                            self._misses = 0
                            continue
                if m == 0:
                    self._misses += 1
                    if self._misses > 64:  # the stream changed shape: learn again
                        self._tmpl = None
                else:
                    self._misses = 0
            r = self._slow(buf, p, end)
            if r < 0:
                break
            p = r
            tmpl = self._tmpl
        if mv is not None:
            mv.release()
        return p

    def _slow(self, buf, p, end):
        """Consume one operation at p; return the new offset, or -1 if incomplete."""
        i = buf.find(CRLF, p, end)
        if i < 0:
            if end - p > MAX_LINE:
                raise ProtocolError("control line too long: %r" % bytes(buf[p:p + 80]))
            return -1
        c = buf[p]
        if c == 77 or c == 72:  # MSG / HMSG
            hmsg = c == 72
            if not (buf.startswith(b"MSG ", p) or buf.startswith(b"HMSG ", p)):
                raise ProtocolError("unexpected: %r" % bytes(buf[p:i][:80]))
            j = buf.rfind(b" ", p, i)
            size = int(buf[j + 1:i])
            total = i + 2 + size + 2
            if total > end:
                return -1
            if not hmsg and size == self.want:
                self.count += 1
                if self.verify:
                    self.tagxor ^= int.from_bytes(buf[i + 2:i + 2 + TAG], "little")
                if self._tmpl is None and not self.keep_last:
                    self._learn(bytes(buf[p:total]), i + 2 - p)
            elif size == 0 and not hmsg:
                self.probes += 1
            else:
                self.other += 1
            if self.keep_last:
                parts = bytes(buf[p:i]).split()
                reply = parts[3] if len(parts) == (6 if hmsg else 5) else None
                self.last_msg = (parts[1], reply, bytes(buf[i + 2:i + 2 + size]))
            return total
        line = bytes(buf[p:i])
        if line.startswith(b"PING"):
            self.pings += 1
        elif line.startswith(b"PONG"):
            self.pongs += 1
        elif line.startswith(b"-ERR"):
            self.errors.append(line.decode(errors="replace"))
        return i + 2


class RecvBuffer:
    """A growable bytearray receive buffer with compaction."""

    def __init__(self, size=4 << 20):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0

    def recv_into(self, sock):
        if self.end == len(self.buf):
            self._make_room()
        n = sock.recv_into(self.mv[self.end:])
        self.end += n
        return n

    def consumed(self, new_start):
        self.start = new_start
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end > len(self.buf) - (len(self.buf) >> 2):
            self._make_room()

    def _make_room(self):
        left = self.end - self.start
        if self.start == 0 and left == len(self.buf):  # one frame bigger than the buffer
            new = bytearray(2 * len(self.buf))
            new[:left] = self.buf
            self.mv.release()
            self.buf, self.mv = new, memoryview(new)
        else:
            self.buf[:left] = self.buf[self.start:self.end]
        self.start, self.end = 0, left


def pub_frame(subject, size, reply=None, data=None):
    data = payload(size) if data is None else data
    if reply:
        return b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, size, data)
    return b"PUB %s %d\r\n%s\r\n" % (subject, size, data)


def rotating_subjects(subject, n):
    """``subject.0`` .. ``subject.<n-1>``, zero-padded so every frame has the
    same length (the tag positions are found by stride)."""
    width = len(str(n - 1))
    return [b"%s.%0*d" % (subject, width, i) for i in range(n)]


class TaggedBatches:
    """Publisher batches: ``k`` PUB frames, with fresh random tags in every
    payload when verifying. ``make(k)`` -> (bytes, XOR of the tags).

    With ``subjects`` > 1 the frames cycle over that many subjects (see
    :func:`rotating_subjects`), so no two neighbours share a control line: the
    server's per-message path, not its batch path, is what gets measured."""

    def __init__(self, subject, size, batch, verify, subjects=1):
        subs = [subject] if subjects <= 1 else rotating_subjects(subject, subjects)
        frames = [pub_frame(s, size) for s in subs]
        self.frame = frames[0]
        self.flen = len(self.frame)
        self.hdr = self.frame.index(CRLF) + 2
        self.batch = batch
        self.verify = bool(verify) and size >= TAG
        self.rng = random.Random(os.urandom(32))  # own state: forked processes differ
        if self.verify:
            for i, f in enumerate(frames):
                f = bytearray(f)
                f[self.hdr:self.hdr + TAG] = bytes(TAG)
                frames[i] = bytes(f)
        self.cycle = b"".join(frames)
        self.block = self._frames(batch)

    def _frames(self, k):
        """``k`` frames of the subject cycle, starting at its first subject."""
        reps = -(-k // (len(self.cycle) // self.flen))
        return (self.cycle * reps)[:k * self.flen]

    def make(self, k):
        if not self.verify:
            return (self.block if k == self.batch else self._frames(k)), 0
        data = bytearray(self.block if k == self.batch else self._frames(k))
        value = self.rng.getrandbits(64 * k)
        tags = value.to_bytes(TAG * k, "little")
        for j in range(TAG):
            data[self.hdr + j::self.flen] = tags[j::TAG]
        return data, xor_lanes(value, k)
