"""Fuzzing the route protocol parser (issue 18): a fake peer completes the
route handshake, then sends seeded hypothesis inputs built from the route verbs
(PROTOCOL.md 1.2). No exception escapes, replies are well-formed, clients on
the same server keep being served, the log rule holds."""

import itertools
import json

from hypothesis import strategies as st

from pluggy_nats.testing import fuzz

_ACC = st.sampled_from([b"$G", b"$SYS", b"A", b"", b"\xff"])
_QUEUE = st.sampled_from([b"q", b"g1", b"*"])
_MSG_HEAD = st.one_of(
    fuzz.fields(_ACC, fuzz.subjects()),
    fuzz.fields(_ACC, fuzz.subjects(), fuzz.subjects()),
    fuzz.fields(_ACC, fuzz.subjects(), st.just(b"+"), fuzz.subjects(), _QUEUE),
    fuzz.fields(_ACC, fuzz.subjects(), st.just(b"|"), _QUEUE, _QUEUE),
)
ROUTE_VERBS = {
    b"RS+": st.one_of(fuzz.fields(_ACC, fuzz.subjects()),
                      fuzz.fields(_ACC, fuzz.subjects(), _QUEUE, fuzz.numbers())),
    b"RS-": st.one_of(fuzz.fields(_ACC, fuzz.subjects()),
                      fuzz.fields(_ACC, fuzz.subjects(), _QUEUE)),
    b"LS+": st.one_of(fuzz.fields(_ACC, _ACC, fuzz.subjects()),
                      fuzz.fields(_ACC, _ACC, fuzz.subjects(), _QUEUE, fuzz.numbers())),
    b"LS-": fuzz.fields(_ACC, _ACC, fuzz.subjects()),
    b"RMSG": fuzz.payload_frame(1, _MSG_HEAD),
    b"HMSG": fuzz.payload_frame(2, _MSG_HEAD),
    b"LMSG": fuzz.payload_frame(2, st.tuples(_ACC, _MSG_HEAD).map(lambda t: [t[0]] + t[1])),
    b"A+": fuzz.fields(_ACC),
    b"PING": None,
    b"PONG": None,
    b"+OK": None,
    b"-ERR": fuzz.fields(st.just(b"'x'")),
    b"INFO": fuzz.json_args(),
    b"CONNECT": fuzz.json_args(),
}

EXAMPLES = 150
# route_connected + route_disconnected at info level, about 450 bytes
ROUTE_LIFECYCLE_LOG = 600
_ids = itertools.count()


def _handshake():
    """A route CONNECT and INFO from a fresh peer id for every input."""
    peer = "FUZZPEER%06d" % next(_ids)
    connect = {"verbose": False, "pedantic": False, "name": peer, "cluster": "c1",
               "headers": True, "lnoc": True}
    info = {"server_id": peer, "server_name": peer, "cluster": "c1", "headers": True}
    return b"CONNECT %s\r\nINFO %s\r\n" % (json.dumps(connect).encode(),
                                           json.dumps(info).encode())


def test_fuzz_route_protocol(make_server):
    server = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1")
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.cluster_port,
                             preamble=_handshake, sentinel_port=server.port,
                             reply_ops=fuzz.LINK_REPLY_OPS)
    stats = fuzz.run(target, fuzz.protocol(ROUTE_VERBS), EXAMPLES, seed_value=6222,
                     explicit=[b"INFO " + b"[" * 1000 + b"\r\n", b'INFO {"server_id": [1]}\r\n',
                               b"RS+ $G o.\r\nRS+ $G a..b q 1\r\nLS+ x $G >.a\r\nPING\r\n"],
                     log_per_connection=ROUTE_LIFECYCLE_LOG)
    assert stats.examples == 3 + fuzz.examples(EXAMPLES)
