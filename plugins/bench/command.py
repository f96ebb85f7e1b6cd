"""``pluggy-nats bench``: a NATS load generator modelled on ``nats bench``.

It speaks the protocol over raw sockets (standard library only): publishers
write pre-encoded PUB frames in large batches, subscribers count MSG frames
with a template-comparing reader (see :mod:`.proto`), every publisher and
subscriber is its own process, and publishers stay within a flow-control
window of the slowest subscriber, so a result is what the server delivered,
and a run that loses messages fails.

  pluggy-nats bench pub --url nats://127.0.0.1:4222 --size 16 --duration 3
  pluggy-nats bench pubsub --msgs 1000000 --size 1024 --json -
  pluggy-nats bench fanout --subs 8          pluggy-nats bench queue --pubs 4 --subs 4
  pluggy-nats bench req --duration 2         (latency p50/p99/p99.9)
  pluggy-nats bench cluster --url nats://127.0.0.1:4222 --sub-url nats://127.0.0.1:4223
  pluggy-nats bench leaf --url nats://HUB:4222 --sub-url nats://LEAF:4223   (and swapped)
  pluggy-nats bench mirror --url nats://HUB:4222 --sub-url nats://LEAF:4223 (JetStream domains)
  pluggy-nats bench conns --conns 10000 --pid $(pgrep -o nats-server)
  pluggy-nats bench pubsub --sink            (the generator's own ceiling: fake server)
  pluggy-nats bench compare --server py="pluggy-nats serve" --server go=nats-server
"""

import argparse
import json
import os
import signal
import sys
import threading

from .scenarios import SCENARIOS

__all__ = ["main", "SCENARIOS"]

EPILOG = """scenarios:
%s

With --msgs the run stops after that many messages (requests); with
--duration after that many seconds (default 3 when --msgs is not given).
A run fails (exit status 1) when messages are lost or duplicated.
JSON (--json FILE, or - for stdout with the table going to stderr) holds every
number shown, and more.
""" % "\n".join("  %-8s %s" % (k, v[3]) for k, v in SCENARIOS.items())


def parse_cpus(text):
    cpus = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        else:
            cpus.add(int(part))
    return cpus


def add_subjects(ap):
    ap.add_argument("--subjects", type=int, default=1,
                    help="publishers cycle over this many subjects (subscribers take them"
                         " all with a wildcard); >1 measures the per-message path, since"
                         " no two consecutive messages share a control line (default 1)")
    ap.add_argument("--literal", action="store_true",
                    help="with --subjects N: every subscriber subscribes to each subject"
                         " literally instead of by a wildcard, so neighbouring messages reach"
                         " different subscriptions (real traffic; perf-suite's *_mixed)")


def add_common(ap):
    """Options shared by scenarios and ``compare``."""
    ap.add_argument("--size", type=int, default=16, help="payload bytes (default 16)")
    ap.add_argument("--msgs", type=int, default=None,
                    help="messages to publish (requests for req), split over publishers")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds of publishing (default 3 unless --msgs is given)")
    ap.add_argument("--pubs", type=int, default=None, help="publisher connections")
    ap.add_argument("--subs", type=int, default=None, help="subscriber connections")
    ap.add_argument("--window", type=int, default=4 << 20,
                    help="flow control: max bytes published ahead of the slowest subscriber"
                         " (0 = off; default 4 MiB)")
    ap.add_argument("--batch", type=int, default=64 << 10,
                    help="bytes of pre-encoded frames per write (default 64 KiB)")
    ap.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                    help="random 8-byte tags in payloads, XORed on both sides to prove each"
                         " message arrived exactly once (default: on for queue)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="connect / warm-up / drain timeout in seconds (default 10)")
    ap.add_argument("--conns", type=int, default=10000,
                    help="connections for conns (default 10000)")
    ap.add_argument("--hold", type=float, default=0.0, help="conns: hold them this long")
    add_subjects(ap)
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def build_parser():
    ap = argparse.ArgumentParser(
        prog="pluggy-nats bench", description="NATS load generator (raw sockets, processes)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    ap.add_argument("scenario", choices=sorted(SCENARIOS), metavar="SCENARIO",
                    help="one of: %s (or: compare, sink)" % ", ".join(SCENARIOS))
    ap.add_argument("--url", default="nats://127.0.0.1:4222",
                    help="server for publishers / requester / connections")
    ap.add_argument("--sub-url", default=None,
                    help="server for subscribers / responder (default --url; cluster: required)")
    add_common(ap)
    ap.add_argument("--pid", type=int, default=None,
                    help="conns: server PID whose RSS (with its children) is measured")
    ap.add_argument("--sink", action="store_true",
                    help="run against a built-in fake server (the generator's own ceiling)")
    ap.add_argument("--cpus", type=parse_cpus, default=None,
                    help="pin the generator's processes to these CPUs, e.g. 1 or 2-3"
                         " (with --sink the default is the sink on the first CPU, the"
                         " generator on the second)")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON (- = stdout)")
    jg = ap.add_argument_group("js")
    jg.add_argument("--inflight", type=int, default=256,
                    help="js: PubAcks outstanding while publishing (default 256)")
    jg.add_argument("--pull-batch", type=int, default=500,
                    help="js: messages per pull request while draining (default 500)")
    jg.add_argument("--js-storage", choices=("file", "memory"), default="file",
                    help="js: stream storage (default file)")
    jg.add_argument("--js-api", default="$JS.hub.API",
                    help="mirror: the hub's API prefix as the leaf reaches it"
                         " (default $JS.hub.API: the hub's domain is hub)")
    return ap


def finish_options(o):
    """Fill scenario defaults into a parsed namespace (also used by compare)."""
    pubs, subs, queue, _ = SCENARIOS[o.scenario]
    o.pubs = o.pubs if o.pubs is not None else pubs
    o.subs = o.subs if o.subs is not None else subs
    o.queue = queue
    o.duration_given = o.duration is not None
    if o.duration is None and not o.msgs:
        o.duration = 3.0
    if o.verify is None:
        o.verify = queue
    if o.scenario == "sub" and o.subs < 1:
        o.subs = 1
    for name in ("pubs", "subs"):
        if getattr(o, name) < 0:
            raise SystemExit("--%s must be >= 0" % name)
    if o.scenario not in ("pub", "conns", "req", "js") and (o.pubs < 1 or o.subs < 1):
        raise SystemExit("%s needs at least one publisher and one subscriber" % o.scenario)
    if getattr(o, "subjects", 1) < 1:
        raise SystemExit("--subjects must be >= 1")
    o.subjects = getattr(o, "subjects", 1)
    o.literal = getattr(o, "literal", False)
    if o.literal and (o.subjects < 2 or o.queue):
        raise SystemExit("--literal needs --subjects >= 2 and no queue group")
    if o.size < 1 and o.scenario not in ("conns", "req"):
        raise SystemExit("--size must be >= 1 (size 0 marks warm-up probes)")
    return o


def _run_with_sink(o):
    from .scenarios import _ctx
    from .sink import sink_process
    from .workers import Shared

    ctx = _ctx()
    cpus = sorted(os.sched_getaffinity(0))
    sink_cpus = None
    if o.cpus is None and len(cpus) >= 2:
        sink_cpus, o.cpus = {cpus[0]}, {cpus[1]}
    stop = Shared(0, 0).stop
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=sink_process, name="bench-sink", daemon=True,
                       args=(send, "127.0.0.1", (o.duration or 0) + 4 * o.timeout + 120,
                             sink_cpus, stop, os.getpid()))
    proc.start()
    send.close()
    try:
        if not recv.poll(10):
            raise SystemExit("sink did not start")
        port = recv.recv()
        o.url = o.sub_url = "nats://127.0.0.1:%d" % port
        if o.scenario == "conns":
            o.pid = proc.pid
        from .scenarios import run

        res = run(o)
        res["sink"] = True
        return res
    finally:
        stop.value = 1
        proc.join(3)
        if proc.is_alive():
            proc.terminate()
            proc.join(3)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C, so workers and servers are stopped by PID
        signal.signal(signal.SIGTERM, _interrupt)
    if argv and argv[0] == "compare":
        from .compare import main as compare_main

        return compare_main(argv[1:])
    if argv and argv[0] == "sink":
        return sink_main(argv[1:])
    ap = build_parser()
    o = ap.parse_args(argv)
    finish_options(o)
    if o.scenario == "cluster" and not o.sub_url and not o.sink:
        ap.error("cluster needs --sub-url (a second server of the same cluster)")
    if o.scenario == "gateway" and not o.sub_url and not o.sink:
        ap.error("gateway needs --sub-url (a server of another cluster, joined by a gateway)")
    if o.scenario in ("leaf", "mirror") and not o.sub_url and not o.sink:
        ap.error("%s needs --sub-url (the leaf of the --url hub, or the reverse)" % o.scenario)
    from .report import format_result
    from .scenarios import run

    try:
        if o.scenario == "js":
            from .jetstream import run_js

            res = run_js(o)
        elif o.scenario == "mirror":
            from .jsmirror import run_mirror

            res = run_mirror(o)
        else:
            res = _run_with_sink(o) if o.sink else run(o)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if o.scenario == "js":
        from .jetstream import format_js

        lines = format_js(res)
    elif o.scenario == "mirror":
        from .jsmirror import format_mirror

        lines = format_mirror(res)
    else:
        lines = format_result(res)
    out = sys.stderr if o.json == "-" else sys.stdout
    print("\n".join(lines), file=out, flush=True)
    if o.json:
        text = json.dumps(res, indent=1, sort_keys=True)
        if o.json == "-":
            print(text, flush=True)
        else:
            with open(o.json, "w") as f:
                f.write(text + "\n")
    return 0 if res.get("ok") else 1


def sink_main(argv):
    ap = argparse.ArgumentParser(prog="pluggy-nats bench sink",
                                 description="the generator's fake server, standalone")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=300.0, help="exit after this many seconds")
    o = ap.parse_args(argv)
    from .sink import Sink

    sink = Sink("127.0.0.1", o.port)
    print("LISTEN 127.0.0.1:%d" % sink.port, flush=True)
    try:
        sink.serve(o.lifetime)
    except KeyboardInterrupt:
        pass
    return 0
