"""``/explainz``: for each reason, the explanation matches what a real
publish then delivers, on the composed system of conftest.py."""

import asyncio
import signal
import time

import nats

from pluggy_nats.testing.plugin import run

from .topology_helpers import explain, get, named_servers, reasons, receiving_servers

# position -> the server name explain reports for it
NAMES = {"A0": "py-A-0", "A1": "go-A-1", "B0": "py-B-0", "LA": "LA", "LG": "LG", "TB": "TB",
         "J0": "J0"}
QUIET = 0.5


async def subscribe(system, spec, got):
    """``spec``: [(position, subject, queue, user)]; messages land in
    ``got[position]``. Returns the connections."""
    conns = []
    for pos, subject, queue, user in spec:
        nc = await nats.connect(system.url(pos, user, user) if user else system.url(pos),
                                name="sub-" + pos)

        async def on_msg(msg, pos=pos):
            got.setdefault(pos, []).append(msg.subject)

        await nc.subscribe(subject, queue=queue or "", cb=on_msg)
        await nc.flush()
        conns.append(nc)
    return conns


async def until_explained(server, account, subject, want, extra="", timeout=20.0):
    """Poll explain until it names exactly ``want`` (interest takes a moment to
    spread); returns the explanation."""
    deadline = time.monotonic() + timeout
    while True:
        body = await asyncio.to_thread(explain, server, account, subject, extra)
        if named_servers(body) == want or time.monotonic() > deadline:
            assert named_servers(body) == want, body
            return body
        await asyncio.sleep(0.1)


async def publish(system, pos, subject, n=1, user=None):
    nc = await nats.connect(system.url(pos, user, user) if user else system.url(pos))
    for _ in range(n):
        await nc.publish(subject, b"x")
    await nc.flush()
    await nc.close()


async def delivered(got, want_count):
    deadline = time.monotonic() + 10
    while sum(len(v) for v in got.values()) < want_count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(QUIET)  # nothing more may arrive
    return {NAMES[p] for p in got}


def check(system, spec, account, subject, want, publisher="A0", user=None, n=1,
          pub_subject=None, asked=None):
    """Subscribe per ``spec``, wait until explain names ``want``, publish, and
    compare who got it with the explanation. Returns the explanation. With
    ``asked``, that server explains a publish on ``publisher`` (``from=``)."""
    async def main():
        got = {}
        conns = await subscribe(system, spec, got)
        try:
            extra = "&from=" + NAMES[publisher] if asked else ""
            body = await until_explained(system[asked or publisher], account, subject, want,
                                         extra)
            await publish(system, publisher, pub_subject or subject, n, user)
            expected = receiving_servers(body)
            assert await delivered(got, len(expected) * n) == expected
            return body, got
        finally:
            for nc in conns:
                await nc.close()

    return run(main())


def test_explain_fan_out_everywhere(system):
    spec = [(p, "fan.*", None, None) for p in ("A0", "A1", "B0", "LA", "LG", "TB", "J0")]
    body, _ = check(system, spec, "APP", "fan.x",
                    {"py-A-0", "go-A-1", "py-B-0", "LA", "LG", "J0"})
    kinds = {r["server"]: r["kind"] for r in body["receivers"]}
    assert kinds == {"py-A-0": "client", "go-A-1": "client", "py-B-0": "client",
                     "LA": "leaf server", "LG": "leaf server", "J0": "client"}
    assert [r["name"] for r in body["receivers"] if r["server"] == "go-A-1"] == ["sub-A1"]
    # TB's subscriber sits in account T on the hub: isolation, said on B0's link
    assert ("py-B-0", "leaf", "isolation") in reasons(body)
    assert body["servers_reached"] == ["J0", "go-A-1", "py-A-0", "py-B-0"]


def test_explain_no_interest(system):
    body = explain(system["A0"], "APP", "nobody.here")
    assert receiving_servers(body) == set() and body["partial"] is False
    why = reasons(body)
    assert ("py-A-0", "route", "no_interest") in why
    assert ("py-A-0", "leaf", "no_interest") in why
    gateway = [s for s in body["not_delivered"] if s.get("link") == "gateway"]
    assert gateway and gateway[0]["reason"]["code"] == "gateway_no_interest"
    assert "Interest-Only" in gateway[0]["reason"]["text"]
    assert body["servers_reached"] == ["py-A-0"]


def test_explain_queue_group_picks_the_publishing_cluster(system):
    spec = [("A1", "work.x", "w", None), ("B0", "work.x", "w", None)]
    body, got = check(system, spec, "APP", "work.x", {"go-A-1", "py-B-0"}, n=20)
    (group,) = body["queue_groups"]
    assert group["queue"] == "w" and "cluster A" in group["picked"]
    assert group["candidates"] == ["go-A-1"]
    assert len(got.get("A1", [])) == 20 and not got.get("B0")


def test_explain_published_elsewhere(system):
    # A0 explains a publish on B0: the queue group's member in cluster B is picked
    spec = [("A1", "work.y", "w", None), ("B0", "work.y", "w", None)]
    body, got = check(system, spec, "APP", "work.y", {"go-A-1", "py-B-0"}, n=20,
                      publisher="B0", asked="A0")
    assert body["origin"]["server"] == "py-B-0"
    (group,) = body["queue_groups"]
    assert group["candidates"] == ["py-B-0"] and "cluster B" in group["picked"]
    assert len(got.get("B0", [])) == 20 and not got.get("A1")
    status, bad = get(system["A0"], "/explainz?account=APP&subject=a.b&from=go-A-1")
    assert status == 400 and "did not answer as a pluggy-nats server" in bad["error"]


def test_explain_permission_deny(system):
    spec = [("A0", "*.plan", None, "limited"), ("B0", "secret.plan", None, None)]
    body, got = check(system, spec, "APP", "secret.plan", {"py-B-0"})
    assert ("py-A-0", "sub-A0", "permission") in reasons(body)
    stop = next(s for s in body["not_delivered"] if s["reason"]["code"] == "permission")
    assert "secret.>" in stop["reason"]["text"]
    assert "A0" not in got


def test_explain_leaf_deny_rule(system):
    spec = [("LA", "noimp.x", None, None), ("A1", "noimp.x", None, None)]
    body, got = check(system, spec, "APP", "noimp.x", {"go-A-1"})
    assert ("py-A-0", "leaf", "leaf_deny") in reasons(body)
    assert "LA" not in got


def test_explain_tenant_account(system):
    # In account T (the tenant leaf TB): published on B0 by user t.
    spec = [("TB", "tenant.x", None, None), ("A0", "tenant.x", None, None)]
    body, got = check(system, spec, "T", "tenant.x", {"TB"}, publisher="B0", user="t")
    assert "A0" not in got


def test_explain_mapping(system):
    spec = [("B0", "new.x", None, None)]
    body, got = check(system, spec, "APP", "old.x", {"py-B-0"})
    assert body["mapping"]["from"] == "old.*"
    assert body["mapping"]["explained"] == "new.x"
    assert got["B0"] == ["new.x"]


def test_explain_stream_import(system):
    # APP imports FEED's feed.>; T imports nothing: its subscribers stay dry
    spec = [(p, "feed.x", None, None) for p in ("A0", "A1", "B0")] + [
        ("A0", "feed.x", None, "t"), ("A1", "feed.x", None, "t")]
    body, got = check(system, spec, "FEED", "feed.x", {"py-A-0", "go-A-1", "py-B-0"},
                      user="feed")
    assert {r["via"]["code"] for r in body["receivers"]} == {"import"}
    assert all(r["account"] == "APP" for r in body["receivers"])
    assert {("py-A-0", "sub-A0", "not_imported"), ("go-A-1", "sub-A1", "not_imported")} \
        <= reasons(body)
    assert sum(len(v) for v in got.values()) == 3  # one each, none for T


def test_explain_bad_input(system):
    for query, words in [("?account=NOPE&subject=a.b", "not known to py-A-0"),
                         ("?account=APP&subject=a.*", "not a valid publish subject"),
                         ("?account=APP&subject=a..b", "not a valid publish subject"),
                         ("?account=APP", "subject: required"),
                         ("?subject=a", "account: required"),
                         ("?account=APP&subject=a&timeout=0", "timeout: must be")]:
        status, body = get(system["A0"], "/explainz" + query)
        assert status == 400 and words in body["error"], (query, body)


def test_explain_partial_when_a_server_does_not_answer(system):
    b0 = system["B0"]
    b0_id = get(b0, "/varz")[1]["server_id"]
    b0.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        body = explain(system["A0"], "APP", "nobody.here", "&timeout=1.5")
        took = time.monotonic() - started
    finally:
        b0.signal(signal.SIGCONT)
    assert body["partial"] is True and took < 5
    assert {m.get("server_id") for m in body["missing"]} == {b0_id}
    assert body["servers_reached"] == ["py-A-0"]  # what did answer is still explained
