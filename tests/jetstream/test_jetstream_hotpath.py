"""The in-process JetStream workloads (``python -m pluggy_nats_plugins.jetstream.hotpath``)
do what they claim, so their instruction counts mean something: every publish
answered with a PubAck, every stored message delivered once and acked."""

import json
import re

from pluggy_nats_plugins.jetstream.hotpath import BATCH, JsWorkload


def test_hotpath_pub_stores_and_acks_every_message():
    w = JsWorkload("pub")
    try:
        data = []
        w.sink.send = lambda d: (data.append(bytes(d)), len(d))[1]
        assert w.run(3) == 3 * BATCH
        out = b"".join(data)
        seqs = [json.loads(m)["seq"] for m in re.findall(rb'\{"stream":"HP","seq":\d+\}', out)]
        assert seqs == list(range(1, 3 * BATCH + 1))
        assert w.stream.store.state().msgs == 3 * BATCH
    finally:
        w.close()


def test_hotpath_drain_delivers_and_acks_every_message():
    w = JsWorkload("drain")
    try:
        data = []
        w.sink.send = lambda d: (data.append(bytes(d)), len(d))[1]
        assert w.run(3) == 3 * BATCH
        out = b"".join(data)
        seqs = [int(s) for s in re.findall(rb"\$JS\.ACK\.HP\.d\.1\.(\d+)\.", out)]
        assert seqs == list(range(1, 3 * BATCH + 1))
        assert not w.consumer.pending and w.consumer.afloor_s == 3 * BATCH
    finally:
        w.close()
