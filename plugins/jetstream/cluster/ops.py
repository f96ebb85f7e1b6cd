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

_MSG = struct.Struct("<BQqqB")   # op, seq, ts, ttl (s), rollup
_ROLLUP = {"": 0, "sub": 1, "all": 2}
_ROLLUP_NAMES = {v: k for k, v in _ROLLUP.items()}


def _put(parts, data, fmt="<H"):
    parts.append(struct.pack(fmt, len(data)))
    parts.append(data)


def encode_msg(seq, ts, ttl, rollup, subject, reply, msg_id, counter, hdr, data):
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
