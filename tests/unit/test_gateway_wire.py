"""The gateway's handshake words and reply mapping, against what nats-server
2.15.1 sends (GATEWAY.md sections 3, 4, 7: captured on the wire)."""

import json

import pytest
from pluggy_nats_plugins.gateway import wire


@pytest.mark.parametrize("name, expected", [("A", "NUmM6c"), ("B", "b2oh2L"), ("C", "jZ6RvV")])
def test_hash6_vectors(name, expected):
    assert wire.hash6(name) == expected


def test_old_hash_vector():
    assert wire.old_reply_prefix("A") == b"$GR.559a."


def test_reply_prefix_is_cluster_then_server_hash():
    prefix = wire.reply_prefix("A", "NSERVER")
    assert prefix == b"_GR_.NUmM6c." + wire.hash6("NSERVER").encode() + b"."
    assert len(prefix) == wire.GW_SUBJECT_OFFSET


def test_parse_routed_reply_new_and_old():
    subject = b"_GR_.NUmM6c.LTinJZ._INBOX.oM4g.x"
    assert wire.parse_routed_reply(subject) == (b"NUmM6c", b"LTinJZ", b"_INBOX.oM4g.x", False)
    assert wire.parse_routed_reply(b"$GR.559a._INBOX.a") == (b"559a", None, b"_INBOX.a", True)
    assert wire.parse_routed_reply(b"_GR_.NUmM6c.LTinJZ.") is None  # nothing after the prefix
    assert wire.parse_routed_reply(b"foo.bar") is None
    assert wire.has_reply_prefix(b"_GR_.x") and not wire.has_reply_prefix(b"_GR_.")


def test_cmd_info_payload_is_base64_as_go_marshals_bytes():
    info = wire.cmd_info("A", wire.GATEWAY_CMD_ALL_SUBS_START, "APP")
    assert info["gateway_cmd_payload"] == "QVBQ"
    assert wire.cmd_info("A", 3, "$G")["gateway_cmd_payload"] == "JEc="
    assert wire.cmd_info("A", 3, "SYS")["gateway_cmd_payload"] == "U1lT"
    # Go's Info marshals its non-omitempty fields even when empty, in order
    assert list(info) == ["server_id", "server_name", "version", "proto", "go", "host", "port",
                          "headers", "max_payload", "gateway", "gateway_cmd",
                          "gateway_cmd_payload"]
    assert wire.cmd_account(info) == "APP"
    assert wire.cmd_account({"gateway_cmd": 2}) is None
    assert wire.cmd_account({"gateway_cmd_payload": "not base64!"}) is None


def test_server_info_fields_as_observed():
    info = wire.server_info("NID", "xA1", "2.15.1", "127.0.0.1", 17222, 1048576, "A",
                            ["127.0.0.1:17222"], "127.0.0.1:17222", auth_required=True)
    assert list(info) == ["server_id", "server_name", "version", "proto", "go", "host", "port",
                          "headers", "auth_required", "max_payload", "gateway", "gateway_urls",
                          "gateway_url", "gateway_nrp", "gateway_iom"]
    assert info["proto"] == 3 and info["headers"] is True and info["go"] == ""
    assert info["gateway_nrp"] is True and info["gateway_iom"] is True
    line = wire.encode_info(info)
    assert line.startswith(b"INFO {") and line.endswith(b"}\r\n")
    assert json.loads(line[5:]) == info


def test_gossip_info():
    info = wire.gossip_info("NID", "C", ["127.0.0.1:3"])
    assert info["gateway"] == "C" and info["gateway_cmd"] == 1
    assert info["gateway_urls"] == ["127.0.0.1:3"] and info["server_id"] == "NID"


def test_connect_fields_as_observed():
    fields = wire.connect("NID", "B", "gw", "secret")
    assert list(fields) == ["echo", "verbose", "pedantic", "user", "pass", "tls_required",
                            "headers", "name", "cluster", "gateway"]
    assert fields["headers"] is False and fields["cluster"] == "" and fields["gateway"] == "B"
    assert "user" not in wire.connect("NID", "B")
    assert wire.encode_connect(fields).startswith(b'CONNECT {"echo":false,')


def test_dialer_checks_with_go_texts():
    with pytest.raises(wire.HandshakeError) as exc:
        wire.check_dialer_info({"server_id": "x"}, "B", "A")
    assert exc.value.err == 'Attempt to connect to gateway "A" using wrong port'
    with pytest.raises(wire.HandshakeError) as exc:
        wire.check_dialer_info({"gateway": "X"}, "B", "A")
    assert exc.value.err == 'Connection from "B" rejected, wanted to connect to "A", this is "X"'
    wire.check_dialer_info({"gateway": "A"}, "B", "A")


def test_acceptor_checks_with_go_texts():
    check = wire.check_acceptor_connect
    with pytest.raises(wire.HandshakeError) as exc:
        check({"verbose": False}, "A", set(), False, None, None)
    assert exc.value.err == "attempted to connect to gateway port"
    with pytest.raises(wire.HandshakeError) as exc:
        check({"gateway": "Z"}, "A", {"B"}, True, None, None)
    assert exc.value.err == 'Connection to gateway "A" rejected'
    with pytest.raises(wire.HandshakeError) as exc:
        check({"gateway": "B", "user": "gw", "pass": "bad"}, "A", {"B"}, False, "gw", "ok")
    assert exc.value.reason == "AUTHENTICATION_VIOLATION"
    assert check({"gateway": "B", "user": "gw", "pass": "ok"}, "A", {"B"}, True, "gw",
                 "ok") == "B"
