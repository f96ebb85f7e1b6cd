"""Fuzzing the client protocol parser (issue 18): seeded hypothesis inputs over
real sockets to a real server; no exception escapes, replies are well-formed
protocol, the server keeps serving, the log rule holds."""

from hypothesis import strategies as st

from pluggy_nats.testing import fuzz

# The client protocol's verbs and their arguments (PROTOCOL.md 1.1), plus MSG,
# which a client may not send.
_PUB_HEAD = st.one_of(fuzz.fields(fuzz.subjects()), fuzz.fields(fuzz.subjects(), fuzz.subjects()))
CLIENT_VERBS = {
    b"CONNECT": fuzz.json_args(),
    b"INFO": fuzz.json_args(),
    b"PUB": fuzz.payload_frame(1, _PUB_HEAD),
    b"HPUB": fuzz.payload_frame(2, _PUB_HEAD),
    b"SUB": st.one_of(fuzz.fields(fuzz.subjects(), fuzz.numbers()),
                      fuzz.fields(fuzz.subjects(), fuzz.tokens(), fuzz.numbers())),
    b"UNSUB": st.one_of(fuzz.fields(fuzz.numbers()), fuzz.fields(fuzz.numbers(), fuzz.numbers())),
    b"PING": None,
    b"PONG": None,
    b"+OK": None,
    b"-ERR": fuzz.fields(st.sampled_from([b"'x'", b"", b"\xff"])),
    b"MSG": fuzz.payload_frame(1, fuzz.fields(fuzz.subjects(), fuzz.numbers())),
}

# Most inputs start by connecting as a client that gets every reply.
_CONNECT = b'CONNECT {"verbose":true,"pedantic":true,"headers":true,"protocol":1}\r\n'
CLIENT_INPUTS = st.tuples(st.sampled_from([_CONNECT, _CONNECT, b""]),
                          fuzz.protocol(CLIENT_VERBS)).map(b"".join)

EXAMPLES = 200

# The reproducers of issue 18 (and a few cousins), sent before the drawn inputs.
KNOWN = [
    b"CONNECT " + b"[" * 1000 + b"\r\n",
    b'CONNECT {"a":' * 700 + b"\r\n",
    b"SUB a\x0cq 1\r\n", b"UNSUB\x0b1\r\n", b" PING\r\n", b"\rPING\r\n",
    _CONNECT + b"PUB a 2 \r\r\nhi\r\n", _CONNECT + b"INFO x\r\n", b'CONNECT {"protocol": true}\r\n',
    b'CONNECT {"verbose":false,"lang":"caf\xe9"}\r\n', b'CONNECT {"name":"\\udc00"}\r\nPING\r\n',
]


def test_fuzz_client_protocol(make_server):
    server = make_server()
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.port,
                             sentinel_port=server.port, reply_ops=fuzz.CLIENT_REPLY_OPS)
    stats = fuzz.run(target, CLIENT_INPUTS, EXAMPLES, explicit=KNOWN)
    assert stats.examples == len(KNOWN) + fuzz.examples(EXAMPLES)


def test_fuzz_client_protocol_with_auth(make_server):
    """Before authentication (a password required), the same inputs."""
    server = make_server("--user", "u", "--pass", "p")
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.port,
                             sentinel_port=server.port, reply_ops=fuzz.CLIENT_REPLY_OPS,
                             sentinel_preamble=b'CONNECT {"user":"u","pass":"p"}\r\n')
    stats = fuzz.run(target, fuzz.protocol(CLIENT_VERBS), EXAMPLES // 2, seed_value=1818,
                     explicit=KNOWN)
    assert stats.examples == len(KNOWN) + fuzz.examples(EXAMPLES // 2)
