"""The in-process JetStream workloads (``python -m pluggy_nats_plugins.jetstream.hotpath``)
do what they claim, so their instruction counts mean something: every publish
answered with a PubAck, every stored message delivered once and acked."""

import json
import re

from pluggy_nats_plugins.jetstream.hotpath import BATCH, JsWorkload


def _run_captured(w, rounds):
    """Run ``rounds`` of the workload; the bytes it sent to its client."""
    data = []
    w.sink.send = lambda d: (data.append(bytes(d)), len(d))[1]
    assert w.run(rounds) == rounds * BATCH
    return b"".join(data)


def test_hotpath_pub_stores_and_acks_every_message():
    w = JsWorkload("pub")
    try:
        out = _run_captured(w, 3)
        seqs = [json.loads(m)["seq"] for m in re.findall(rb'\{"stream":"HP","seq":\d+\}', out)]
        assert seqs == list(range(1, 3 * BATCH + 1))
        assert w.stream.store.state().msgs == 3 * BATCH
    finally:
        w.close()


def test_hotpath_drain_delivers_and_acks_every_message():
    w = JsWorkload("drain")
    try:
        out = _run_captured(w, 3)
        seqs = [int(s) for s in re.findall(rb"\$JS\.ACK\.HP\.d\.1\.(\d+)\.", out)]
        assert seqs == list(range(1, 3 * BATCH + 1))
        assert not w.consumer.pending and w.consumer.afloor_s == 3 * BATCH
    finally:
        w.close()
