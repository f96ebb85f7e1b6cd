"""A fake NATS server for measuring the generator's own ceiling (``--sink``).

It speaks just enough of the protocol for the benchmark clients: INFO,
CONNECT, PING/PONG, SUB/UNSUB (exact subjects, queue groups round-robin) and
PUB.  Runs of identical PUB frames are recognised with the same template trick
as the counting reader (:mod:`.proto`) and turned into runs of pre-encoded MSG
frames with one ``sendall`` per subscriber, carrying the verification tags
along; anything else is handled one operation at a time.  It does far less
work per message than a real server, so a scenario run against it shows how
fast the generator itself can go.
"""

import os
import selectors
import signal
import socket
import time

from .proto import CRLF, TAG, ProtocolError, RecvBuffer, frame_block_count

INFO = (b'INFO {"server_id":"BENCHSINK","server_name":"sink","version":"2.10.0","proto":1,'
        b'"host":"127.0.0.1","port":0,"headers":true,"max_payload":1048576}\r\n')


def _match(pattern, subject):
    """NATS subject matching with ``*`` and ``>``."""
    if pattern == subject:
        return True
    pt, st = pattern.split(b"."), subject.split(b".")
    for i, tok in enumerate(pt):
        if tok == b">":
            return len(st) > i
        if i >= len(st) or (tok != b"*" and tok != st[i]):
            return False
    return len(pt) == len(st)


class _Template:
    """A learned PUB frame, as is and with its tag bytes zeroed, repeated."""

    def __init__(self, frame, hdr, subject, size):
        self.flen = len(frame)
        self.kmax = frame_block_count(self.flen)
        self.hdr = hdr
        self.subject = subject
        self.raw = frame
        self.raw_mv = memoryview(frame * self.kmax)
        self.raw_payload = frame[hdr:hdr + size]
        self.masked = self.masked_mv = self.masked_payload = None
        if size >= TAG:
            f = bytearray(frame)
            f[hdr:hdr + TAG] = bytes(TAG)
            self.masked = bytes(f)
            self.masked_mv = memoryview(self.masked * self.kmax)
            self.masked_payload = self.masked[hdr:hdr + size]
            self.zeros = bytes(self.kmax)


class _Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.rb = RecvBuffer(4 << 20)
        self.subs = {}  # sid -> (subject, queue)
        self.tmpl = None  # the last PUB frame seen (a _Template)
        self.misses = 0


class Sink:
    def __init__(self, host="127.0.0.1", port=0):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.subs = {}  # (subject, queue or None) -> [(conn, sid)]
        self.cache = {}  # subject -> (plain members, [queue group members])
        self.rr = 0
        self.msg_tmpl = {}  # (cid, sid, subject, payload) -> (mlen, mblock, mhdr, k)
        self.cids = 0
        self.pubs = 0

    # -- interest
    def _targets(self, subject):
        matches = self.cache.get(subject)
        if matches is None:
            plain, groups = [], {}
            for (subj, queue), members in self.subs.items():
                if members and _match(subj, subject):
                    if queue:
                        groups.setdefault(queue, []).extend(members)
                    else:
                        plain.extend(members)
            matches = self.cache[subject] = (plain, list(groups.values()))
        plain, groups = matches
        if not groups:
            return plain
        out = list(plain)
        for members in groups:
            self.rr += 1
            out.append(members[self.rr % len(members)])
        return out

    def _sub(self, conn, subject, queue, sid):
        conn.subs[sid] = (subject, queue)
        self.subs.setdefault((subject, queue), []).append((conn, sid))
        self.cache.clear()

    def _unsub(self, conn, sid):
        key = conn.subs.pop(sid, None)
        if key is None:
            return
        members = self.subs.get(key, [])
        if (conn, sid) in members:
            members.remove((conn, sid))
        self.cache.clear()

    # -- delivery
    def _deliver_run(self, subject, n, tags, payload):
        """Deliver ``n`` messages with this payload (and, if given, these tags
        in their first 8 bytes) to every matching subscription."""
        for conn, sid in self._targets(subject):
            key = (conn.cid, sid, subject, payload)
            mt = self.msg_tmpl.get(key)
            if mt is None:
                hdr = b"MSG %s %s %d\r\n" % (subject, sid, len(payload))
                mframe = hdr + payload + CRLF
                k = frame_block_count(len(mframe))
                mt = self.msg_tmpl[key] = (len(mframe), mframe * k, len(hdr), k)
            mlen, mblock, mhdr, k = mt
            start = 0
            while start < n:  # n may exceed one block
                m = min(k, n - start)
                if tags is None:
                    data = mblock if m == k else memoryview(mblock)[:m * mlen]
                else:
                    data = bytearray(memoryview(mblock)[:m * mlen])
                    part = memoryview(tags)[start * TAG:(start + m) * TAG]
                    for j in range(TAG):
                        data[mhdr + j::mlen] = part[j::TAG]
                self._send(conn, data)
                start += m

    def _send(self, conn, data):
        try:
            conn.sock.sendall(data)
        except OSError:
            self._close(conn)

    def _deliver_one(self, subject, reply, payload):
        for conn, sid in self._targets(subject):
            if reply:
                hdr = b"MSG %s %s %s %d\r\n" % (subject, sid, reply, len(payload))
            else:
                hdr = b"MSG %s %s %d\r\n" % (subject, sid, len(payload))
            self._send(conn, hdr + payload + CRLF)

    # -- parsing
    def _feed(self, conn):
        rb = conn.rb
        buf, p, end = rb.buf, rb.start, rb.end
        mv = memoryview(buf)
        try:
            while p < end:
                t = conn.tmpl
                if t is not None and end - p >= t.flen:
                    flen = t.flen
                    n = min(t.kmax, (end - p) // flen)
                    stop = p + n * flen
                    if buf.startswith(t.raw_mv[:n * flen], p):  # identical frames
                        self.pubs += n
                        self._deliver_run(t.subject, n, None, t.raw_payload)
                        p = stop
                        conn.misses = 0
                        continue
                    m = 0
                    tags = None
                    if t.masked_mv is not None:  # frames that differ only in their tags
                        hdr = t.hdr
                        tags = bytearray(TAG * n)
                        z = t.zeros[:n]
                        for j in range(TAG):
                            s = p + hdr + j
                            tags[j::TAG] = mv[s:stop:flen]
                            mv[s:stop:flen] = z
                        if buf.startswith(t.masked_mv[:n * flen], p):
                            self.pubs += n
                            self._deliver_run(t.subject, n, tags, t.masked_payload)
                            p = stop
                            conn.misses = 0
                            continue
                        while m < n and buf.startswith(t.masked, p + m * flen):
                            m += 1
                        for j in range(TAG):
                            mv[p + hdr + j:stop:flen] = tags[j::TAG]
                        if m:
                            self.pubs += m
                            self._deliver_run(t.subject, m, tags[:TAG * m], t.masked_payload)
                    else:
                        while m < n and buf.startswith(t.raw, p + m * flen):
                            m += 1
                        if m:
                            self.pubs += m
                            self._deliver_run(t.subject, m, None, t.raw_payload)
                    p += m * flen
                    if m:
                        conn.misses = 0
                    else:
                        conn.misses += 1
                        if conn.misses > 64:
                            conn.tmpl = None
                r = self._op(conn, buf, p, end)
                if r < 0:
                    break
                p = r
        finally:
            mv.release()
        rb.consumed(p)

    def _op(self, conn, buf, p, end):
        i = buf.find(CRLF, p, end)
        if i < 0:
            if end - p > 65536:
                raise ProtocolError("control line too long")
            return -1
        line = bytes(buf[p:i])
        verb = line[:4].upper()
        if verb == b"PUB " or verb == b"HPUB":
            parts = line.split()
            size = int(parts[-1])
            total = i + 2 + size + 2
            if total > end:
                return -1
            self.pubs += 1
            if verb == b"PUB ":
                reply = parts[2] if len(parts) == 4 else None
                data = bytes(buf[i + 2:i + 2 + size])
                self._deliver_one(parts[1], reply, data)
                if reply is None and (conn.tmpl is None or conn.misses > 64):
                    self._learn(conn, bytes(buf[p:total]), i + 2 - p, parts[1], size)
            return total
        if verb == b"PING":
            self._send(conn, b"PONG\r\n")
        elif verb == b"SUB ":
            parts = line.split()
            self._sub(conn, parts[1], parts[2] if len(parts) == 4 else None, parts[-1])
        elif verb == b"UNSU":
            parts = line.split()
            if len(parts) >= 2:
                self._unsub(conn, parts[1])
        return i + 2

    def _learn(self, conn, frame, hdr, subject, size):
        conn.tmpl = _Template(frame, hdr, subject, size)
        conn.misses = 0

    # -- loop
    def _close(self, conn):
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        for sid in list(conn.subs):
            self._unsub(conn, sid)
        conn.sock.close()

    def serve(self, lifetime=300.0, stop=None, parent=None):
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline:
            if stop is not None and stop.value:
                break
            if parent is not None and os.getppid() != parent:
                break
            for key, _ in self.sel.select(0.2):
                if key.data is None:
                    try:
                        sock, _ = self.listener.accept()
                    except OSError:
                        continue
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.settimeout(30)
                    self.cids += 1
                    conn = _Conn(sock, self.cids)
                    self.sel.register(sock, selectors.EVENT_READ, conn)
                    self._send(conn, INFO)
                    continue
                conn = key.data
                try:
                    n = conn.rb.recv_into(conn.sock)
                except OSError:
                    n = 0
                if not n:
                    self._close(conn)
                    continue
                try:
                    self._feed(conn)
                except (ProtocolError, ValueError):
                    self._close(conn)
        self.sel.close()
        self.listener.close()


def sink_process(pipe, host, lifetime, cpus, stop, parent):
    """multiprocessing target: report the port through ``pipe``, then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops us
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass
    sink = Sink(host, 0)
    pipe.send(sink.port)
    pipe.close()
    sink.serve(lifetime, stop, parent)
