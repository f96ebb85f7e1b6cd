"""Deliveries framed straight into the subscriber's buffer.

A pull consumer sends a batch of stored messages to one reply inbox, which is
almost always one subscription of one local client. Going through
``InternalClient.publish`` costs a subject match and a generic ``deliver``
per message; here the inbox is matched once per batch and, when it reaches
exactly one plain local client subscription, each message is one MSG/HMSG
frame (ack reply formatted in the same step) appended to that client's
buffer, with the bookkeeping ``deliver`` does (stats, flush queue).
Anything else (several subscribers, queue groups, a link, an internal
client, permissions, an auto-unsubscribe, gateways that forward client
traffic) returns None and the caller publishes as before.

The target holds only while nothing else runs: resolve it again after any
yield (a consumer pass never yields between its deliveries).
"""

from pluggy_nats.connection import CLIENT


class Target:
    __slots__ = ("conn", "sid", "touched", "headers", "publisher")

    def __init__(self, conn, sid, touched, publisher):
        self.conn = conn
        self.sid = sid
        self.touched = touched
        self.headers = conn.headers
        self.publisher = publisher


def resolve(client, subject):
    """A Target for ``subject`` (bytes) published by internal ``client``, or None."""
    if client.server.links.client_forwarders:
        return None
    psubs, qsubs = client.account.sublist.match(subject)
    if qsubs or len(psubs) != 1:
        return None
    sub = psubs[0]
    c = sub.conn
    if c.kind != CLIENT or c.closed or sub.max_msgs or getattr(c, "deny_delivery", None) \
            is not None or c is client.noecho:
        return None
    return Target(c, sub.sid, client.touched, client)


def send_run(target, run, ack_prefix, dseq, npending):
    """A consumer's run of first deliveries ``[(seq, subject, ts, hdr, data)]``
    to the target, each with its ack reply ``<ack_prefix><seq>.<dseq>.<ts>.<pending>``
    (consumer sequences from ``dseq + 1``, pending counted down from
    ``npending``), formatted with the frame in one step. Returns the pending
    count after the run."""
    c = target.conn
    out = c.out
    sid = target.sid
    headers = target.headers
    nbytes = 0
    for seq, subject, ts, hdr, data in run:
        dseq += 1
        if npending:
            npending -= 1
        if hdr and headers:
            size = len(hdr) + len(data)
            out += b"HMSG %s %s %s%d.%d.%d.%d %d %d\r\n" % (
                subject, sid, ack_prefix, seq, dseq, ts, npending, len(hdr), size)
            out += hdr
        else:
            size = len(data)
            out += b"MSG %s %s %s%d.%d.%d.%d %d\r\n" % (
                subject, sid, ack_prefix, seq, dseq, ts, npending, size)
        out += data
        out += b"\r\n"
        nbytes += size
    c.out_msgs += len(run)
    c.out_bytes += nbytes
    target.publisher.out_msgs += len(run)
    if not c.flush_queued:
        c.flush_queued = True
        target.touched.append(c)
    return npending
