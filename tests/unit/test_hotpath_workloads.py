"""The in-process workloads of ``python -m pluggy_nats.bench.hotpath`` deliver
what they claim: every message to every subscriber (the real-traffic "lit"
workloads cycle over 1000 literal subscriptions, so a wrong match or a lost
frame shows as a count that does not add up)."""

import pytest

from pluggy_nats.bench.hotpath import SCENARIOS, Workload


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n.startswith("lit_"))
                         + ["mixed_pubsub16", "pubsub1k", "route_in16", "pubsub1k_cut",
                            "fanout1k_cut"])
def test_workload_delivers_every_message(name):
    size, plain, members, path, *_ = SCENARIOS[name]
    w = Workload(name)
    msgs, delivered = w.run(2)
    per_msg = plain + (1 if members else 0) + (1 if path == "route_out" else 0)
    assert msgs > 0 and delivered == msgs * per_msg


# What crosses the link, frame by frame, for one read of each link workload:
# the publisher's PUB frames as the link's verb (outbound), the link's frames
# as the subscriber's MSG with its sid (inbound).
LINK_FRAMES = {"gw_out": (b"PUB ", b"RMSG BENCH "), "leaf_out": (b"PUB ", b"LMSG "),
               "gw_in": (b"RMSG BENCH ", b"MSG "), "leaf_in": (b"LMSG ", b"MSG ")}


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n[:3] in ("gw_", "lea")))
def test_link_workload_frames(name):
    size, plain, members, path, *_ = SCENARIOS[name]
    w = Workload(name)
    target = w.subs[-1]
    verb, out = LINK_FRAMES[path]
    expected = w.data.replace(verb, out)
    if path.endswith("_in"):  # the subscriber's sid (1: the wildcard subscription)
        expected = b"".join(
            line.replace(b" %d" % size, b" 1 %d" % size, 1) if line.startswith(b"MSG ") else line
            for line in expected.split(b"\r\n")[:-1] for line in (line + b"\r\n",))
    # the first read decides each line; later ones go by what was decided
    for n in range(1, 4):
        target.out.clear()
        w.feed(w.data)
        assert bytes(target.out) == expected
        assert target.out_msgs == w.count * n


@pytest.mark.parametrize("name", ["gw_in16", "leaf_in16", "lit_route_in16"])
def test_link_runs_follow_interest_changes(name):
    """What a link decided per line is dropped when interest changes: a
    subscription gone, one added, an auto-unsubscribe limit."""
    w = Workload(name)
    sub = w.subs[0]
    sid = b"1" if name != "lit_route_in16" else b"4"  # (lit: foo.3's subscription)
    subject = b"foo.*" if name != "lit_route_in16" else b"foo.3"
    for _ in range(2):
        w.feed(w.data)
    before = sub.out_msgs
    assert before == 2 * w.count
    ours = w.count if name != "lit_route_in16" else w.data.count(b" foo.3 ")
    sub.parser.feed(b"UNSUB %s\r\n" % sid)
    w.feed(w.data)
    assert sub.out_msgs == before + w.count - ours
    sub.parser.feed(b"SUB %s 5000\r\n" % subject)
    sub.out.clear()
    w.feed(w.data)
    assert sub.out_msgs == before + 2 * w.count - ours
    assert bytes(sub.out).count(b" 5000 ") == ours
    sub.parser.feed(b"UNSUB 5000 5\r\n")  # 5 more, then gone
    sub.out.clear()
    w.feed(w.data)
    assert bytes(sub.out).count(b" 5000 ") == min(5, ours)


@pytest.mark.parametrize("name", ["gw_out1k", "gw_out16", "leaf_out1k", "leaf_out16"])
def test_outbound_runs_count_what_was_published(name):
    """A client's run that only crosses a link is counted by what the link
    framed (``send_run``'s count): the publisher's in_msgs/in_bytes add up,
    also where the link takes only part of the run (a subject the gateway's
    peer has no interest in, a subject the leaf's deny rules keep back)."""
    size = SCENARIOS[name][0]
    w = Workload(name)
    pub = w.feed.__self__.handler
    target = w.subs[-1]
    for n in range(1, 4):
        w.feed(w.data)
        assert (pub.in_msgs, pub.in_bytes) == (w.count * n, w.count * size * n)
    # part of the run stays here: bar.N (no interest), $JS.API.N (denied on a leaf)
    other = b"bar" if name.startswith("gw_") else b"$JS.API"
    frames = [b"PUB %s.%d %d\r\n%s\r\n" % (b"foo" if i % 3 else other, i % 10, size,
                                           b"x" * size) for i in range(30)]
    data = b"".join(frames)
    target.out.clear()
    before = (pub.in_msgs, pub.in_bytes)
    for _ in range(3):  # the later reads: every line and subject seen before
        w.feed(data)
    assert (pub.in_msgs, pub.in_bytes) == (before[0] + 90, before[1] + 90 * size)
    verb = b"RMSG BENCH " if name.startswith("gw_") else b"LMSG "
    assert bytes(target.out) == b"".join(f.replace(b"PUB ", verb) for f in frames
                                         if f.startswith(b"PUB foo")) * 3
