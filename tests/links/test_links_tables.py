"""The propagation table and the forwarding rule, pair by pair, on a real
(unstarted) Server with real Link objects over socket pairs.

The expected matrices are written out here from nats-server's rules (route.go,
gateway.go, leafnode.go, client.go processMsgResults), not read from
pluggy_nats.links.kinds, so a wrong table entry fails."""

import socket

import pytest

from pluggy_nats import Server
from pluggy_nats.connection import ROUTE
from pluggy_nats.internal import InternalClient
from pluggy_nats.links import Framing, Link, LinkKind
from pluggy_nats.links.kinds import GATEWAY_FORWARD_FROM

ROLES = ("route", "gateway", "leaf_hub", "leaf_spoke")
ORIGINS = ("client",) + ROLES

# target role -> origins whose interest it advertises
OFFERED = {
    "route": {"client", "leaf_hub"},
    "gateway": {"client", "route", "leaf_hub", "leaf_spoke"},
    "leaf_hub": {"client", "route", "gateway", "leaf_hub", "leaf_spoke"},
    "leaf_spoke": {"client", "leaf_hub"},
}
# target role -> origins whose messages it is handed at delivery
DELIVERED = {
    "route": {"client", "gateway", "leaf_hub"},
    "gateway": set(),
    "leaf_hub": {"client", "route", "gateway", "leaf_hub", "leaf_spoke"},
    "leaf_spoke": {"client", "gateway", "leaf_hub", "leaf_spoke"},
}
# origins whose messages go to the gateway forwarder after local delivery
FORWARDED = {"client", "leaf_hub", "leaf_spoke"}


class ProbeLink(Link):
    """A link that records what it is told to advertise."""

    def __init__(self, server, role):
        self._pair = socket.socketpair()
        super().__init__(server, self._pair[0], ("127.0.0.1", 0), manager=self)
        self.set_role(role)  # the rows of kinds.py for that role
        self.told = {}

    def send_sub(self, account_name, subject, queue, weight):
        self.told[subject] = weight

    def send_unsub(self, account_name, subject, queue):
        self.told[subject] = 0

    def link_closed(self, link, reason):
        pass

    def sent(self):
        """What this link framed for its peer: flushed to the socket or still queued."""
        data = b""
        self._pair[1].setblocking(False)
        try:
            while True:
                chunk = self._pair[1].recv(65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        return data + bytes(self.out)

    def dispose(self):
        for s in self._pair:
            s.close()


forwarded = []
KINDS = {role: LinkKind(name=role, kind=ROUTE, origin=role, framing=Framing(),
                        forwarder=(lambda *a: forwarded.append(a[0].origin))
                        if role == "gateway" else None)
         for role in ROLES}
ProbeLink.bind_kind(KINDS["route"])


@pytest.fixture
def server():
    srv = Server(autoload=False, port=0)
    for kind in KINDS.values():
        srv.links.register_kind(kind)
    links = []

    def link(role):
        lk = ProbeLink(srv, role)
        srv.register(lk)
        srv.links.link_up(lk)
        links.append(lk)
        return lk

    srv.make_link = link
    yield srv
    for lk in links:
        lk.dispose()


def subscribe(server, origin, subject):
    """A subscription of ``origin`` on ``subject`` in $G; returns its owner."""
    account = server.accounts.global_account
    if origin == "client":
        owner = InternalClient(server, account)
        owner.subscribe(subject, lambda *a: owner.got.append(a[1]))
        owner.got = []
        return owner
    owner = server.make_link(origin)
    owner.on_remote_sub(account, subject)
    return owner


@pytest.mark.parametrize("target", ROLES)
@pytest.mark.parametrize("origin", ORIGINS)
def test_links_propagation_pair(server, origin, target):
    watcher = server.make_link(target)
    subscribe(server, origin, b"p.subject")
    told = watcher.told.get(b"p.subject", 0)
    assert told == (1 if origin in OFFERED[target] else 0), (origin, target, watcher.told)
    # and a link that registers later is offered the same (initial interest)
    late = server.make_link(target)
    assert late.told.get(b"p.subject", 0) == told


@pytest.mark.parametrize("role", ROLES)
def test_links_interest_never_echoed(server, role):
    own = subscribe(server, role, b"echo.subject")
    assert b"echo.subject" not in own.told  # its own interest is not told back
    other = server.make_link(role)
    expected = 1 if role in OFFERED[role] else 0
    assert other.told.get(b"echo.subject", 0) == expected
    # both hold it now: each is told of the other's when the role takes its own kind
    other.on_remote_sub(server.accounts.global_account, b"echo.subject")
    assert own.told.get(b"echo.subject", 0) == expected
    # the other withdraws: `own` is left with only its own interest
    other.on_remote_unsub(server.accounts.global_account, b"echo.subject")
    assert own.told.get(b"echo.subject", 0) == 0


def test_links_queue_weight_is_member_count(server):
    watcher = server.make_link("leaf_hub")
    account = server.accounts.global_account
    members = [InternalClient(server, account) for _ in range(3)]
    subs = [m.subscribe(b"q.subject", lambda *a: None, queue=b"grp") for m in members]
    assert watcher.advertised[("$G", b"q.subject", b"grp")] == 3
    members[0].unsubscribe(subs[0])
    assert watcher.advertised[("$G", b"q.subject", b"grp")] == 2


def deliver_from(server, origin, subject):
    """A message on ``subject`` arriving from ``origin`` (a client publish or a
    routed frame read on a link of that role); returns the source."""
    if origin == "client":
        source = InternalClient(server, server.accounts.global_account)
        source.publish(subject, b"x")
        return source
    source = server.make_link(origin)
    source._inbound([b"$G", subject], 0, b"x")
    return source


@pytest.mark.parametrize("target", ROLES)
@pytest.mark.parametrize("origin", ORIGINS)
def test_links_forwarding_pair(server, origin, target):
    forwarded.clear()
    receiver = subscribe(server, target, b"f.subject")
    local = subscribe(server, "client", b"f.subject")
    source = deliver_from(server, origin, b"f.subject")
    sent = receiver.sent()
    got = b"f.subject" in sent
    # A client's message reaches every link holding matching interest (deliver
    # does not filter per message): so a gateway keeps its peers' interest
    # out of the index and is sent to by its forwarder.
    expected = origin in DELIVERED[target] or origin == "client"
    assert got == expected, (origin, target, sent)
    assert local.got == [b"f.subject"]  # clients take messages from everywhere
    assert forwarded == ([origin] if origin in FORWARDED else [])
    assert set(GATEWAY_FORWARD_FROM) == FORWARDED
    if source is not receiver and hasattr(source, "out"):
        assert b"f.subject" not in source.sent()


@pytest.mark.parametrize("role", ROLES)
def test_links_message_never_returns_to_its_link(server, role):
    source = subscribe(server, role, b"back.subject")  # holds interest itself
    other = subscribe(server, role, b"back.subject")
    source._inbound([b"$G", b"back.subject"], 0, b"x")
    assert source.sent() == b""
    assert (b"back.subject" in other.sent()) == (role in DELIVERED[role])


def test_links_queue_pick_prefers_local_members(server):
    account = server.accounts.global_account
    remote = server.make_link("leaf_hub")
    remote.on_remote_sub(account, b"w", b"grp", 5)
    local = InternalClient(server, account)
    got = []
    local.subscribe(b"w", lambda *a: got.append(a[1]), queue=b"grp")
    source = server.make_link("route")
    for _ in range(20):  # named group: always the local member, never the leaf
        source._inbound([b"$G", b"w", b"|", b"grp"], 0, b"x")
    assert len(got) == 20 and remote.sent() == b""
    # unnamed: a routed message reaches no queue group at all
    source._inbound([b"$G", b"w"], 0, b"x")
    assert len(got) == 20
    # no local member left: the leaf member serves the group (fallback)
    local.close()
    source._inbound([b"$G", b"w", b"|", b"grp"], 0, b"x")
    assert b"RMSG $G w | grp 1\r\nx\r\n" in remote.sent()


class BoundProbe(ProbeLink):
    """A kind whose framing names no account (leaf style): bound to one."""


BoundProbe.bind_kind(LinkKind(name="bound", kind=ROUTE, origin="leaf_hub",
                              framing=Framing(msg=b"LMSG", hmsg=b"HMSG", account=False)))


def test_links_bulk_paths_without_account_token(server):
    """Single frames, batches (identical lines) and runs (different subjects)
    of a kind without an account token arrive like the route's, in order, and
    go out framed without the account."""
    from pluggy_nats.client import ClientConnection

    pair = socket.socketpair()
    try:
        sub = ClientConnection(server, pair[0], ("127.0.0.1", 0))
        server.register(sub)
        sub.parser.feed(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB t.* 5\r\n')
        sub.out.clear()
        link = BoundProbe(server, "leaf_hub")
        server.register(link)
        server.links.link_up(link)
        assert link.told == {b"t.*": 1}
        link.parser.feed(b"LMSG t.a 2\r\n01\r\nLMSG t.a 2\r\n02\r\nLMSG t.a 2\r\n03\r\n"
                         b"LMSG t.b 2\r\n04\r\nLMSG t.c 3\r\n005\r\nLMSG t.a r.1 2\r\n06\r\n"
                         b"HMSG t.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        got = bytes(sub.out)
        assert got == (b"MSG t.a 5 2\r\n01\r\nMSG t.a 5 2\r\n02\r\nMSG t.a 5 2\r\n03\r\n"
                       b"MSG t.b 5 2\r\n04\r\nMSG t.c 5 3\r\n005\r\nMSG t.a 5 r.1 2\r\n06\r\n"
                       b"MSG t.h 5 2\r\nhi\r\n"), got
        assert link.in_msgs == 7
        # out: the same framing, no account token, one frame per message
        link.on_remote_sub(server.accounts.global_account, b"o.>")
        account = server.accounts.global_account
        link.send_msg(account, b"o.x", b"r.2", 0, b"ab", [b"q1"])
        link.send_run(account, [(b"o.y", None, [b"c", b"d"]), (b"o.z", None, [b"e"]),
                                (b"o.w", b"r.3", [b"f"])])
        assert link.sent() == (b"LMSG o.x + r.2 q1 2\r\nab\r\nLMSG o.y 1\r\nc\r\nLMSG o.y 1\r\n"
                               b"d\r\nLMSG o.z 1\r\ne\r\nLMSG o.w r.3 1\r\nf\r\n")
        link.dispose()
    finally:
        for s in pair:
            s.close()
