"""The sans-IO NATS protocol parser: bytes in, ops out, no sockets, no clock.

One parser serves every connection kind. A kind describes its verbs in an *op
table*: ``{b"PUB": (PUB, function), ...}`` where ``function(handler, ...)`` is
called with the connection (the *handler*) first. Tables are shared by every
connection of a kind, so an idle connection costs no per-verb memory.

Shapes, and what the function receives after ``handler``:

=========  =========================================  ==========================
shape      frame                                      call
=========  =========================================  ==========================
BARE       ``PING``                                   ``()``
LINE       ``SUB foo q 1``                            ``(args)`` (list of bytes)
REST       ``CONNECT {...}``                          ``(rest)`` (bytes, stripped)
PUB        ``PUB subj [reply] size`` + payload        ``([(subject, reply, [payload])])``
HPUB       ``HPUB subj [reply] hdr total`` + msg      ``(subject, reply, hdr, msg)``
PAYLOAD    ``RMSG a b c size`` + payload              ``([(args, [payload])])`` (size rm.)
HPAYLOAD   ``HMSG a b c hdr total`` + msg             ``(args, hdr, msg)`` (a tuple)
=========  =========================================  ==========================

PUB and PAYLOAD functions take a *list* (their one bulk entry point): a
single frame arrives as a list of one, and the fast path hands over a read
buffer's consecutive frames of the verb at once, in order, as *items*
``[(subject, reply, payloads), ...]`` (PUB) or ``[(args, payloads), ...]``
(PAYLOAD, size removed; ``args`` a tuple, the same object for a line seen
before, so links can key what they decided on it). ``payloads`` is a
sequence: consecutive frames with one control line (a publisher streaming one
subject) are one item with all their payloads, all of one size. Validated
lines are remembered per connection, so a line seen again costs one dict
lookup, and a run whose lines were all seen before, no two neighbours alike
(real traffic), is turned into items without a loop over its frames.

Control lines end at ``\\n`` (an optional ``\\r`` before it is dropped) and fields are
separated by spaces or tabs; payloads must be followed by exactly ``\\r\\n``. Verbs are
case-insensitive. Violations raise :class:`ProtocolError`; ops parsed before the bad
frame in the same ``feed`` have already been dispatched, as in nats-server.

Lines are split with ``bytes.split()`` (fast, C), which also splits on CR, VT
and FF; a line holding one of those, or starting with whitespace, is re-read
by :func:`_go_args` with nats-server's rules (its parser is a byte state
machine: a verb starts the line and is followed by a space or tab, PUB/HPUB
fields are separated by space and tab only, other verbs' also by CR). PING,
PONG and +OK ignore what follows them up to LF; CONNECT and INFO may be glued
to their argument. Sizes are 1 to 9 digits, as nats-server's ``parseSize``.
"""

import re
from operator import itemgetter

from .errors import MAX_CONTROL_LINE, MAX_PAYLOAD, UNKNOWN_OP, ProtocolError

BARE, LINE, REST, PUB, HPUB, PAYLOAD, HPAYLOAD = range(7)

# The fast path for runs of payload frames (see Parser._payload_run) is tried at
# most this many times per feed, so a stream that keeps declining it costs at
# most that many splits, and only for buffers big enough to be worth a split.
_FAST_TRIES = 4
_FAST_MIN = 64
# b"%d" % n for small payload sizes: comparing with the declared size is cheaper than int().
_SIZE_BYTES = {n: b"%d" % n for n in range(4096)}
# ... and the reverse: a dict lookup is ~5x cheaper than int(bytes).
_SIZE_INTS = {b: n for n, b in _SIZE_BYTES.items()}
# First four bytes of a frame -> the verb whose runs the fast path takes.
_FAST_VERBS = {b"PUB ": b"PUB", b"RMSG": b"RMSG", b"LMSG": b"LMSG"}
# A run whose first payload has at least this many bytes is taken frame by frame
# (Parser._offset_run) instead of split on CRLF: bytes.split/find with a two-byte
# separator scans every payload byte (~0.8 ns/byte, ~850 ns for 1 KiB), while
# finding each control line's LF (memchr) and jumping over the payload does not.
_BIG = 256
# A PUB payload at least this big that a read leaves incomplete is joined from
# the reads straight when it is complete (Parser._big_pub), not after joining
# the whole buffered tail and slicing it (two copies more of every byte).
_BIG_KEEP = 8192
# Validated control lines a parser remembers (Parser._known) before starting
# afresh, and the longest line it keeps (memory per connection stays < 1 MiB).
_KNOWN_MAX = 2048
_KNOWN_LINE = 256

_CRLF = b"\r\n"
_first = itemgetter(0)
_second = itemgetter(1)
_third = itemgetter(2)

# nats-server's field separators: PUB and HPUB (processPub) split on space and
# tab only, every other verb (splitArg) on CR too.
_PUB_FIELDS = re.compile(rb"[^ \t]+").findall
_ARG_FIELDS = re.compile(rb"[^ \t\r]+").findall
# Verbs nats-server reads glued to what follows: PING/PONG/+OK ignore the rest
# of the line, CONNECT/INFO take it as their argument (spaces/tabs skipped).
_GLUED = (b"PING", b"PONG", b"+OK", b"CONNECT", b"INFO")
_MAX_SIZE_DIGITS = 9  # nats-server's parseSize: more digits is "Bad or Missing Size"


def _parse_size(size_b, verb=b""):
    """A declared size as nats-server's parseSize reads it: 1 to 9 ASCII
    digits (leading zeros allowed), else the line is refused (no -ERR)."""
    if not size_b.isdigit() or len(size_b) > _MAX_SIZE_DIGITS:
        raise ProtocolError(None, "bad %s size %r" % (verb.decode(errors="replace"), size_b[:32]))
    return int(size_b)


def _go_args(line, verb, shape, crlf):
    """The fields of a control line as nats-server reads them, for the rare line
    ``bytes.split()`` reads differently (whitespace before the verb, CR, VT or
    FF inside). ``crlf`` tells whether a CR before the LF was already removed."""
    n = len(verb)
    if line[:n] != verb:  # whitespace (or CR) where the verb should start
        raise ProtocolError(UNKNOWN_OP, "whitespace before the verb")
    if shape == BARE or shape == REST and verb.upper() != b"-ERR":
        return [verb]  # the rest is ignored (BARE) or read as bytes (REST)
    rest = line[n:]
    if rest[:1] not in (b" ", b"\t"):
        raise ProtocolError(UNKNOWN_OP, "verb %r not followed by a space" % verb[:16])
    if not crlf and 13 in rest:
        # nats-server drops the byte before LF once it saw a CR in the line
        rest = rest[:-1]
    fields = _PUB_FIELDS(rest) if shape == PUB or shape == HPUB else _ARG_FIELDS(rest)
    return [verb] + fields


def make_op_table(entries):
    """Build an op table from ``{verb: (shape, function)}``, adding lower-case
    aliases so the common spellings hit the table without an ``upper()`` call."""
    table = {}
    for verb, entry in entries.items():
        verb = verb.upper()
        entry = (entry[0], entry[1])
        table[verb] = entry
        table[verb.lower()] = entry
    return table



_BAD_LINE = object()


def _reply_arg(args, verb, is_pub):
    """The reply of a PUB line split into ``args`` (None if it has none; None
    for RMSG lines too, whose arguments the op reads itself), or ``_BAD_LINE``
    when the verb or the number of arguments is not what the runs handle: the
    general loop then decides, with the error nats-server sends."""
    if not args or args[0] != verb:
        return _BAD_LINE
    nargs = len(args)
    if is_pub:
        if nargs == 3:
            return None
        if nargs == 4:
            return args[2]
        return _BAD_LINE
    return None if nargs >= 3 else _BAD_LINE

def _same_frames(data, pos, stop, stride, head, size):
    """The payloads of the frames between ``pos`` and ``stop``, ``stride``
    bytes apart, if each is the frame at ``pos`` over again: the same
    ``head`` bytes (control line and LF), a payload of ``size``, CRLF.
    Otherwise None. Each byte column is one strided slice (C)."""
    k = (stop - pos) // stride
    tail = pos + head + size
    if data[tail:stop:stride] != b"\r" * k or data[tail + 1:stop:stride] != b"\n" * k:
        return None
    for j in range(pos, pos + head):
        if data[j:stop:stride] != data[j:j + 1] * k:
            return None
    start = pos + head
    return list(map(data.__getitem__, map(slice, range(start, stop, stride),
                                          range(start + size, stop, stride))))


# payload size -> the findall cutting a run of frames of that size into
# (line, payload, b"") triples, for _known_big_run. A payload of a fixed size
# is skipped by the regex engine in one step (``.{n}`` with DOTALL), not
# scanned. Where a frame does not match, the second branch takes the rest of
# the buffer in one step (a ``(b"", b"", rest)`` triple, whose length tells
# where the run ends): the triples before it are the frames from the start,
# contiguous, found in one linear pass (a search would try every later
# position again, quadratic on a torn frame).
_BIG_FRAMES = {}
_BIG_FRAMES_MAX = 64


def _big_frames(size):
    got = _BIG_FRAMES.get(size)
    if got is None:
        if len(_BIG_FRAMES) >= _BIG_FRAMES_MAX:
            _BIG_FRAMES.clear()
        got = _BIG_FRAMES[size] = re.compile(rb"([^\n]*)\n(.{%d})\r\n|(.+)" % size,
                                             re.S).findall
    return got


def _known_big_run(data, pos, known, is_pub):
    """Real traffic with big payloads (a publisher cycling over subjects, one
    payload size): the run of frames from ``pos`` whose control lines were
    all validated before (in ``known``, with this size), neighbours not
    alike, cut by the regex engine in C instead of a loop step per frame.
    Returns ``(items, pos)``: ``([], pos)`` where it declines (a line not
    seen, identical neighbours, which the column check takes, or fewer than
    three frames), and the caller's loop goes on from there exactly."""
    nl = data.find(b"\n", pos, pos + _KNOWN_LINE + 1)
    line = data[pos:nl] if nl > 0 else None
    got = known.get(line) if line is not None else None
    if got is None:
        return [], pos
    size = got[2]
    second = nl + size + 3  # where the next frame starts
    if data[second:second + len(line)] == line:
        return [], pos  # one line repeated: _same_frames' case
    pairs = _big_frames(size)(data, pos)
    end = len(data)
    if pairs and pairs[-1][2]:
        end -= len(pairs.pop()[2])  # the rest after the last frame (a frame's is empty)
    if len(pairs) < 3:
        return [], pos
    try:
        lines = list(map(known.__getitem__, map(_first, pairs)))
    except KeyError:
        return [], pos
    if list(map(_third, lines)).count(size) != len(lines):
        return [], pos
    payloads = zip(map(_second, pairs))
    if is_pub:
        items = list(zip(map(_first, lines), map(_second, lines), payloads, strict=True))
    else:
        items = list(zip(map(_first, lines), payloads, strict=True))
    return items, end


class Parser:
    """Incremental parser for one connection.

    ``feed(data)`` dispatches every complete frame in ``data`` (plus what was
    buffered before) to the op table's functions, and keeps the incomplete tail.
    Memory is bounded: an unterminated control line may grow to
    ``max_control_line`` and a payload to ``max_payload`` before an error.
    """

    __slots__ = ("handler", "ops", "max_control_line", "max_payload", "_chunks", "_skip",
                 "_frame", "_have", "_need",
                 "_known", "big")

    def __init__(self, handler, ops, max_control_line=4096, max_payload=1048576):
        self.handler = handler
        self.ops = ops
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self._chunks = None  # buffered tail (list of bytes) while a frame is incomplete
        self._skip = 0  # where in _chunks[0] the incomplete frame starts (kept without a copy)
        # (verb, entry, subject, reply, payload offset, size) of an incomplete
        # big PUB whose control line was read: its payload is joined from the
        # chunks straight (_big_pub), not the whole tail first.
        self._frame = None
        self._have = 0  # bytes in _chunks
        self._need = 0  # bytes the incomplete frame needs before parsing is worth retrying
        # verb -> control lines the fast path validated -> (subject or args, reply, size):
        # real traffic repeats its lines across reads (a publisher cycling over
        # subjects), so a line is split and checked once, not once per read.
        self._known = {}
        # The last run of payload frames had big payloads (at least _BIG
        # bytes): the connection reads more at once (connection.READ_BIG).
        self.big = False

    @property
    def buffered(self):
        """Bytes held for an incomplete frame."""
        return self._have

    def feed(self, data):
        if self._chunks is not None:
            # Waiting for the rest of a frame: only join (and re-parse) once
            # enough has arrived, so a 1 MiB payload in 64 KiB reads is copied once.
            chunks = self._chunks
            chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                self._check_partial_line()
                return
            skip = self._skip
            frame = self._frame
            self._chunks = self._frame = None
            self._have = self._need = self._skip = 0
            if frame is not None and self.ops.get(frame[0]) is frame[1]:
                data, pos = self._big_pub(chunks, skip, frame)
            else:
                if skip:
                    chunks[0] = memoryview(chunks[0])[skip:]
                data = b"".join(chunks)
                pos = 0
        else:
            pos = 0

        handler = self.handler
        max_cl = self.max_control_line
        max_payload = self.max_payload
        find = data.find
        n = len(data)
        fast_tries = _FAST_TRIES
        size_ints = _SIZE_INTS.get
        while pos < n:
            if fast_tries and n - pos >= _FAST_MIN:
                verb = _FAST_VERBS.get(data[pos:pos + 4])
                if verb is not None:
                    fast_tries -= 1
                    pos = self._payload_run(data, pos, verb)
                    if pos >= n:
                        return
            nl = find(b"\n", pos)
            if nl < 0:
                self._keep(data, pos, n - pos + 1)
                self._check_partial_line()
                return
            if nl - pos > max_cl:
                raise ProtocolError(self._too_long_error(data[pos:nl]))
            # the line without its LF and the CR before it (if any)
            end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
            line = data[pos:end]
            args = line.split()
            if not args:
                raise ProtocolError(UNKNOWN_OP, "empty control line")
            verb = args[0]
            # Re-read the table for every op: an op may switch it (CONNECT
            # authenticates) or stop the parser (the connection closed).
            ops = self.ops
            entry = ops.get(verb)
            if entry is None:
                entry = ops.get(verb.upper())
                if entry is None:
                    if not ops:
                        return  # stopped: nothing after a close is processed
                    entry, verb = self._glued(line)
                    args = [verb]
            shape, fn = entry[0], entry[1]
            if line[0] != verb[0] or 13 in line or 11 in line or 12 in line:
                args = _go_args(line, verb, shape, end != nl)

            if shape == PUB:  # the hot path: PUB subj [reply] size
                nargs = len(args)
                if nargs == 3:
                    reply = None
                    size_b = args[2]
                elif nargs == 4:
                    reply = args[2]
                    size_b = args[3]
                elif len(line) == len(verb):  # no space after the verb
                    raise ProtocolError(UNKNOWN_OP, "PUB without arguments")
                else:
                    raise ProtocolError(None, "PUB needs subject [reply] size")
                size = size_ints(size_b)
                if size is None:
                    size = _parse_size(size_b, verb)
                if size > max_payload:
                    raise ProtocolError(MAX_PAYLOAD, "payload %d > %d" % (size, max_payload))
                start = nl + 1
                end = start + size
                if end + 2 > n:
                    self._keep(data, pos, end + 2 - pos)
                    if size >= _BIG_KEEP:
                        self._frame = (verb, entry, args[1], reply, start - pos, size)
                    return
                if data[end] != 13 or data[end + 1] != 10:  # CRLF, without a slice
                    raise ProtocolError(UNKNOWN_OP, "payload not followed by CRLF")
                pos = end + 2
                fn(handler, [(args[1], reply, [data[start:end]])])
                continue

            if shape == BARE:
                pos = nl + 1
                fn(handler)
            elif shape == LINE:
                if len(line) == len(verb):  # no space after the verb
                    raise ProtocolError(UNKNOWN_OP, "%r without arguments" % verb[:16])
                pos = nl + 1
                fn(handler, args[1:])
            elif shape == REST:
                if len(line) == len(verb) and verb.upper() == b"-ERR":
                    raise ProtocolError(UNKNOWN_OP, "-ERR without a space")
                # JSON whitespace around the argument is stripped (nats-server skips
                # spaces and tabs, JSON decoding the rest); VT/FF are not whitespace there.
                rest = line[len(verb):].strip(b" \t\r")
                pos = nl + 1
                fn(handler, rest)
            else:
                # HPUB / PAYLOAD / HPAYLOAD: sizes are the last one or two fields.
                if len(line) == len(verb):  # no space after the verb
                    raise ProtocolError(UNKNOWN_OP, "%r without arguments" % verb[:16])
                if shape == PAYLOAD:
                    if len(args) < 3:
                        raise ProtocolError(None, "%s needs arguments and a size" % verb)
                    hdr_b = b"0"
                    size_b = args[-1]
                    head = tuple(args[1:-1])
                else:
                    if len(args) < 4:
                        raise ProtocolError(None, "%s needs header and total sizes" % verb)
                    hdr_b = args[-2]
                    size_b = args[-1]
                    head = tuple(args[1:-2])
                size = size_ints(size_b)
                if size is None:
                    size = _parse_size(size_b, verb)
                hdr = size_ints(hdr_b)
                if hdr is None:
                    hdr = _parse_size(hdr_b, verb)
                if hdr > size:
                    raise ProtocolError(None, "header size %d > total %d" % (hdr, size))
                if size > max_payload:
                    raise ProtocolError(MAX_PAYLOAD, "payload %d > %d" % (size, max_payload))
                if shape == HPUB and len(head) not in (1, 2):
                    raise ProtocolError(None, "HPUB needs subject [reply] hdr total")
                start = nl + 1
                end = start + size
                if end + 2 > n:
                    self._keep(data, pos, end + 2 - pos)
                    return
                if data[end:end + 2] != _CRLF:
                    raise ProtocolError(UNKNOWN_OP, "payload not followed by CRLF")
                pos = end + 2
                msg = data[start:end]
                if shape == HPUB:
                    fn(handler, head[0], head[1] if len(head) == 2 else None, hdr, msg)
                elif shape == PAYLOAD:
                    fn(handler, [(head, [msg])])
                else:
                    fn(handler, head, hdr, msg)

    def _payload_run(self, data, pos, verb):
        """Collect a run of well-formed ``verb`` frames (PUB, or RMSG/LMSG on
        links) starting at ``pos``, hand them to the op as one list, and
        return where the run ended. The general loop handles whatever this
        declines.

        Splitting the buffer on CRLF once is about twice as fast as finding each
        frame: a frame is then a control line part and a payload part. Anything
        unusual (another verb, a bare LF in the line, a payload containing CRLF,
        a size that does not match, an incomplete frame, limits) ends the run
        and the general loop takes that frame, so results are identical. A
        control line seen before (the previous frame's, or one in ``_known``)
        needs only its payload's length checked.
        """
        entry = self.ops.get(verb)
        if entry is None or entry[0] not in (PUB, PAYLOAD):
            return pos
        shape, fn = entry
        is_pub = shape == PUB
        max_cl = self.max_control_line
        # Peek at the first frame's size: big payloads take the offset run.
        nl = data.find(b"\n", pos, pos + max_cl + 1)
        if nl > 0:
            size_b = data[pos:nl].rsplit(None, 1)[-1]
            if size_b.isdigit() and int(size_b) >= _BIG:
                self.big = True
                items, pos = self._offset_run(data, pos, verb, is_pub)
                if items:
                    fn(self.handler, items)
                return pos
        self.big = False
        max_payload = self.max_payload
        parts = (data[pos:] if pos else data).split(b"\r\n")
        last = len(parts) - 2  # parts[-1] is what follows the final CRLF
        sizes = _SIZE_BYTES
        known = self._known.get(verb)  # (per verb: a PUB line is no RMSG line)
        if known is None or len(known) > _KNOWN_MAX:
            known = self._known[verb] = {}
        known_get = known.get
        pairs = (last + 1) >> 1  # complete (line, payload) pairs
        if pairs > 2 and known and parts[0] != parts[2]:
            # Real traffic (a publisher cycling over subjects): every line seen
            # before (a line not seen raises KeyError), each payload of its
            # line's size. The items are built in C, no frame costs a pass of
            # this loop (neighbours sharing a line stay apart: still exact).
            try:
                got = list(map(known.__getitem__, parts[0:2 * pairs:2]))
            except KeyError:
                got = None
            if got is not None:
                payloads = parts[1:2 * pairs:2]
                if list(map(len, payloads)) == list(map(_third, got)):
                    if is_pub:
                        items = list(zip(map(_first, got), map(_second, got), zip(payloads),
                                         strict=True))
                    else:
                        items = list(zip(map(_first, got), zip(payloads), strict=True))
                    fn(self.handler, items)
                    # where the part after the last pair starts
                    end = len(data) - len(parts[-1])
                    return end - 2 - len(parts[-2]) if len(parts) & 1 == 0 else end
        items = []
        append = items.append
        prev = plist = None
        psize = -1
        i = 0
        while i < last:
            line = parts[i]
            payload = parts[i + 1]
            if line == prev and len(payload) == psize:
                plist.append(payload)  # the previous frame's line: one more payload
                i += 2
                continue
            got = known_get(line)
            if got is not None and got[2] == len(payload):
                h, arg2, size = got
            else:
                # 10 is LF: a bare LF inside would end the line early in the general
                # loop; CR, VT, FF and a leading blank are read by nats-server's rules there.
                if len(line) > max_cl or 10 in line or 13 in line or 11 in line \
                        or 12 in line or line[:1] != verb[:1]:
                    break
                args = line.split()
                arg2 = _reply_arg(args, verb, is_pub)
                if arg2 is _BAD_LINE:
                    break
                size = len(payload)
                # The declared size must equal the part's length (else the payload
                # holds a CRLF or is incomplete); a table lookup beats int().
                if sizes.get(size) != args[-1]:
                    if size < len(sizes) or not args[-1].isdigit() or int(args[-1]) != size \
                            or len(args[-1]) > _MAX_SIZE_DIGITS:
                        break
                if size > max_payload:
                    break
                # (an RMSG's argument list is shared by its frames: receivers only read it)
                h = args[1] if is_pub else tuple(args[1:-1])
                if len(line) <= _KNOWN_LINE:
                    known[line] = (h, arg2 if is_pub else None, size)
            plist = [payload]
            append((h, arg2, plist) if is_pub else (h, plist))
            prev = line
            psize = size
            i += 2
        if items:
            fn(self.handler, items)
        # Bytes consumed: every part taken plus its CRLF, summed in C once.
        return pos + sum(map(len, parts[:i])) + 2 * i

    def _offset_run(self, data, pos, verb, is_pub):
        """``_payload_run``'s collection for big payloads: each frame found by
        its control line's LF (memchr) and its declared size, so payload
        bytes are never scanned. Declines exactly what the general loop would
        treat differently. Returns ``(items, pos)``."""
        max_cl = self.max_control_line
        max_payload = self.max_payload
        find = data.find
        size_ints = _SIZE_INTS.get
        n = len(data)
        known = self._known.get(verb)  # (per verb: a PUB line is no RMSG line)
        if known is None or len(known) > _KNOWN_MAX:
            known = self._known[verb] = {}
        known_get = known.get
        items = []
        if known:
            items, pos = _known_big_run(data, pos, known, is_pub)
        append = items.append
        prev = plist = None
        fsize = 0
        while pos < n:
            nl = find(b"\n", pos)
            if nl < 0 or nl - pos > max_cl:
                break
            line = data[pos:nl]
            if line == prev:  # the previous frame's line: one more payload
                start = nl + 1
                end = start + fsize
                if end + 2 > n or data[end] != 13 or data[end + 1] != 10:
                    break
                stride = end + 2 - pos
                k = (n - pos) // stride
                if k > 2:
                    # A publisher streaming one subject: its frames lie at a
                    # fixed stride, so they are checked a byte column at a
                    # time and cut by C loops, not one Python step each.
                    stop = pos + k * stride
                    got = _same_frames(data, pos, stop, stride, start - pos, fsize)
                    if got:
                        plist += got
                        pos = stop
                        continue
                pos = end + 2
                plist.append(data[start:end])
                continue
            got = known_get(line)  # validated before (keys keep their CR here)
            if got is not None:
                h, arg2, fsize = got
            else:
                # CR (but the last), VT, FF or a leading blank: the general loop reads it.
                if line[:1] != verb[:1] or line.find(b"\r", 0, -1) >= 0 or 11 in line \
                        or 12 in line:
                    break
                args = line.split()
                arg2 = _reply_arg(args, verb, is_pub)
                if arg2 is _BAD_LINE:
                    break
                fsize = size_ints(args[-1])
                if fsize is None:
                    size_b = args[-1]
                    if not size_b.isdigit() or len(size_b) > _MAX_SIZE_DIGITS:
                        break
                    fsize = int(size_b)
                if fsize > max_payload:
                    break
                h = args[1] if is_pub else tuple(args[1:-1])
                if len(line) <= _KNOWN_LINE:
                    known[line] = (h, arg2 if is_pub else None, fsize)
            start = nl + 1
            end = start + fsize
            if end + 2 > n or data[end] != 13 or data[end + 1] != 10:
                break
            pos = end + 2
            plist = [data[start:end]]
            append((h, arg2, plist) if is_pub else (h, plist))
            prev = line
        return items, pos

    def _glued(self, line):
        """``(entry, verb)`` for a line whose first field is not a verb: one of
        the verbs nats-server reads glued to what follows (``PINGx``,
        ``CONNECT{...}``), else an unknown operation."""
        head = line[:8].upper()
        for verb in _GLUED:
            if head.startswith(verb):
                entry = self.ops.get(verb)
                if entry is not None:
                    return entry, line[:len(verb)]
        raise ProtocolError(UNKNOWN_OP, "unknown verb %r" % line.split(None, 1)[0][:32])

    def stop(self):
        """Process nothing more, not even the rest of the current ``feed``."""
        self.ops = {}
        self._chunks = self._frame = None
        self._have = self._need = self._skip = 0

    def _keep(self, data, pos, need):
        """Buffer ``data[pos:]`` (``data`` itself, not a copy) until ``need``
        bytes of it are available."""
        self._chunks = [data]
        self._skip = pos
        self._have = len(data) - pos
        self._need = need

    def _big_pub(self, chunks, skip, frame):
        """Dispatch the big PUB ``frame`` whose bytes are now all in
        ``chunks`` (from ``skip`` in the first): its payload is joined from
        memoryviews of the chunks, one copy, and the CRLF after it checked.
        Returns ``(data, pos)``: the last chunk and where in it parsing goes on."""
        _verb, entry, subject, reply, off, size = frame
        pieces = []
        at = skip + off  # the payload's start in the first chunk
        left = size + 2  # payload and CRLF
        for chunk in chunks:
            if at >= len(chunk):
                at -= len(chunk)
                continue
            take = min(left, len(chunk) - at)
            pieces.append(memoryview(chunk)[at:at + take])
            left -= take
            if not left:
                break
            at = 0
        crlf = bytes(pieces[-1][-2:]) if len(pieces[-1]) >= 2 else \
            bytes(pieces[-2][-1:]) + bytes(pieces[-1])
        if crlf != _CRLF:
            raise ProtocolError(UNKNOWN_OP, "payload not followed by CRLF")
        end = at + take  # in the last chunk taken
        last = pieces[-1]
        if len(last) > 2:
            pieces[-1] = last[:-2]
        else:  # the CRLF (or its LF) is all this chunk gave
            pieces.pop()
            if len(last) == 1:
                pieces[-1] = pieces[-1][:-1]
        entry[1](self.handler, [(subject, reply, [b"".join(pieces)])])
        return chunk, end

    def _check_partial_line(self):
        """An unterminated control line may not grow past max_control_line."""
        if self._have <= self.max_control_line:
            return
        head = self._chunks[0]
        if head.find(b"\n", self._skip) >= 0:
            return  # the control line is complete; we are waiting for a payload
        line = b"".join([memoryview(head)[self._skip:], *self._chunks[1:]])
        if line.find(b"\n") >= 0:
            return
        self._chunks = self._frame = None
        self._have = self._need = self._skip = 0
        raise ProtocolError(self._too_long_error(line))

    def _too_long_error(self, line):
        # nats-server recognises the verb before it counts the line: garbage
        # is an unknown op, a known verb with a huge argument a control-line error.
        verb = line[:16].split(None, 1)
        if verb and (verb[0] in self.ops or verb[0].upper() in self.ops):
            return MAX_CONTROL_LINE
        return UNKNOWN_OP
