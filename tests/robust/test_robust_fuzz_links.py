"""Fuzzing the gateway and leafnode verbs (issue 18 for issues 11 and 12): a
fake peer completes the handshake, then sends seeded inputs built from the
kind's verbs (GATEWAY.md, LEAFNODE.md). No exception escapes, what comes back
is well-formed link protocol, clients of the same server keep being served,
and the log rule holds (a link's connect and disconnect lines are its price,
as in nats-server)."""

import itertools
import json

from hypothesis import strategies as st

from pluggy_nats.testing import fuzz
from pluggy_nats.testing.leaf import hub_config

EXAMPLES = 120
LINK_LIFECYCLE_LOG = 700
_ids = itertools.count()

_ACC = st.sampled_from([b"$G", b"$SYS", b"A", b"", b"\xff"])
_QUEUE = st.sampled_from([b"q", b"g1", b"*"])

GATEWAY_VERBS = {
    b"RS+": st.one_of(fuzz.fields(_ACC, fuzz.subjects()),
                      fuzz.fields(_ACC, fuzz.subjects(), _QUEUE, fuzz.numbers())),
    b"RS-": st.one_of(fuzz.fields(_ACC, fuzz.subjects()),
                      fuzz.fields(_ACC, fuzz.subjects(), _QUEUE)),
    b"A+": fuzz.fields(_ACC),
    b"A-": fuzz.fields(_ACC),
    b"RMSG": fuzz.payload_frame(1, st.one_of(
        fuzz.fields(_ACC, fuzz.subjects()),
        fuzz.fields(_ACC, fuzz.subjects(), fuzz.subjects()),
        fuzz.fields(_ACC, fuzz.subjects(), st.just(b"|"), _QUEUE))),
    b"HMSG": fuzz.payload_frame(2, fuzz.fields(_ACC, fuzz.subjects())),
    b"INFO": fuzz.json_args(),
    b"PING": None,
    b"PONG": None,
    b"-ERR": fuzz.fields(st.just(b"'x'")),
}

LEAF_VERBS = {
    b"LS+": st.one_of(fuzz.fields(fuzz.subjects()),
                      fuzz.fields(fuzz.subjects(), _QUEUE, fuzz.numbers())),
    b"LS-": st.one_of(fuzz.fields(fuzz.subjects()), fuzz.fields(fuzz.subjects(), _QUEUE)),
    b"LMSG": fuzz.payload_frame(1, st.one_of(
        fuzz.fields(fuzz.subjects()),
        fuzz.fields(fuzz.subjects(), fuzz.subjects()),
        fuzz.fields(fuzz.subjects(), st.just(b"+"), fuzz.subjects(), _QUEUE))),
    b"HMSG": fuzz.payload_frame(2, fuzz.fields(fuzz.subjects())),
    b"INFO": fuzz.json_args(),
    b"CONNECT": fuzz.json_args(),
    b"PING": None,
    b"PONG": None,
}


def _gateway_handshake():
    """A fresh fake cluster B for every input (CONNECT, then its INFO)."""
    peer = "NFUZZGW%06d" % next(_ids)
    connect = {"echo": False, "verbose": False, "pedantic": False, "tls_required": False,
               "headers": False, "name": peer, "cluster": "", "gateway": "B"}
    info = {"server_id": peer, "server_name": peer, "version": "2.15.1", "proto": 3,
            "host": "127.0.0.1", "port": 1, "headers": True, "max_payload": 1048576,
            "gateway": "B", "gateway_nrp": True, "gateway_iom": True}
    return b"CONNECT %s\r\nINFO %s\r\n" % (json.dumps(connect).encode(),
                                           json.dumps(info).encode())


def _leaf_handshake():
    peer = "NFUZZLF%06d" % next(_ids)
    connect = {"version": "2.15.1", "server_id": peer, "name": peer, "cluster": "fz",
               "headers": True, "remote_account": "$G", "protocol": 3}
    return b"CONNECT %s\r\n" % json.dumps(connect).encode()


def test_fuzz_gateway_protocol(make_server):
    server = make_server(config='gateway { name: "A", listen: "127.0.0.1:-1" }\n')
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.gateway_port,
                             preamble=_gateway_handshake, sentinel_port=server.port,
                             reply_ops=fuzz.LINK_REPLY_OPS)
    stats = fuzz.run(target, fuzz.protocol(GATEWAY_VERBS), EXAMPLES, seed_value=7222,
                     explicit=[b"A- $G\r\n", b"RS+ $G foo..bar\r\n", b"RMSG $G foo 2\r\nhiXX\r\n"],
                     log_per_connection=LINK_LIFECYCLE_LOG)
    assert stats.examples == 3 + fuzz.examples(EXAMPLES)


def test_fuzz_leafnode_protocol(make_server):
    server = make_server(config=hub_config())
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.leaf_port,
                             preamble=_leaf_handshake, sentinel_port=server.port,
                             reply_ops=fuzz.LINK_REPLY_OPS)
    stats = fuzz.run(target, fuzz.protocol(LEAF_VERBS), EXAMPLES, seed_value=7422,
                     explicit=[b"LS+ foo..bar\r\n", b"LMSG foo x\r\nhi\r\n", b"LS+ a q\r\n"],
                     log_per_connection=LINK_LIFECYCLE_LOG)
    assert stats.examples == 3 + fuzz.examples(EXAMPLES)
