"""Differential test: the same raw protocol scripts against the Go nats-server and
ours; the replies (with server-specific INFO fields blanked) must be identical,
including whether and when the connection is closed."""

import pytest

from pluggy_nats.testing.fuzz import normalize_reply

pytestmark = pytest.mark.interop

CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'

# name -> bytes sent right after the server's INFO
SCRIPTS = {
    "ping": b"PING\r\n",
    "ping_lower": b"ping\r\nPiNg\r\n",
    "pub_sub": CONNECT + b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
    "pub_reply": CONNECT + b"SUB foo 1\r\nPUB foo bar 2\r\nhi\r\nPING\r\n",
    "tabs_and_spaces": CONNECT + b"SUB  foo\t1\r\nPUB\tfoo  2\r\nhi\r\nPING\r\n",
    "bare_lf": CONNECT + b"SUB foo 1\nPUB foo 1\nx\r\nPING\r\n",
    "zero_payload": CONNECT + b"SUB foo 1\r\nPUB foo 0\r\n\r\nPING\r\n",
    "wildcards": CONNECT + b"SUB a.* 1\r\nSUB a.> 2\r\nSUB * 3\r\n"
                           b"PUB a.b 1\r\nx\r\nPUB a.b.c 1\r\ny\r\nPING\r\n",
    "queue": CONNECT + b"SUB q g 1\r\nPUB q 1\r\nx\r\nPING\r\n",
    "duplicate_sid": CONNECT + b"SUB foo 1\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n",
    "unsub": CONNECT + b"SUB foo 1\r\nUNSUB 1\r\nPUB foo 1\r\nx\r\nPING\r\n",
    "unsub_unknown": CONNECT + b"UNSUB 99\r\nPING\r\n",
    "auto_unsub": CONNECT + b"SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\n"
                            b"PUB foo 1\r\nc\r\nPING\r\n",
    "hpub": CONNECT + b"SUB h 1\r\nHPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
    "hpub_to_non_header_client": b'CONNECT {"verbose":false,"headers":false}\r\nSUB x 1\r\n'
                                 b"HPUB x 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
    "no_responders": CONNECT + b"SUB _INBOX.x 7\r\nPUB req _INBOX.x 2\r\nhi\r\nPING\r\n",
    "no_responders_needs_headers": b'CONNECT {"verbose":false,"no_responders":true}\r\nPING\r\n',
    "echo_off": b'CONNECT {"verbose":false,"echo":false}\r\nSUB x 1\r\nPUB x 1\r\na\r\nPING\r\n',
    "verbose_default": b"SUB x 1\r\nPUB x 1\r\na\r\nPING\r\n",
    "verbose": b'CONNECT {"verbose":true}\r\nSUB x 1\r\nPUB x 1\r\na\r\nUNSUB 1\r\nPING\r\n',
    "pedantic": b'CONNECT {"verbose":true,"pedantic":true}\r\nPUB foo.* 1\r\nx\r\n'
                b"SUB a..b 1\r\nPING\r\n",
    "not_pedantic": CONNECT + b"PUB foo.. 1\r\nx\r\nPUB foo.* 1\r\nx\r\nPING\r\n",
    "invalid_subject": CONNECT + b"SUB foo..bar 1\r\nPING\r\n",
    "protocol_2": b'CONNECT {"verbose":false,"protocol":2}\r\nPING\r\n',
    "protocol_1": b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\nPING\r\n',
    "connect_twice": b'CONNECT {"verbose":false}\r\nCONNECT {"verbose":true}\r\nPING\r\n',
    "unknown_op": b"FOO\r\n",
    "empty_line": b"\r\nPING\r\n",
    "msg_from_client": CONNECT + b"MSG foo 1 1\r\nx\r\n",
    "payload_too_long": CONNECT + b"PUB foo 2\r\nabc\r\n",
    "max_payload": CONNECT + b"PUB foo 2000000\r\n",
    "control_line": CONNECT + b"PUB " + b"a" * 5000 + b" 1\r\n",
    "pub_missing_size": CONNECT + b"PUB foo\r\n",
    "pub_too_many_args": CONNECT + b"PUB foo a b 2\r\nab\r\n",
    "pub_negative_size": CONNECT + b"PUB foo -1\r\n",
    "sub_missing_sid": CONNECT + b"SUB foo\r\n",
    "sub_too_many_args": CONNECT + b"SUB fo o 1 2\r\n",
    "hpub_hdr_larger": CONNECT + b"HPUB foo 10 5\r\n",
    "bad_connect_json": b"CONNECT {bad json\r\n",
    "err_from_client": CONNECT + b"-ERR 'x'\r\n",
    "info_from_client": CONNECT + b"INFO {}\r\nPING\r\n",
    "ok_and_pong_from_client": CONNECT + b"+OK\r\nPONG\r\nPING\r\n",
    # issue 18: fields are separated by space and tab only (finding 6)
    "formfeed_inside_subject": CONNECT + b"SUB a\x0cq 1\r\nPUB a\x0cq 1\r\nx\r\nPING\r\n",
    "vtab_inside_queue": CONNECT + b"SUB a q\x0bq 1\r\nPUB a 1\r\nx\r\nPING\r\n",
    "vtab_after_verb": b"UNSUB\x0b1\r\n",
    "space_before_verb": b" PING\r\n",
    "cr_before_verb": b"\rPING\r\n",
    "cr_inside_sub": CONNECT + b"SUB a\rq 1\r\nPUB a 1\r\nx\r\nPING\r\n",
    "cr_inside_sub_bare_lf": CONNECT + b"SUB a\rb 12\nPUB a 1\r\nx\r\nPING\r\n",
    "ping_glued": CONNECT + b"PINGX\r\nPONGY\r\n+OKZ\r\nPING\r\n",
    "connect_glued": b'CONNECT{"verbose":false}\r\nPING\r\n',
    "verb_without_arguments": CONNECT + b"SUB\r\n",
    "err_without_space": CONNECT + b"-ERR\r\n",
    # issue 18: other garbage Go closes for (finding 7)
    "pub_cr_before_crlf": CONNECT + b"PUB a 2 \r\r\nhi\r\nPING\r\n",
    "info_not_json": CONNECT + b"INFO x\r\nPING\r\n",
    "info_wrong_type": CONNECT + b'INFO {"port":"x"}\r\nPING\r\n',
    "connect_protocol_bool": b'CONNECT {"protocol": true}\r\nPING\r\n',
    "connect_protocol_float": b'CONNECT {"protocol": 1.0}\r\nPING\r\n',
    "connect_verbose_string": b'CONNECT {"verbose": "false"}\r\nPING\r\n',
    "connect_nan": b'CONNECT {"protocol": NaN}\r\nPING\r\n',
    "connect_deep_json": b"CONNECT " + b"[" * 1000 + b"\r\nPING\r\n",
    "size_ten_digits": CONNECT + b"PUB a 0000000001\r\nx\r\nPING\r\n",
    "hpub_without_headers": b'CONNECT {"verbose":false}\r\nHPUB a 12 14\r\n',
    # issue 18: valid input Go takes (finding 8) and CONNECT decoding as Go's
    "connect_not_utf8": b'CONNECT {"verbose":false,"lang":"caf\xe9"}\r\nPING\r\n',
    "connect_lone_surrogate": b'CONNECT {"verbose":false,"name":"\\ud800"}\r\nPING\r\n',
    "connect_null": b"CONNECT null\r\nPING\r\n",
    "connect_keys_any_case": b'CONNECT {"VERBOSE":false}\r\nPING\r\n',
    "second_connect_keeps_fields": b'CONNECT {"verbose":false,"protocol":1}\r\nCONNECT {}\r\n'
                                   b"PING\r\n",
}

def _run_script(raw_client, server, script):
    c = raw_client(server)
    c.send(script)
    out = c.read_all(timeout=0.4)
    return normalize_reply(out) + (b"<closed>" if c.closed else b"")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_interop_same_replies_as_go(go_and_ours, raw_client, name):
    go, ours = go_and_ours
    expected = _run_script(raw_client, go, SCRIPTS[name])
    got = _run_script(raw_client, ours, SCRIPTS[name])
    assert got == expected, "script %s:\n go: %r\n us: %r" % (name, expected, got)


def test_interop_info_has_the_fields_clients_read(go_and_ours, raw_client):
    go, ours = go_and_ours
    go_info = raw_client(go).info
    our_info = raw_client(ours).info
    for key in ("server_id", "server_name", "version", "proto", "go", "host", "port",
                "headers", "max_payload", "client_id", "client_ip"):
        assert key in our_info, key
        assert type(our_info[key]) is type(go_info[key]), key
