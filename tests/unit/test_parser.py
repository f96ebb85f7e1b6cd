"""The sans-IO parser: every frame at every split point, limits, and fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluggy_nats.protocol import errors as E
from pluggy_nats.protocol.errors import ProtocolError
from pluggy_nats.protocol.parser import (
    BARE,
    HPAYLOAD,
    HPUB,
    LINE,
    PAYLOAD,
    PUB,
    REST,
    Parser,
    make_op_table,
)


class Recorder:
    """Records ops as tuples so a test can compare whole sequences."""

    def __init__(self):
        self.ops = []


OPS = make_op_table({
    b"PUB": (PUB, lambda h, items: h.ops.extend(("PUB", s, r, p) for s, r, ps in items
                                                 for p in ps)),
    b"HPUB": (HPUB, lambda h, s, r, hdr, m: h.ops.append(("HPUB", s, r, hdr, m))),
    b"SUB": (LINE, lambda h, args: h.ops.append(("SUB", *args))),
    b"UNSUB": (LINE, lambda h, args: h.ops.append(("UNSUB", *args))),
    b"PING": (BARE, lambda h: h.ops.append(("PING",))),
    b"PONG": (BARE, lambda h: h.ops.append(("PONG",))),
    b"CONNECT": (REST, lambda h, rest: h.ops.append(("CONNECT", rest))),
    b"RMSG": (PAYLOAD, lambda h, items: h.ops.extend(("RMSG", tuple(a), p) for a, ps in items
                                                     for p in ps)),
    b"HMSG": (HPAYLOAD, lambda h, args, hdr, m: h.ops.append(("HMSG", tuple(args), hdr, m))),
    b"RS+": (LINE, lambda h, args: h.ops.append(("RS+", *args))),
})

def parse(*chunks, **limits):
    rec = Recorder()
    parser = Parser(rec, OPS, **limits)
    for chunk in chunks:
        parser.feed(chunk)
    return rec.ops, parser


STREAM = (
    b'CONNECT {"verbose":false,"name":"a b"}\r\n'
    b"PING\r\n"
    b"SUB foo 1\r\n"
    b"SUB foo.* q 2\r\n"
    b"PUB foo 5\r\nhello\r\n"
    b"PUB foo bar 0\r\n\r\n"
    b"HPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    b"UNSUB 1 10\r\n"
    b"RMSG $G foo + r q1 q2 3\r\nabc\r\n"
    b"HMSG $G foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"
    b"RS+ $G foo.> q 3\r\n"
    b"PONG\r\n"
)

EXPECTED = [
    ("CONNECT", b'{"verbose":false,"name":"a b"}'),
    ("PING",),
    ("SUB", b"foo", b"1"),
    ("SUB", b"foo.*", b"q", b"2"),
    ("PUB", b"foo", None, b"hello"),
    ("PUB", b"foo", b"bar", b""),
    ("HPUB", b"foo", b"r", 12, b"NATS/1.0\r\n\r\nhi"),
    ("UNSUB", b"1", b"10"),
    ("RMSG", (b"$G", b"foo", b"+", b"r", b"q1", b"q2"), b"abc"),
    ("HMSG", (b"$G", b"foo"), 12, b"NATS/1.0\r\n\r\n"),
    ("RS+", b"$G", b"foo.>", b"q", b"3"),
    ("PONG",),
]


def _general_loop_only(outcome):
    """``outcome()`` with the parser's fast paths off (the general loop reads
    everything): what the fast paths must reproduce exactly."""
    import pluggy_nats.protocol.parser as parser_module

    saved = parser_module._FAST_TRIES
    parser_module._FAST_TRIES = 0
    try:
        return outcome()
    finally:
        parser_module._FAST_TRIES = saved


def _fed(*reads, **limits):
    """``(ops, error or bytes buffered)`` of a fresh parser fed ``reads``."""
    rec = Recorder()
    parser = Parser(rec, OPS, **limits)
    try:
        for data in reads:
            parser.feed(data)
    except ProtocolError as exc:
        return rec.ops, exc.err
    return rec.ops, parser.buffered


def _same_as_general_loop(*reads):
    """The fast paths read ``reads`` exactly as the general loop alone does."""
    return _fed(*reads) == _general_loop_only(lambda: _fed(*reads))


def test_whole_stream():
    ops, parser = parse(STREAM)
    assert ops == EXPECTED
    assert parser.buffered == 0


@pytest.mark.parametrize("split", range(1, len(STREAM)))
def test_every_split_point(split):
    ops, parser = parse(STREAM[:split], STREAM[split:])
    assert ops == EXPECTED
    assert parser.buffered == 0


def test_byte_at_a_time():
    ops, _ = parse(*[STREAM[i:i + 1] for i in range(len(STREAM))])
    assert ops == EXPECTED


def test_case_insensitive_verbs_tabs_and_bare_lf():
    ops, _ = parse(b"pInG\r\npub\tfoo  3\nabc\r\nSub foo\t1\r\n")
    assert ops == [("PING",), ("PUB", b"foo", None, b"abc"), ("SUB", b"foo", b"1")]


@pytest.mark.parametrize("data,err", [
    (b"FOO\r\n", E.UNKNOWN_OP),
    (b"\r\n", E.UNKNOWN_OP),
    (b"MSG foo 1 1\r\nx\r\n", E.UNKNOWN_OP),
    (b"PUB foo 2\r\nabc\r\n", E.UNKNOWN_OP),  # payload longer than declared
    (b"PUB foo 2000000\r\n", E.MAX_PAYLOAD),
    (b"PUB foo\r\n", None),
    (b"PUB foo a b 2\r\nab\r\n", None),
    (b"PUB foo -1\r\n", None),
    (b"PUB foo x\r\n", None),
    (b"HPUB foo 10 5\r\n", None),
    (b"HPUB foo 5\r\n", None),
])
def test_errors(data, err):
    with pytest.raises(ProtocolError) as info:
        parse(data)
    assert info.value.err == err


def test_ops_before_an_error_are_dispatched():
    rec = Recorder()
    parser = Parser(rec, OPS)
    with pytest.raises(ProtocolError):
        parser.feed(b"PING\r\nSUB x 1\r\nBOGUS\r\nPING\r\n")
    assert rec.ops == [("PING",), ("SUB", b"x", b"1")]


def test_control_line_limit_on_complete_and_partial_lines():
    with pytest.raises(ProtocolError) as info:
        parse(b"PUB " + b"a" * 5000 + b" 1\r\n")
    assert info.value.err == E.MAX_CONTROL_LINE
    rec = Recorder()
    parser = Parser(rec, OPS, max_control_line=100)
    parser.feed(b"SUB " + b"a" * 60)
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"b" * 60)  # no newline yet, but already too long
    assert info.value.err == E.MAX_CONTROL_LINE
    with pytest.raises(ProtocolError) as info:
        parse(b"x" * 5000)  # garbage is an unknown op, as nats-server says
    assert info.value.err == E.UNKNOWN_OP


def test_large_payload_in_many_chunks_is_joined_once():
    payload = bytes(range(256)) * 4096  # 1 MiB
    frame = b"PUB big %d\r\n" % len(payload) + payload + b"\r\n"
    chunks = [frame[i:i + 65536] for i in range(0, len(frame), 65536)]
    ops, parser = parse(*chunks, max_payload=2 * len(payload))
    assert ops == [("PUB", b"big", None, payload)]
    assert parser.buffered == 0


def test_buffer_is_bounded_while_waiting_for_payload():
    rec = Recorder()
    parser = Parser(rec, OPS, max_payload=100)
    parser.feed(b"PUB foo 100\r\n" + b"x" * 50)
    assert parser.buffered < 200
    parser.feed(b"PUB foo 101\r\n")  # mid-payload, so these are payload bytes
    assert rec.ops == []
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"y" * 40)  # 103 bytes where 100 and CRLF belong
    assert info.value.err == E.UNKNOWN_OP


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=300), max_size=5))
def test_fuzz_never_crashes_and_stays_bounded(data, cuts):
    """Any bytes, cut anywhere: either ops or a ProtocolError, never another
    exception, and never more buffered than the limits allow."""
    rec = Recorder()
    parser = Parser(rec, OPS, max_control_line=64, max_payload=128)
    pieces, last = [], 0
    for cut in sorted(set(c for c in cuts if c < len(data))):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    try:
        for piece in pieces:
            parser.feed(piece)
            assert parser.buffered <= 64 + 128 + 2 + 64
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"a", b"foo.bar", b"x.*.>"]),
                          st.one_of(st.none(), st.just(b"_INBOX.1")),
                          st.binary(max_size=40)), min_size=1, max_size=8),
       st.integers(min_value=1, max_value=20))
def test_fuzz_pub_roundtrip_any_chunking(msgs, step):
    stream = b"".join(
        b"PUB %s %s%d\r\n%s\r\n" % (s, (r + b" ") if r else b"", len(p), p) for s, r, p in msgs)
    chunks = [stream[i:i + step] for i in range(0, len(stream), step)]
    ops, _ = parse(*chunks)
    assert ops == [("PUB", s, r, p) for s, r, p in msgs]


def test_an_op_may_switch_the_table_or_stop_the_parser():
    """CONNECT switches a connection to its authenticated table and a close stops
    parsing: both take effect for the very next op in the same read."""
    rec = Recorder()
    after = make_op_table({b"PING": (BARE, lambda h: h.ops.append(("PING-after",)))})

    def switch(h, rest):
        h.ops.append(("CONNECT", rest))
        parser.ops = after

    def stop(h):
        h.ops.append(("STOP",))
        parser.stop()

    parser = Parser(rec, make_op_table({b"CONNECT": (REST, switch)}))
    parser.feed(b"CONNECT {}\r\nPING\r\n")
    assert rec.ops == [("CONNECT", b"{}"), ("PING-after",)]
    parser.ops = make_op_table({b"PING": (BARE, stop)})
    parser.feed(b"PING\r\nPING\r\nGARBAGE\r\n")
    assert rec.ops[-1] == ("STOP",) and len(rec.ops) == 3


FRAMES = st.sampled_from([
    b"PUB a 3\r\nabc\r\n", b"PUB a.b r 0\r\n\r\n", b"pub a 1\r\nx\r\n", b"PUB\ta  2\r\nhi\r\n",
    b"PUB a 4\r\na\r\nb\r\n",  # payload holding a CRLF
    b"PUB a 1\nx\r\n",  # bare LF ends the control line
    b"PUB a\n 1\r\nx\r\n",  # ... so this one is an error in the general loop
    b"PUB a 5\r\nabc\r\n",  # declared size does not match
    b"PUB a 200\r\n" + b"z" * 200 + b"\r\n",  # over max_payload below
    b"PUB a x\r\n", b"PUB a 1 2 3\r\nx\r\n", b"PING\r\n", b"SUB a 1\r\n",
    b"PUB " + b"s" * 70 + b" 1\r\nx\r\n",  # over max_control_line below
    b"PUB a 10\r\n0123456789\r\n" * 3,
    b"RMSG $G a 3\r\nabc\r\n", b"RMSG $G a + r q1 q2 2\r\nhi\r\n", b"RMSG $G a | q 0\r\n\r\n",
    b"RMSG $G a 4\r\na\r\nb\r\n", b"RMSG a\r\n", b"RMSG $G a 2 \r\nhi\r\n",
    # same control lines as frames above, other payloads: shared lines form and break
    b"PUB a 3\r\nxyz\r\n", b"PUB a 4\r\nwxyz\r\n", b"RMSG $G a 3\r\nxyz\r\n",
    # runs of one line (checked a byte column at a time), and near misses at their stride
    b"PUB a 3\r\nabc\r\n" * 4, b"PUB a 3\r\nxyz\r\n" * 4 + b"PUB b 3\r\nxyz\r\n",
    b"PUB a 3\r\nxyz\r\n" * 4 + b"PUB a 3\r\nxyzw\r\n", b"RMSG $G a 3\r\nabc\r\n" * 4,
    b"PUB a 3\r\nxyz\r\n" * 4 + b"PUB a 3\r\nxyz\n\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAMES, min_size=1, max_size=12), st.integers(min_value=1, max_value=400),
       st.sampled_from([256, 0]), st.sampled_from([1, 3]))
def test_fast_path_gives_the_same_results_as_the_general_loop(frames, step, big, repeat):
    """The payload fast path (PUB, RMSG) is only an optimisation: for any stream and chunking,
    ops and errors equal those of the general loop alone. ``big`` 0 sends every run
    through the offset run (the big-payload variant) instead of the CRLF split;
    ``repeat`` 3 sends the stream thrice, so later runs hold lines seen before
    (the run built without a loop over its frames)."""
    import pluggy_nats.protocol.parser as parser_module

    stream = b"".join(frames) * repeat
    chunks = [stream[i:i + step] for i in range(0, len(stream), step)]

    def outcome():
        return _fed(*chunks, max_control_line=64, max_payload=128)

    saved_big = parser_module._BIG
    parser_module._BIG = big
    try:
        fast = outcome()
    finally:
        parser_module._BIG = saved_big
    assert fast == _general_loop_only(outcome)


def test_a_run_of_known_lines_is_taken_whole_and_exactly():
    """A read whose lines were all seen before, neighbours different (a
    publisher cycling over subjects), is one call with every frame; a known
    line whose payload now has another size, or holds a CRLF, is still read
    exactly."""
    frames = b"".join(b"PUB s.%d 3\r\nab%d\r\n" % (i % 5, i % 10) for i in range(40))
    rmsg = b"".join(b"RMSG $G s.%d 2\r\nh%d\r\n" % (i % 5, i % 10) for i in range(40))
    calls = []
    ops = make_op_table({b"PUB": (PUB, lambda h, items: calls.append(list(items))),
                         b"RMSG": (PAYLOAD, lambda h, items: calls.append(list(items)))})
    parser = Parser(Recorder(), ops)
    for data in (frames, frames, rmsg, rmsg):
        calls.clear()
        parser.feed(data)
        flat = [(i[0], i[-2] if len(i) == 3 else None, p) for c in calls for i in c for p in i[-1]]
        assert len(flat) == 40
        if data is frames:
            assert flat[7] == (b"s.2", None, b"ab7")
        else:
            assert flat[7] == ((b"$G", b"s.2"), None, b"h7")
    assert len(calls) == 1  # the last read: one run
    # the same lines, other sizes and a payload holding CRLF: as the general loop reads them
    odd = b"PUB s.1 3\r\nabc\r\nPUB s.2 4\r\na\r\nb\r\nPUB s.3 3\r\nxyz\r\nPUB s.4 2\r\nhi\r\n"
    ops2, _ = parse(frames, odd)
    assert ops2[-4:] == [("PUB", b"s.1", None, b"abc"), ("PUB", b"s.2", None, b"a\r\nb"),
                         ("PUB", b"s.3", None, b"xyz"), ("PUB", b"s.4", None, b"hi")]


@pytest.mark.parametrize("tail", [
    b"", b"PUB b 300\r\n", b"PUB a 300\r\n", b"PUB a 301\r\n", b"PING\r\n",
], ids=["run", "other_line", "same_line", "other_size", "ping"])
@pytest.mark.parametrize("spoil", ["none", "line", "cr", "lf", "size"])
def test_runs_of_one_big_line_check_every_frame(tail, spoil):
    """A publisher streaming one subject with big payloads: the frames after
    the second are checked a byte column at a time; any frame that differs
    (its line, its CR or LF, a payload of another size) is read as the general
    loop reads it, wherever it stands in the run."""
    frame = b"PUB a 300\r\n" + b"x" * 300 + b"\r\n"
    bad = {"none": frame, "line": frame.replace(b"PUB a", b"PUB b"),
           "cr": frame[:-2] + b"\n\n", "lf": frame[:-1] + b"\r",
           "size": frame.replace(b"x\r\n", b"\r\n")}[spoil]
    for at in range(1, 7):
        stream = frame * at + bad + frame * (6 - at) + tail + b"x" * 300 + b"\r\n"
        assert _same_as_general_loop(stream), (at, spoil)


@pytest.mark.parametrize("spoil", ["none", "unseen", "size", "cr", "lf", "ping", "alike", "torn"])
def test_known_lines_with_big_payloads_are_one_run_and_exact(spoil):
    """Real traffic with big payloads (a publisher cycling over subjects): a
    read whose lines were all seen before is cut by the regex engine into one
    run; a frame that differs anywhere in it (a line not seen, another size,
    its CR or LF, another verb, a repeated neighbour) is read as the general
    loop reads it."""
    def frame(i, size=300):
        return b"PUB s.%d %d\r\n" % (i % 7, size) + bytes([97 + i % 26]) * size + b"\r\n"

    seen = b"".join(frame(i) for i in range(14))
    bad = {"none": frame(3), "unseen": frame(3).replace(b"s.3", b"s.x"),
           "size": frame(3, 299), "cr": frame(3)[:-2] + b"\n\n", "lf": frame(3)[:-1] + b"\r",
           "ping": b"PING\r\n" + frame(3), "alike": frame(2), "torn": frame(3)[:150]}[spoil]
    for at in range(0, 9, 2):
        stream = b"".join(frame(i) for i in range(at)) + bad + \
            b"".join(frame(i) for i in range(at + 3, 12))
        assert _same_as_general_loop(seen, stream), (at, spoil)
    for cut in (1, 12, 150, 301, 303, 304):  # a read ending inside its last frame
        torn = seen + frame(5)
        assert _same_as_general_loop(seen, torn[:len(seen) + cut], torn[len(seen) + cut:]), cut
    calls = []
    ops = make_op_table({b"PUB": (PUB, lambda h, items: calls.append(items))})
    parser = Parser(Recorder(), ops)
    parser.feed(seen)
    calls.clear()
    parser.feed(seen)
    assert len(calls) == 1 and [i[0] for i in calls[0]] == [b"s.%d" % (i % 7) for i in range(14)]


def test_big_payload_across_reads_is_cut_from_the_reads():
    """A big PUB left incomplete by a read is joined from the reads when
    complete (Parser._big_pub): for every cut around its payload's end (the
    CR or LF alone in a read) and cuts into three reads, the ops are those of
    one feed; a missing CRLF is still the general loop's error."""
    payload = bytes(range(256)) * 40  # 10 KiB: over _BIG_KEEP
    frame = b"PUB big r %d\r\n" % len(payload) + payload + b"\r\n"
    stream = b"PING\r\n" + frame + b"PUB a 2\r\nhi\r\n" + frame + b"PING\r\n"
    whole = parse(stream)[0]
    assert whole[1] == ("PUB", b"big", b"r", payload)
    ends = [6 + len(frame) + d for d in range(-4, 4)]
    cuts = [(a,) for a in range(1, 40)] + [(a,) for a in ends] + \
        [(a, b) for a in (10, 30, 5000) for b in ends] + [(6 + len(frame) + 20, len(stream) - 3)]
    for cut in cuts:
        bounds = (0, *cut, len(stream))
        ops, parser = parse(*[stream[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)])
        assert ops == whole and parser.buffered == 0, cut
    bad = b"PUB big %d\r\n" % len(payload) + payload + b"\rX"
    for cut in (100, len(bad) - 1, len(bad) - 2):
        with pytest.raises(ProtocolError) as info:
            parse(bad[:cut], bad[cut:] + b"PING\r\n")
        assert info.value.err == E.UNKNOWN_OP


def test_known_big_run_ends_where_its_frames_end():
    """The one-pass cut of a known-line run (parser._known_big_run) ends
    after its last whole frame, whatever follows (nothing, a torn frame,
    another verb), also for empty payloads (sizes a patched _BIG lets in)."""
    from pluggy_nats.protocol.parser import _known_big_run

    for size in (0, 3, 300):
        whole = b"".join(b"PUB s.%d %d\r\n%s\r\n" % (i % 4, size, b"x" * size) for i in range(8))
        known = {b"PUB s.%d %d\r" % (i, size): (b"s.%d" % i, None, size) for i in range(4)}
        for tail in (b"", b"PUB s.1 %d\r\nxy" % size, b"PING\r\n", b"PUB s.2 %d\r\n" % size):
            items, end = _known_big_run(whole + tail, 0, known, True)
            assert end == len(whole) and len(items) == 8, (size, tail)
            assert items[5] == (b"s.1", None, (b"x" * size,))


def test_big_tells_whether_the_last_run_had_big_payloads():
    """The connection reads 256 KiB at once while ``big`` is set (a stream of
    payloads of at least 256 bytes), 64 KiB otherwise: the flag follows
    the runs, both ways."""
    big = b"PUB foo 1024\r\n" + b"x" * 1024 + b"\r\n"
    small = b"PUB foo 16\r\n" + b"y" * 16 + b"\r\n"
    ops, parser = parse()
    assert parser.big is False
    parser.feed(big * 8)
    assert parser.big is True
    parser.feed(small * 8)
    assert parser.big is False
    parser.feed(big * 8)
    assert parser.big is True
    assert len(parser.handler.ops) == 24
