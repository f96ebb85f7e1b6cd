"""``pluggy-nats bench js``: JetStream throughput over raw sockets, one process.

1. create (or recreate) the stream ``BENCHJS`` (``--js-storage``, file by
   default) on subject ``bench.js``;
2. async publish: ``--msgs`` messages (default 100 000) with ``--inflight``
   PubAcks outstanding (default 256): msgs/s acknowledged;
3. drain: a pull consumer (explicit acks) fetches the whole stream in batches
   of ``--pull-batch`` (two requests in flight), acking every message: msgs/s.

The same run works against the Go nats-server (``nats-server -js``).
"""

import json
import time

from .proto import ProtocolError, dial, payload

STREAM = "BENCHJS"
SUBJECT = b"bench.js"
INBOX = b"_INBOX.benchjs"


class Conn:
    """A raw NATS connection that yields MSG/HMSG frames."""

    def __init__(self, url, timeout, inbox=INBOX):
        self.sock, self.info = dial(url, timeout=timeout, name="pluggy-nats-bench-js")
        self.inbox = inbox  # replies come to <inbox>.*: one per connection of a run
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(data)

    def frames(self):
        """Read once and return [(subject, reply, headers, payload)]."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ProtocolError("connection closed by server")
        buf = self.buf + chunk
        out = []
        pos = 0
        n = len(buf)
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            line = buf[pos:eol]
            if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                parts = line.split(b" ")
                size = int(parts[-1])
                hsize = int(parts[-2]) if line[0:1] == b"H" else 0
                fields = parts[1:-2] if hsize else parts[1:-1]
                end = eol + 2 + size
                if end + 2 > n:
                    break
                body = buf[eol + 2:end]
                reply = fields[2] if len(fields) > 2 else b""
                out.append((fields[0], reply, body[:hsize], body[hsize:]))
                pos = end + 2
            else:
                if line.startswith(b"PING"):
                    self.sock.sendall(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise ProtocolError(line.decode(errors="replace"))
                pos = eol + 2
        self.buf = buf[pos:]
        return out

    def request(self, subject, body, deadline):
        reply = self.inbox + b".req"
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply, len(data), data))
        while time.monotonic() < deadline:
            for subj, _, _, msg in self.frames():
                if subj == reply:
                    return json.loads(msg)
        raise ProtocolError("no answer to %s" % subject)


def publish_acked(conn, frame, total, inflight, timeout):
    """Publish ``frame`` (a PUB whose reply is ``<conn.inbox>.ack``) ``total`` times
    with at most ``inflight`` PubAcks outstanding; returns the PubAcks that
    carried an error."""
    t0 = time.monotonic()
    acked = 0
    sent = min(inflight, total)
    conn.send(frame * sent)
    errors = 0
    while acked < total:
        got = 0
        for subj, _, _, msg in conn.frames():
            if subj == conn.inbox + b".ack":
                got += 1
                if b'"error"' in msg:
                    errors += 1
        acked += got
        more = min(got, total - sent)
        if more:
            conn.send(frame * more)
            sent += more
        if time.monotonic() - t0 > max(timeout, 60):
            raise ProtocolError("publish stalled at %d acks" % acked)
    return errors


def run_js(o):
    deadline = time.monotonic() + o.timeout
    total = o.msgs or 100_000
    conn = Conn(o.url, o.timeout)
    conn.send(b"SUB %s.* 1\r\n" % INBOX)
    conn.request("$JS.API.STREAM.DELETE." + STREAM, b"", deadline)
    resp = conn.request("$JS.API.STREAM.CREATE." + STREAM, {
        "name": STREAM, "subjects": [SUBJECT.decode()], "storage": o.js_storage}, deadline)
    if "error" in resp:
        raise ProtocolError("stream create: %s" % resp["error"])
    data = payload(o.size)
    frame = b"PUB %s %s.ack %d\r\n%s\r\n" % (SUBJECT, INBOX, len(data), data)
    mark = getattr(o, "js_mark", None)  # compare: reads the server's CPU at phase bounds
    marks = [mark()] if mark else []
    # -- async publish with a window of PubAcks
    t0 = time.monotonic()
    errors = publish_acked(conn, frame, total, o.inflight, o.timeout)
    pub_secs = time.monotonic() - t0
    if mark:
        marks.append(mark())
    # -- drain with a pull consumer
    resp = conn.request("$JS.API.CONSUMER.CREATE.%s.drain" % STREAM, {
        "stream_name": STREAM, "config": {"name": "drain", "ack_policy": "explicit",
                                          "max_ack_pending": -1,
                                          "inactive_threshold": 60_000_000_000}},
        time.monotonic() + o.timeout)
    if "error" in resp:
        raise ProtocolError("consumer create: %s" % resp["error"])
    batch = o.pull_batch
    nxt = b"PUB $JS.API.CONSUMER.MSG.NEXT.%s.drain %s.pull %d\r\n%s\r\n"
    body = json.dumps({"batch": batch, "expires": 5_000_000_000}).encode()
    pull = nxt % (STREAM.encode(), INBOX, len(body), body)
    t1 = time.monotonic()
    conn.send(pull * 2)
    received = 0
    in_batch = 0
    while received < total:
        acks = []
        for _subj, reply, hdr, _ in conn.frames():
            if hdr and hdr.startswith(b"NATS/1.0 4"):
                conn.send(pull)  # 408/409: ask again
                continue
            if reply.startswith(b"$JS.ACK."):
                received += 1
                in_batch += 1
                acks.append(b"PUB %s 0\r\n\r\n" % reply)
                if in_batch == batch:
                    in_batch = 0
                    acks.append(pull)
        if acks:
            conn.send(b"".join(acks))
        if time.monotonic() - t1 > max(o.timeout, 60):
            raise ProtocolError("drain stalled at %d messages" % received)
    drain_secs = time.monotonic() - t1
    if mark:
        marks.append(mark())
    conn.request("$JS.API.STREAM.DELETE." + STREAM, b"", time.monotonic() + o.timeout)
    conn.sock.close()
    return {"scenario": "js", "url": o.url, "size": o.size, "pubs": 1, "subs": 1,
            "ok": errors == 0, "sent": total, "pub_errors": errors,
            "inflight": o.inflight, "storage": o.js_storage,
            "pub_msgs_per_s": total / pub_secs if pub_secs else None,
            "drain_msgs_per_s": total / drain_secs if drain_secs else None,
            "msgs_per_s": total / pub_secs if pub_secs else None,
            "pub_secs": pub_secs, "drain_secs": drain_secs, "marks": marks}


def format_js(res):
    from .report import fmt_rate

    return ["js  size %sB  storage %s  inflight %s  url %s" % (
                res["size"], res["storage"], res["inflight"], res["url"]),
            "  async publish   %s msgs/s acked" % fmt_rate(res["pub_msgs_per_s"]),
            "  pull drain      %s msgs/s (explicit acks)" % fmt_rate(res["drain_msgs_per_s"]),
            "  messages        {:,}  ({} publish errors)".format(res["sent"], res["pub_errors"])]
