"""Fuzzing the client protocol parser (issue 18): seeded hypothesis inputs over
real sockets to a real server; no exception escapes, replies are well-formed
protocol, the server keeps serving, the log rule holds."""

from pluggy_nats.testing import fuzz

EXAMPLES = 200


def test_fuzz_client_protocol(make_server):
    server = make_server()
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.port,
                             sentinel_port=server.port, reply_ops=fuzz.CLIENT_REPLY_OPS)
    stats = fuzz.run(target, fuzz.client_inputs(), EXAMPLES, explicit=fuzz.CLIENT_REPRODUCERS)
    assert stats.examples == len(fuzz.CLIENT_REPRODUCERS) + fuzz.examples(EXAMPLES)


def test_fuzz_client_protocol_with_auth(make_server):
    """Before authentication (a password required), the same inputs."""
    server = make_server("--user", "u", "--pass", "p")
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.port,
                             sentinel_port=server.port, reply_ops=fuzz.CLIENT_REPLY_OPS,
                             sentinel_preamble=b'CONNECT {"user":"u","pass":"p"}\r\n')
    stats = fuzz.run(target, fuzz.protocol(fuzz.CLIENT_VERBS), EXAMPLES // 2, seed_value=1818,
                     explicit=fuzz.CLIENT_REPRODUCERS)
    assert stats.examples == len(fuzz.CLIENT_REPRODUCERS) + fuzz.examples(EXAMPLES // 2)
