"""Stream catch-up: the messages a member misses when its group's log was
compacted past them (JETSTREAM-CLUSTER.md section 3, Go's ``$JSC.SYNC``).

A stream group's snapshot carries the consumers and the stream's last
sequence, not the messages: a member that installs one while its store is
behind (a peer added by a move or a scale-up after the log was compacted, or
one that was away for long) asks the leader for the missing range before it
applies anything after the snapshot.

* Request, system account, on ``$JSC.SYNC.<group>``: JSON ``{"from", "to"}``
  with a reply inbox. Only the group's ready leader answers.
* Answer: the stored messages from ``from`` on, at most ``BATCH_BYTES`` (at
  least one), each ``seq u64, ts i64, subject u16+bytes, hdr u32+bytes, data
  u32+bytes`` (little-endian); empty when nothing is stored at or after
  ``from`` up to ``to``. The member stores them at their sequences (gaps
  become deleted sequences, as in the leader's store) and asks again from the
  last one + 1 until it holds ``to``.

Ours, not Go's wire format (section 0: only needed to share groups with Go).
The member waits in its RAFT greenlet: it applies nothing meanwhile, which
is what keeps its store in order.
"""

import itertools
import json
import struct

import gevent
import gevent.event

from ..jsonreq import dumps

SYNC = "$JSC.SYNC.%s"
BATCH_BYTES = 256 * 1024
TIMEOUT = 5.0        # seconds per request
GIVE_UP = 30.0       # seconds without progress before the member stops asking
_HEAD = struct.Struct("<QqH")
_LEN = struct.Struct("<I")
_inboxes = itertools.count(1)


def encode(msgs):
    out = []
    for seq, ts, subject, hdr, data in msgs:
        subject = subject.encode() if isinstance(subject, str) else subject
        hdr, data = bytes(hdr or b""), bytes(data or b"")
        out += [_HEAD.pack(seq, ts, len(subject)), subject, _LEN.pack(len(hdr)), hdr,
                _LEN.pack(len(data)), data]
    return b"".join(out)


def decode(buf):
    buf, pos, out = bytes(buf), 0, []
    while pos < len(buf):
        seq, ts, n = _HEAD.unpack_from(buf, pos)
        pos += _HEAD.size
        subject = buf[pos:pos + n]
        pos += n
        (n,) = _LEN.unpack_from(buf, pos)
        hdr = buf[pos + 4:pos + 4 + n]
        pos += 4 + n
        (n,) = _LEN.unpack_from(buf, pos)
        data = buf[pos + 4:pos + 4 + n]
        pos += 4 + n
        if pos > len(buf):
            raise ValueError("truncated catch-up batch")
        out.append((seq, ts, subject, hdr, data))
    return out


def serve(group):
    """Answer the group's catch-up requests while this member leads it."""
    def on_request(sub, subject, reply, hdr, payload):
        if not group.ready or not reply:
            return
        try:
            req = json.loads(bytes(payload))
            first, last = int(req["from"]), int(req["to"])
        except (ValueError, KeyError, TypeError):
            return
        store, msgs, size, seq = group.stream.store, [], 0, first
        while seq <= last and (not msgs or size < BATCH_BYTES):
            msg = store.load_next(None, seq)
            if msg is None or msg.seq > last:
                break
            msgs.append((msg.seq, msg.ts, msg.subject, msg.hdr, msg.data))
            size += len(msg.data or b"") + len(msg.hdr or b"") + 32
            seq = msg.seq + 1
        group.manager.client.publish(reply, encode(msgs), flush=False)
    return group.manager.client.subscribe(SYNC % group.name, on_request)


def fetch(group, last):
    """Bring the member's store up to ``last`` from the leader; True when done."""
    client, store = group.manager.client, group.stream.store
    inbox = "$JSC.SR.%s.%s.%d" % (group.name, group.manager.id, next(_inboxes))
    pending = [None]

    def on_reply(sub, subject, reply, hdr, payload):
        if pending[0] is not None:
            pending[0].set(bytes(payload))
    sub = client.subscribe(inbox, on_reply)
    stalled = 0.0
    try:
        while True:
            have = store.state().last_seq
            if have >= last:
                return True
            pending[0] = gevent.event.AsyncResult()
            client.publish(SYNC % group.name, dumps({"from": have + 1, "to": last}),
                           reply=inbox)
            try:
                batch = decode(pending[0].get(timeout=TIMEOUT))
            except gevent.Timeout:
                stalled += TIMEOUT
                if stalled >= GIVE_UP:
                    group.log.error("stream_catchup_failed", have=have, want=last)
                    return False
                continue
            except ValueError:
                continue
            stalled = 0.0
            if not batch:  # nothing stored up to ``last``: deleted at the leader
                store.skip_msgs(have + 1, last - have)
                continue
            for seq, ts, subject, hdr, data in batch:
                if seq > store.state().last_seq:
                    store.store_raw(subject.decode(), hdr, data, seq, ts)
            gevent.sleep(0)
    finally:
        client.unsubscribe(sub)
