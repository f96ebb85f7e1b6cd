"""Batched delivery (the parser's runs of PUB/RMSG frames: segments, plans)
must put exactly the bytes into every subscriber's buffer that delivery one
message at a time does. Each case feeds one stream to two servers, one whose
parser hands over every frame alone (its runs turned off), and compares every
buffer and counter."""

import random

import gevent.socket
import pytest
from pluggy_nats_plugins.route import connection as route_module

import pluggy_nats.client as client_module
import pluggy_nats.protocol.parser as parser_module
from pluggy_nats.client import ClientConnection
from pluggy_nats.protocol.parser import make_op_table
from pluggy_nats.server import Server

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


def unbatched(table):
    return make_op_table({verb: entry[:2] for verb, entry in table.items()
                          if verb == verb.upper()})


def pubs(subject, sizes, reply=b"", count=5):
    out = []
    for size in sizes:
        line = b"PUB %s %s%d\r\n" % (subject, reply + b" " if reply else b"", size)
        for i in range(count):
            out.append(line + bytes([97 + (i + size) % 26]) * size + b"\r\n")
    return b"".join(out)


class World:
    """A server (never started) with clients on socketpairs."""

    def __init__(self, batched):
        self.server = Server(host="127.0.0.1", port=0, autoload=False)
        self.batched = batched
        self.socks = []
        # One frame per op call: the parser's runs off while this world lives.
        self._fast_tries = parser_module._FAST_TRIES
        if not batched:
            parser_module._FAST_TRIES = 0

    def client(self, subs=(), connect=CONNECT):
        ours, theirs = gevent.socket.socketpair()
        self.socks += [ours, theirs]
        conn = ClientConnection(self.server, ours, ("127.0.0.1", 0))
        if not self.batched:
            conn.parser.ops = unbatched(client_module.CLIENT_OPS)
        self.server.register(conn)
        conn.parser.feed(connect)
        if not self.batched:
            conn.parser.ops = unbatched(client_module.CLIENT_OPS)
        for line in subs:
            conn.parser.feed(line)
        conn.out.clear()
        return conn

    def route(self):
        """A registered route connection on a socketpair (no manager)."""
        ours, theirs = gevent.socket.socketpair()
        self.socks += [ours, theirs]
        link = route_module.RouteConnection(self.server, ours, ("127.0.0.1", 0), manager=None)
        link.registered = True
        self.server.register(link)
        return link

    def close(self):
        parser_module._FAST_TRIES = self._fast_tries
        for s in self.socks:
            s.close()


STREAM = (pubs(b"foo.bar", [16, 0, 300]) + pubs(b"foo.baz", [3], reply=b"_INBOX.x")
          + b"PING\r\n" + pubs(b"foo.bar", [1024], count=3) + pubs(b"other", [5]))


@pytest.mark.parametrize("subs", [
    [b"SUB foo.bar 1\r\n"],
    [b"SUB foo.* 7\r\n", b"SUB foo.bar 8\r\n", b"SUB > 9\r\n"],
    [b"SUB foo.bar 1\r\n", b"UNSUB 1 7\r\n"],  # auto-unsubscribe inside a batch
    [b"SUB foo.bar q 1\r\n"],  # three members: picks from the same random sequence
    [b"SUB foo.bar 1\r\n", b"SUB foo.* q 2\r\n"],  # plain + queue sub on one connection
    [b"SUB foo.bar q 1\r\n", b"UNSUB 1 4\r\n"],  # members leave the group mid-batch
], ids=["literal", "wildcards", "max_msgs", "queue", "plain_and_queue", "queue_max_msgs"])
def test_batches_frame_exactly_like_single_messages(subs):
    """Also where a connection holds several matching subscriptions: its frames
    must interleave message by message, as nats-server sends them."""
    outs = []
    for batched in (True, False):
        random.seed(7)
        world = World(batched)
        try:
            receivers = [world.client(subs) for _ in range(3)]
            pub = world.client()
            pub.parser.feed(STREAM)
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes, sorted(c.subs))
                         for c in receivers] + [(pub.in_msgs, pub.in_bytes, bytes(pub.out))])
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][0][1] > 0


def mixed(count=120):
    """A publisher cycling over subjects, sizes and replies (no two neighbouring
    lines alike, with identical-line batches and a PING in between)."""
    out = []
    for i in range(count):
        subject = b"foo.%s" % b"abc"[i % 3:i % 3 + 1]
        reply = b"_INBOX.r " if i % 7 == 0 else b""
        size = (i * 37) % (700 if i % 11 == 0 else 40)
        out.append(b"PUB %s %s%d\r\n%s\r\n" % (subject, reply, size, bytes([97 + i % 26]) * size))
        if i == 60:
            out.append(b"PING\r\n" + pubs(b"foo.a", [5], count=4))
    return b"".join(out)


@pytest.mark.parametrize("subs", [
    [b"SUB foo.* 1\r\n"],
    [b"SUB foo.* 7\r\n", b"SUB foo.a 8\r\n", b"SUB > 9\r\n"],
    [b"SUB foo.* 1\r\n", b"UNSUB 1 50\r\n"],  # auto-unsubscribe inside a run
    [b"SUB foo.* q 1\r\n"],
    [b"SUB foo.b 1\r\n", b"SUB foo.* q 2\r\n"],
    [b"SUB foo.* q 1\r\n", b"UNSUB 1 30\r\n"],
], ids=["wildcard", "overlapping", "max_msgs", "queue", "plain_and_queue", "queue_max_msgs"])
def test_mixed_subject_runs_frame_exactly_like_single_messages(subs):
    """Runs of different subjects reaching the same subscriptions (deliver_run)
    give every subscriber the bytes, order and counters of one-by-one delivery."""
    outs = []
    for batched in (True, False):
        random.seed(11)
        world = World(batched)
        try:
            receivers = [world.client(subs) for _ in range(3)]
            pub = world.client()
            pub.parser.feed(mixed())
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes, sorted(c.subs))
                         for c in receivers] + [(pub.in_msgs, pub.in_bytes, bytes(pub.out))])
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][0][1] > 0


def test_queue_batches_give_each_message_to_one_member_in_order():
    world = World(True)
    try:
        members = [world.client([b"SUB foo q %d\r\n" % i]) for i in range(4)]
        pub = world.client()
        frames = b"".join(b"PUB foo 4\r\n%04d\r\n" % i for i in range(1000))
        pub.parser.feed(frames)
        got = []
        for m in members:
            seqs = [int(x) for x in bytes(m.out).split(b"\r\n")[1::2]]
            assert seqs == sorted(seqs)  # each member sees its share in order
            got += seqs
        assert sorted(got) == list(range(1000))
        assert all(m.out_msgs > 100 for m in members)  # random picks spread
    finally:
        world.close()


def test_route_batches_frame_like_single_messages():
    """Out to a route (one RMSG per message) and in from one (RMSG runs)."""
    outs = []
    for batched in (True, False):
        world = World(batched)
        try:
            server = world.server
            ours, theirs = gevent.socket.socketpair()
            world.socks += [ours, theirs]
            link = route_module.RouteConnection(server, ours, ("127.0.0.1", 0), manager=None)
            if not batched:
                link.parser.ops = unbatched(route_module.ROUTE_OPS)
            link.registered = True
            server.register(link)
            sub = world.client([b"SUB foo.bar 1\r\n"])
            pub = world.client()
            link.on_remote_sub(pub.account, b"foo.*")
            link.on_remote_sub(pub.account, b"foo.bar")  # two subs, one frame per message
            pub.parser.feed(STREAM + mixed())
            sent = bytes(link.out)
            sub.out.clear()
            sub.out_msgs = 0
            link.parser.feed(b"".join(b"RMSG $G foo.bar %d\r\n%s\r\n" % (len(p), p)
                                      for p in [b"ab", b"cd", b"ef", b"", b"x" * 400] * 3))
            outs.append((sent, link.out_msgs, bytes(sub.out), sub.out_msgs, link.in_msgs))
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][1] > 0 and outs[0][3] == 15


@pytest.mark.parametrize("subs", [
    [b"SUB foo.* 1\r\n"],
    [b"SUB foo.* 1\r\n", b"SUB foo.b 2\r\n"],  # two subs on one connection
    [b"SUB foo.* 1\r\n", b"UNSUB 1 40\r\n"],
    [b"SUB foo.a 1\r\n"],
], ids=["wildcard", "overlapping", "max_msgs", "literal"])
def test_route_runs_of_mixed_subjects_frame_like_single_messages(subs):
    """RMSG runs cycling over subjects (with replies, queue groups and batches
    in between) reach local subscribers exactly as one by one."""
    frames = []
    for i in range(150):
        subject = b"foo.%s" % b"abc"[i % 3:i % 3 + 1]
        mid = b" _INBOX.r " if i % 13 == 0 else b" | q " if i % 17 == 0 else b" "
        payload = bytes([97 + i % 26]) * ((i * 7) % 50)
        frames.append(b"RMSG $G %s%s%d\r\n%s\r\n" % (subject, mid, len(payload), payload))
        if i == 90:
            frames.append(b"RMSG $G foo.c 2\r\nzz\r\n" * 3)
    outs = []
    for batched in (True, False):
        random.seed(5)
        world = World(batched)
        try:
            server = world.server
            ours, theirs = gevent.socket.socketpair()
            world.socks += [ours, theirs]
            link = route_module.RouteConnection(server, ours, ("127.0.0.1", 0), manager=None)
            if not batched:
                link.parser.ops = unbatched(route_module.ROUTE_OPS)
            link.registered = True
            server.register(link)
            receivers = [world.client(subs + [b"SUB foo.* q 9\r\n"]) for _ in range(2)]
            link.parser.feed(b"".join(frames))
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes, sorted(c.subs))
                         for c in receivers] + [(link.in_msgs, link.in_bytes)])
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][0][1] > 0


def test_internal_subscribers_get_messages_one_at_a_time():
    """An internal client's callback may change interest between messages (here:
    it unsubscribes after three): a batch must not run past that."""
    from pluggy_nats.internal import InternalClient

    outs = []
    for batched in (True, False):
        world = World(batched)
        try:
            sub = world.client([b"SUB foo.bar 1\r\n"])
            internal = InternalClient(world.server, world.server.accounts.global_account)
            seen = []

            def callback(isub, subject, reply, headers, payload, seen=seen, ic=internal):
                seen.append(payload)
                if len(seen) == 3:
                    ic.unsubscribe(isub)

            internal.subscribe("foo.bar", callback)
            pub = world.client()
            pub.parser.feed(pubs(b"foo.bar", [16], count=10))
            outs.append((seen, bytes(sub.out)))
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert len(outs[0][0]) == 3 and outs[0][1].count(b"MSG ") == 10


def literal_stream(count=300, subjects=7):
    """Real traffic: each message its own subject among several (some with
    replies, sizes vary, a run of one line in between)."""
    out = []
    for i in range(count):
        subject = b"lit.%d" % (i * 5 % subjects)
        reply = b"_INBOX.r%d " % i if i % 9 == 0 else b""
        size = (i * 13) % (600 if i % 10 == 0 else 30)
        out.append(b"PUB %s %s%d\r\n%s\r\n" % (subject, reply, size, bytes([97 + i % 26]) * size))
        if i == 150:
            out.append(pubs(b"lit.3", [4], count=5))
    return b"".join(out)


@pytest.mark.parametrize("subs", [
    [b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(7)],  # every subject its own sub
    [b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(0, 7, 2)],  # some: others reach nobody
    [b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(7)] + [b"SUB lit.* 99\r\n"],  # overlap
    [b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(7)] + [b"UNSUB 3 20\r\n"],
], ids=["literal", "sparse", "overlap", "max_msgs"])
@pytest.mark.parametrize("receivers", [1, 3])
def test_literal_subscriptions_frame_like_single_messages(subs, receivers):
    """Messages of different subjects reaching the same connections through
    different subscriptions (delivery plans, one segment) give every
    subscriber and a route the bytes, order and counters of one by one."""
    outs = []
    for batched in (True, False):
        world = World(batched)
        try:
            link = world.route()
            conns = [world.client(subs) for _ in range(receivers)]
            pub = world.client()
            for k in range(0, 7, 3):
                link.on_remote_sub(pub.account, b"lit.%d" % k)
            pub.parser.feed(literal_stream())
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes) for c in conns + [link]]
                        + [(pub.in_msgs, pub.in_bytes, bytes(pub.out))])
            # ... and the same stream arriving over the route (RMSG runs).
            for c in conns:
                c.out.clear()
            link.parser.feed(literal_stream().replace(b"PUB ", b"RMSG $G "))
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes) for c in conns]
                        + [(link.in_msgs, link.in_bytes)])
        finally:
            world.close()
    assert outs[:2] == outs[2:]
    assert all(o[1] > 0 for o in outs[0][:receivers + 1])


PROD_CONF = """
accounts {
  APP {
    users = [
      { user: pub, password: p, permissions: { publish: { deny: ["lit.5"] } } }
      { user: sub, password: p, permissions: { subscribe: { allow: ["lit.*"], deny: ["lit.3"] } } }
      { user: resp, password: p, permissions: { publish: "svc.>", allow_responses: true } }
      { user: plain, password: p }
    ]
    mappings {
      "lit.1": "lit.6"
      "lit.2": [{destination: "lit.4", weight: 50%}, {destination: "lit.0", weight: 50%}]
    }
  }
}
"""


def _login(user):
    return (b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"p"}\r\n'
            % user.encode())


def test_permissions_and_mappings_frame_like_single_messages():
    """Production settings stay on the bulk path (publish permissions checked
    per control line, mappings per item or per message when weighted,
    subscribe-deny and allow_responses settled in the plans) and still give
    every connection the bytes, order and counters of one by one."""
    from pluggy_nats.conf import loads
    from pluggy_nats.options import Options

    subs = b"".join(b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(7))
    outs = []
    for batched in (True, False):
        random.seed(3)
        world = World(batched)
        world.server = Server(Options(conf=loads(PROD_CONF)), host="127.0.0.1", port=0,
                              autoload=True)
        try:
            conns = [world.client([b"SUB lit.* 1\r\n"], connect=_login("sub"))]  # deny inside
            conns += [world.client([subs], connect=_login(u)) for u in ("resp", "plain", "plain")]
            pub = world.client([subs], connect=_login("pub"))  # gets its own messages
            assert pub.fast_pub and pub.pub_check is not None
            pub.parser.feed(literal_stream() + pubs(b"lit.2", [3], count=9))
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes) for c in conns + [pub]]
                        + [(pub.in_msgs, pub.in_bytes)])
            replies = conns[1].permissions.replies
            outs[-1].append(sorted(replies))  # the replies the responder may answer
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert b"Permissions Violation" in outs[0][4][0] and outs[0][1][1] > 0
    assert b"MSG lit.3 " not in outs[0][0][0] and b"MSG lit.3 " in outs[0][2][0]
    assert outs[0][-1]  # allow_responses saw the requests' replies


def test_allow_responses_publisher_stays_on_the_bulk_path():
    """A user with allow_responses keeps the bulk path: subjects its static
    rules allow go per control line, the rest message by message, where a
    tracked reply is allowed up to its limit (one answer each) and anything
    else refused; the bytes, order and counters are those of one by one."""
    from pluggy_nats.conf import loads
    from pluggy_nats.options import Options

    outs = []
    for batched in (True, False):
        random.seed(5)  # (PROD_CONF's weighted mapping picks at random)
        world = World(batched)
        world.server = Server(Options(conf=loads(PROD_CONF)), host="127.0.0.1", port=0,
                              autoload=True)
        try:
            inbox = world.client([b"SUB _INBOX.> 1\r\nSUB svc.> 2\r\nSUB lit.* 3\r\n"],
                                 connect=_login("plain"))
            resp = world.client([b"SUB lit.* 1\r\n"], connect=_login("resp"))
            assert resp.fast_pub and resp.pub_check is not None
            inbox.parser.feed(literal_stream(count=40))  # requests: replies tracked
            answers = [pubs(b"svc.x", [16], count=6),  # statically allowed: one run
                       pubs(b"_INBOX.r9", [5], count=3),  # one answer allowed, two refused
                       pubs(b"_INBOX.r18", [7], count=1), pubs(b"lit.2", [3], count=2),
                       pubs(b"_INBOX.none", [2], count=1), pubs(b"svc.y", [1024], count=4)]
            resp.parser.feed(b"".join(answers))
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes, c.in_msgs, c.in_bytes)
                         for c in (inbox, resp)])
        finally:
            world.close()
    assert outs[0] == outs[1]
    delivered, errors = outs[0][0][0], outs[0][1][0]
    assert delivered.count(b"MSG svc.x 2 16\r\n") == 6 and delivered.count(b"MSG svc.y ") == 4
    assert delivered.count(b"MSG _INBOX.r9 1 5\r\n") == 1
    assert delivered.count(b"MSG _INBOX.r18 1 7\r\n") == 1
    assert b"MSG _INBOX.none" not in delivered and b"MSG lit.2 3 3\r\n" not in delivered
    assert errors.count(b"Permissions Violation for Publish") == 2 + 2 + 1


def test_queue_members_with_permissions_take_runs(monkeypatch):
    """Queue members whose users have permissions (subscribe-deny rules,
    allow_responses) take a run's picks at once when none of its messages is
    refused or needs its reply tracked; runs holding a denied subject or a
    reply go message by message. Bytes, order and counters are those of one
    by one, and the allowed runs never reach the per-message ``deliver``."""
    from pluggy_nats import delivery
    from pluggy_nats.conf import loads
    from pluggy_nats.options import Options

    stream = (pubs(b"lit.7", [16], count=40) + pubs(b"lit.3", [8], count=6)  # lit.3: denied
              + pubs(b"lit.8", [5], reply=b"_INBOX.q", count=4)  # replies: tracked
              + pubs(b"lit.9", [1024], count=12))
    outs = []
    calls = []
    for batched in (True, False):
        random.seed(11)
        world = World(batched)
        world.server = Server(Options(conf=loads(PROD_CONF)), host="127.0.0.1", port=0,
                              autoload=True)
        counted = []

        def spy(*args, counted=counted, per_message=delivery.deliver):
            counted.append(args[1])  # the subject
            return per_message(*args)

        monkeypatch.setattr(client_module, "deliver", spy)
        try:
            members = [world.client([b"SUB lit.* q 1\r\n"], connect=_login(user))
                       for user in ("sub", "sub", "resp")]
            assert all(m.deny_delivery is not None for m in members)
            pub = world.client(connect=_login("plain"))
            pub.parser.feed(stream)
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes) for c in members]
                        + [(pub.in_msgs, pub.in_bytes, bytes(pub.out))])
        finally:
            world.close()
            monkeypatch.undo()
        calls.append(counted)
    assert outs[0] == outs[1]
    delivered = b"".join(out[0] for out in outs[0][:3])
    assert delivered.count(b"MSG lit.7 1 16\r\n") == 40
    assert delivered.count(b"MSG lit.9 1 1024\r\n") == 12
    # batched: only the lit.3 run (a member denies it) and the replies go one by one
    assert set(calls[0]) == {b"lit.3", b"lit.8"} and len(calls[0]) == 6 + 4
    assert len(calls[1]) == 40 + 6 + 4 + 12


@pytest.mark.parametrize("subs", [
    [b"SUB _INBOX.a 1\r\n"],
    [b"SUB _INBOX.* 1\r\n", b"SUB _INBOX.b 2\r\n"],
    [b"SUB _INBOX.a q 1\r\n"],
    [b"SUB _INBOX.a 1\r\n", b"UNSUB 1 5\r\n"],
], ids=["literal", "wildcards", "queue", "max_msgs"])
def test_publish_many_frames_like_one_publish_each(subs):
    """An internal client's ``publish_many`` (a stream's PubAcks after one
    write) sends the same bytes as one ``publish`` per message: runs on one
    subject whose payload sizes change (seq 9 -> 10), subjects interleaved,
    str payloads, a subject nobody wants."""
    from pluggy_nats.internal import InternalClient

    messages = [(b"_INBOX.a", b'{"seq":%d}' % seq) for seq in range(5, 14)]
    messages += [(b"_INBOX.b", b"x"), (b"_INBOX.a", "text"), (b"nobody", b"y"),
                 (b"_INBOX.b", b"z"), (b"_INBOX.b", b"zz")]
    outs = []
    for many in (True, False):
        random.seed(7)
        world = World(True)
        try:
            sub = world.client(subs)
            internal = InternalClient(world.server, world.server.accounts.global_account)
            if many:
                internal.publish_many(messages)
            else:
                for subject, payload in messages:
                    internal.publish(subject, payload, flush=False)
            outs.append((bytes(sub.out), internal.out_msgs))
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][0].count(b"MSG ") >= 5


@pytest.mark.parametrize("size", [300, 8191, 8192, 9000])
def test_runs_of_big_payloads_on_known_lines_frame_like_single_messages(size):
    """A publisher cycling over subjects with big payloads, the stream fed
    again (its lines known, its subjects matched: the runs without a pass
    per message), to one client and a route: the bytes and counters of one
    by one, also for sizes past the framing tables (8192 and more)."""
    stream = b"".join(b"PUB lit.%d %d\r\n%s\r\n" % (i % 7, size, bytes([97 + i % 26]) * size)
                      for i in range(12))
    outs = []
    for batched in (True, False):
        world = World(batched)
        try:
            link = world.route()
            sub = world.client([b"SUB lit.%d %d\r\n" % (k, k + 1) for k in range(7)])
            pub = world.client()
            for k in range(7):
                link.on_remote_sub(pub.account, b"lit.%d" % k)
            for _ in range(3):
                pub.parser.feed(stream)
            outs.append([(bytes(c.out), c.out_msgs, c.out_bytes) for c in (sub, link)]
                        + [(pub.in_msgs, pub.in_bytes)])
        finally:
            world.close()
    assert outs[0] == outs[1]
    assert outs[0][0][1] == 36
