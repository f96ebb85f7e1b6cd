"""JetStream's per-message cost in process, for load-independent measurement
(the JetStream side of ``pluggy_nats.bench.hotpath``).

A Server with JetStream on a temporary file store and one client connection
(a socketpair whose output is discarded instead of sent): no network, no
other process, so the instruction count under ``valgrind --tool=callgrind`` is
a figure that does not depend on what else the machine runs.

* ``pub``: each round is one read of 256 ``PUB bench.js <reply>`` (16 B), the
  256-in-flight async publish of ``bench js``: parse, store, PubAck.
* ``drain``: a stream of 40 reads' worth of messages is stored first (the same
  in every run), then each round is one read holding the acks of the last
  pull and the next ``MSG.NEXT`` (batch 256, explicit acks), and the
  consumer's pass that delivers the batch.

    python -m pluggy_nats_plugins.jetstream.hotpath pub --callgrind
    python -m pluggy_nats_plugins.jetstream.hotpath drain --profile

``--callgrind`` runs each scenario twice (``--rounds`` and 0 rounds) and
reports the difference per message, so start-up and the pre-filled stream
cancel out.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

BATCH = 256
SIZE = 16
FILL_ROUNDS = 40  # drain: messages stored before measuring = FILL_ROUNDS * BATCH
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true}\r\n'


class _Discard:
    """Stands for the socket: takes every write whole (what a fast reader would)."""

    def __init__(self):
        self.bytes = 0

    def send(self, data):
        self.bytes += len(data)
        return len(data)

    send_now = send


class JsWorkload:
    def __init__(self, kind, storage="file"):
        import gevent.socket

        from pluggy_nats.client import ClientConnection
        from pluggy_nats.conf import loads
        from pluggy_nats.options import Options
        from pluggy_nats.server import Server

        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="js-hotpath-")
        conf = 'jetstream { store_dir: "%s" }' % self.dir
        self.server = server = Server(Options(conf=loads(conf)), host="127.0.0.1", port=0,
                                      autoload=True)
        server.start()
        ours, self._theirs = gevent.socket.socketpair()
        self.conn = conn = ClientConnection(server, ours, ("127.0.0.1", 0))
        server.register(conn)
        self.sink = conn._raw = _Discard()
        self.feed(CONNECT + b"SUB _INBOX.hp.* 1\r\n")
        self.request("$JS.API.STREAM.CREATE.HP", b'{"name":"HP","subjects":["bench.js"],'
                     b'"storage":"%s"}' % storage.encode())
        body = b"x" * SIZE
        self.pub_read = b"PUB bench.js _INBOX.hp.ack %d\r\n%s\r\n" % (SIZE, body) * BATCH
        jsa = next(iter(server.pluginmanager.get_plugin("jetstream-manager").accounts.values()))
        self.stream = jsa.streams["HP"]
        if kind == "drain":
            for _ in range(FILL_ROUNDS):
                self.feed(self.pub_read)
            self.request("$JS.API.CONSUMER.CREATE.HP.d", b'{"stream_name":"HP","config":'
                         b'{"name":"d","ack_policy":"explicit","max_ack_pending":-1}}')
            self.consumer = self.stream.consumers["d"]
            pull = b'{"batch":%d,"expires":5000000000}' % BATCH
            self.pull = b"PUB $JS.API.CONSUMER.MSG.NEXT.HP.d _INBOX.hp.pull %d\r\n%s\r\n" % (
                len(pull), pull)
            self.acks = b""

    def feed(self, data):
        self.conn.parser.feed(data)
        self.server.flush_touched()

    def request(self, subject, body):
        self.feed(b"PUB %s _INBOX.hp.api %d\r\n%s\r\n" % (subject.encode(), len(body), body))

    def run(self, rounds):
        import gevent

        if self.kind == "pub":
            for _ in range(rounds):
                self.feed(self.pub_read)
            return rounds * BATCH
        consumer, done = self.consumer, 0
        for _ in range(min(rounds, FILL_ROUNDS)):
            self.feed(self.acks + self.pull)
            target = done + BATCH
            while consumer.dseq < target:
                gevent.sleep(0)  # the consumer's greenlet delivers the batch
            # the acks the client sends back (the server reads only stream, consumer,
            # delivery count and stream sequence from the subject)
            self.acks = b"".join(b"PUB $JS.ACK.HP.d.1.%d.%d.0.0 0\r\n\r\n" % (s, s)
                                 for s in range(done + 1, target + 1))
            done = target
        if self.acks:
            self.feed(self.acks)
        return done

    def close(self):
        self.server.shutdown(timeout=1)
        shutil.rmtree(self.dir, ignore_errors=True)


def _callgrind(kind, rounds):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, sys.executable,
               "-m", "pluggy_nats_plugins.jetstream.hotpath", kind, "--rounds", str(rounds)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode or not m:
            raise SystemExit("callgrind failed for %s:\n%s" % (kind, r.stderr[-2000:]))
        msgs = re.search(r": (\d+) msgs", r.stdout)
        return int(m.group(1)), int(msgs.group(1)) if msgs else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pluggy_nats_plugins.jetstream.hotpath",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["pub", "drain"])
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of %d messages (default 20; drain at most %d)"
                    % (BATCH, FILL_ROUNDS))
    ap.add_argument("--storage", choices=["file", "memory"], default="file")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--profile", action="store_true", help="cProfile, top by tottime")
    mode.add_argument("--callgrind", action="store_true",
                      help="instructions per message (valgrind, --rounds vs 0 rounds)")
    a = ap.parse_args(argv)
    rounds = a.rounds if a.rounds is not None else 20
    if a.callgrind:
        total, msgs = _callgrind(a.kind, rounds)
        per = (total - _callgrind(a.kind, 0)[0]) / msgs
        print("%-6s %8.0f instructions/msg  (%d msgs)" % (a.kind, per, msgs), flush=True)
        return 0
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    w = JsWorkload(a.kind, a.storage)
    try:
        if a.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            msgs = w.run(rounds)
            prof.disable()
            print("== %s: %d msgs" % (a.kind, msgs))
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        else:
            msgs = w.run(rounds)
            if rounds:
                print("%s: %d msgs, %d bytes out" % (a.kind, msgs, w.sink.bytes))
    finally:
        w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
