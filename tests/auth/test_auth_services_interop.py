"""Differential tests: service imports, subject mappings and account limits,
the same configuration and the same protocol scripts against the Go nats-server
and ours; the frames each client receives must be the same.

Frames are parsed and normalized before comparing: the random part of a
``_R_.<prefix>.<id>`` reply and the measured ``rtt`` in ``Nats-Request-Info``
differ by nature (so do the header sizes they change); INFO and server PINGs
are left out.
"""

import re
import subprocess
import time

import pytest

from pluggy_nats.testing.launch import pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server

pytestmark = pytest.mark.interop

CONF = """
mappings {
  "m.lit": "m.dest"
  "w.*.*": "wd.$2.$1"
  "f.*.>": "fd.{{wildcard(1)}}.>"
  "p.*": "pp.{{partition(5,1)}}.{{wildcard(1)}}"
  "p2.*.*": "pp2.{{partition(7,2,1)}}"
  "s.*": "ss.{{split(1,-)}}"
  "sfl.*": "sfl.{{splitfromleft(1,2)}}"
  "sfr.*": "sfr.{{splitfromright(1,2)}}"
  "sll.*": "sll.{{slicefromleft(1,2)}}"
  "slr.*": "slr.{{slicefromright(1,2)}}"
  "pa.*.*": "pa.{{partition(3)}}.$2"
  "lf.*": "lf.{{left(1,2)}}"
  "rt.*": "rt.{{right(1,2)}}"
  "rnd.*": "rnd.{{random(1)}}.$1"
}
accounts {
  A: {
    users: [{user: a, password: a}]
    exports: [
      {service: "svc.>"}
      {service: "strm.>", response_type: stream}
      {service: "priv.x", accounts: [C]}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "svc.x"}, to: "local.x"}
      {service: {account: A, subject: "strm.x"}}
    ]
  }
  C: {
    users: [{user: c, password: c}]
    limits: {max_connections: 2, max_subscriptions: 2, max_payload: 10}
    exports: [{service: "chain.>"}]
    imports: [
      {service: {account: A, subject: "priv.x"}}
      {service: {account: A, subject: "svc.c"}, to: "chain.x"}
    ]
    mappings: {"in.*": "out.$1"}
  }
  D: {
    users: [{user: d, password: d}]
    imports: [{service: {account: C, subject: "chain.x"}}]
  }
}
authorization { users: [{user: g, password: g}] }
"""

CONNECT = (b'CONNECT {"user":"%s","pass":"%s","verbose":false,"pedantic":false,'
           b'"headers":true,"no_responders":true}\r\n')

_FRAME = re.compile(rb"(MSG|HMSG) (\S+) (\S+) (?:(\S+) )?(?:(\d+) )?(\d+)\r\n")
_REPLY = re.compile(rb"_R_\.[A-Za-z0-9]+\.[A-Za-z0-9]+")
_RTT = re.compile(rb'"rtt":\d+')


def frames(data):
    """The received bytes as a list of normalized frames (tuples/strings)."""
    out = []
    while data:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            out.append(("partial", data))
            break
        m = _FRAME.match(line + b"\r\n")
        if m:
            verb, subject, sid, reply, hlen, size = m.groups()
            if verb == b"MSG" and hlen is not None:  # MSG subject sid reply size
                reply, hlen = hlen, None
            if verb == b"HMSG" and hlen is None:  # HMSG subject sid hlen size
                hlen = reply
                reply = None
            size = int(size)
            body, rest = rest[:size], rest[size + 2:]
            hdr = body[:int(hlen)] if verb == b"HMSG" else b""
            payload = body[int(hlen):] if verb == b"HMSG" else body
            out.append((verb.decode(), subject.decode(), sid.decode(),
                        _REPLY.sub(b"_R_.X.Y", reply or b"").decode(),
                        _RTT.sub(b'"rtt":N', hdr).decode(), payload.decode()))
        elif not (line.startswith(b"INFO ") or line == b"PING"):
            out.append(line.decode())
        data = rest
    return out


def _reply_of(raw, index=0):
    """The real (unnormalized) reply subject of the index-th message in raw bytes."""
    return _REPLY.findall(raw)[index]


class Session:
    """Raw clients of one server, each logged in as a user."""

    def __init__(self, raw_client, server):
        self.raw_client = raw_client
        self.server = server
        self.clients = {}

    def login(self, name, user):
        c = self.raw_client(self.server)
        c.send(CONNECT % (user, user) + b"PING\r\n")
        c.expect(rb"(INFO [^\r]*\r\n)?PONG\r\n")
        self.clients[name] = c
        return c

    def send(self, name, data, quiet=0.4):
        """Send ``data`` from one client; return what every client received
        (raw bytes, by client name) within ``quiet`` seconds (one wait for
        all of them, not one each)."""
        self.clients[name].send(data)
        time.sleep(quiet)
        return {n: c.read_all(timeout=0.05) for n, c in self.clients.items()}


def _services_script(session):
    """The cross-account script; returns the normalized transcript."""
    log = []
    session.login("a", b"a")
    session.login("b", b"b")
    session.login("c", b"c")
    session.login("d", b"d")
    session.send("a", b"SUB svc.> 1\r\nSUB strm.> 2\r\nSUB priv.> 3\r\nPING\r\n")
    session.send("b", b"SUB inbox.> 9\r\nPING\r\n")
    session.send("c", b"SUB inbox.> 9\r\nPING\r\n")
    session.send("d", b"SUB inbox.> 9\r\nPING\r\n")

    def step(name, data):
        got = session.send(name, data)
        log.append((name, _REPLY.sub(b"_R_.X.Y", data),
                    {n: frames(raw) for n, raw in got.items()}))
        return got

    # singleton: two responses, one arrives
    got = step("b", b"HPUB local.x inbox.1 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nhi\r\n")
    rep = _reply_of(got["a"])
    step("a", b"PUB " + rep + b" 3\r\nyes\r\nPUB " + rep + b" 4\r\nyes2\r\n")
    # streamed: every response arrives, headers and all
    got = step("b", b"PUB strm.x inbox.2 2\r\nst\r\n")
    rep = _reply_of(got["a"])
    step("a", b"HPUB " + rep + b" 18 20\r\nNATS/1.0\r\nR: 1\r\n\r\nr1\r\n"
              b"PUB " + rep + b" 2\r\nr2\r\n")
    # a restricted export, imported by the account it names
    got = step("c", b"PUB priv.x inbox.3 1\r\np\r\n")
    step("a", b"PUB " + _reply_of(got["a"]) + b" 1\r\nq\r\n")
    # a chain: D imports chain.x from C, which imports it from A as svc.c
    got = step("d", b"PUB chain.x inbox.6 2\r\nch\r\n")
    step("a", b"PUB " + _reply_of(got["a"]) + b" 3\r\nans\r\n")
    # no responders: a subject nobody imported, then an import nobody serves
    step("b", b"PUB svc.x inbox.4 2\r\nhi\r\n")
    step("a", b"UNSUB 1\r\nPING\r\n")
    step("b", b"PUB local.x inbox.5 2\r\nhi\r\nPING\r\n")
    step("d", b"PUB chain.x inbox.7 2\r\nhi\r\nPING\r\n")  # ... across two hops
    return log


def test_auth_services_interop_same_frames(make_server, go_nats_server, raw_client):
    go = _services_script(Session(raw_client, go_nats_server(config=CONF)))
    ours = _services_script(Session(raw_client, make_server(config=CONF)))
    # the Go transcript is the reference; spot-check it says what we think
    assert go[0][2]["a"][0][:4] == ("HMSG", "svc.x", "1", "_R_.X.Y")
    assert "Nats-Request-Info" in go[0][2]["a"][0][4]
    assert go[1][2]["b"] == [("MSG", "inbox.1", "9", "", "", "yes")]
    assert len(go[3][2]["b"]) == 2
    assert len(ours) == len(go)
    for g, o in zip(go, ours, strict=True):  # step by step, for a readable diff
        assert o == g


def _mapping_script(session):
    session.login("g", b"g")
    session.login("c", b"c")
    session.send("g", b"SUB > 1\r\nPING\r\n")
    session.send("c", b"SUB > 1\r\nPING\r\n")
    subjects = [b"m.lit", b"w.a.b", b"f.x.y.z", b"s.a-b--c", b"s.-x-", b"sfl.abcde",
                b"sfr.abcde", b"sll.abcde", b"slr.abcde", b"sll.a", b"in.x", b"nomap",
                b"lf.abcdef", b"lf.a", b"rt.abcdef", b"rt.a", b"rnd.x"]
    subjects += [b"pa.%d.q%d" % (i, i) for i in range(20)]
    subjects += [b"p.k%d" % i for i in range(20)]
    subjects += [b"p2.%d.z%d" % (i, i * 7) for i in range(20)]
    pubs = b"".join(b"PUB %s 1\r\nx\r\n" % s for s in subjects) + b"PING\r\n"
    got = session.send("g", pubs)
    got_c = session.send("c", b"PUB in.x 1\r\ny\r\nPUB p.k1 1\r\nz\r\nPING\r\n")
    return frames(got["g"]), frames(got_c["c"])


def test_auth_mappings_interop_same_subjects(make_server, go_nats_server, raw_client):
    go = _mapping_script(Session(raw_client, go_nats_server(config=CONF)))
    ours = _mapping_script(Session(raw_client, make_server(config=CONF)))
    assert ("MSG", "wd.b.a", "1", "", "", "x") in go[0]  # the reference maps
    assert ("MSG", "out.x", "1", "", "", "y") in go[1]  # C's own mappings
    assert ours == go


def _limits_script(session):
    log = []
    session.login("c1", b"c")
    log.append(frames(session.send("c1", b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n"
                                         b"PUB a 10\r\n0123456789\r\nPING\r\n")["c1"]))
    session.login("c2", b"c")
    third = session.raw_client(session.server)
    third.send(CONNECT % (b"c", b"c") + b"PING\r\n")
    log.append(frames(third.expect_closed()))
    c1 = session.clients["c1"]
    c1.send(b"PUB a 11\r\n01234567890\r\n")
    log.append(frames(c1.expect_closed()))
    return log


def test_auth_limits_interop_same_errors(make_server, go_nats_server, raw_client):
    go = _limits_script(Session(raw_client, go_nats_server(config=CONF)))
    ours = _limits_script(Session(raw_client, make_server(config=CONF)))
    assert go[0][0] == "-ERR 'maximum subscriptions exceeded'"
    assert "-ERR 'maximum account active connections exceeded'" in go[1]
    assert go[2] == ["-ERR 'Maximum Payload Violation'"]
    assert ours == go


BAD_CONFIGS = [
    'accounts { A: { exports: [{service: "svc.>", accounts: [C]}] }, '
    'B: { imports: [{service: {account: A, subject: "svc.x"}}] }, C: {} }',
    'accounts { A: { exports: [{stream: "s.>", accounts: [C]}] }, '
    'B: { imports: [{stream: {account: A, subject: "s.x"}}] }, C: {} }',
    'accounts { A: { exports: [{service: "x"}], imports: [{service: {account: B, subject: '
    '"x"}}] }, B: { exports: [{service: "x"}], imports: [{service: {account: A, subject: '
    '"x"}}] } }',
    'accounts { A: { exports: [{service: "x", accounts: [Z]}] } }',
    'accounts { A: { exports: [{service: "x", response_type: bogus}] } }',
    'accounts { A: { limits: { max_foo: 1 } } }',
    'mappings { "a.*": "b.$2" }',
    'mappings { "a.*": "b.{{foo(1)}}" }',
    'mappings { "a.*": "b.{{split(1)}}" }',
    'mappings { "a.*": "b.{{wildcard()}}" }',
    'mappings { "a.*": "b.{{splitfromleft(1,2,3)}}" }',
    'mappings { "a": "b.{{wildcard(1)}}" }',
    'mappings { "a.*": "b.{{left(1)}}" }',
    'mappings { "a.*": "b.{{random()}}" }',
    'mappings { "a.*": "b.{{random(1,2)}}" }',
    'mappings { "a.*": "b.{{partition(x)}}" }',
    'mappings { "a": [{destination: b, weight: 60%}, {destination: c, weight: 50%}] }',
    'mappings { "a": [{destination: b}] }',
    'mappings { "a": [{destination: b, weight: 101}] }',
    'mappings { "a..b": "c" }',
]


def _first_error(command, path):
    out = subprocess.run(command + [str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0, out
    text = out.stderr + out.stdout
    # "<file>:<line>:<col>: message" (Go) or "<file>[:line:col]: message" (ours)
    m = re.search(r"\.conf(?::\d+:\d+)?: (.+)", text)
    assert m, text
    return m.group(1).strip()


@pytest.mark.parametrize("conf", BAD_CONFIGS)
def test_auth_services_interop_config_errors(conf, tmp_path):
    go = require_go_nats_server()
    path = tmp_path / "bad.conf"
    path.write_text(conf + "\n")
    expected = _first_error(go + ["-t", "-c"], path)
    got = _first_error(pluggy_nats_command() + ["-t", "-c"], path)
    assert got == expected
