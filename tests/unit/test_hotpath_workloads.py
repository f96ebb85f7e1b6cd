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
