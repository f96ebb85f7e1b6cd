"""Micro-benchmarks of the data plane (run: pytest tests/bench --benchmark-only).

* parse: a 64 KiB read of 16-byte PUB frames through the parser (fast path)
  and through the general loop, with a no-op handler;
* publish: the same read into a client connection with one or eight local
  subscribers: parse, match, frame and append to their buffers. Identical
  frames form segments (one match and one join per subscriber for a run);
  ``mixed`` alternates two subjects so every message takes the per-message path.

Each round handles BATCH messages; ``extra_info["ns_per_msg"]`` is the
per-message figure. The server is created but never started: no sockets are
read or written, so this measures CPU only.
"""

import gevent.socket
import pytest

import pluggy_nats.protocol.parser as parser_module
from pluggy_nats.client import ClientConnection
from pluggy_nats.protocol.parser import PUB, Parser, make_op_table
from pluggy_nats.server import Server

FRAME = b"PUB foo.bar 16\r\n0123456789abcdef\r\n"
BATCH = 65536 // len(FRAME)
DATA = FRAME * BATCH
CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


def _per_msg(benchmark):
    benchmark.extra_info["ns_per_msg"] = round(benchmark.stats.stats.median / BATCH * 1e9, 1)


@pytest.mark.parametrize("fast", [True, False], ids=["fast_path", "general_loop"])
def test_bench_parse_pub(benchmark, monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(parser_module, "_FAST_TRIES", 0)
    count = []
    parser = Parser(count, make_op_table({b"PUB": (PUB, lambda h, items: None)}))
    benchmark(parser.feed, DATA)
    _per_msg(benchmark)


@pytest.fixture
def server():
    return Server(host="127.0.0.1", port=0, autoload=False)


def _client(server):
    ours, _theirs = gevent.socket.socketpair()
    conn = ClientConnection(server, ours, ("127.0.0.1", 0))
    server.register(conn)
    conn.parser.feed(CONNECT)
    conn._peer = _theirs  # keep the other end open
    return conn


MIXED = (FRAME + FRAME.replace(b"foo.bar", b"foo.baz")) * (BATCH // 2)


@pytest.mark.parametrize("subscribers,data", [(1, DATA), (8, DATA), (1, MIXED), (8, MIXED)],
                         ids=["1-batched", "8-batched", "1-mixed", "8-mixed"])
def test_bench_publish_to_local_subscribers(benchmark, server, subscribers, data):
    pub = _client(server)
    subs = [_client(server) for _ in range(subscribers)]
    for sub in subs:
        sub.parser.feed(b"SUB foo.* 1\r\n")

    def run():
        pub.parser.feed(data)
        for sub in subs:  # what the flush would do, without the syscall
            sub.out.clear()
            sub.flush_queued = False
        server.touched.clear()

    benchmark(run)
    _per_msg(benchmark)
    assert subs[0].out_msgs >= BATCH


FRAME_1K = b"PUB foo.bar 1024\r\n" + b"x" * 1024 + b"\r\n"
BATCH_1K = 65536 // len(FRAME_1K)


@pytest.mark.parametrize("case", ["queue4_16B", "pubsub_1KiB"])
def test_bench_publish_variants(benchmark, server, case):
    """Four members of one queue group (one pick per message), and 1 KiB payloads
    to one subscriber (the parser's offset run, one payload copy into the frame)."""
    queue = case.startswith("queue")
    data, batch = (DATA, BATCH) if queue else (FRAME_1K * BATCH_1K, BATCH_1K)
    pub = _client(server)
    subs = [_client(server) for _ in range(4 if queue else 1)]
    for sub in subs:
        sub.parser.feed(b"SUB foo.bar q 1\r\n" if queue else b"SUB foo.bar 1\r\n")

    def run():
        pub.parser.feed(data)
        for sub in subs:
            sub.out.clear()
            sub.flush_queued = False
        server.touched.clear()

    benchmark(run)
    benchmark.extra_info["ns_per_msg"] = round(benchmark.stats.stats.median / batch * 1e9, 1)
    assert sum(sub.out_msgs for sub in subs) >= batch
