"""RAFT log entries and the messages nodes exchange, with their wire encoding.

The wire format is ours (JETSTREAM-CLUSTER.md section 0: only needed to share
groups with Go servers, which we do not). It keeps Go's ideas: little-endian
fixed-width fields, 8-byte node ids, Go's entry type numbers. Every message
starts with ``kind u8, term u64, src`` so a receiver can fence by term before
decoding the rest. Node ids are short ASCII strings (Go's 8-char hash of the
server name); on the wire an id is ``u8 len`` + bytes.
"""

import struct
from dataclasses import dataclass

# Entry types: Go's numbering (srv:raft.go EntryType), so logs read alike.
NORMAL = 0
PEER_STATE = 2       # the full peer set; a new leader's first entry (its no-op)
ADD_PEER = 3         # data: the full new peer set (see encode_peers)
REMOVE_PEER = 4      # data: the full new peer set
LEADER_TRANSFER = 5  # data: the id of the peer asked to take over
CONFIG_TYPES = (PEER_STATE, ADD_PEER, REMOVE_PEER)


@dataclass(slots=True, frozen=True)
class Entry:
    index: int
    term: int
    type: int
    data: bytes

    def size(self):
        return len(self.data) + 24


@dataclass(slots=True, frozen=True)
class VoteRequest:
    term: int
    src: str
    last_term: int
    last_index: int
    transfer: bool = False  # a leader transfer: voters with a live leader still answer
    pre: bool = False       # a pre-vote: would you vote for me at ``term``? (nothing changes)


@dataclass(slots=True, frozen=True)
class VoteResponse:
    term: int
    src: str
    granted: bool
    pre: bool = False


@dataclass(slots=True, frozen=True)
class AppendEntries:
    term: int
    src: str
    prev_index: int
    prev_term: int
    commit: int
    entries: tuple = ()


@dataclass(slots=True, frozen=True)
class AppendResponse:
    """``success``: ``index`` is the last index the follower now matches.
    Failure: ``index`` is where the leader should look next (a hint below the
    rejected ``prev_index``)."""

    term: int
    src: str
    success: bool
    index: int


@dataclass(slots=True, frozen=True)
class InstallSnapshot:
    term: int
    src: str
    index: int
    last_term: int
    peers: tuple
    data: bytes


MESSAGE_TYPES = (VoteRequest, VoteResponse, AppendEntries, AppendResponse, InstallSnapshot)

# -- peers --------------------------------------------------------------------------


def encode_peers(peers):
    ids = sorted(peers)
    out = [struct.pack("<H", len(ids))]
    for peer in ids:
        raw = peer.encode()
        out.append(struct.pack("<B", len(raw)) + raw)
    return b"".join(out)


def decode_peers(data):
    (n,), pos = struct.unpack_from("<H", data), 2
    peers = []
    for _ in range(n):
        size = data[pos]
        peers.append(data[pos + 1:pos + 1 + size].decode())
        pos += 1 + size
    return tuple(peers), pos


# -- wire ---------------------------------------------------------------------------

_HEAD = struct.Struct("<BQB")      # kind, term, len(src)
_VOTE_REQ = struct.Struct("<QQB")  # last_term, last_index, flags (1 transfer, 2 pre)
_AE = struct.Struct("<QQQI")       # prev_index, prev_term, commit, n
_ENTRY = struct.Struct("<QBI")     # term, type, len(data)  (index is implied)
_AE_RESP = struct.Struct("<BQ")    # success, index
_SNAP = struct.Struct("<QQ")       # index, last_term


class WireError(ValueError):
    """A message that does not decode: dropped by the receiver."""


def encode(msg):
    src = msg.src.encode()
    cls = type(msg)
    kind = MESSAGE_TYPES.index(cls)
    head = _HEAD.pack(kind, msg.term, len(src)) + src
    if cls is AppendEntries:
        parts = [head, _AE.pack(msg.prev_index, msg.prev_term, msg.commit, len(msg.entries))]
        for e in msg.entries:
            parts.append(_ENTRY.pack(e.term, e.type, len(e.data)))
            parts.append(e.data)
        return b"".join(parts)
    if cls is AppendResponse:
        return head + _AE_RESP.pack(msg.success, msg.index)
    if cls is VoteRequest:
        return head + _VOTE_REQ.pack(msg.last_term, msg.last_index,
                                     msg.transfer | (msg.pre << 1))
    if cls is VoteResponse:
        return head + bytes([msg.granted | (msg.pre << 1)])
    return head + _SNAP.pack(msg.index, msg.last_term) + encode_peers(msg.peers) + msg.data


def decode(buf):
    """bytes -> message; raises WireError on anything malformed."""
    try:
        buf = bytes(buf)
        kind, term, n = _HEAD.unpack_from(buf)
        src = buf[_HEAD.size:_HEAD.size + n].decode()
        pos = _HEAD.size + n
        if len(src) != n or kind >= len(MESSAGE_TYPES):
            raise WireError("bad header")
        cls = MESSAGE_TYPES[kind]
        if cls is AppendEntries:
            prev_index, prev_term, commit, count = _AE.unpack_from(buf, pos)
            pos += _AE.size
            entries = []
            for i in range(count):
                eterm, etype, size = _ENTRY.unpack_from(buf, pos)
                pos += _ENTRY.size
                if pos + size > len(buf):
                    raise WireError("short entry")
                entries.append(Entry(prev_index + 1 + i, eterm, etype, buf[pos:pos + size]))
                pos += size
            if pos != len(buf):
                raise WireError("trailing bytes")
            return AppendEntries(term, src, prev_index, prev_term, commit, tuple(entries))
        if cls is AppendResponse:
            success, index = _AE_RESP.unpack_from(buf, pos)
            return AppendResponse(term, src, bool(success), index)
        if cls is VoteRequest:
            last_term, last_index, flags = _VOTE_REQ.unpack_from(buf, pos)
            return VoteRequest(term, src, last_term, last_index, bool(flags & 1), bool(flags & 2))
        if cls is VoteResponse:
            return VoteResponse(term, src, bool(buf[pos] & 1), bool(buf[pos] & 2))
        index, last_term = _SNAP.unpack_from(buf, pos)
        peers, used = decode_peers(buf[pos + _SNAP.size:])
        data = buf[pos + _SNAP.size + used:]
        return InstallSnapshot(term, src, index, last_term, peers, data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise WireError(str(exc)) from None
