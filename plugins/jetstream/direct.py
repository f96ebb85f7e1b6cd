"""Deliveries framed straight into the receiving connection's buffer.

A pull consumer sends a batch of stored messages to one reply inbox, which is
almost always one subscription of one local client; a push consumer (a
mirror's or source's across a leaf) sends its messages to one deliver
subject, which is often one subscription of one link. Going through
``InternalClient.publish`` costs a subject match and a generic ``deliver``
per message; here the subject is matched once per run and, when it reaches
exactly one plain subscription of a local client or of a link, each message
is one frame (ack reply formatted in the same step) appended to that
connection's buffer, with the bookkeeping ``deliver`` does (stats, flush
queue). A link gets the frame ``deliver`` would give it
(``pluggy_nats/links/jsdeliver.py``): the deliver subject, and the ack reply
with ``@<stored subject>``. Anything else (several subscribers, queue groups,
an internal client, permissions, an auto-unsubscribe, gateways that forward
client traffic) returns None and the caller publishes as before.

The target holds only while nothing else runs: resolve it again after any
yield (a consumer pass never yields between its deliveries).
"""

from pluggy_nats.connection import CLIENT

_NO_BUDGET = float("inf")


class Target:
    """One plain subscription a run is framed into: a local client's
    (``MSG <subject> <sid> <reply> <size>``) or a link's, framed as
    ``deliver`` frames it for links (``<verb> [<account>] <deliver>
    <reply>@<subject> <size>``). ``fmt``/``hfmt`` take the same arguments
    for both, the stored subject twice (``%.0s`` drops the one a frame does
    not show there); ``hfmt`` is None for a receiver without headers (it
    gets the payload alone)."""

    __slots__ = ("conn", "touched", "publisher", "fmt", "hfmt")

    def __init__(self, conn, touched, publisher, fmt, hfmt):
        self.conn = conn
        self.touched = touched
        self.publisher = publisher
        self.fmt = fmt
        self.hfmt = hfmt

    def send_run(self, run, ack_prefix, dseq, npending, budget=_NO_BUDGET):
        """A consumer's run of first deliveries ``[(seq, subject, ts, hdr, data)]``,
        each with its ack reply ``<ack_prefix><seq>.<dseq>.<ts>.<pending>``
        (consumer sequences from ``dseq + 1``, pending counted down from
        ``npending``), formatted with the frame in one step; it stops after the
        message that brings the bytes sent to ``budget`` (a push consumer's
        flow control request goes there). Returns the pending count after what
        was sent, the bytes sent (headers and payloads) and how many messages."""
        c = self.conn
        out = c.out
        fmt = self.fmt
        hfmt = self.hfmt
        nbytes = 0
        first = dseq
        for seq, subject, ts, hdr, data in run:
            dseq += 1
            if npending:
                npending -= 1
            if hdr and hfmt is not None:
                size = len(hdr) + len(data)
                out += hfmt % (subject, ack_prefix, seq, dseq, ts, npending, subject,
                               len(hdr), size)
                out += hdr
            else:
                size = len(data)
                out += fmt % (subject, ack_prefix, seq, dseq, ts, npending, subject, size)
            out += data
            out += b"\r\n"
            nbytes += size
            if nbytes >= budget:
                break
        count = dseq - first
        _sent(c, self.touched, self.publisher, count, nbytes)
        return npending, nbytes, count


def _literal(part):
    """``part`` (a sid, subject or frame lead) inside a format string."""
    return part.replace(b"%", b"%%")


def _sent(c, touched, publisher, count, nbytes):
    c.out_msgs += count
    c.out_bytes += nbytes
    publisher.out_msgs += count
    if not c.flush_queued:
        c.flush_queued = True
        touched.append(c)


def resolve(client, subject, links=False):
    """A Target for ``subject`` (bytes) published by internal ``client``, or
    None; with ``links``, also where the one subscription is a link's."""
    if client.server.links.client_forwarders:
        return None
    psubs, qsubs = client.account.sublist.match(subject)
    if qsubs or len(psubs) != 1:
        return None
    sub = psubs[0]
    c = sub.conn
    if c.closed or sub.max_msgs or c is client.noecho:
        return None
    if c.kind == CLIENT:
        if getattr(c, "deny_delivery", None) is not None:
            return None
        sid = _literal(sub.sid)
        return Target(c, client.touched, client,
                      b"MSG %s " + sid + b" %s%d.%d.%d.%d%.0s %d\r\n",
                      b"HMSG %s " + sid + b" %s%d.%d.%d.%d%.0s %d %d\r\n"
                      if c.headers else None)
    if links and c.is_link and not sub.queue:
        leads = c.run_leads(client.account, subject)
        if leads is not None:
            lead, hlead = leads
            tail = b" " + _literal(subject) + b" %.0s%s%d.%d.%d.%d@%s %d"
            return Target(c, c.touched, client, _literal(lead) + tail + b"\r\n",
                          None if hlead is None else _literal(hlead) + tail + b" %d\r\n")
    return None
