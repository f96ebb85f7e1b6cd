"""Property-based fuzzing of the server's parsers (hypothesis, seeded, bounded).

Every parser that reads what a peer sends is fuzzed the same way: byte strings
built from its grammar (valid frames, then mutated: whitespace variants, case,
sizes that lie, truncation, junk bytes, odd JSON) are sent over a real socket
to a real server process, and three things must hold:

* no exception escapes: the server's log never shows a traceback or a crash
  line, and never grows by more than the fuzzer sent (:func:`check_log`);
* the connection answers with well-formed protocol only, or closes
  (:func:`check_reply`; the differential test compares with nats-server);
* the server keeps serving others: a sentinel client still gets PONG.

A new parser plugs in with a few lines::

    from pluggy_nats.testing import fuzz

    LEAF_VERBS = {b"LS+": fuzz.fields(fuzz.subjects()), b"LMSG": fuzz.payload_frame(1), ...}

    def test_fuzz_leaf(make_server):
        server = make_server("--leafnodes", ...)
        target = fuzz.WireTarget(server.logfile, "127.0.0.1", leaf_port, sentinel_port=server.port,
                                 preamble=b'CONNECT {...}\\r\\n')
        stats = fuzz.run(target, fuzz.protocol(LEAF_VERBS), examples=150)
        assert stats.examples == 150

Inputs are seeded (``seed``), so a run is reproducible; ``examples`` bounds the
time (a few milliseconds each). Set ``PLUGGY_NATS_FUZZ_EXAMPLES`` to multiply
them for a long soak.
"""

import json
import os
import re
import socket
import time

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

# -- the grammar pieces ---------------------------------------------------------------

#: separators and line ends a peer might use, right and wrong
SEPARATORS = [b" ", b"  ", b"\t", b" \t", b"\x0b", b"\x0c", b"\r", b""]
LINE_ENDS = [b"\r\n", b"\n", b"\r\r\n", b" \r\n", b"\n\r"]


def _mostly(common, rare, one_in=5):
    """``common`` but one draw in ``one_in`` from ``rare``."""
    return st.integers(0, one_in - 1).flatmap(lambda n: rare if n == 0 else common)


def tokens():
    """Subject tokens: plain, wildcards, empty, and now and then odd bytes."""
    return _mostly(st.sampled_from([b"foo", b"bar", b"*", b">", b"", b"a-b", b"_INBOX", b"$SYS",
                                    b"x" * 40]),
                   st.binary(min_size=1, max_size=6))


def subjects():
    """Subjects: mostly valid, sometimes not (empty tokens, junk)."""
    return st.lists(tokens(), min_size=1, max_size=4).map(b".".join)


def numbers():
    """Sizes, sids, weights: small, zero-padded, huge, negative, not numbers."""
    return _mostly(st.integers(0, 64).map(lambda n: b"%d" % n),
                   st.sampled_from([b"-1", b"0001", b"9" * 10, b"1e3", b"0x10", b"", b"\xff",
                                    b"1.5"]))


def fields(*strategies):
    """A control-line argument list: each strategy gives one field."""
    return st.tuples(*strategies).map(list)


def payload_frame(header_fields, before=None):
    """Arguments and body of a frame with a payload: ``before`` (a strategy of
    the fields before the sizes, default a subject), ``header_fields`` sizes at
    the end (1: size; 2: header size and total). The declared sizes usually
    match the body and sometimes lie."""
    before = before if before is not None else fields(subjects())

    @st.composite
    def frame(draw):
        args = draw(before)
        body = draw(st.binary(max_size=24))
        hdr = b""
        if header_fields == 2:
            hdr = draw(st.sampled_from([b"NATS/1.0\r\n\r\n", b"NATS/1.0 503\r\n\r\n",
                                        b"NATS/1.0\r\nA: b\r\n\r\n", b"junk\r\n\r\n", b""]))
        total = len(hdr) + len(body)
        if draw(st.integers(0, 4)) == 0:  # a size that lies
            total = max(0, total + draw(st.integers(-3, 3)))
        sizes = [b"%d" % len(hdr), b"%d" % total] if header_fields == 2 else [b"%d" % total]
        if draw(st.integers(0, 6)) == 0:
            sizes[-1] = draw(numbers())
        return args + sizes, hdr + body

    return frame()


def json_args():
    """CONNECT/INFO arguments: objects of plausible fields with any JSON type,
    plus JSON that Go and Python read differently (deep, not UTF-8, NaN...)."""
    values = st.one_of(st.booleans(), st.integers(-2, 3), st.floats(allow_nan=False,
                       allow_infinity=False), st.text(max_size=8), st.none(),
                       st.lists(st.integers(), max_size=2))
    keys = st.sampled_from(["verbose", "pedantic", "echo", "headers", "no_responders", "protocol",
                            "name", "lang", "version", "user", "pass", "auth_token", "VERBOSE",
                            "Protocol", "server_id", "port", "import", "x"])
    objects = st.dictionaries(keys, values, max_size=5).map(
        lambda d: json.dumps(d).encode())
    odd = st.sampled_from([
        b"[" * 1000, b"{" * 50, b'{"a":' * 600, b"null", b"5", b'"x"', b"[]", b"{bad",
        b'{"lang":"caf\xe9"}', b'{"name":"\\ud800"}', b'{"protocol":NaN}', b'{"verbose":false} x',
        b'{"protocol":1.0}', b'{"protocol":99999999999999999999}', b"\x00\xff", b"",
    ])
    return st.one_of(objects, odd, objects.map(lambda b: b + b"\x0b"))


def protocol(verbs, junk=True):
    """A byte string of frames. ``verbs`` maps a verb to a strategy giving its
    argument list, or ``(args, body)`` for a payload frame (see
    :func:`payload_frame`), or None for a bare verb. Frames are joined with
    random separators and line ends; with ``junk`` some frames are random
    bytes or have their verb mangled."""
    verb_names = sorted(verbs)

    @st.composite
    def one_frame(draw):
        verb = draw(st.sampled_from(verb_names))
        spec = verbs[verb]
        mangle = draw(st.integers(0, 9))
        if mangle == 0:
            verb = verb.lower()
        elif mangle == 1:
            verb = draw(st.sampled_from([b" ", b"\r", b"\t", b"\x0c"])) + verb
        elif mangle == 2:
            verb = verb[:-1] if len(verb) > 1 else verb + b"X"
        drawn = draw(spec) if spec is not None else []
        if isinstance(drawn, tuple):
            args, body = drawn
        else:
            args, body = drawn, None
        if isinstance(args, bytes):  # a REST argument (JSON)
            args = [args]
        line = verb
        for arg in args:
            line += draw(st.sampled_from(SEPARATORS[:4]) if draw(st.integers(0, 5))
                         else st.sampled_from(SEPARATORS)) + arg
        end = draw(st.sampled_from(LINE_ENDS[:2]) if draw(st.integers(0, 5))
                   else st.sampled_from(LINE_ENDS))
        frame = line + end
        if body is not None:
            frame += body + (b"\r\n" if draw(st.integers(0, 6)) else draw(st.binary(max_size=3)))
        return frame

    frame = _mostly(one_frame(), st.binary(min_size=1, max_size=16), 8) if junk else one_frame()
    return st.lists(frame, min_size=1, max_size=6).map(b"".join)


# -- the client protocol (PROTOCOL.md 1.1): shared by every client-port fuzzer --------

# The client protocol's verbs and their arguments (PROTOCOL.md 1.1), plus MSG,
# which a client may not send.
_PUB_HEAD = st.one_of(fields(subjects()), fields(subjects(), subjects()))
CLIENT_VERBS = {
    b"CONNECT": json_args(),
    b"INFO": json_args(),
    b"PUB": payload_frame(1, _PUB_HEAD),
    b"HPUB": payload_frame(2, _PUB_HEAD),
    b"SUB": st.one_of(fields(subjects(), numbers()),
                      fields(subjects(), tokens(), numbers())),
    b"UNSUB": st.one_of(fields(numbers()), fields(numbers(), numbers())),
    b"PING": None,
    b"PONG": None,
    b"+OK": None,
    b"-ERR": fields(st.sampled_from([b"'x'", b"", b"\xff"])),
    b"MSG": payload_frame(1, fields(subjects(), numbers())),
}

# Most inputs start by connecting as a client that gets every reply.
_CONNECT = b'CONNECT {"verbose":true,"pedantic":true,"headers":true,"protocol":1}\r\n'


def client_inputs():
    """Client protocol inputs; most start by connecting as a client that gets
    every reply (verbose, pedantic, headers, protocol 1)."""
    return st.tuples(st.sampled_from([_CONNECT, _CONNECT, b""]),
                     protocol(CLIENT_VERBS)).map(b"".join)


# The reproducers of issue 18 (and a few cousins), sent before the drawn inputs.
CLIENT_REPRODUCERS = [
    b"CONNECT " + b"[" * 1000 + b"\r\n",
    b'CONNECT {"a":' * 700 + b"\r\n",
    b"SUB a\x0cq 1\r\n", b"UNSUB\x0b1\r\n", b" PING\r\n", b"\rPING\r\n",
    _CONNECT + b"PUB a 2 \r\r\nhi\r\n", _CONNECT + b"INFO x\r\n", b'CONNECT {"protocol": true}\r\n',
    b'CONNECT {"verbose":false,"lang":"caf\xe9"}\r\n', b'CONNECT {"name":"\\udc00"}\r\nPING\r\n',
]


# -- running --------------------------------------------------------------------------

class Stats:
    """What a run did: examples sent, bytes sent, connections the server closed."""

    def __init__(self):
        self.examples = 0
        self.sent = 0
        self.closed_early = 0


def exchange(host, port, data, preamble=b"", read_info=True, timeout=5.0):
    """Connect, read the greeting (one line) if ``read_info``, send ``preamble``
    and ``data``, half-close, and read until the server closes. Returns
    ``(reply, greeting)``; the half-close makes the server finish what it
    has, answer and close, so nothing waits on a timer."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        greeting = b""
        if read_info:
            while not greeting.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                greeting += chunk
        try:
            sock.sendall(preamble + data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed by the server while we were sending: read what it said
        reply = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            reply += chunk
        return reply, greeting
    finally:
        sock.close()


def ping(host, port, preamble=b"", timeout=5.0):
    """True if a fresh client (sending ``preamble`` first, a CONNECT with
    credentials say) gets PONG for PING: the server still serves."""
    reply, _ = exchange(host, port, b"PING\r\n", preamble, timeout=timeout)
    return b"PONG\r\n" in reply


class WireTarget:
    """A server port to fuzz. ``preamble`` (bytes, or a callable giving bytes
    per example) is sent before each input (a handshake); ``check`` (optional)
    is called with ``(data, reply)`` after each; ``sentinel_port`` is a client
    port PINGed every ``sentinel_every`` examples (after ``sentinel_preamble``);
    ``reply_ops`` the verbs a reply may hold (:func:`check_reply`)."""

    def __init__(self, logfile, host, port, preamble=b"", read_info=True, check=None,
                 sentinel_port=None, sentinel_every=25, reply_ops=None, sentinel_preamble=b""):
        self.logfile = logfile
        self.host = host
        self.port = port
        self.preamble = preamble
        self.read_info = read_info
        self.check = check
        self.sentinel_port = sentinel_port
        self.sentinel_every = sentinel_every
        self.reply_ops = reply_ops
        self.sentinel_preamble = sentinel_preamble

    def serving(self):
        return ping(self.host, self.sentinel_port, self.sentinel_preamble)

    def send(self, data, stats):
        preamble = self.preamble() if callable(self.preamble) else self.preamble
        reply, _ = exchange(self.host, self.port, data, preamble, self.read_info)
        stats.examples += 1
        stats.sent += len(preamble) + len(data)
        if self.reply_ops is not None:
            check_reply(reply, self.reply_ops)
        if self.check is not None:
            self.check(data, reply)
        if self.sentinel_port and stats.examples % self.sentinel_every == 0:
            assert self.serving(), "server stopped serving after %r" % data
        return reply


def examples(n):
    """``n`` scaled by ``PLUGGY_NATS_FUZZ_EXAMPLES`` (a multiplier, default 1)."""
    return max(1, int(n * float(os.environ.get("PLUGGY_NATS_FUZZ_EXAMPLES", "1"))))


def fuzz_settings(n):
    """Seeded, bounded hypothesis settings for fuzzing a live server: no
    deadline (sockets), no example database (reproducible from the seed),
    shrinking kept short."""
    return settings(max_examples=examples(n), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.generate, Phase.shrink))


def run(target, strategy, n=150, seed_value=18, check_logs=True, explicit=(),
        log_per_connection=0):
    """Fuzz ``target`` (a :class:`WireTarget`, or any callable ``(data,
    stats)``) with the ``explicit`` inputs (known reproducers, always sent)
    and ``n`` inputs drawn from ``strategy``; then check the server log
    (:func:`check_log`) and that the server still serves. Returns Stats.

    ``log_per_connection``: bytes of log a connection may cost whatever it
    sends, for links whose connect and disconnect are logged at info level
    (nats-server logs them too); garbage must not add to it."""
    stats = Stats()
    mark = log_size(target.logfile) if check_logs and hasattr(target, "logfile") else None
    send = target.send if hasattr(target, "send") else target
    for data in explicit:
        send(data, stats)

    @seed(seed_value)
    @fuzz_settings(n)
    @given(strategy)
    def one(data):
        send(data, stats)

    one()
    if mark is not None:
        check_log(target.logfile, mark, stats.sent, stats.examples * log_per_connection)
    if getattr(target, "sentinel_port", None):
        assert target.serving(), "server stopped serving"
    return stats


# -- checks ---------------------------------------------------------------------------

#: what a server may send a client
CLIENT_REPLY_OPS = (b"INFO", b"MSG", b"HMSG", b"PING", b"PONG", b"+OK", b"-ERR")
#: what a server may send a route, gateway or leaf peer
LINK_REPLY_OPS = (b"INFO", b"CONNECT", b"PING", b"PONG", b"+OK", b"-ERR", b"RS+", b"RS-", b"LS+",
                  b"LS-", b"A+", b"A-", b"RMSG", b"HMSG", b"LMSG")
_FRAME = re.compile(rb"(?P<verb>[A-Z+-]+)(?P<args>[^\r\n]*)\r\n")


def check_reply(reply, ops=CLIENT_REPLY_OPS):
    """Every frame of ``reply`` is one of ``ops``, CRLF-terminated, with
    MSG/HMSG payloads of their declared size."""
    pos = 0
    while pos < len(reply):
        m = _FRAME.match(reply, pos)
        assert m and m.group("verb") in ops, "malformed reply at %d: %r" % (
            pos, reply[pos:pos + 80])
        pos = m.end()
        if m.group("verb") in (b"MSG", b"HMSG", b"RMSG", b"LMSG"):
            size = int(m.group("args").split()[-1])
            assert reply[pos + size:pos + size + 2] == b"\r\n", "payload size wrong in %r" % reply
            pos += size + 2


_INFO = re.compile(rb"INFO (\{.*?\}) ?\r\n")
#: INFO fields that differ between two servers (ids, versions, addresses)
VOLATILE_INFO = frozenset({
    "server_id", "server_name", "version", "go", "git_commit", "host", "port", "client_id",
    "client_ip", "xkey", "api_lvl", "pluggy_nats", "nonce", "max_payload", "connect_urls"})


def normalize_reply(data, volatile=VOLATILE_INFO):
    """``data`` with every INFO's volatile fields dropped and the rest in
    key order, so replies of two servers compare byte for byte."""
    def info(match):
        try:
            fields = json.loads(match.group(1))
        except ValueError:
            return match.group(0)
        kept = {k: v for k, v in fields.items() if k not in volatile}
        return b"INFO " + json.dumps(kept, sort_keys=True).encode() + b"\r\n"

    return _INFO.sub(info, data)


def log_size(logfile):
    try:
        return os.path.getsize(logfile)
    except OSError:
        return 0


TRACEBACK_MARKERS = ("Traceback (most recent call last)", "connection_crashed",
                     "internal_callback_failed", "monitor_endpoint_failed")


def check_log(logfile, mark, sent, slack=0):
    """The log rule: what the server logged since ``mark`` (a size from
    :func:`log_size`) has no traceback or crash line and is no bigger than
    ``sent`` (bytes the peer sent) plus ``slack``."""
    with open(logfile, "rb") as f:
        f.seek(mark)
        grown = f.read().decode(errors="replace")
    for marker in TRACEBACK_MARKERS:
        at = grown.find(marker)
        assert at < 0, "server logged %r:\n%s" % (marker, grown[max(0, at - 2000):at + 3000])
    assert len(grown) <= sent + slack, "logged %d bytes for %d sent:\n%s" % (
        len(grown), sent, grown[-2000:])
    return grown
