"""``pluggy-nats bench compare``: the scenarios against several servers, side by side.

Every run starts the server (or, for ``cluster``, three servers joined by
routes; for ``gateway``, two one-server clusters A and B joined by a
gateway) fresh from its command with nats-server flags (``-a 127.0.0.1 -p -1``;
the port is read from the log, see :mod:`pluggy_nats.testing.launch`), runs
one scenario and stops it by process group.  Runs are interleaved
(A B A B ...) so machine noise hits every server alike; the report gives
medians, spread, server CPU and ratios against the first server.

``--auth`` starts every server with a config file that requires a user and
password (one account, no permissions: the publish fast path must hold) and
makes the generator log in; ``--conf FILE`` with ``--user``/``--password``
does the same with a config of your own. The route plugin is loaded in every
pluggy-nats run (entry points), cluster or not.

With two or more CPUs (``--pin auto``) the servers run on the first allowed
CPU and the generator on the second, so a result is "what one core of server
does" and the generator never competes with the server for its core.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

from pluggy_nats.bench.hotpath import AUTH_CONF
from pluggy_nats.testing.launch import HOST, ServerProcess, free_ports

from .report import fmt_rate, format_comparison, summarize_case
from .scenarios import process_tree, run

# case: (scenario, options, sized, servers)
CASES = {
    "pub": ("pub", {}, True, 1),
    "sub": ("sub", {}, True, 1),
    "pubsub": ("pubsub", {}, True, 1),
    "fanout": ("fanout", {"subs": 8}, True, 1),
    "queue": ("queue", {"pubs": 4, "subs": 4}, True, 1),
    "req": ("req", {}, True, 1),
    # real traffic: 1000 subjects, each subscriber holding a literal subscription per
    # subject (neighbouring messages reach different subscriptions), and many
    # concurrent requesters, each with its own inbox
    "pubsub_mixed": ("pubsub", {"subjects": 1000, "literal": True}, True, 1),
    "fanout8_mixed": ("fanout", {"subs": 8, "subjects": 1000, "literal": True}, True, 1),
    "cluster3_mixed": ("cluster", {"subjects": 1000, "literal": True}, True, 3),
    "reqmany": ("req", {"pubs": 16}, True, 1),
    "cluster": ("cluster", {}, True, 3),
    "gateway": ("gateway", {}, True, 2),
    # a hub and its leaf: publisher on the hub, subscriber on the leaf; leafup the reverse
    "leaf": ("leaf", {}, True, 2),
    "leafup": ("leaf", {}, True, 2),
    "conns": ("conns", {}, False, 1),
    # pubsub with both clients over WebSocket (ws://, no TLS, no compression)
    "ws": ("pubsub", {}, True, 1),
    # JetStream (file store, -js -sd): async publish with 256 PubAcks in flight, then a
    # pull drain with explicit acks; one run, reported as two cases (rate and CPU per phase)
    "js": ("js", {}, True, 1),
    "jsdrain": ("js", {}, True, 1),
    # a hub (JetStream domain hub) and its leaf (domain leaf) mirroring a hub stream:
    # publish at the hub, until the leaf's mirror holds every message
    "mirror": ("mirror", {}, True, 2),
}
WEBSOCKET_BLOCK = "websocket { listen: \"%s:-1\", no_tls: true }\n" % HOST
DEFAULT_CASES = ["pub", "pubsub", "fanout", "queue", "req", "cluster", "conns"]

PIN = "import os,sys; os.sched_setaffinity(0, %r); os.execvp(sys.argv[1], sys.argv[1:])"
CLK = os.sysconf("SC_CLK_TCK")


class ServerSpec:
    def __init__(self, label, argv):
        self.label, self.argv = label, argv

    def version(self):
        """First line of ``CMD --version`` (``pluggy-nats version`` for ``... serve``)."""
        argv = self.argv[:1] + ["version"] if self.argv[1:2] == ["serve"] else self.argv + [
            "--version"]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                               stdin=subprocess.DEVNULL, start_new_session=True)
            lines = (r.stdout or r.stderr).strip().splitlines()
            return lines[0][:80] if lines else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"


def parse_servers(items):
    specs, seen = [], set()
    for item in items:
        label, sep, cmd = item.partition("=")
        if not sep:
            cmd, label = item, None
        argv = shlex.split(cmd)
        if not argv:
            raise SystemExit("empty server command: %r" % item)
        label = label or os.path.basename(argv[0])
        while label in seen:
            label += "'"
        seen.add(label)
        specs.append(ServerSpec(label, argv))
    return specs


def tree_cpu(pid):
    """CPU seconds (user + system) of pid and its descendants."""
    total = 0.0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/stat" % p, "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
            total += (int(rest[11]) + int(rest[12])) / CLK
        except (OSError, IndexError, ValueError):
            pass
    return total


def busy_seconds():
    """CPU-seconds the whole machine spent in user, nice and system time."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:4]]
        return sum(v) / CLK
    except (OSError, ValueError):
        return None


class Runner:
    def __init__(self, args):
        self.a = args
        self.workdir = tempfile.mkdtemp(prefix="pluggy-nats-bench-")
        self.n = 0
        self.srv_cpus = self.gen_cpus = None
        cpus = sorted(os.sched_getaffinity(0))
        if args.pin == "auto":
            if len(cpus) >= 2:
                self.srv_cpus, self.gen_cpus = {cpus[0]}, {cpus[1]}
        elif args.pin != "none":
            from . import parse_cpus

            s, g = args.pin.split(":")
            self.srv_cpus, self.gen_cpus = parse_cpus(s), parse_cpus(g)
        self.failed_any = False
        self.conf, self.userinfo = args.conf, ""
        if args.auth:
            self.conf = os.path.join(self.workdir, "auth.conf")
            with open(self.conf, "w") as f:
                f.write(AUTH_CONF)
            self.userinfo = "bench:bench@"
        if args.user:
            self.userinfo = "%s:%s@" % (quote(args.user, safe=""),
                                        quote(args.password or "", safe=""))
        if self.conf:
            self.conf = os.path.abspath(self.conf)

    def url(self, proc, websocket=False):
        """The server's client URL (``ws://`` for WebSocket cases), with the
        generator's credentials."""
        url = proc.ws_url if websocket else proc.url
        return url.replace("://", "://" + self.userinfo, 1)

    def gateway_conf(self, spec, i, gports):
        """A config file for server ``i`` of the gateway case: cluster A or B,
        each naming the other's gateway (the --conf/--auth file included)."""
        names = ("A", "B")
        text = 'include "%s"\n' % self.conf if self.conf else ""
        text += ('gateway {\n  name: %s\n  listen: "%s:%d"\n  gateways: [\n%s\n  ]\n}\n'
                 % (names[i], HOST, gports[i], "\n".join(
                     '    {name: %s, url: "nats://%s:%d"}' % (names[j], HOST, gports[j])
                     for j in range(2) if j != i)))
        path = os.path.join(self.workdir, "%03d-%s-gw%d.conf" % (self.n, spec.label, i))
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_servers(self, spec, count, websocket=False, gateway=False, leaf=False,
                      jetstream=False):
        self.n += 1
        command = list(spec.argv)
        if self.srv_cpus:
            command = [sys.executable, "-c", PIN % (self.srv_cpus,)] + command
        procs = []
        rports = free_ports(count) if count > 1 else []
        conf = self.conf
        if websocket:
            conf = os.path.join(self.workdir, "websocket.conf")
            with open(conf, "w") as f:
                if self.conf:
                    f.write("include %s\n" % json.dumps(self.conf))
                f.write(WEBSOCKET_BLOCK)
        try:
            for i in range(count):
                args = ["-c", conf] if conf else []
                if gateway:
                    args = ["-c", self.gateway_conf(spec, i, rports)]
                args += ["-a", HOST, "-p", "-1"]
                if jetstream:
                    args += ["-js", "-sd", os.path.join(self.workdir, "%03d-%s-js%d" % (
                        self.n, spec.label, i))]
                if leaf and count == 2:
                    # server 0 is the hub (a leafnode listener), server 1 its leaf
                    conf = os.path.join(self.workdir, "%03d-%s-%d.conf" % (self.n, spec.label, i))
                    with open(conf, "w") as f:
                        f.write('leafnodes { listen: "%s:%d" }\n' % (HOST, rports[0]) if i == 0
                                else 'leafnodes { remotes: [ { url: "nats-leaf://%s:%d" } ] }\n'
                                % (HOST, rports[0]))
                        if jetstream:  # the mirror case: a domain on each side
                            f.write('jetstream { domain: %s, store_dir: %s }\n' % (
                                "hub" if i == 0 else "leaf", json.dumps(os.path.join(
                                    self.workdir, "%03d-%s-js%d" % (self.n, spec.label, i)))))
                    args = ["-c", conf, "-a", HOST, "-p", "-1"]
                elif count > 1 and not gateway:
                    routes = ",".join("nats://%s:%d" % (HOST, rports[j])
                                      for j in range(count) if j != i)
                    args += ["--cluster", "nats://%s:%d" % (HOST, rports[i]),
                             "--cluster_name", "bench", "--routes", routes]
                log = os.path.join(self.workdir, "%03d-%s-%d.log" % (self.n, spec.label, i))
                proc = ServerProcess(command, args, log, "%s-%d" % (spec.label, i))
                procs.append(proc)
                proc.start(self.a.start_timeout)
        except Exception:
            for proc in procs:
                proc.stop(5)
            raise
        return procs

    def options(self, case, size, urls, pid):
        from .command import finish_options

        scen, extra, _, _ = CASES[case]
        a = self.a
        o = argparse.Namespace(
            scenario=scen, url=urls[0], sub_url=urls[-1] if len(urls) > 1 else None,
            size=size or 16, msgs=a.msgs, duration=a.duration, pubs=None, subs=None,
            window=a.window, batch=a.batch, verify=a.verify, timeout=a.timeout,
            conns=a.conns, hold=0.0, subjects=a.subjects, literal=a.literal, quiet=True,
            pid=pid,
            cpus=self.gen_cpus, sink=False, json=None, inflight=256, pull_batch=500,
            js_storage="file", js_api="$JS.hub.API")
        if case == "fanout":
            extra = {"subs": a.fanout_subs}
        elif case == "queue":
            extra = {"pubs": a.queue_members, "subs": a.queue_members}
        for k, v in extra.items():
            setattr(o, k, v)
        return finish_options(o)

    def run_case(self, spec, case, size):
        scen, _, _, count = CASES[case]
        websocket = case == "ws"
        procs = self.start_servers(spec, count, websocket=websocket, gateway=scen == "gateway",
                                   leaf=scen in ("leaf", "mirror"),
                                   jetstream=scen in ("js", "mirror"))
        try:
            urls = [self.url(p, websocket) for p in procs]
            if case == "leafup":
                urls.reverse()  # publisher on the leaf, subscriber on the hub
            o = self.options(case, size, urls, procs[0].pid)
            cpu0 = sum(tree_cpu(p.pid) for p in procs)
            busy0 = busy_seconds()
            t0 = time.monotonic()
            if scen == "js":
                res = self.run_js(o, procs, case)
            elif scen == "mirror":
                from .jsmirror import run_mirror

                o.msgs = o.msgs or 100_000
                res = run_mirror(o)
            else:
                res = run(o)
            wall = time.monotonic() - t0
            busy1 = busy_seconds()
            cpu1 = sum(tree_cpu(p.pid) for p in procs)
            dcpu = cpu1 - cpu0
            res["server_cpu_s"] = dcpu
            res["wall_s"] = wall
            if busy0 is not None and busy1 is not None and wall > 0:
                # CPUs' worth used by everything else (other work on a shared
                # machine) during the run: a noise flag, > ~0.1 means competition
                other = busy1 - busy0 - dcpu - (res.get("gen_cpu_s") or 0)
                res["other_cpu"] = max(0.0, other) / wall
            secs = res.get("secs") or wall
            if scen == "js":
                pass  # rate and CPU per message of one phase: set by run_js
            elif scen == "mirror":
                res["srv_cpu"] = dcpu / secs if secs else None
                res["msgs_per_cpu_s"] = res["sent"] / dcpu if dcpu > 0 else None
            elif scen != "conns":
                res["srv_cpu"] = dcpu / secs if secs else None
                work = res.get("sent") if scen == "pub" else res.get("delivered")
                res["msgs_per_cpu_s"] = work / dcpu if work and dcpu > 0 else None
                if res.get("gen_cpu_s") is not None and secs:
                    res["gen_cpu"] = res["gen_cpu_s"] / secs
            for i, p in enumerate(procs):
                if p.proc.poll() is not None and not res.get("error"):
                    res["error"] = "server %d exited with %s during the run" % (
                        i, p.proc.returncode)
                    res["ok"] = False
            return res
        finally:
            for p in procs:
                p.stop(10)


    def run_js(self, o, procs, case):
        """One JetStream run; ``js`` reports its publish phase, ``jsdrain`` its drain
        (rate, and messages per server CPU-second of that phase alone)."""
        from .jetstream import run_js

        pids = [p.pid for p in procs]
        o.js_mark = lambda: sum(tree_cpu(pid) for pid in pids)
        o.msgs = o.msgs or 100_000
        res = run_js(o)
        marks = res.pop("marks")
        phase = 1 if case == "jsdrain" else 0
        secs = res["drain_secs" if phase else "pub_secs"]
        dcpu = marks[phase + 1] - marks[phase]
        res["msgs_per_s"] = res["drain_msgs_per_s" if phase else "pub_msgs_per_s"]
        res["secs"] = secs
        res["srv_cpu"] = dcpu / secs if secs else None
        res["msgs_per_cpu_s"] = res["sent"] / dcpu if dcpu > 0 else None
        return res


def case_name(case, size):
    return "%s/%dB" % (case, size) if size else case


def brief(case, res):
    if not res.get("ok"):
        return "ERROR " + str(res.get("error"))[:150]
    if case == "conns":
        kb = res.get("kb_per_conn")
        return "%s conns, RSS %s MB, %s KB/conn" % (
            res.get("conns"), "%.1f" % res["rss_after_mb"] if res.get("rss_after_mb") else "-",
            "%.1f" % kb if kb is not None else "-")
    if CASES[case][0] == "req":
        lat = res.get("lat_us") or {}
        return "p50 %.1fus p99 %.1fus p99.9 %.1fus other %.2f" % (
            lat.get("p50", 0), lat.get("p99", 0), lat.get("p99.9", 0), res.get("other_cpu") or 0)
    text = "%s msgs/s srv_cpu %s" % (fmt_rate(res.get("msgs_per_s")),
                                      "%.2f" % res["srv_cpu"] if res.get("srv_cpu") else "-")
    if res.get("gen_cpu") is not None:
        text += " gen_cpu %.2f" % res["gen_cpu"]
    if res.get("other_cpu") is not None:
        text += " other %.2f" % res["other_cpu"]
    return text


def build_parser():
    ap = argparse.ArgumentParser(
        prog="pluggy-nats bench compare", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--server", action="append", metavar="LABEL=CMD", default=[],
                    help="server command taking nats-server flags (repeat; the first is the"
                         " base of the ratios). Default: py=pluggy-nats serve, go=nats-server")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per server (default 3)")
    ap.add_argument("--only", help="comma-separated cases: %s" % ", ".join(CASES))
    ap.add_argument("--skip", default="", help="comma-separated cases to leave out")
    ap.add_argument("--sizes", default="16,1024", help="payload sizes (default 16,1024)")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    ap.add_argument("--msgs", type=int, default=None, help="messages per run instead")
    ap.add_argument("--window", type=int, default=4 << 20, help="flow-control window, bytes")
    ap.add_argument("--batch", type=int, default=64 << 10, help="bytes per publisher write")
    ap.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                    help="tag payloads to prove exactly-once delivery (default: queue only)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-run connect/drain timeout")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="server start-up timeout")
    ap.add_argument("--conns", type=int, default=10000, help="idle connections for conns")
    ap.add_argument("--fanout-subs", type=int, default=8, help="subscribers for fanout")
    from .command import add_subjects
    add_subjects(ap)
    ap.add_argument("--queue-members", type=int, default=4,
                    help="publishers and queue subscribers for queue")
    ap.add_argument("--auth", action="store_true",
                    help="servers require a user and password (a built-in config, one account)")
    ap.add_argument("--conf", metavar="FILE", help="config file for every server (-c FILE)")
    ap.add_argument("--user", help="user the generator logs in as (with --conf)")
    ap.add_argument("--password", help="its password")
    ap.add_argument("--pin", default="auto",
                    help="auto | none | SERVER_CPUS:GEN_CPUS (auto: server on the first CPU,"
                         " generator on the second, when there are two)")
    ap.add_argument("--max-minutes", type=float, default=60.0,
                    help="start no new run after this long")
    ap.add_argument("--json", metavar="FILE", help="write meta, summary and every run as JSON")
    return ap


def main(argv):
    a = build_parser().parse_args(argv)
    servers = a.server or ["py=pluggy-nats serve", "go=nats-server"]
    specs = parse_servers(servers)
    for s in specs:
        if not shutil.which(s.argv[0]):
            raise SystemExit("server command not found: %s" % s.argv[0])
    cases = [c for c in (a.only.split(",") if a.only else DEFAULT_CASES) if c]
    skip = {c for c in a.skip.split(",") if c}
    for c in cases + sorted(skip):
        if c not in CASES:
            raise SystemExit("unknown case %r; known: %s" % (c, ", ".join(CASES)))
    cases = [c for c in cases if c not in skip]
    sizes = [int(x) for x in a.sizes.split(",") if x.strip()]
    r = Runner(a)
    if r.gen_cpus:
        os.sched_setaffinity(0, r.gen_cpus)
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f
                              if ln.startswith("model name")), "?")
    except OSError:
        pass
    started = datetime.datetime.now().astimezone()
    print("pluggy-nats bench compare, %s" % started.strftime("%Y-%m-%d %H:%M %Z"), flush=True)
    print("machine: %d cpus (%s), %s %s, python %s; pin: server %s, generator %s" % (
        os.cpu_count(), cpu_model, platform.system(), platform.release(),
        platform.python_version(), sorted(r.srv_cpus or []) or "-",
        sorted(r.gen_cpus or []) or "-"), flush=True)
    versions = {s.label: s.version() for s in specs}
    for s in specs:
        print("server %s: %s  [%s]" % (s.label, shlex.join(s.argv), versions[s.label]),
              flush=True)
    t_start = time.monotonic()
    results, given_up, stopped = {}, set(), False
    try:
        for case in cases:
            for size in (sizes if CASES[case][2] else [None]):
                name = case_name(case, size)
                results[name] = {s.label: [] for s in specs}
                for rep in range(a.reps):
                    for spec in specs:
                        if (name, spec.label) in given_up:
                            continue
                        if time.monotonic() - t_start > a.max_minutes * 60:
                            stopped = True
                            break
                        t0 = time.monotonic()
                        try:
                            res = r.run_case(spec, case, size)
                        except Exception as exc:  # a failing run is a result, not a crash
                            res = {"ok": False, "error": "%s: %s" % (type(exc).__name__,
                                                                     str(exc)[:400])}
                        res["rep"] = rep
                        if not res.get("ok"):
                            r.failed_any = True
                            if rep == 0:
                                given_up.add((name, spec.label))  # unsupported: don't repeat
                        results[name][spec.label].append(res)
                        print("  %-16s rep %d %-8s %s  (%.1fs)" % (
                            name, rep + 1, spec.label, brief(case, res), time.monotonic() - t0),
                            flush=True)
    except KeyboardInterrupt:
        print("  -- interrupted: the summary covers the runs made so far")
    if stopped:
        print("  -- --max-minutes reached: the remaining runs were skipped")
    labels = [s.label for s in specs]
    summary = {name: {label: summarize_case(name, runs) for label, runs in per.items()}
               for name, per in results.items()}
    print("\n".join(format_comparison(summary, labels)))
    print("\nwall %.0fs; medians of %d reps; ratios are %s/other (for latency and"
          " KB/conn lower is better)" % (time.monotonic() - t_start, a.reps, labels[0]))
    if a.json:
        meta = {"date": started.isoformat(timespec="seconds"), "cpu": cpu_model,
                "nproc": os.cpu_count(), "python": platform.python_version(),
                "pin": {"server": sorted(r.srv_cpus or []), "generator": sorted(r.gen_cpus or [])},
                "servers": {s.label: {"argv": s.argv, "version": versions[s.label]}
                            for s in specs},
                "args": {k: v for k, v in vars(a).items() if k != "server"}}
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "summary": summary, "runs": results}, f, indent=1,
                      default=str)
    if r.failed_any:
        print("logs kept in %s" % r.workdir)
    else:
        shutil.rmtree(r.workdir, ignore_errors=True)
    return 0
