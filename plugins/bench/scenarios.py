"""The coordinator: starts the worker processes of a scenario, shows progress,
decides when a run is complete and turns the workers' reports into one result.

A throughput run (pub, sub, pubsub, fanout, queue, cluster, leaf):

1. subscribers connect, subscribe and confirm with PING/PONG;
2. publishers connect; a warm-up publishes empty probe messages until every
   subscriber (any member of a queue group) has seen one, so interest has
   reached the publishers' server even across a cluster;
3. the clock starts; publishers send pre-encoded batches for ``--duration``
   seconds or ``--msgs`` messages, never more than ``--window`` bytes ahead of
   the slowest subscriber (queue: of the group's total);
4. the clock stops at the last delivery (pub: when the server answered the
   final PING). Missing, extra or (with tags) altered messages fail the run.
"""

import multiprocessing
import os
import resource
import socket
import sys
import time

from . import workers
from .proto import ProtocolError, connect_line, dial, parse_url, rotating_subjects

SUBJECT = b"bench.s"
QUEUE = b"q"

# name: (publishers, subscribers, queue group?, description)
SCENARIOS = {
    "pub": (1, 0, False, "publishers only, no subscribers: msgs/s published"),
    "sub": (1, 1, False, "subscribers count what a publisher sends: msgs/s received"),
    "pubsub": (1, 1, False, "1 publisher -> 1 subscriber: msgs/s delivered"),
    "fanout": (1, 8, False, "1 publisher -> N subscribers: deliveries/s (sum)"),
    "queue": (4, 4, True, "P publishers -> one queue group of S: msgs/s, each exactly once"),
    "req": (1, 1, False, "sequential request/reply, one responder: latency percentiles"),
    "cluster": (1, 1, False, "publisher on --url, subscriber on --sub-url: msgs/s delivered"),
    "gateway": (1, 1, False, "publisher on --url (cluster A), subscriber on --sub-url "
                             "(cluster B, over a gateway): msgs/s delivered"),
    "leaf": (1, 1, False, "publisher on --url (a hub), subscriber on --sub-url (its leaf);"
                          " swap the URLs for leaf -> hub"),
    "conns": (0, 0, False, "N idle connections: server RSS per connection (--pid)"),
    "js": (1, 0, False, "JetStream: async publish (--inflight acks) then a pull drain"),
    "mirror": (1, 1, False, "JetStream: publish at the hub (--url), time until its leaf's"
                            " (--sub-url) mirror holds every message"),
}


def _ctx():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class Progress:
    """One status line on stderr about once a second (rewritten on a terminal)."""

    def __init__(self, enabled, label):
        self.enabled = enabled
        self.label = label
        self.tty = enabled and sys.stderr.isatty()
        self.next = time.monotonic() + 1.0
        self.shown = False

    def tick(self, text, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self.next and not force:
            return
        self.next = now + 1.0
        line = "%s: %s" % (self.label, text)
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self):
        if self.tty and self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def fmt_count(v):
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


class Workers:
    """The worker processes of one run; all are stopped by PID at the end."""

    def __init__(self, shared):
        self.shared = shared
        self.ctx = _ctx()
        self.items = []  # (kind, idx, process, pipe)
        self.reports = {}  # (kind, idx) -> report dict

    def start(self, kind, idx, target, spec):
        recv, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=target, args=(idx, spec, self.shared, send),
                                name="bench-%s-%d" % (kind, idx), daemon=True)
        proc.start()
        send.close()
        self.items.append((kind, idx, proc, recv))

    def wait_ready(self, kind, flags, n, timeout):
        deadline = time.monotonic() + timeout
        while not all(flags[i] for i in range(n)):
            for k, idx, proc, pipe in self.items:
                if k == kind and not flags[idx]:
                    res = self._poll(k, idx, pipe)
                    if res is not None or not proc.is_alive():
                        raise ProtocolError((res or {}).get("error")
                                            or "%s %d exited" % (kind, idx))
            if time.monotonic() > deadline:
                raise ProtocolError("%s not ready after %.0fs" % (kind, timeout))
            time.sleep(0.005)

    def _poll(self, kind, idx, pipe):
        if (kind, idx) not in self.reports and pipe.poll():
            try:
                self.reports[(kind, idx)] = pipe.recv()
            except (EOFError, OSError):
                self.reports[(kind, idx)] = {"idx": idx, "error": "%s %d died" % (kind, idx)}
        return self.reports.get((kind, idx))

    def failed(self):
        """The first error a worker reported before being asked to stop."""
        for kind, idx, _proc, pipe in self.items:
            res = self._poll(kind, idx, pipe)
            if res and res.get("error"):
                return res["error"]
        return None

    def collect(self, timeout):
        """Tell every worker to stop and gather their reports."""
        self.shared.stop.value = 1
        out = {}
        deadline = time.monotonic() + timeout
        for kind, idx, proc, pipe in self.items:
            res = self._poll(kind, idx, pipe)
            while res is None and time.monotonic() < deadline:
                pipe.poll(0.05)
                res = self._poll(kind, idx, pipe)
                if res is None and not proc.is_alive() and not pipe.poll():
                    break
            if res is None:
                res = {"idx": idx, "error": "%s %d: no report" % (kind, idx)}
            out.setdefault(kind, []).append(res)
        return out

    def close(self):
        self.shared.stop.value = 1
        for _, _, proc, pipe in self.items:
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()  # by PID
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
            pipe.close()


def base_result(o):
    return {"scenario": o.scenario, "url": o.url, "sub_url": o.sub_url or o.url, "size": o.size,
            "pubs": o.pubs, "subs": o.subs, "subjects": getattr(o, "subjects", 1), "ok": False,
            "error": None}


def run(o):
    """Run the scenario ``o.scenario`` with options ``o``; return a result dict."""
    if o.cpus:
        workers.pin(o.cpus)
    if o.scenario == "conns":
        return run_conns(o)
    if o.scenario == "req":
        return run_req(o)
    return run_throughput(o)


def _hard_limit(o):
    return (o.duration or 0) + 3 * o.timeout + 60 + (o.msgs or 0) / 1e5


def sub_subject(o):
    """What throughput subscribers subscribe to: the one subject, or with
    ``--subjects N`` a ``*`` over the N subjects the publishers cycle through."""
    return SUBJECT if o.subjects <= 1 else SUBJECT + b".*"


def literal_subjects(o):
    """With ``--literal``: the subjects each subscriber subscribes to one by
    one (sid = the subject's index, so every MSG frame has one length)."""
    return rotating_subjects(SUBJECT, o.subjects) if getattr(o, "literal", False) else None


def varying_bytes(o):
    """(offset, width) in a MSG frame of the subject index that differs from
    frame to frame with ``--subjects N`` (see proto.rotating_subjects)."""
    if o.subjects <= 1:
        return None
    width = len(str(o.subjects - 1))
    if getattr(o, "literal", False):  # "<index> <sid>": the sid is the index too
        return (len(b"MSG %s." % SUBJECT), 2 * width + 1)
    return (len(b"MSG %s." % SUBJECT), width)


def _warm_up(o, shared, nsubs, queue, ws):
    """Publish empty probes until the subscribers see them (interest propagated)."""
    sock, _ = dial(o.url, o.timeout, name="bench-probe")
    try:
        probe = b"PUB %s 0\r\n\r\n" % (SUBJECT if o.subjects <= 1 else SUBJECT + b".probe")
        deadline = time.monotonic() + o.timeout
        while True:
            seen = [shared.sub_probes[i] for i in range(nsubs)]
            if (any(seen) if queue else all(seen)):
                break
            err = ws.failed()
            if err:
                raise ProtocolError(err)
            if time.monotonic() > deadline:
                raise ProtocolError("warm-up: subscribers never saw a probe message within %.0fs"
                                    " (interest not propagated?)" % o.timeout)
            sock.sendall(probe)
            time.sleep(0.02)
        time.sleep(0.05)
    finally:
        sock.close()


def run_throughput(o):
    res = base_result(o)
    npubs, nsubs = o.pubs, (0 if o.scenario == "pub" else o.subs)
    queue = o.queue
    frame_len = len(b"PUB %s.%d %d\r\n\r\n" % (SUBJECT, o.subjects, o.size)) + o.size
    window_msgs = max(16, o.window // frame_len) if o.window and nsubs else 0
    batch = max(1, o.batch // frame_len)
    if window_msgs:
        batch = max(1, min(batch, window_msgs // 4))
    res.update(window_bytes=o.window if window_msgs else 0, batch_msgs=batch, subs=nsubs,
               verify=bool(o.verify and o.size >= 8 and nsubs))
    shared = workers.Shared(npubs, nsubs)
    ws = Workers(shared)
    progress = Progress(not o.quiet, o.scenario)
    hard = _hard_limit(o)
    cpu0 = os.times()
    try:
        for i in range(nsubs):
            ws.start("sub", i, workers.subscriber, {
                "url": o.sub_url or o.url, "subject": sub_subject(o),
                "literal": literal_subjects(o), "queue": QUEUE if queue else None,
                "vary": varying_bytes(o), "size": o.size,
                "verify": res["verify"], "timeout": o.timeout, "hard_limit": hard,
                "cpus": o.cpus})
        ws.wait_ready("sub", shared.sub_ready, nsubs, o.timeout + 5)
        for i in range(npubs):
            quota = None
            if o.msgs:
                quota = o.msgs // npubs + (1 if i < o.msgs % npubs else 0)
            ws.start("pub", i, workers.publisher, {
                "url": o.url, "subject": SUBJECT, "size": o.size, "verify": res["verify"],
                "subjects": o.subjects, "batch": batch, "window_msgs": window_msgs, "quota": quota,
                "duration": None if o.msgs and not o.duration_given else o.duration,
                "nsubs": nsubs, "queue": queue, "timeout": o.timeout, "hard_limit": hard,
                "cpus": o.cpus})
        ws.wait_ready("pub", shared.pub_ready, npubs, o.timeout + 5)
        if nsubs:
            _warm_up(o, shared, nsubs, queue, ws)

        # -- measure
        t0 = time.monotonic()
        shared.go.value = t0
        limit = t0 + hard
        while not all(shared.pub_done[i] for i in range(npubs)):
            now = time.monotonic()
            sent = sum(shared.pub_sent[i] for i in range(npubs))
            got = sum(shared.sub_count[i] for i in range(nsubs))
            el = max(1e-9, now - t0)
            text = "%.1fs sent %s (%s/s)" % (el, fmt_count(sent), fmt_count(sent / el))
            if nsubs:
                text += " delivered %s (%s/s)" % (fmt_count(got), fmt_count(got / el))
            progress.tick(text)
            err = ws.failed()
            if err:
                raise ProtocolError(err)
            if now > limit:
                raise ProtocolError("publishers did not finish within %.0fs" % hard)
            time.sleep(0.05)
        sent = sum(shared.pub_sent[i] for i in range(npubs))
        err = ws.failed()
        if err:
            raise ProtocolError(err)
        # -- drain: wait for the last deliveries while they keep coming
        if nsubs:
            expected_each = sent

            def complete():
                counts = [shared.sub_count[i] for i in range(nsubs)]
                return sum(counts) >= sent if queue else min(counts) >= expected_each

            last_total, last_change = -1, time.monotonic()
            while not complete():
                total = sum(shared.sub_count[i] for i in range(nsubs))
                now = time.monotonic()
                if total != last_total:
                    last_total, last_change = total, now
                elif now - last_change > o.timeout:
                    break
                if now > limit:
                    break
                err = ws.failed()
                if err:
                    raise ProtocolError(err)
                progress.tick("draining: delivered %s of %s" % (
                    fmt_count(total), fmt_count(sent if queue else sent * nsubs)))
                time.sleep(0.002)
            time.sleep(0.05)  # let duplicates, if any, arrive and be counted
        reports = ws.collect(o.timeout + 5)
    except ProtocolError as exc:
        res["error"] = str(exc)
        reports = ws.collect(5)
    finally:
        progress.done()
        ws.close()
    cpu1 = os.times()
    res["gen_cpu_s"] = (cpu1.user - cpu0.user + cpu1.system - cpu0.system
                        + cpu1.children_user - cpu0.children_user
                        + cpu1.children_system - cpu0.children_system)
    _summarize_throughput(o, res, reports, shared, nsubs, queue)
    return res


def _summarize_throughput(o, res, reports, shared, nsubs, queue):
    pubs = reports.get("pub", [])
    subs = reports.get("sub", [])
    errors = [r["error"] for r in pubs + subs if r.get("error")]
    if res["error"] is None and errors:
        res["error"] = errors[0]
    t0 = shared.go.value
    sent = sum(r.get("sent", 0) for r in pubs)
    res["sent"] = sent
    if not t0:
        res["error"] = res["error"] or "did not start"
        return
    done = [r["t_done"] for r in pubs if r.get("t_done")]
    pub_secs = (max(done) - t0) if done else None
    res["pub_per_s"] = sent / pub_secs if pub_secs else None
    if not nsubs:
        res.update(delivered=0, expected=0, secs=pub_secs, msgs_per_s=res["pub_per_s"])
    else:
        counts = [r.get("count", 0) for r in subs]
        delivered = sum(counts)
        expected = sent if queue else sent * nsubs
        lasts = [r["last"] for r in subs if r.get("last")]
        firsts = [r["first"] for r in subs if r.get("first")]
        secs = (max(lasts) - t0) if lasts else None
        res.update(delivered=delivered, expected=expected, secs=secs,
                   probes=sum(r.get("probes", 0) for r in subs),
                   per_sub=counts, msgs_per_s=delivered / secs if secs else None)
        if firsts and lasts and max(lasts) > min(firsts):
            res["recv_per_s"] = delivered / (max(lasts) - min(firsts))
        if o.scenario == "sub" and res.get("recv_per_s"):
            res["msgs_per_s"] = res["recv_per_s"]
        if len(subs) < nsubs:
            res["error"] = res["error"] or "only %d of %d subscribers reported" % (len(subs), nsubs)
        elif delivered < expected:
            res["lost"] = expected - delivered
            res["error"] = res["error"] or "lost messages: delivered %d of %d" % (
                delivered, expected)
        elif not queue and any(c < sent for c in counts):
            res["lost"] = sum(max(0, sent - c) for c in counts)
            res["error"] = res["error"] or "lost messages: per subscriber %s of %d" % (
                counts, sent)
        elif delivered > expected:
            res["duplicates"] = delivered - expected
            res["error"] = res["error"] or "extra messages: delivered %d, expected %d" % (
                delivered, expected)
        if res["verify"] and not res["error"]:
            total = 0
            for r in pubs:
                total ^= r.get("tagxor", 0)
            got = [r.get("tagxor", 0) for r in subs]
            merged = 0
            for g in got:
                merged ^= g
            good = (merged == total) if queue else all(g == total for g in got)
            res["verified"] = good
            if not good:
                res["error"] = ("tag check failed: the right number of messages arrived but "
                                "some were duplicated and others lost (or altered)")
    res["pubs_cpu_s"] = sum(r.get("cpu", 0) for r in pubs)
    res["subs_cpu_s"] = sum(r.get("cpu", 0) for r in subs)
    if res.get("msgs_per_s"):
        res["mb_per_s"] = res["msgs_per_s"] * o.size / 1e6
    res["ok"] = res["error"] is None and bool(res.get("msgs_per_s"))


# ----------------------------------------------------------------------------- req


def run_req(o):
    """Request/reply: ``--pubs`` requesters (default 1), each sending its
    requests one after another with its own inbox, to one responder."""
    npubs = max(1, o.pubs or 1)
    res = base_result(o)
    res.update(pubs=npubs, subs=1)
    shared = workers.Shared(npubs, 1)
    ws = Workers(shared)
    progress = Progress(not o.quiet, "req")
    hard = _hard_limit(o)
    reports = {}
    try:
        ws.start("responder", 0, workers.responder, {
            "url": o.sub_url or o.url, "subject": SUBJECT, "timeout": o.timeout,
            "hard_limit": hard, "cpus": o.cpus})
        ws.wait_ready("responder", shared.sub_ready, 1, o.timeout + 5)
        for i in range(npubs):
            ws.start("requester", i, workers.requester, {
                "url": o.url, "subject": SUBJECT, "size": o.size, "timeout": o.timeout,
                "hard_limit": hard, "cpus": o.cpus,
                "quota": o.msgs // npubs if o.msgs else None,
                "duration": None if o.msgs and not o.duration_given else o.duration})
        ws.wait_ready("requester", shared.pub_ready, npubs, o.timeout + 5)
        t0 = time.monotonic()
        shared.go.value = t0
        while not all(shared.pub_done[i] for i in range(npubs)):
            n = sum(shared.pub_sent[i] for i in range(npubs))
            progress.tick("%.1fs %s requests" % (time.monotonic() - t0, fmt_count(n)))
            err = ws.failed()
            if err:
                raise ProtocolError(err)
            if time.monotonic() - t0 > hard:
                raise ProtocolError("requester did not finish within %.0fs" % hard)
            time.sleep(0.25)
        reports = ws.collect(o.timeout + 5)
    except ProtocolError as exc:
        res["error"] = str(exc)
        reports = ws.collect(5)
    finally:
        progress.done()
        ws.close()
    reqs = reports.get("requester", [{}])
    resp = reports.get("responder", [{}])
    errors = [x["error"] for x in reqs + resp if x.get("error")]
    if res["error"] is None and errors:
        res["error"] = errors[0]
    n = sum(r.get("count", 0) for r in reqs)
    secs = max([r["secs"] for r in reqs if r.get("secs")] or [0]) or None
    # Latency: each percentile's median over the requesters (one requester: its own).
    lats = [r["lat_us"] for r in reqs if r.get("lat_us")]
    lat = {k: sorted(x[k] for x in lats)[len(lats) // 2] for k in lats[0]} if lats else None
    res.update(sent=n, delivered=n, expected=n, secs=secs, lat_us=lat,
               samples=sum(r.get("samples") or 0 for r in reqs),
               gen_cpu_s=sum(r.get("cpu") or 0 for r in reqs))
    if secs:
        res["msgs_per_s"] = n / secs
    res["ok"] = res["error"] is None and n > 0
    return res


# ----------------------------------------------------------------------------- conns


def process_tree(pid):
    """pid and all its descendants (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_bytes(pid):
    """VmRSS of pid and its descendants, in bytes (None if pid is unknown)."""
    total, found = 0, False
    for p in process_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        found = True
                        break
        except OSError:
            continue
    return total if found else None


def _raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_conns(o):
    """Open N idle connections (CONNECT + PING each), measure the server's RSS."""
    res = base_result(o)
    n = o.conns
    res.update(scenario="conns", conns_wanted=n, pubs=0, subs=0)
    limit = _raise_fd_limit(n + 256)
    if n + 64 > limit:
        res["error"] = "fd limit %d is too low for %d connections" % (limit, n)
        return res
    progress = Progress(not o.quiet, "conns")
    rss0 = rss_bytes(o.pid) if o.pid else None
    host, port = parse_url(o.url)
    socks, failed, first_err = [], 0, None
    parallel = 64
    t0 = time.monotonic()
    deadline = t0 + o.timeout + n / 200.0
    connect = connect_line("bench-idle", o.url) + b"PING\r\n"
    try:
        while len(socks) + failed < n and time.monotonic() < deadline:
            wave = []
            for _ in range(min(parallel, n - len(socks) - failed)):
                try:
                    wave.append(socket.create_connection((host, port), timeout=o.timeout))
                except OSError as exc:
                    failed += 1
                    first_err = first_err or "connect: %s" % exc
            pending = []
            for s in wave:  # INFO, then CONNECT + PING
                try:
                    _read_until(s, b"\r\n", o.timeout)
                    s.sendall(connect)
                    pending.append(s)
                except (OSError, ProtocolError) as exc:
                    failed += 1
                    first_err = first_err or "handshake: %s" % exc
                    s.close()
            for s in pending:
                try:
                    _read_until(s, b"PONG\r\n", o.timeout)
                    socks.append(s)
                except (OSError, ProtocolError) as exc:
                    failed += 1
                    first_err = first_err or "PONG: %s" % exc
                    s.close()
            progress.tick("%d connections" % len(socks))
        secs = time.monotonic() - t0
        if o.pid:
            # settle: the server may still be allocating; take the reading once it is stable
            rss1, prev = rss_bytes(o.pid), None
            for _ in range(20):
                time.sleep(0.1)
                prev, rss1 = rss1, rss_bytes(o.pid)
                if prev == rss1:
                    break
        else:
            rss1 = None
        if o.hold:
            time.sleep(o.hold)
        alive = 0
        for s in socks[:: max(1, len(socks) // 100)]:
            try:
                s.sendall(b"PING\r\n")
                _read_until(s, b"PONG\r\n", o.timeout)
                alive += 1
            except (OSError, ProtocolError):
                pass
        res.update(conns=len(socks), failed=failed, secs=secs, conn_per_s=len(socks) / secs,
                   alive_sampled=alive)
        if rss0 is not None and rss1 is not None:
            res.update(rss_before=rss0, rss_after=rss1, rss_before_mb=rss0 / 1e6,
                       rss_after_mb=rss1 / 1e6,
                       kb_per_conn=(rss1 - rss0) / 1024 / len(socks) if socks else None)
        if len(socks) < n:
            res["error"] = "only %d of %d connections: %s" % (len(socks), n, first_err)
        res["msgs_per_s"] = res["conn_per_s"]
        res["ok"] = res["error"] is None
    finally:
        progress.done()
        for s in socks:
            s.close()
    return res


def _read_until(sock, marker, timeout):
    """Read until ``marker`` has been seen (answering PING); small, bounded."""
    deadline = time.monotonic() + timeout
    buf = b""
    while marker not in buf:
        at = buf.find(b"-ERR")
        if at >= 0 and buf.find(b"\r\n", at) > 0:
            raise ProtocolError(buf[at:].split(b"\r\n")[0].decode(errors="replace"))
        left = deadline - time.monotonic()
        if left <= 0 or len(buf) > 1 << 16:
            raise ProtocolError("timed out waiting for %r" % marker)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError("closed by the server")
        buf += chunk
    return buf
