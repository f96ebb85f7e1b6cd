"""The data plane's one step: hand a message to every subscription a match found.

Called for every published message, whoever published it (client, link,
internal client), so it is written for speed: the parts of a MSG frame that do
not depend on the subscription are built once per message, and a client
subscriber costs three appends to its buffer. Links and internal clients frame
messages their own way through ``conn.deliver_msg``.
"""

from random import random

from .connection import CLIENT

_CRLF = b"\r\n"


def deliver(result, subject, reply, hdr, msg, publisher):
    """Deliver ``msg`` (``hdr`` bytes of headers first, 0 for none) to ``result``
    (a sublist match) and return how many subscriptions received it.

    Every plain subscription gets a copy; each queue group one member, picked
    at random (remote members appear ``weight`` times, which weights the pick).
    A publisher with ``echo`` off never receives its own messages.
    """
    psubs, qsubs = result
    if qsubs:
        psubs = psubs + _pick_queue_members(qsubs, publisher)
    noecho = None if publisher.echo else publisher
    touched = publisher.server.touched
    head = tail = None  # MSG frame parts shared by every client subscriber
    n = 0
    for sub in psubs:
        c = sub.conn
        if c is noecho:
            continue
        n += 1
        if c.kind != CLIENT:
            c.deliver_msg(sub, subject, reply, hdr, msg)
        else:
            if head is None:
                head, tail, hhead, htail = _frame_parts(subject, reply, hdr, msg)
            out = c.out
            if hdr and c.headers:
                out += hhead
                out += sub.sid_part
                out += htail
            else:
                out += head
                out += sub.sid_part
                out += tail
            c.out_msgs += 1
            c.out_bytes += len(msg)
            if not c.flush_queued:
                c.flush_queued = True
                touched.append(c)
            if len(out) > c.max_pending:
                c.slow_consumer()
        if sub.max_msgs:
            sub.delivered += 1
            if sub.delivered >= sub.max_msgs:
                c.remove_subscription(sub)
    return n


def _frame_parts(subject, reply, hdr, msg):
    """(MSG head, MSG tail, HMSG head, HMSG tail); the sid goes between head and tail."""
    reply_part = reply + b" " if reply else b""
    payload = msg[hdr:] if hdr else msg
    tail = b"%s%d\r\n%s\r\n" % (reply_part, len(payload), payload)
    if not hdr:
        return b"MSG " + subject, tail, None, None
    htail = b"%s%d %d\r\n%s\r\n" % (reply_part, hdr, len(msg), msg)
    return b"MSG " + subject, tail, b"HMSG " + subject, htail


def _pick_queue_members(qsubs, publisher):
    """One member per group; a member that would echo to a no-echo publisher is
    passed over for the next one."""
    chosen = []
    noecho = None if publisher.echo else publisher
    for members in qsubs:
        count = len(members)
        i = int(random() * count)
        for _ in range(count):
            sub = members[i]
            if sub.conn is not noecho:
                chosen.append(sub)
                break
            i = (i + 1) % count
    return tuple(chosen)
