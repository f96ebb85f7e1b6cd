"""Massive scale, composed (issue 12): two clusters of three servers joined by
gateways, two leafs on each cluster and a tenant leaf on each, Go and our
servers mixed at every level, and the same nats-py client code at every
position.

    cluster A: A0 ours, A1 Go, A2 ours      cluster B: B0 Go, B1 ours, B2 Go
    LA1 our leaf  -> A1 (Go hub)            LB1 Go leaf   -> B0 (Go hub)
    LA2 Go leaf   -> A0 (our hub)           LB2 our leaf  -> B1 (our hub)
    TA  Go leaf   -> A2 (our hub), bound to account T on the hub
    TB  our leaf  -> B2 (Go hub), bound to account T on the hub

Everything starts once; each phase polls until interest has spread, then
checks exact outcomes: pub/sub from every position to every position (each
message once), a queue group with members everywhere (each message to exactly
one member), request/reply between every ordered pair of positions, and the
tenant: on the same subjects nothing crosses between account T and the
default account, in either direction, while T's own traffic crosses the
gateway between TA and TB. The same layout, as config files to run by hand, is
in examples/composed/.
"""

import asyncio
import collections
import glob
import os
import subprocess

import nats
import pytest

from pluggy_nats.testing.launch import pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server, run

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "composed")

pytestmark = pytest.mark.interop

# Every cluster node: a leafnode listener where plain leafs land in the default
# account and the tenant's leafs in account T (nats-server wants a system
# account where gateways and leafnodes meet with accounts configured).
CLUSTER_CONFIG = """
accounts { T: {}, SYS: {} }
system_account: SYS
leafnodes {
  listen: "127.0.0.1:-1"
  authorization { users: [
    {user: leaf, password: pleaf}
    {user: tenant, password: ptenant, account: T}
  ] }
}
"""

# name -> (hub, leaf runs Go, hub user)
LEAFS = {
    "LA1": ("A1", False, "leaf"),
    "LA2": ("A0", True, "leaf"),
    "LB1": ("B0", True, "leaf"),
    "LB2": ("B1", False, "leaf"),
    "TA": ("A2", True, "tenant"),
    "TB": ("B2", False, "tenant"),
}
DEFAULT = ["A0", "A1", "A2", "B0", "B1", "B2", "LA1", "LA2", "LB1", "LB2"]
TENANT = ["TA", "TB"]
ACCOUNT = {name: "T" if name in TENANT else "default" for name in DEFAULT + TENANT}
QUIET = 0.5  # the bounded "expect nothing more" wait
SPREAD = 20.0  # how long interest may take to reach every position


async def poll(condition, what, timeout=SPREAD):
    """Await until ``condition()`` holds, checking every 20 ms, up to ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        await asyncio.sleep(0.02)


async def settle(received):
    """Wait until nothing more arrives in ``received`` (lists) for QUIET seconds."""
    loop = asyncio.get_running_loop()
    count, since = -1, loop.time()
    while True:
        now = sum(len(v) for v in received.values())
        if now != count:
            count, since = now, loop.time()
        elif loop.time() - since >= QUIET:
            return
        await asyncio.sleep(0.05)


def collector(received, key):
    async def on_msg(msg):
        received[key].append((msg.subject, msg.data))
    return on_msg


async def pubsub_everywhere(ncs):
    """Every position publishes, every position subscribes to the same
    subjects: each gets every message of its own account exactly once (its
    own included), nothing of the other account."""
    received = collections.defaultdict(list)
    for name, nc in ncs.items():
        await nc.subscribe("ps.>", cb=collector(received, name))
        await nc.flush()

    def seen(dst):
        return {data.split(b":")[0].decode() for subject, data in received[dst]
                if subject.startswith("ps.probe.")}

    wanted = {dst: {src for src in ncs if ACCOUNT[src] == ACCOUNT[dst]} for dst in ncs}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SPREAD
    probe = 0
    while any(not wanted[d] <= seen(d) for d in ncs):
        if loop.time() > deadline:
            missing = {d: sorted(wanted[d] - seen(d)) for d in ncs if wanted[d] - seen(d)}
            raise AssertionError("pub/sub interest never complete; missing sources: %s"
                                 % missing)
        probe += 1
        for src, nc in ncs.items():
            await nc.publish("ps.probe." + src, b"%s:%d" % (src.encode(), probe))
        for nc in ncs.values():
            await nc.flush()
        await asyncio.sleep(0.1)
    for dst in ncs:  # no probe crossed accounts while interest spread
        assert seen(dst) == wanted[dst], (dst, seen(dst) - wanted[dst])

    await settle(received)
    received.clear()
    n = 10
    for src, nc in ncs.items():
        for i in range(n):
            await nc.publish("ps.data." + src, b"%s:%d" % (src.encode(), i))
        await nc.flush()
    expected = {dst: sum(n for src in wanted[dst]) for dst in ncs}
    await poll(lambda: all(len(received[d]) >= expected[d] for d in ncs), "pub/sub delivery")
    await settle(received)
    for dst in ncs:
        got = collections.Counter(received[dst])
        want = collections.Counter(("ps.data." + src, b"%s:%d" % (src.encode(), i))
                                   for src in wanted[dst] for i in range(n))
        assert got == want, (dst, "extra/duplicated: %s" % sorted((got - want).elements())[:5],
                             "missing: %s" % sorted((want - got).elements())[:5])


async def queue_group_everywhere(ncs):
    """One queue group "workers" on "q.work" with a member at every position
    (the tenant's leafs form their own group on the same subject, in T): every
    message published anywhere goes to exactly one member of its account."""
    received = collections.defaultdict(list)
    for name, nc in ncs.items():
        await nc.subscribe("q.work", queue="workers", cb=collector(received, name))
        await nc.flush()

    def delivered(account, payload):
        return any(data == payload for name in ncs if ACCOUNT[name] == account
                   for _, data in received[name])

    # each publisher's server must see the group's interest before the count
    for src, nc in ncs.items():
        probe = b"probe:" + src.encode()

        async def until_served(nc=nc, probe=probe, src=src):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SPREAD
            while not delivered(ACCOUNT[src], probe):
                if loop.time() > deadline:
                    raise AssertionError("queue group interest never reached " + src)
                await nc.publish("q.work", probe)
                await nc.flush()
                await asyncio.sleep(0.1)

        await until_served()
    await settle(received)
    received.clear()

    n = 20
    for src, nc in ncs.items():
        for i in range(n):
            await nc.publish("q.work", b"%s:%d" % (src.encode(), i))
        await nc.flush()
    total = len(ncs) * n
    await poll(lambda: sum(len(v) for v in received.values()) >= total, "queue deliveries")
    await settle(received)
    for account in ("default", "T"):
        got = collections.Counter(data for name in ncs if ACCOUNT[name] == account
                                  for _, data in received[name])
        want = collections.Counter(b"%s:%d" % (src.encode(), i) for src in ncs
                                   if ACCOUNT[src] == account for i in range(n))
        assert got == want, (account, "extra/duplicated: %s" % sorted((got - want).elements())[:5],
                             "missing: %s" % sorted((want - got).elements())[:5])
    return {name: len(received[name]) for name in ncs}


async def request(nc, subject, timeout, fresh_inbox=True):
    """The reply's data, or None when nobody answered (no responders or timeout).
    ``fresh_inbox``: a new inbox per request (nats-py ``old_style``), whose
    interest is still spreading when the reply comes: a reply crossing a
    gateway then travels mapped (``_GR_.``), the path a new requester takes;
    otherwise the connection's long-lived wildcard inbox."""
    try:
        return (await nc.request(subject, b"ping", timeout=timeout, old_style=fresh_inbox)).data
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return None


async def request_reply_everywhere(ncs):
    """A responder at every position on "rr.<position>"; every position asks
    every other one of its account and gets that position's answer."""
    for name, nc in ncs.items():
        async def respond(msg, name=name):
            await msg.respond(name.encode())

        await nc.subscribe("rr." + name, cb=respond)
        await nc.flush()

    async def ask(src, dst):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SPREAD
        while True:
            answer = await request(ncs[src], "rr." + dst, timeout=1.0)
            if answer is not None:
                assert answer == dst.encode(), (src, dst, answer)
                return
            if loop.time() > deadline:
                raise AssertionError("request %s -> %s never answered" % (src, dst))
            await asyncio.sleep(0.1)

    pairs = [(s, d) for s in ncs for d in ncs if s != d and ACCOUNT[s] == ACCOUNT[d]]
    await asyncio.gather(*(ask(s, d) for s, d in pairs))
    # once interest is complete, every pair answers at the first try, with a
    # fresh inbox and with the connection's long-lived one
    for fresh in (True, False):
        answers = await asyncio.gather(*(request(ncs[s], "rr." + d, 2.0, fresh)
                                         for s, d in pairs))
        failed = [(s, d) for (s, d), a in zip(pairs, answers, strict=True) if a != d.encode()]
        assert not failed, ("fresh inbox" if fresh else "long-lived inbox", failed)
    return len(pairs)


async def tenant_requests_isolated(ncs):
    """The same service subject answered in both accounts: each account's
    requesters get only their own account's answer; a subject served only in
    the other account gets no answer at all."""
    for name, answer in (("LB1", b"default"), ("TB", b"tenant")):
        async def respond(msg, answer=answer):
            await msg.respond(answer)

        await ncs[name].subscribe("svc.shared", cb=respond)
        await ncs[name].flush()
    for name in ("LA1", "TA"):
        async def respond_only(msg, name=name):
            await msg.respond(name.encode())

        await ncs[name].subscribe("svc.only." + name, cb=respond_only)
        await ncs[name].flush()

    async def answered(src, subject, want):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SPREAD
        while (answer := await request(ncs[src], subject, 1.0)) is None:
            assert loop.time() < deadline, "%s never answered on %s" % (src, subject)
        assert answer == want, (src, subject, answer)

    # interest for every service has spread (each asked from the far cluster)
    await answered("A0", "svc.shared", b"default")
    await answered("TA", "svc.shared", b"tenant")
    await answered("LB2", "svc.only.LA1", b"LA1")
    await answered("TB", "svc.only.TA", b"TA")
    for src in ncs:
        want = b"tenant" if ACCOUNT[src] == "T" else b"default"
        assert await request(ncs[src], "svc.shared", 2.0) == want, src
        other = "LA1" if ACCOUNT[src] == "T" else "TA"
        assert await request(ncs[src], "svc.only." + other, QUIET) is None, (src, other)


def test_composed_supercluster_with_leafs(make_supercluster, make_leaf):
    sc = make_supercluster({"A": 3, "B": 3}, go={"A": (1,), "B": (0, 2)},
                           config=CLUSTER_CONFIG)
    servers = {"%s%d" % (c, i): s for c in "AB" for i, s in enumerate(sc[c])}
    passwords = {"leaf": "pleaf", "tenant": "ptenant"}
    for name, (hub, go, user) in LEAFS.items():
        servers[name] = make_leaf(servers[hub], user=user, password=passwords[user], go=go,
                                  name=name)

    async def main():
        ncs = {}
        for name in DEFAULT + TENANT:  # the same client code at every position
            ncs[name] = await nats.connect(servers[name].url, allow_reconnect=False)
        try:
            await pubsub_everywhere(ncs)
            shares = await queue_group_everywhere(ncs)
            pairs = await request_reply_everywhere(ncs)
            await tenant_requests_isolated(ncs)
        finally:
            for nc in ncs.values():
                await nc.close()
        print("queue group shares:", shares, "request/reply pairs:", pairs)

    run(main(), timeout=120)


def test_composed_example_configs_are_valid_for_both_servers():
    """examples/composed/ runs by hand with either server on every file: both
    accept every file (``-t``), checked all at once."""
    files = sorted(glob.glob(os.path.join(EXAMPLE, "*.conf")))
    assert len(files) == 14, files
    commands = [(command, path) for path in files
                for command in (pluggy_nats_command(), require_go_nats_server())]
    procs = [subprocess.Popen(command + ["-t", "-c", path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for command, path in commands]
    failed = []
    for (command, path), proc in zip(commands, procs, strict=True):
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
        if proc.returncode != 0 or "is valid" not in out:
            failed.append((os.path.basename(command[-1]), os.path.basename(path), out[-300:]))
    assert not failed, failed
