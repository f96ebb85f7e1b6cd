"""The leaf protocol on the wire, our hub beside the Go hub: a raw leaf sees
the same second INFO fields, the same LS+/LS- (queue weights as member
counts), LMSG with the queue groups named, HMSG for headers, and the hub
honouring CONNECT deny_pub."""

import json
import re

import pytest

from pluggy_nats.testing.raw import RawClient

pytestmark = pytest.mark.interop

CONNECT = ('CONNECT {"version":"2.15.1","server_id":"NRAW","name":"raw","cluster":"raw",'
           '"headers":true,"remote_account":"$G","protocol":3%s}\r\n')


class RawLeaf:
    def __init__(self, hub, extra=""):
        self.c = RawClient("127.0.0.1", hub.leaf_port)
        self.first = self.c.info
        self.c.send(CONNECT % extra)
        self.second = json.loads(self.c.expect(rb"INFO (\{.*?\}) ?\r\n").group(1))
        self.c.send("PING\r\n")  # our PONG comes back after the hub's initial LS+
        self.lines = []

    def read(self, timeout=0.5):
        """Protocol lines since the last read (PINGs answered, $ subjects left out)."""
        data = self.c.read_all(timeout)
        out = []
        for line in data.split(b"\r\n"):
            if line == b"PING":
                self.c.send("PONG\r\n")
            elif line and line != b"PONG" and not line.startswith(b"LS+ $") \
                    and not line.startswith(b"LS- $"):
                out.append(line.decode())
        return out


def client(hub):
    c = RawClient("127.0.0.1", hub.port)
    c.send('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nPING\r\n')
    c.expect(rb".*PONG\r\n")
    return c


def script(hub):
    """One scenario, returning everything a raw leaf saw, step by step."""
    seen = {}
    leaf = RawLeaf(hub, ',"deny_pub":["secret.>"]')
    seen["second_info"] = sorted(k for k in leaf.second if k not in ("git_commit",))
    seen["second_info_values"] = (leaf.second["connect_info"], leaf.second["remote_account"],
                                  bool(leaf.first.get("client_id")))
    leaf.read()
    a, b = client(hub), client(hub)
    a.send("SUB work q 1\r\nPING\r\n")
    a.expect(rb".*?PONG\r\n")
    seen["one member"] = leaf.read()
    b.send("SUB work q 2\r\nPING\r\n")
    b.expect(rb".*?PONG\r\n")
    seen["two members"] = leaf.read()
    b.send("UNSUB 2\r\nPING\r\n")
    b.expect(rb".*?PONG\r\n")
    seen["one left"] = leaf.read()
    a.send("UNSUB 1\r\nPING\r\n")
    a.expect(rb".*?PONG\r\n")
    seen["none left"] = leaf.read()
    # the leaf's interest: a queue member with no member on the hub, and a wildcard
    leaf.c.send("LS+ work q 1\r\nLS+ >\r\nPING\r\n")
    leaf.read()
    a.send("PUB work 2\r\nhi\r\nPUB secret.x 1\r\ns\r\nPUB open.x 1\r\no\r\n"
           "HPUB open.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB reply.x _INBOX.r 2\r\nrr\r\n"
           "PING\r\n")
    a.expect(rb".*?PONG\r\n")
    seen["messages"] = sorted(leaf.read())
    for c in (a, b, leaf.c):
        c.close()
    return seen


def test_leaf_wire_like_go(make_hub):
    go, ours = make_hub(go=True, name="gohub"), make_hub(name="ourhub")
    want, got = script(go), script(ours)
    assert want["messages"], "the Go hub delivered nothing: the script is wrong"
    for step in want:
        if step == "second_info":
            missing = set(want[step]) - set(got[step]) - {"api_lvl"}
            assert not missing, missing
            continue
        assert got[step] == want[step], (step, got[step], want[step])
    # the facts, spelled out
    assert want["two members"] == ["LS+ work q 2"]
    assert any(re.match(r"LMSG work \| q 2$", line) for line in want["messages"])
    assert "HMSG open.h 12 14" in want["messages"]
    assert not any("secret" in line for line in want["messages"])  # deny_pub
