"""A fixed, in-process workload of the data plane, for load-independent measurement.

``pluggy-nats bench compare`` measures wall-clock throughput, which a shared
machine makes noisy. This module instead feeds pre-built 64 KiB reads through
real connection objects (parse, match, frame, append, stats) of a Server with
every plugin loaded and auth configured, and never touches a socket: the work
is deterministic, so its instruction count (``valgrind --tool=callgrind``) or
profile (cProfile) is a figure that does not depend on what else runs.

    python -m pluggy_nats.bench.hotpath pubsub16 --rounds 200        # just run
    python -m pluggy_nats.bench.hotpath pubsub16 --profile           # cProfile top 15
    python -m pluggy_nats.bench.hotpath all --callgrind              # instructions/msg
    python -m pluggy_nats.bench.hotpath lit_fanout16 --callgrind     # real traffic

The ``lit_`` workloads are real traffic: every message its own subject among
1000, each matched by literal subscriptions (so neighbouring messages reach
different subscriptions), from a client or over a route (RMSG in and out).

The ``gw_`` and ``leaf_`` workloads are ``bench compare --subjects 10`` over a
gateway or a leaf link: the publisher cycles over ten subjects ``foo.0`` ..
``foo.9`` that the far side wants by one wildcard (``foo.*``). ``_out``: a
client's PUB framed onto the link (an outbound gateway in interest-only mode,
a leaf hub's link with the JetStream denies every link carries); ``_in``: the
link's RMSG/LMSG parsed and delivered to one client. The links are real
(GatewayLink, LeafConnection) and go through their real handshakes, fed as
bytes.

``--callgrind`` runs each scenario under callgrind twice (``--rounds`` and 0
rounds) and reports the difference per message, so start-up and imports cancel.
A flush after every read is simulated by clearing the subscribers' buffers.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

READ = 65536
# The auth configuration ``bench compare --auth`` uses too: one user with a
# password in a named account, no permissions (the fast path must hold).
AUTH_CONF = """
accounts {
  BENCH { users = [ { user: bench, password: bench } ] }
}
"""
CONNECT = (b'CONNECT {"verbose":false,"pedantic":false,"user":"bench","pass":"bench",'
           b'"protocol":1,"headers":true}\r\n')
# "_resp" scenarios add a user with allow_responses, connected beside the
# others: the others' figures must not move (it is tracked on delivery to it).
RESP_USER = ("BENCH { users = [ { user: bench, password: bench }, { user: resp, "
             "password: resp, permissions: { subscribe: \"svc.>\", allow_responses: true } } ] }")
RESP_CONNECT = CONNECT.replace(b'"bench","pass":"bench"', b'"resp","pass":"resp"')
# "_prod" scenarios: production settings on every connection (publish and
# subscribe permissions with a subscribe-deny rule, subject mappings in the
# account); none of them may take a connection off the bulk path.
PROD_USER = ("BENCH { users = [ { user: bench, password: bench, permissions: { "
             "publish: { allow: \"foo.>\", deny: \"foo.secret\" }, "
             "subscribe: { allow: \"foo.>\", deny: \"foo.secret\" } } } ]\n"
             "  mappings { \"old.*\": \"foo.$1\" } }")

# name: (payload size, plain subscribers, queue members, path[, mixed[, resp or "prod"]]).
# "mixed" streams alternate two subjects (foo.bar, foo.baz; subscribers use
# foo.*), so no two consecutive frames are alike. "lit" (mixed = LITERAL) is
# real traffic: the publisher cycles over SUBJECTS subjects foo.0 .. foo.999 and
# every subscriber (or the route's peer) holds a literal subscription on each,
# so neighbouring messages match different subscriptions (perf-suite's
# pubsub_mixed, fanout8_mixed, cluster3_mixed).
LITERAL = "literal"
SUBJECTS = 1000
CYCLE = "cycle"  # bench compare --subjects 10: ten subjects under one wildcard
CYCLE_SUBJECTS = 10
SCENARIOS = {
    "lit_pubsub16": (16, 1, 0, "client", LITERAL),
    "lit_pubsub1k": (1024, 1, 0, "client", LITERAL),
    "lit_fanout16": (16, 8, 0, "client", LITERAL),
    "lit_route_out16": (16, 0, 0, "route_out", LITERAL),
    "lit_route_in16": (16, 1, 0, "route_in", LITERAL),
    "lit_route_in1k": (1024, 1, 0, "route_in", LITERAL),
    "lit_pubsub16_prod": (16, 1, 0, "client", LITERAL, "prod"),
    "lit_fanout16_prod": (16, 8, 0, "client", LITERAL, "prod"),
    "queue16_prod": (16, 0, 4, "client", False, "prod"),
    "mixed_pubsub16": (16, 1, 0, "client", True),
    "mixed_pubsub1k": (1024, 1, 0, "client", True),
    "mixed_fanout16": (16, 8, 0, "client", True),
    "mixed_fanout1k": (1024, 8, 0, "client", True),
    "mixed_queue16": (16, 0, 4, "client", True),
    "mixed_route_out16": (16, 0, 0, "route_out", True),
    "mixed_route_in16": (16, 1, 0, "route_in", True),
    "pub16": (16, 0, 0, "client"),
    "pubsub16": (16, 1, 0, "client"),
    "pubsub16_resp": (16, 1, 0, "client", False, True),
    "mixed_pubsub16_resp": (16, 1, 0, "client", True, True),
    "pubsub1k": (1024, 1, 0, "client"),
    "fanout16": (16, 8, 0, "client"),
    "fanout1k": (1024, 8, 0, "client"),
    "queue16": (16, 0, 4, "client"),
    "route_out16": (16, 0, 0, "route_out"),  # client PUB -> one route (cluster, server A)
    "route_in16": (16, 1, 0, "route_in"),  # RMSG from a route -> one client (server C)
    # over a gateway / a leaf link, the publisher cycling over ten subjects
    "gw_out16": (16, 0, 0, "gw_out", CYCLE),
    "gw_out1k": (1024, 0, 0, "gw_out", CYCLE),
    "gw_in16": (16, 1, 0, "gw_in", CYCLE),
    "gw_in1k": (1024, 1, 0, "gw_in", CYCLE),
    "leaf_out16": (16, 0, 0, "leaf_out", CYCLE),
    "leaf_out1k": (1024, 0, 0, "leaf_out", CYCLE),
    "leaf_in16": (16, 1, 0, "leaf_in", CYCLE),
    "leaf_in1k": (1024, 1, 0, "leaf_in", CYCLE),
}
# "_cut" workloads feed their stream in 64 KiB reads that cut frames where TCP
# would (a frame's end in the next read), not in reads of whole frames.
CUT = "_cut"
CUT_ROUND = 4  # the workload's whole-frame buffer, this many times, per round
for _base in ("pubsub1k", "fanout1k", "lit_pubsub1k", "lit_route_in1k"):
    SCENARIOS[_base + CUT] = SCENARIOS[_base]
GATEWAY_CONF = """
gateway {
  name: A
  listen: "127.0.0.1:-1"
  gateways: [ { name: B, url: "nats://127.0.0.1:1" } ]
}
"""
LEAF_CONF = 'leafnodes { listen: "127.0.0.1:-1" }\n'



def frames(size, verb=b"PUB ", mixed=False):
    frame = verb + b"foo.bar %d\r\n" % size + bytes(97 + i % 26 for i in range(size)) + b"\r\n"
    count = max(2, READ // len(frame)) // 2 * 2
    if mixed in (LITERAL, CYCLE):  # one read's frames, cycling over the subjects
        n = SUBJECTS if mixed == LITERAL else CYCLE_SUBJECTS
        return b"".join(frame.replace(b"foo.bar", b"foo.%d" % (i % n))
                        for i in range(count)), count
    if mixed:
        return (frame + frame.replace(b"foo.bar", b"foo.baz")) * (count // 2), count
    return frame * count, count


class Workload:
    """One scenario's connections on a fresh Server; ``run(rounds)`` feeds it."""

    def __init__(self, name):
        import gevent.socket

        from pluggy_nats.client import ClientConnection
        from pluggy_nats.conf import loads
        from pluggy_nats.options import Options
        from pluggy_nats.server import Server

        size, plain, members, path, *rest = SCENARIOS[name]
        mixed = rest[0] if rest else False
        resp = len(rest) > 1 and rest[1]
        plain_user = "BENCH { users = [ { user: bench, password: bench } ] }"
        conf = AUTH_CONF.replace(plain_user, PROD_USER) if resp == "prod" else \
            AUTH_CONF.replace(plain_user, RESP_USER) if resp else AUTH_CONF
        resp = resp is True
        if path.startswith("gw_"):
            conf += GATEWAY_CONF
        elif path.startswith("leaf_"):
            conf += LEAF_CONF
        self.server = server = Server(Options(conf=loads(conf)), host="127.0.0.1", port=0,
                                      autoload=True)
        self._socks = []

        def client():
            ours, theirs = gevent.socket.socketpair()
            self._socks += [ours, theirs]
            conn = ClientConnection(server, ours, ("127.0.0.1", 0))
            server.register(conn)
            conn.parser.feed(CONNECT)
            assert conn.authenticated and conn.fast_pub, "auth took the fast path away"
            conn.out.clear()
            return conn

        self.subs = [client() for _ in range(plain + members)]
        if resp:  # connected, subscribed where nothing is published
            ours, theirs = gevent.socket.socketpair()
            self._socks += [ours, theirs]
            responder = ClientConnection(server, ours, ("127.0.0.1", 0))
            server.register(responder)
            responder.parser.feed(RESP_CONNECT + b"SUB svc.> 1\r\n")
            assert responder.authenticated and responder.permissions is not None
        subject = b"foo.*" if mixed else b"foo.bar"
        subjects = [b"foo.%d" % k for k in range(SUBJECTS)] if mixed == LITERAL else [subject]
        for i, sub in enumerate(self.subs):
            queue = b" q" if i >= plain else b""
            sub.parser.feed(b"".join(b"SUB %s%s %d\r\n" % (s, queue, k + 1)
                                     for k, s in enumerate(subjects)))
        if path == "route_in":
            link = self._route(gevent.socket)
            account = self.subs[0].account
            self.data, self.count = frames(size, b"RMSG " + account.name_bytes + b" ", mixed)
            self.feed = link.parser.feed
        elif path in ("gw_in", "leaf_in"):
            link = self._gateway(False) if path == "gw_in" else self._leaf()
            account = self.subs[0].account
            verb = b"RMSG " + account.name_bytes + b" " if path == "gw_in" else b"LMSG "
            self.data, self.count = frames(size, verb, mixed)
            self.feed = link.parser.feed
            self.links = [link]
        else:
            pub = client()
            if path == "route_out":
                link = self._route(gevent.socket)
                for s in subjects:
                    link.on_remote_sub(pub.account, s)
                self.subs.append(link)
            elif path == "gw_out":
                self.subs.append(self._gateway(True))
            elif path == "leaf_out":
                self.subs.append(self._leaf(interest=subject))
            self.data, self.count = frames(size, mixed=mixed)
            self.feed = pub.parser.feed
        self.reads = [self.data]
        if name.endswith(CUT):
            stream = self.data * CUT_ROUND
            self.reads = [stream[i:i + READ] for i in range(0, len(stream), READ)]
            self.count *= CUT_ROUND
        for c in self.subs + getattr(self, "links", []):
            c.out.clear()  # handshake lines
            c.flush_queued = False
        server.touched.clear()

    def _socket(self):
        import gevent.socket

        ours, theirs = gevent.socket.socketpair()
        self._socks += [ours, theirs]
        return ours

    def _gateway(self, outbound):
        """A registered gateway link to cluster B, through its handshake: the
        outbound (we dialled; B's INFO, then its interest-only bracket with
        ``RS+ BENCH foo.*``) or the inbound (B's CONNECT and INFO)."""
        from pluggy_nats_plugins.gateway.link import GatewayLink

        manager = self.server.pluginmanager.get_plugin("gateway-manager")
        manager.url = manager.url or "127.0.0.1:7222"  # set when the listener binds
        info = (b'INFO {"server_id":"NB","server_name":"b1","gateway":"B","headers":true,'
                b'"gateway_nrp":true,"gateway_iom":true,"gateway_urls":["127.0.0.1:1"]}\r\n')
        if outbound:
            link = GatewayLink(self.server, self._socket(), ("127.0.0.1", 1), manager,
                               solicited=True, url="nats://127.0.0.1:1",
                               remote=manager.remotes["B"])
            self.server.register(link)
            link.on_start()
            cmd = b'INFO {"gateway":"B","gateway_cmd":%d,"gateway_cmd_payload":"QkVOQ0g="}\r\n'
            link.parser.feed(info + cmd % 2 + b"RS+ BENCH foo.*\r\n" + cmd % 3)
            assert manager.out_order and link.outbound.interest("BENCH", b"foo.1")[0]
        else:
            link = GatewayLink(self.server, self._socket(), ("127.0.0.1", 1), manager)
            self.server.register(link)
            link.on_start()
            link.parser.feed(b'CONNECT {"echo":false,"verbose":false,"pedantic":false,'
                             b'"name":"NB","gateway":"B"}\r\n' + info)
            assert link.registered and link.inbound is not None
        return link

    def _leaf(self, interest=None):
        """A leaf link on which we are the hub, through its handshake (the
        leaf's CONNECT as user bench: bound to BENCH, with the JetStream
        denies), and the leaf's ``LS+ interest``."""
        from pluggy_nats_plugins.leafnode.connection import LeafConnection

        manager = self.server.pluginmanager.get_plugin("leafnode-manager")
        link = LeafConnection(self.server, self._socket(), ("127.0.0.1", 1), manager)
        self.server.register(link)
        link.on_start()
        link.parser.feed(b'CONNECT {"version":"2.15.1","user":"bench","pass":"bench",'
                         b'"server_id":"NL","name":"leaf1","cluster":"leaf1","headers":true,'
                         b'"remote_account":"$G","protocol":3}\r\n' +
                         (b"LS+ %s\r\n" % interest if interest else b""))
        assert link.registered and link.bound_account.name == "BENCH", link.closed_reason
        assert link.out_denied is not None  # every leaf link carries the JetStream denies
        return link

    def _route(self, socket_module):
        ours, theirs = socket_module.socketpair()
        self._socks += [ours, theirs]
        link = _bench_link_class()(self.server, ours, ("127.0.0.1", 0), manager=None)
        link.registered = True
        self.server.register(link)
        return link

    def run(self, rounds):
        feed, reads, subs, touched = self.feed, self.reads, self.subs, self.server.touched
        for _ in range(rounds):
            for data in reads:
                feed(data)
                for sub in subs:  # what the flush would do, without the syscall
                    sub.out.clear()
                    sub.flush_queued = False
                touched.clear()
        delivered = sum(s.out_msgs for s in subs)
        return rounds * self.count, delivered


def _bench_link_class():
    """A link kind with the route framing (RMSG with an account), built on the
    link layer alone: what a route's messages cost in and out, without
    importing the route plugin (the core imports no plugin)."""
    global _BENCH_LINK
    if _BENCH_LINK is None:
        from pluggy_nats.connection import ROUTE
        from pluggy_nats.links import Framing, Link, LinkKind

        class BenchLink(Link):
            def send_sub(self, account_name, subject, queue, weight):
                pass

            def send_unsub(self, account_name, subject, queue):
                pass

        _BENCH_LINK = BenchLink.bind_kind(LinkKind(name="bench-route", kind=ROUTE,
                                                   origin="route", framing=Framing()))
    return _BENCH_LINK


_BENCH_LINK = None


def _callgrind(name, rounds):
    """(instructions, messages) of running ``rounds`` rounds of ``name`` under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               sys.executable, "-m", "pluggy_nats.bench.hotpath", name, "--rounds", str(rounds)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode or not m:
            raise SystemExit("callgrind failed for %s:\n%s" % (name, r.stderr[-2000:]))
        # The run's own message count (frame sizes differ per verb, e.g. RMSG).
        msgs = re.search(r": (\d+) msgs", r.stdout)
        return int(m.group(1)), int(msgs.group(1)) if msgs else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pluggy_nats.bench.hotpath",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=sorted(SCENARIOS) + ["all"])
    ap.add_argument("--rounds", type=int, default=None,
                    help="64 KiB reads to feed (default 40, or 2000 with --profile)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--profile", action="store_true", help="cProfile, top entries by tottime")
    mode.add_argument("--callgrind", action="store_true",
                      help="instructions per message (valgrind, --rounds vs 0 rounds)")
    a = ap.parse_args(argv)
    names = sorted(SCENARIOS) if a.scenario == "all" else [a.scenario]
    if a.callgrind:
        rounds = a.rounds or 40
        for name in names:
            total, msgs = _callgrind(name, rounds)
            per = (total - _callgrind(name, 0)[0]) / msgs
            print("%-18s %8.0f instructions/msg  (%d msgs)" % (name, per, msgs), flush=True)
        return 0
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    from pluggy_nats.server import tune_gc, tune_malloc

    tune_malloc()
    for name in names:
        w = Workload(name)
        tune_gc()  # as ``pluggy-nats serve`` runs
        rounds = a.rounds if a.rounds is not None else (2000 if a.profile else 40)
        if a.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            msgs, delivered = w.run(rounds)
            prof.disable()
            print("== %s: %d msgs, %d delivered" % (name, msgs, delivered))
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        else:
            msgs, delivered = w.run(rounds)
            if rounds:
                print("%s: %d msgs, %d delivered" % (name, msgs, delivered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
