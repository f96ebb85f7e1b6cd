"""Generator processes: publishers, subscribers, requester and responder.

Each runs in its own (forked) process so the generator is not limited by one
GIL, talks to the coordinator through shared counters (``Shared``: plain
64-bit slots in shared memory, written by one process, read by others) and
sends one result dict back through a pipe when it is done.  Every loop is
bounded by the coordinator's stop flag *and* a hard deadline of its own.
"""

import gc
import os
import signal
import socket
import struct
import time
from multiprocessing.sharedctypes import RawArray, RawValue

from .proto import (
    CRLF,
    MsgCounter,
    ProtocolError,
    RecvBuffer,
    TaggedBatches,
    dial,
    pub_frame,
    wait_pong,
)


class Shared:
    """Counters shared by the coordinator and its workers (create before fork)."""

    def __init__(self, npubs, nsubs):
        self.sub_count = RawArray("q", max(1, nsubs))
        self.sub_probes = RawArray("q", max(1, nsubs))
        self.sub_ready = RawArray("b", max(1, nsubs))
        self.pub_sent = RawArray("q", max(1, npubs))
        self.pub_ready = RawArray("b", max(1, npubs))
        self.pub_done = RawArray("b", max(1, npubs))
        self.go = RawValue("d", 0.0)  # monotonic start time, set when publishers may start
        self.stop = RawValue("b", 0)  # set by the coordinator: finish and report


def worker_init(cpus):
    """In a worker process: pin it, ignore SIGINT (the coordinator stops it) and
    switch off the cyclic GC (workers make no reference cycles, and a
    collection would show up as latency)."""
    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin(cpus)


def pin(cpus):
    """Pin this process to ``cpus`` (a set of CPU numbers), if given."""
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except (AttributeError, OSError):
            pass


def kernel_timeouts(sock, recv=None, send=None):
    """Make ``sock`` blocking with kernel-side time limits (SO_RCVTIMEO /
    SO_SNDTIMEO) instead of Python's timeout mode, which polls before every
    call: one syscall per recv/send instead of two.  A call that times out
    raises ``BlockingIOError`` (or ``socket.timeout``)."""
    sock.settimeout(None)
    for opt, secs in ((socket.SO_RCVTIMEO, recv), (socket.SO_SNDTIMEO, send)):
        if secs:
            whole = int(secs)
            sock.setsockopt(socket.SOL_SOCKET, opt,
                            struct.pack("ll", whole, int((secs - whole) * 1e6)))


TIMED_OUT = (socket.timeout, BlockingIOError)


def _report(conn, result):
    try:
        conn.send(result)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def _cpu():
    t = os.times()
    return t.user + t.system


# ----------------------------------------------------------------------------- subscriber


def subscriber(idx, spec, shared, conn):
    """Subscribe and count MSG frames until told to stop."""
    worker_init(spec.get("cpus"))
    result = {"idx": idx, "count": 0}
    sock = None
    hard = time.monotonic() + spec["hard_limit"]
    try:
        sock, _ = dial(spec["url"], spec["timeout"], name="bench-sub-%d" % idx)
        subject, queue = spec["subject"], spec.get("queue")
        sid = idx + 1
        literal = spec.get("literal")
        if literal:  # one subscription per subject, sid = its index; the probe's too
            sock.sendall(b"".join(b"SUB %s %s\r\n" % (s, s.rsplit(b".", 1)[1])
                                  for s in literal)
                         + b"SUB %s.probe p\r\nPING\r\n" % subject.rsplit(b".", 1)[0])
        elif queue:
            sock.sendall(b"SUB %s %s %d\r\nPING\r\n" % (subject, queue, sid))
        else:
            sock.sendall(b"SUB %s %d\r\nPING\r\n" % (subject, sid))
        wait_pong(sock, timeout=spec["timeout"])
        counter = MsgCounter(spec["size"], spec.get("verify"), spec.get("vary"))
        rb = RecvBuffer()
        kernel_timeouts(sock, recv=0.1, send=spec["timeout"])
        shared.sub_ready[idx] = 1
        counts, probes = shared.sub_count, shared.sub_probes
        first = last = None
        cpu0 = _cpu()
        stop = shared.stop
        while not stop.value:
            try:
                n = rb.recv_into(sock)
            except TIMED_OUT:
                if time.monotonic() > hard:
                    result["error"] = "subscriber %d: hard time limit reached" % idx
                    break
                continue
            if n == 0:
                if not stop.value:
                    result["error"] = "subscriber %d: connection closed by the server" % idx
                break
            before = counter.count
            rb.consumed(counter.feed(rb.buf, rb.start, rb.end))
            if counter.count != before:
                last = time.monotonic()
                if first is None:
                    first = last
                counts[idx] = counter.count
                if last > hard:
                    result["error"] = "subscriber %d: hard time limit reached" % idx
                    break
            if counter.probes != probes[idx]:
                probes[idx] = counter.probes
            if counter.pings:
                sock.sendall(b"PONG\r\n" * counter.pings)
                counter.pings = 0
            if counter.errors and "error" not in result:
                result["error"] = "subscriber %d: %s" % (idx, counter.errors[0])
        result.update(count=counter.count, probes=counter.probes, other=counter.other,
                      tagxor=counter.tagxor, first=first, last=last, cpu=_cpu() - cpu0,
                      verified=counter.verify)
    except Exception as exc:  # reported, not raised: the coordinator decides
        result["error"] = "subscriber %d: %s: %s" % (idx, type(exc).__name__, exc)
    finally:
        if sock is not None:
            sock.close()
        _report(conn, result)


# ----------------------------------------------------------------------------- publisher


def publisher(idx, spec, shared, conn):
    """Publish pre-encoded batches, at most ``window`` messages ahead of the
    slowest subscriber, until the quota or the duration is reached; then
    PING/PONG so the server has seen everything."""
    worker_init(spec.get("cpus"))
    result = {"idx": idx, "sent": 0, "tagxor": 0}
    sock = None
    try:
        sock, _ = dial(spec["url"], spec["timeout"], name="bench-pub-%d" % idx)
        tb = TaggedBatches(spec["subject"], spec["size"], spec["batch"], spec.get("verify"),
                           spec.get("subjects", 1))
        shared.pub_ready[idx] = 1
        hard = time.monotonic() + spec["hard_limit"]
        while shared.go.value == 0.0:
            if shared.stop.value or time.monotonic() > hard:
                raise ProtocolError("never told to start")
            time.sleep(0.0005)
        t0 = shared.go.value
        t_end = t0 + spec["duration"] if spec.get("duration") else float("inf")
        quota = spec.get("quota") or float("inf")
        window = spec.get("window_msgs") or 0
        nsubs = spec.get("nsubs", 0)
        sub_count, pub_sent = shared.sub_count, shared.pub_sent
        if not nsubs:
            window = 0
        queue = bool(spec.get("queue"))
        stall_limit = spec["timeout"]
        sent = tagxor = 0
        batch = tb.batch
        verify = tb.verify
        block = None if verify else tb.make(batch)[0]
        kernel_timeouts(sock, recv=spec["timeout"], send=spec["timeout"])
        cpu0 = _cpu()
        monotonic, sendall = time.monotonic, sock.sendall
        stop = shared.stop
        while sent < quota:
            now = monotonic()
            if now >= t_end or stop.value:
                break
            if now > hard:
                raise ProtocolError("hard time limit reached")
            if window:
                spins = 0
                while True:
                    slowest = sum(sub_count) if queue else min(sub_count[:nsubs])
                    if sum(pub_sent) - slowest <= window:
                        break
                    spins += 1
                    if spins < 16:
                        os.sched_yield()
                    else:
                        time.sleep(0.0001)
                    if spins % 1024 == 0:
                        if monotonic() - now > stall_limit:
                            raise ProtocolError("flow control: subscribers made no progress"
                                                " for %.0fs" % stall_limit)
                        if stop.value:
                            break
                if stop.value:
                    break
            k = batch if quota - sent >= batch else int(quota - sent)
            if verify or k != batch:
                data, tsum = tb.make(k)
                tagxor ^= tsum
            else:
                data = block
            sendall(data)
            sent += k
            pub_sent[idx] = sent
        sock.settimeout(spec["timeout"] + 5)
        sock.sendall(b"PING\r\n")
        wait_pong(sock, timeout=spec["timeout"] + 5)
        t_done = time.monotonic()
        result.update(sent=sent, tagxor=tagxor, t_done=t_done, cpu=_cpu() - cpu0)
    except Exception as exc:
        result["error"] = "publisher %d: %s: %s" % (idx, type(exc).__name__, exc)
        result["sent"] = shared.pub_sent[idx]
    finally:
        shared.pub_done[idx] = 1
        if sock is not None:
            sock.close()
        _report(conn, result)


# ----------------------------------------------------------------------------- request/reply


def responder(idx, spec, shared, conn):
    """Echo every request's payload to its reply subject."""
    worker_init(spec.get("cpus"))
    result = {"idx": idx, "count": 0}
    sock = None
    hard = time.monotonic() + spec["hard_limit"]
    try:
        sock, _ = dial(spec["url"], spec["timeout"], name="bench-responder")
        sock.sendall(b"SUB %s 1\r\nPING\r\n" % spec["subject"])
        wait_pong(sock, timeout=spec["timeout"])
        kernel_timeouts(sock, recv=0.1, send=spec["timeout"])
        shared.sub_ready[idx] = 1
        buf = b""
        count = 0
        while not shared.stop.value:
            try:
                chunk = sock.recv(1 << 20)
            except TIMED_OUT:
                if time.monotonic() > hard:
                    break
                continue
            if not chunk:
                if not shared.stop.value:
                    result["error"] = "responder: connection closed by the server"
                break
            buf += chunk
            out = []
            p = 0
            while True:
                i = buf.find(CRLF, p)
                if i < 0:
                    break
                line = buf[p:i]
                if line.startswith(b"MSG "):
                    parts = line.split()
                    size = int(parts[-1])
                    end = i + 2 + size + 2
                    if end > len(buf):
                        break
                    if len(parts) == 5:
                        out.append(b"PUB %s %d\r\n" % (parts[3], size))
                        out.append(buf[i + 2:end])
                        count += 1
                    p = end
                    continue
                if line.startswith(b"PING"):
                    out.append(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    result["error"] = "responder: " + line.decode(errors="replace")
                p = i + 2
            buf = buf[p:]
            if out:
                sock.sendall(b"".join(out))
        result["count"] = count
    except Exception as exc:
        result["error"] = "responder: %s: %s" % (type(exc).__name__, exc)
    finally:
        if sock is not None:
            sock.close()
        _report(conn, result)


def requester(idx, spec, shared, conn):
    """Sequential requests; latency of each round trip in nanoseconds."""
    worker_init(spec.get("cpus"))
    result = {"idx": idx}
    sock = None
    try:
        sock, _ = dial(spec["url"], spec["timeout"], name="bench-requester")
        inbox = b"_INBOX.bench.%d" % os.getpid()
        sock.sendall(b"SUB %s.* 1\r\nPING\r\n" % inbox)
        wait_pong(sock, timeout=spec["timeout"])
        shared.pub_ready[idx] = 1
        subject, size = spec["subject"], spec["size"]
        counter = MsgCounter(size)
        counter.keep_last = True
        rb = RecvBuffer(1 << 20)
        timeout = spec["timeout"]
        kernel_timeouts(sock, recv=0.05, send=timeout)
        hard = time.monotonic() + spec["hard_limit"]
        while shared.go.value == 0.0:
            if shared.stop.value or time.monotonic() > hard:
                raise ProtocolError("never told to start")
            time.sleep(0.0005)

        def roundtrip(frame, reply, wait):
            sock.sendall(frame)
            deadline = time.monotonic() + wait
            while True:
                got = counter.count + counter.other + counter.probes
                rb.consumed(counter.feed(rb.buf, rb.start, rb.end))
                if counter.pings:
                    sock.sendall(b"PONG\r\n" * counter.pings)
                    counter.pings = 0
                if counter.errors:
                    raise ProtocolError(counter.errors[0])
                now = counter.count + counter.other + counter.probes
                if now != got and counter.last_msg[0] == reply:
                    return True
                if time.monotonic() > deadline:
                    return False
                try:  # blocks in the kernel for at most 50 ms (SO_RCVTIMEO)
                    if rb.recv_into(sock) == 0:
                        raise ProtocolError("connection closed by the server")
                except TIMED_OUT:
                    pass

        data = bytes(size)
        # warm-up: until a reply comes back (interest may still be propagating),
        # then up to 1000 requests or 1 s; each attempt has its own reply subject
        t_warm = time.monotonic()
        attempt = 0
        ok = 0
        while ok < 1000 and time.monotonic() - t_warm < (1.0 if ok else timeout):
            attempt += 1
            reply = b"%s.w%d" % (inbox, attempt)
            if roundtrip(pub_frame(subject, size, reply, data), reply, 0.5 if not ok else timeout):
                ok += 1
            elif ok:
                raise ProtocolError("warm-up: request timed out")
        if not ok:
            raise ProtocolError("warm-up: no reply within %.0fs (no responder?)" % timeout)
        reply = inbox + b".m"
        frame = pub_frame(subject, size, reply, data)
        t_end = time.monotonic() + spec["duration"] if spec.get("duration") else float("inf")
        quota = spec.get("quota") or float("inf")
        keep = spec.get("keep", 2_000_000)
        lat = []
        n = 0
        done = shared.pub_sent
        perf = time.perf_counter_ns
        cpu0 = _cpu()
        t0 = time.monotonic()
        while n < quota and not shared.stop.value:
            if time.monotonic() >= t_end:
                break
            a = perf()
            if not roundtrip(frame, reply, timeout):
                raise ProtocolError("request %d timed out after %.0fs" % (n, timeout))
            if len(lat) < keep:
                lat.append(perf() - a)
            n += 1
            done[idx] = n
        secs = time.monotonic() - t0
        result.update(count=n, secs=secs, lat_us=percentiles(lat), samples=len(lat),
                      cpu=_cpu() - cpu0)
    except Exception as exc:
        result["error"] = "requester: %s: %s" % (type(exc).__name__, exc)
    finally:
        shared.pub_done[idx] = 1
        if sock is not None:
            sock.close()
        _report(conn, result)


def percentiles(samples_ns):
    """p50/p90/p99/p99.9/min/max in microseconds (nearest rank, like natsbench)."""
    if not samples_ns:
        return {}
    xs = sorted(samples_ns)
    last = len(xs) - 1

    def at(q):
        return xs[int(q * last)] / 1e3

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p99.9": at(0.999),
            "min": at(0.0), "max": at(1.0)}
