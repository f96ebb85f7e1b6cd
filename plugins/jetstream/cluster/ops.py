"""The entries of a stream group's log (ours; JETSTREAM-CLUSTER.md section 0
lets the RAFT payloads between our servers be our own). The first byte is
the op, with Go's numbers where Go has the same op (srv:jetstream_cluster.go
``entryOp``); the rest is little-endian fixed fields and length-prefixed
strings, cheap to build per message.
"""

import json
import struct

ADD_CONSUMER = 1     # Go's assignConsumerOp (a meta op in Go: here the stream's log
REMOVE_CONSUMER = 3  # carries its consumers, see replica.py)
STREAM_MSG = 4       # Go's streamMsgOp
PURGE = 5            # Go's purgeStreamOp
DELETE_MSG = 6       # Go's deleteMsgOp
CONSUMER_STATE = 7   # Go's updateDeliveredOp carries less; we send the whole state
LEADER_READY = 250   # ours: a new leader's first entry; applied, it may serve
MSG_BATCH = 251      # ours: the messages one leader accepted in one read batch

_MSG = struct.Struct("<BQqqB")   # op, seq, ts, ttl (s), rollup  (STREAM_MSG, older logs)
_ROLLUP = {"": 0, "sub": 1, "all": 2}
_ROLLUP_NAMES = {v: k for k, v in _ROLLUP.items()}

# One message of a MSG_BATCH: a fixed head carrying every length, then the
# fields back to back, so a member decodes it with one unpack and six slices.
# seq, ts, ttl (s), rollup, then the lengths of subject, reply, msg id,
# counter, headers and data.
_REC = struct.Struct("<QqqBHHHHII")
_REC_SIZE = _REC.size


def _put(parts, data, fmt="<H"):
    parts.append(struct.pack(fmt, len(data)))
    parts.append(data)


def encode_record(seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data):
    """One message of a :data:`MSG_BATCH` entry (``subject``, ``msg_id``:
    str; ``reply``, ``hdr``, ``data``: bytes-like)."""
    sb = subject.encode()
    mb = msg_id.encode() if msg_id else b""
    cb = b"" if counter is None else str(counter).encode()
    return b"".join((_REC.pack(seq, ts, ttl, _ROLLUP[rollup], len(sb), len(reply), len(mb),
                               len(cb), len(hdr), len(data)), sb, reply, mb, cb, hdr, data))


def encode_batch(records):
    return b"%c%s" % (MSG_BATCH, b"".join(records))


def decode_batch(buf):
    """-> [(seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data)],
    the fields as :func:`decode_msg` gives them."""
    out = []
    pos, end = 1, len(buf)
    unpack, rollups, size = _REC.unpack_from, _ROLLUP_NAMES, _REC_SIZE
    while pos < end:
        seq, ts, ttl, rollup, ls, lr, lm, lc, lh, ld = unpack(buf, pos)
        pos += size
        a = pos + ls
        b = a + lr
        c = b + lm
        d = c + lc
        e = d + lh
        f = e + ld
        if f > end:
            raise ValueError("short message record")
        out.append((seq, ts, ttl, rollups.get(rollup, ""), buf[pos:a].decode(), buf[a:b],
                    buf[b:c].decode() if lm else "", int(buf[c:d]) if lc else None,
                    buf[d:e], buf[e:f]))
        pos = f
    return out


def encode_msg(seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data):
    """A STREAM_MSG entry: one message (the format before MSG_BATCH; kept so
    that logs written by it still apply)."""
    parts = [_MSG.pack(STREAM_MSG, seq, ts, ttl, _ROLLUP[rollup])]
    _put(parts, subject.encode())
    _put(parts, reply.encode() if isinstance(reply, str) else bytes(reply))
    _put(parts, msg_id.encode())
    _put(parts, b"" if counter is None else str(counter).encode())
    _put(parts, hdr, "<I")
    _put(parts, data, "<I")
    return b"".join(parts)


def decode_msg(buf):
    """-> (seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data)"""
    buf = memoryview(buf)
    _, seq, ts, ttl, rollup = _MSG.unpack_from(buf)
    pos = _MSG.size
    fields = []
    for fmt, size in (("<H", 2), ("<H", 2), ("<H", 2), ("<H", 2), ("<I", 4), ("<I", 4)):
        (n,) = struct.unpack_from(fmt, buf, pos)
        pos += size
        fields.append(bytes(buf[pos:pos + n]))
        pos += n
    subject, reply, msg_id, counter, hdr, data = fields
    return (seq, ts, ttl, _ROLLUP_NAMES.get(rollup, ""), subject.decode(), reply,
            msg_id.decode(), int(counter) if counter else None, hdr, data)


def encode_json(op, body):
    return bytes([op]) + json.dumps(body, separators=(",", ":")).encode()


def decode_json(buf):
    return json.loads(bytes(buf[1:]))
