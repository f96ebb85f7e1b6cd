"""The in-process workloads of ``python -m pluggy_nats.bench.hotpath`` deliver
what they claim: every message to every subscriber (the real-traffic "lit"
workloads cycle over 1000 literal subscriptions, so a wrong match or a lost
frame shows as a count that does not add up)."""

import pytest

from pluggy_nats.bench.hotpath import SCENARIOS, Workload


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n.startswith("lit_"))
                         + ["mixed_pubsub16", "pubsub1k", "route_in16"])
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
    w.feed(w.data)
    verb, out = LINK_FRAMES[path]
    expected = w.data.replace(verb, out)
    if path.endswith("_in"):  # the subscriber's sid (1: the wildcard subscription)
        expected = b"".join(
            line.replace(b" %d" % size, b" 1 %d" % size, 1) if line.startswith(b"MSG ") else line
            for line in expected.split(b"\r\n")[:-1] for line in (line + b"\r\n",))
    assert bytes(target.out) == expected
    assert target.out_msgs == w.count
