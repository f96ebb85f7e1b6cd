"""``pluggy-nats bench mirror``: how fast a leaf's mirror follows its hub.

``--url`` is the hub (JetStream with a domain), ``--sub-url`` its leaf
(JetStream with another domain):

1. at the hub, the stream ``BENCHMO`` on ``bench.mirror``; at the leaf,
   ``BENCHMM`` mirroring it through ``--js-api`` (default ``$JS.hub.API``);
   the mirror is running once a probe message has reached it;
2. ``--msgs`` messages (default 100 000) published at the hub with
   ``--inflight`` PubAcks outstanding;
3. the leaf's stream info is polled until the mirror holds them all.

The rate is messages over the time from the first publish until the mirror
held the last one (publishing included: a mirror cannot be faster than its
origin). The same run works against the Go nats-server.
"""

import time

from .jetstream import INBOX, Conn, publish_acked
from .proto import ProtocolError, payload

ORIGIN = "BENCHMO"
MIRROR = "BENCHMM"
SUBJECT = b"bench.mirror"


def _mirror_last(conn, timeout):
    info = conn.request("$JS.API.STREAM.INFO." + MIRROR, b"", time.monotonic() + timeout)
    if "error" in info:
        raise ProtocolError("mirror info: %s" % info["error"])
    return info["state"]["last_seq"]


def run_mirror(o):
    total = o.msgs or 100_000
    api = getattr(o, "js_api", None) or "$JS.hub.API"
    deadline = time.monotonic() + o.timeout
    # each its own inbox: the leaf link carries interest both ways
    hub = Conn(o.url, o.timeout, INBOX + b".hub")
    leaf = Conn(o.sub_url, o.timeout, INBOX + b".leaf")
    for conn in (hub, leaf):
        conn.send(b"SUB %s.* 1\r\n" % conn.inbox)
    leaf.request("$JS.API.STREAM.DELETE." + MIRROR, b"", deadline)
    hub.request("$JS.API.STREAM.DELETE." + ORIGIN, b"", deadline)
    resp = hub.request("$JS.API.STREAM.CREATE." + ORIGIN, {
        "name": ORIGIN, "subjects": [SUBJECT.decode()], "storage": o.js_storage}, deadline)
    if "error" in resp:
        raise ProtocolError("stream create: %s" % resp["error"])
    resp = leaf.request("$JS.API.STREAM.CREATE." + MIRROR, {
        "name": MIRROR, "storage": o.js_storage,
        "mirror": {"name": ORIGIN, "external": {"api": api}}}, deadline)
    if "error" in resp:
        raise ProtocolError("mirror create: %s" % resp["error"])
    # a probe: the mirror's consumer is up once it holds it
    publish_acked(hub, b"PUB %s %s.ack 5\r\nprobe\r\n" % (SUBJECT, hub.inbox), 1, 1,
                  o.timeout)
    while _mirror_last(leaf, o.timeout) < 1:
        if time.monotonic() > deadline + 30:
            raise ProtocolError("the mirror never started")
        time.sleep(0.05)
    data = payload(o.size)
    frame = b"PUB %s %s.ack %d\r\n%s\r\n" % (SUBJECT, hub.inbox, len(data), data)
    t0 = time.monotonic()
    errors = publish_acked(hub, frame, total, o.inflight, o.timeout)
    pub_secs = time.monotonic() - t0
    limit = time.monotonic() + max(o.timeout, 60)
    while True:
        last = _mirror_last(leaf, o.timeout)
        if last >= total + 1:
            break
        if time.monotonic() > limit:
            raise ProtocolError("the mirror stalled at %d of %d" % (last - 1, total))
        time.sleep(0.01)
    secs = time.monotonic() - t0
    leaf.request("$JS.API.STREAM.DELETE." + MIRROR, b"", time.monotonic() + o.timeout)
    hub.request("$JS.API.STREAM.DELETE." + ORIGIN, b"", time.monotonic() + o.timeout)
    hub.sock.close()
    leaf.sock.close()
    return {"scenario": "mirror", "url": o.url, "sub_url": o.sub_url, "size": o.size,
            "pubs": 1, "subs": 1, "ok": errors == 0, "sent": total, "delivered": total,
            "pub_errors": errors, "inflight": o.inflight, "storage": o.js_storage,
            "pub_msgs_per_s": total / pub_secs if pub_secs else None,
            "msgs_per_s": total / secs if secs else None, "secs": secs,
            "pub_secs": pub_secs}


def format_mirror(res):
    from .report import fmt_rate

    return ["mirror  size %sB  storage %s  hub %s  leaf %s" % (
                res["size"], res["storage"], res["url"], res["sub_url"]),
            "  hub publish     %s msgs/s acked" % fmt_rate(res["pub_msgs_per_s"]),
            "  leaf mirror     %s msgs/s (first publish to the mirror holding all)"
            % fmt_rate(res["msgs_per_s"]),
            "  messages        {:,}  ({} publish errors)".format(res["sent"], res["pub_errors"])]
