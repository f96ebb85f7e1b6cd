"""Differential test: one script of raw JetStream API requests and publishes
(valid and invalid stream/consumer configs, each API call, PubAcks with dedup
and expected headers) against the Go nats-server and ours; the ``type``, the
error codes and the set of keys of every response must be the same."""

import json

import nats
import pytest

from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop

S1 = {"name": "S1", "subjects": ["s1.>"]}
MEM = {"name": "M", "subjects": ["m.>"], "storage": "memory", "max_bytes": 1 << 20,
       "allow_direct": True, "allow_rollup_hdrs": True, "allow_msg_ttl": True,
       "max_msgs_per_subject": 3, "description": "memory one"}


def _cc(stream, **config):
    return {"stream_name": stream, "config": config}


SCRIPT = [
    ("req", "$JS.API.INFO", None),
    ("req", "$JS.API.STREAM.CREATE.S1", S1),
    ("req", "$JS.API.STREAM.CREATE.S1", S1),
    ("req", "$JS.API.STREAM.CREATE.S1", {"name": "S1", "subjects": ["other"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "max_age": -1}),
    ("req", "$JS.API.STREAM.CREATE.BAD", b"{bad json"),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "OTHER"}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "retention": "forever"}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "max_msgs": "x"}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subjects": ["a", "a.>"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subjects": ["a", "a"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "num_replicas": 3}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subjects": ["s1.x"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "max_age": 50_000_000}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "deny_purge": True,
                                          "allow_rollup_hdrs": True}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "discard_new_per_subject": True}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subject_delete_marker_ttl":
                                          500_000_000}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subjects": [">"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "subjects": ["$JS.API.x"]}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "duplicate_window": -5}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "persist_mode": "async",
                                          "storage": "memory"}),
    ("req", "$JS.API.STREAM.CREATE.BAD", {"name": "BAD", "persist_mode": "sometimes"}),
    ("req", "$JS.API.STREAM.CREATE.PA", {"name": "PA", "persist_mode": "async"}),
    ("req", "$JS.API.STREAM.CREATE.M", MEM),
    ("req", "$JS.API.STREAM.UPDATE.S1", dict(S1, storage="memory")),
    ("req", "$JS.API.STREAM.UPDATE.S1", dict(S1, max_msgs=100)),
    ("req", "$JS.API.STREAM.UPDATE.NOPE", {"name": "NOPE"}),
    ("pub", "s1.a", b"1", {"Nats-Msg-Id": "x"}),
    ("pub", "s1.a", b"1", {"Nats-Msg-Id": "x"}),
    ("pub", "s1.b", b"2", {"Nats-Expected-Last-Sequence": "7"}),
    ("pub", "s1.b", b"2", {"Nats-Expected-Last-Sequence": "1"}),
    ("pub", "s1.b", b"3", {"Nats-Expected-Stream": "NOT"}),
    ("pub", "s1.b", b"3", {"Nats-Expected-Last-Subject-Sequence": "1"}),
    ("pub", "s1.b", b"3", {"Nats-Expected-Last-Subject-Sequence": "2"}),
    ("pub", "s1.c", b"4", {"Nats-Expected-Last-Msg-Id": "nope"}),
    ("pub", "s1.c", b"4", {"Nats-Expected-Last-Msg-Id": "x"}),
    ("pub", "s1.c", b"5", {"Nats-Rollup": "sub"}),
    ("pub", "s1.c", b"5", {"Nats-TTL": "5s"}),
    ("pub", "m.a", b"6", {"Nats-TTL": "100ms"}),
    ("pub", "m.a", b"6", {"Nats-TTL": "1h"}),
    ("pub", "m.a", b"7", {"Nats-Rollup": "bogus"}),
    ("pub", "m.a", b"8", {"Nats-Rollup": "sub"}),
    ("pub", "m.b", b"9", None),
    ("req", "$JS.API.STREAM.INFO.S1", None),
    ("req", "$JS.API.STREAM.INFO.S1", {"subjects_filter": ">"}),
    ("req", "$JS.API.STREAM.INFO.S1", {"deleted_details": True}),
    ("req", "$JS.API.STREAM.INFO.NOPE", None),
    ("req", "$JS.API.STREAM.NAMES", None),
    ("req", "$JS.API.STREAM.NAMES", {"subject": "m.x"}),
    ("req", "$JS.API.STREAM.LIST", None),
    ("req", "$JS.API.STREAM.MSG.GET.S1", {"seq": 1}),
    ("req", "$JS.API.STREAM.MSG.GET.S1", {"seq": 99}),
    ("req", "$JS.API.STREAM.MSG.GET.S1", {"last_by_subj": "s1.b"}),
    ("req", "$JS.API.STREAM.MSG.GET.S1", {"next_by_subj": "s1.c", "seq": 1}),
    ("req", "$JS.API.STREAM.MSG.GET.S1", {"seq": 1, "last_by_subj": "s1.b"}),
    ("req", "$JS.API.STREAM.MSG.GET.NOPE", {"seq": 1}),
    ("req", "$JS.API.STREAM.MSG.DELETE.S1", {"seq": 1}),
    ("req", "$JS.API.STREAM.MSG.DELETE.S1", {"seq": 1}),
    ("req", "$JS.API.CONSUMER.DURABLE.CREATE.S1.dur", _cc("S1", durable_name="dur",
                                                          ack_policy="explicit")),
    ("req", "$JS.API.CONSUMER.DURABLE.CREATE.S1.dur", _cc("S1", durable_name="other")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.named", _cc("S1", name="named")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.named", _cc("S1", name="named")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.named", dict(_cc("S1", max_deliver=5),
                                                      action="create")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.fresh", dict(_cc("S1"), action="update")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.pushy", _cc("S1", deliver_subject="deliver.here",
                                                    ack_policy="explicit",
                                                    idle_heartbeat=1_000_000_000,
                                                    flow_control=True)),
    ("req", "$JS.API.CONSUMER.CREATE.S1", _cc("S1", durable_name="d2")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", durable_name="y")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x.s1.a", _cc("S1", filter_subject="s1.b")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x.s1.a", _cc("S1", filter_subjects=["s1.a"])),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x.s1.a", _cc("S1", filter_subject="s1.a")),
    ("req", "$JS.API.CONSUMER.CREATE.NOPE.x", _cc("NOPE")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("OTHER")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_subject="d.s",
                                                flow_control=True)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", idle_heartbeat=1_000_000_000)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_policy="by_start_sequence")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_policy="all",
                                                opt_start_seq=4)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_policy="last_per_subject")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", backoff=[1, 2, 3], max_deliver=2,
                                                ack_policy="explicit")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_subject="d.s",
                                                max_waiting=5)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", deliver_subject="d.s",
                                                idle_heartbeat=50_000_000)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", filter_subjects=["s1.>", "s1.a"])),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", filter_subject="s1.a",
                                                filter_subjects=["s1.b"])),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", ack_policy="sometimes")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", num_replicas=3)),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", _cc("S1", sample_freq="lots")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.smp", _cc("S1", sample_freq="50%")),
    ("req", "$JS.API.CONSUMER.CREATE.S1.x", b"{nope"),
    ("req", "$JS.API.CONSUMER.INFO.S1.dur", None),
    ("req", "$JS.API.CONSUMER.INFO.S1.nope", None),
    ("req", "$JS.API.CONSUMER.NAMES.S1", None),
    ("req", "$JS.API.CONSUMER.LIST.S1", None),
    ("req", "$JS.API.CONSUMER.NAMES.NOPE", None),
    ("req", "$JS.API.CONSUMER.PAUSE.S1.dur", {"pause_until": "2099-01-01T00:00:00Z"}),
    ("req", "$JS.API.CONSUMER.PAUSE.S1.dur", {}),
    ("req", "$JS.API.CONSUMER.PAUSE.S1.nope", {}),
    ("req", "$JS.API.CONSUMER.DELETE.S1.named", None),
    ("req", "$JS.API.CONSUMER.DELETE.S1.named", None),
    ("req", "$JS.API.STREAM.LEADER.STEPDOWN.S1", None),
    ("req", "$JS.API.STREAM.PURGE.S1", {"seq": 2, "keep": 1}),
    ("req", "$JS.API.STREAM.PURGE.S1", {"filter": "s1.b"}),
    ("req", "$JS.API.STREAM.PURGE.S1", {"keep": 1}),
    ("req", "$JS.API.STREAM.PURGE.NOPE", None),
    ("req", "$JS.API.STREAM.CREATE.WQ", {"name": "WQ", "subjects": ["wq"],
                                         "retention": "workqueue"}),
    ("req", "$JS.API.CONSUMER.CREATE.WQ.a", _cc("WQ", ack_policy="none")),
    ("req", "$JS.API.CONSUMER.CREATE.WQ.a", _cc("WQ", ack_policy="explicit")),
    ("req", "$JS.API.CONSUMER.CREATE.WQ.b", _cc("WQ", ack_policy="explicit")),
    ("req", "$JS.API.CONSUMER.CREATE.WQ.c", _cc("WQ", ack_policy="explicit",
                                                deliver_policy="new")),
    ("pub", "s1.q", b"x", {"Nats-Batch-Id": "b0", "Nats-Batch-Sequence": "1"}),
    ("req", "$JS.API.STREAM.CREATE.AB", {"name": "AB", "subjects": ["ab.>"],
                                         "allow_atomic": True}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "1"}),
    ("pub", "ab.2", b"2", {"Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "2"}),
    ("pub", "ab.3", b"3", {"Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "3",
                           "Nats-Batch-Commit": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b2", "Nats-Batch-Sequence": "2"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b3", "Nats-Batch-Sequence": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b3", "Nats-Batch-Sequence": "2",
                           "Nats-Batch-Commit": "yes"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b4", "Nats-Batch-Sequence": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b4", "Nats-Batch-Sequence": "2",
                           "Nats-Batch-Commit": "eob"}),
    # refused at its third message: nothing stored (the last sequence is still 4)
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b5", "Nats-Batch-Sequence": "1"}),
    ("pub", "ab.2", b"2", {"Nats-Batch-Id": "b5", "Nats-Batch-Sequence": "2"}),
    ("pub", "ab.3", b"3", {"Nats-Batch-Id": "b5", "Nats-Batch-Sequence": "3",
                           "Nats-Expected-Last-Subject-Sequence": "9",
                           "Nats-Batch-Commit": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b6", "Nats-Batch-Sequence": "1",
                           "Nats-Msg-Id": "d"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b6", "Nats-Batch-Sequence": "2",
                           "Nats-Msg-Id": "d", "Nats-Batch-Commit": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b7", "Nats-Batch-Sequence": "1"}),
    ("pub", "ab.1", b"1", {"Nats-Batch-Id": "b7", "Nats-Batch-Sequence": "2",
                           "Nats-Expected-Last-Sequence": "5", "Nats-Batch-Commit": "1"}),
    ("pub", "ab.z", b"z", {"Nats-Expected-Last-Sequence": "4"}),
    ("req", "$JS.API.STREAM.INFO.AB", None),
    ("req", "$JS.API.STREAM.CREATE.FS", {"name": "FS", "first_seq": 100}),
    ("pub", "FS", b"first", None),
    ("req", "$JS.API.STREAM.INFO.FS", None),
    ("req", "$JS.API.STREAM.CREATE.SEAL", {"name": "SEAL", "sealed": True}),
    ("req", "$JS.API.STREAM.CREATE.IN", {"name": "IN", "retention": "interest"}),
    ("pub", "IN", b"gone", None),
    ("req", "$JS.API.STREAM.INFO.IN", None),
    ("req", "$JS.API.STREAM.CREATE.MIR", {"name": "MIR", "mirror": {"name": "FS"}}),
    ("req", "$JS.API.STREAM.CREATE.MIR2", {"name": "MIR2", "mirror": {"name": "FS"},
                                           "subjects": ["m2"]}),
    ("req", "$JS.API.STREAM.CREATE.MIR3", {"name": "MIR3", "mirror": {"name": "a.b"}}),
    ("req", "$JS.API.STREAM.CREATE.SRC", {"name": "SRC", "sources": [{"name": "FS"},
                                                                     {"name": "IN"}]}),
    ("req", "$JS.API.STREAM.UPDATE.MIR", {"name": "MIR", "mirror": {"name": "IN"}}),
    ("req", "$JS.API.STREAM.CREATE.LIM", {"name": "LIM", "max_consumers": 1}),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.a", _cc("LIM")),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.b", _cc("LIM")),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.a", _cc("LIM", deliver_subject="x.y")),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.a", _cc("LIM", ack_policy="all")),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.a", _cc("LIM", max_deliver=9,
                                                 description="now described")),
    ("req", "$JS.API.CONSUMER.CREATE.LIM.g", _cc("LIM", deliver_subject="g.s",
                                                 deliver_group="grp", headers_only=True)),
    ("req", "$JS.API.STREAM.UPDATE.LIM", {"name": "LIM", "subjects": ["lim.>"]}),
    ("req", "$JS.API.STREAM.UPDATE.LIM", {"name": "LIM", "retention": "workqueue"}),
    ("req", "$JS.API.STREAM.PURGE.M", {"filter": "m.a", "keep": 1}),
    ("req", "$JS.API.STREAM.MSG.DELETE.M", {"seq": 2, "no_erase": True}),
    ("req", "$JS.API.STREAM.CREATE.DD", {"name": "DD", "deny_delete": True,
                                         "deny_purge": True}),
    ("pub", "DD", b"x", None),
    ("req", "$JS.API.STREAM.MSG.DELETE.DD", {"seq": 1}),
    ("req", "$JS.API.STREAM.PURGE.DD", None),
    ("req", "$JS.API.STREAM.UPDATE.DD", {"name": "DD", "deny_delete": False}),
    ("req", "$JS.API.STREAM.CREATE.CNT", {"name": "CNT", "subjects": ["cnt.>"],
                                          "allow_msg_counter": True}),
    ("req", "$JS.API.STREAM.CREATE.CNTX", {"name": "CNTX", "allow_msg_counter": True,
                                           "discard": "new"}),
    ("req", "$JS.API.STREAM.CREATE.CNTY", {"name": "CNTY", "allow_msg_counter": True,
                                           "retention": "interest"}),
    ("pub", "cnt.a", b"", {"Nats-Incr": "+5"}),
    ("pub", "cnt.a", b"", {"Nats-Incr": "-2"}),
    ("pub", "cnt.a", b"", {"Nats-Incr": "x"}),
    ("pub", "cnt.a", b"body", {"Nats-Incr": "1"}),
    ("pub", "cnt.a", b"", {"X-Other": "1"}),
    ("pub", "cnt.b", b"", None),
    ("pub", "cnt.a", b"", {"Nats-Incr": "1", "Nats-Rollup": "sub"}),
    ("pub", "s1.a", b"", {"Nats-Incr": "1"}),
    ("req", "$JS.API.STREAM.MSG.GET.CNT", {"last_by_subj": "cnt.a"}),
    ("req", "$JS.API.STREAM.DELETE.S1", None),
    ("req", "$JS.API.STREAM.DELETE.S1", None),
    ("req", "$JS.API.STREAM.DELETE.M", None),
]


def _compare_with_go(js_server, go_nats_server, tmp_path, play, steps=None):
    """Play ``play(url)`` against a fresh Go server and a fresh one of ours; every
    step must be answered alike (else the differences are listed)."""
    go = go_nats_server("-js", "-sd", str(tmp_path / ("go-" + play.__name__)))
    ours = js_server()
    go_results = run(play(go.url))
    our_results = run(play(ours.url))
    steps = list(steps) if steps is not None else list(range(len(go_results)))
    diffs = ["%s\n  go:   %s\n  ours: %s" % (step, g, o)
             for step, g, o in zip(steps, go_results, our_results, strict=True) if g != o]
    assert not diffs, "%d differences:\n%s" % (len(diffs), "\n".join(diffs))


def _shape(value):
    """What must match: type, error codes, key sets (recursively for dicts)."""
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if key == "error":
                out[key] = (v.get("code"), v.get("err_code"), v.get("description"))
            elif key in ("metadata", "subjects") and isinstance(v, dict):
                out[key] = "map"
            elif key == "type":
                out[key] = v
            else:
                out[key] = _shape(v)
        return out
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__ if not isinstance(value, bool) else "bool"


async def _play(url):
    nc = await nats.connect(url, allow_reconnect=False)
    results = []
    for step in SCRIPT:
        kind, subject, body = step[:3]
        if kind == "req":
            payload = b"" if body is None else (body if isinstance(body, bytes)
                                                else json.dumps(body).encode())
            try:
                msg = await nc.request(subject, payload, timeout=2)
                results.append(_shape(json.loads(msg.data)))
            except nats.errors.TimeoutError:
                results.append("timeout")
        else:
            msg = await nc.request(subject, body, headers=step[3], timeout=2)
            results.append(_shape(json.loads(msg.data)) if msg.data else "empty")
    await nc.close()
    return results


def test_jetstream_api_matches_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play, [(s[0], s[1]) for s in SCRIPT])


DIRECT = [
    ("$JS.API.DIRECT.GET.DG", {"seq": 1}),
    ("$JS.API.DIRECT.GET.DG", {"seq": 99}),
    ("$JS.API.DIRECT.GET.DG", {"last_by_subj": "dg.b"}),
    ("$JS.API.DIRECT.GET.DG", {"next_by_subj": "dg.a", "seq": 2}),
    ("$JS.API.DIRECT.GET.DG", b""),
    ("$JS.API.DIRECT.GET.DG", b"{junk"),
    ("$JS.API.DIRECT.GET.DG.dg.a", b""),
    ("$JS.API.DIRECT.GET.DG.dg.none", b""),
    ("$JS.API.DIRECT.GET.DG", {"seq": 1, "batch": 3}),
    ("$JS.API.DIRECT.GET.DG", {"multi_last": ["dg.*"]}),
]


async def _play_direct(url):
    nc = await nats.connect(url, allow_reconnect=False)
    await nc.request("$JS.API.STREAM.CREATE.DG", json.dumps({
        "name": "DG", "subjects": ["dg.*"], "allow_direct": True}).encode(), timeout=2)
    for subject, data in (("dg.a", b"1"), ("dg.b", b"2"), ("dg.a", b"3")):
        await nc.request(subject, data, headers={"X-Mine": "yes"}, timeout=2)
    out = []
    for subject, body in DIRECT:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await nc.publish(subject, payload, reply=inbox)
        answers = []
        while True:
            try:
                m = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            hdrs = dict(m.headers or {})
            answers.append((hdrs.get("Status"), hdrs.get("Description"),
                            sorted(k for k in hdrs if k not in ("Status", "Description")),
                            m.data, hdrs.get("Nats-Sequence"), hdrs.get("Nats-Subject")))
            if hdrs.get("Status") or "batch" not in str(body) and "multi" not in str(body):
                break
        await sub.unsubscribe()
        out.append(answers)
    await nc.close()
    return out


def test_jetstream_direct_get_matches_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play_direct, DIRECT)


PULLS = [
    {"batch": 1, "no_wait": True},
    {"batch": 2, "expires": 300_000_000},
    {"batch": 9},
    {"batch": 1, "expires": 100_000_000, "idle_heartbeat": 80_000_000},
    b"{junk",
    {"batch": 1, "max_bytes": 10, "expires": 300_000_000},
    b"",
]


def _masked(info, keys):
    """The counters of a consumer info, timestamps replaced by a marker."""
    out = {}
    for key in keys:
        value = info[key]
        if isinstance(value, dict) and "last_active" in value:
            value = dict(value, last_active="ts")
        out[key] = value
    return out


async def _play_pulls(url):
    nc = await nats.connect(url, allow_reconnect=False)
    await nc.request("$JS.API.STREAM.CREATE.PL", json.dumps({
        "name": "PL", "subjects": ["pl"]}).encode(), timeout=2)
    await nc.request("$JS.API.CONSUMER.CREATE.PL.p", json.dumps({
        "stream_name": "PL", "config": {"name": "p", "ack_policy": "explicit",
                                        "max_batch": 5}}).encode(), timeout=2)
    out = []
    for i, body in enumerate(PULLS):
        if i == 5:
            await nc.request("pl", b"x" * 100, timeout=2)
        if i == 6:
            await nc.request("pl", b"y", timeout=2)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.PL.p", payload, reply=inbox)
        try:
            m = await sub.next_msg(timeout=1.5)
            hdrs = dict(m.headers or {})
            out.append((hdrs.get("Status"), hdrs.get("Description"),
                        sorted(k for k in hdrs if k not in ("Status", "Description")),
                        m.subject if not hdrs.get("Status") else None,
                        len(m.reply.split(".")) if m.reply else 0))
        except nats.errors.TimeoutError:
            out.append("timeout")
        await sub.unsubscribe()
    # the counters after those deliveries, then after acking what is pending
    resp = await nc.request("$JS.API.CONSUMER.INFO.PL.p", b"", timeout=2)
    info = json.loads(resp.data)
    out.append(_masked(info, ("delivered", "ack_floor", "num_ack_pending", "num_pending",
                              "num_redelivered", "num_waiting")))
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.PL.p", b'{"batch": 5, "no_wait": true}',
                     reply=inbox)
    while True:
        try:
            m = await sub.next_msg(timeout=0.5)
        except nats.errors.TimeoutError:
            break
        if m.reply:
            await m.ack()
    await nc.flush()
    resp = await nc.request("$JS.API.CONSUMER.INFO.PL.p", b"", timeout=2)
    info = json.loads(resp.data)
    out.append(_masked(info, ("delivered", "ack_floor", "num_ack_pending", "num_pending",
                              "num_redelivered")))
    await nc.close()
    return out


def test_jetstream_pull_statuses_match_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play_pulls,
                     PULLS + ["info", "info after acks"])


def _key_paths(d, pre=""):
    out = set()
    for k, v in d.items():
        out.add(pre + k)
        if isinstance(v, dict) and k != "metadata":
            out |= _key_paths(v, pre + k + ".")
        if isinstance(v, list) and v and isinstance(v[0], dict):
            out |= _key_paths(v[0], pre + k + "[].")
    return out


def test_jetstream_monitor_keys_match_go(js_server, go_nats_server, tmp_path):
    import urllib.request

    go = go_nats_server("-js", "-sd", str(tmp_path / "go-mon"), "-m", "-1")
    ours = js_server("-m", "-1")

    async def setup(url):
        nc = await nats.connect(url, allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="Z", subjects=["z"])
        await js.publish("z", b"1")
        await js.add_consumer("Z", durable_name="zc")
        await nc.close()

    found = {}
    for name, srv in (("go", go), ("ours", ours)):
        run(setup(srv.url))
        for path in ("/jsz", "/jsz?accounts=1&streams=1&consumers=1&config=1", "/varz"):
            url = "http://127.0.0.1:%d%s" % (srv.http_port, path)
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
            if path == "/varz":
                body = {"jetstream": body.get("jetstream")}
            found[(name, path)] = _key_paths(body)
    for path in ("/jsz", "/jsz?accounts=1&streams=1&consumers=1&config=1", "/varz"):
        go_keys, our_keys = found[("go", path)], found[("ours", path)]
        assert go_keys == our_keys, (path, sorted(go_keys - our_keys),
                                     sorted(our_keys - go_keys))


async def _play_push(url):
    nc = await nats.connect(url, allow_reconnect=False)
    await nc.request("$JS.API.STREAM.CREATE.PU", json.dumps({
        "name": "PU", "subjects": ["pu.*"]}).encode(), timeout=2)
    for i in range(3):
        await nc.request("pu.%d" % i, b"%d" % i, headers={"X-N": str(i)}, timeout=2)
    sub = await nc.subscribe("dlv")
    await nc.request("$JS.API.CONSUMER.CREATE.PU.push", json.dumps({
        "stream_name": "PU", "config": {"name": "push", "deliver_subject": "dlv",
                                        "ack_policy": "explicit", "ack_wait": 60_000_000_000,
                                        "filter_subject": "pu.*"}}).encode(), timeout=2)
    out = []
    msgs = []
    for _ in range(3):
        m = await sub.next_msg(timeout=2)
        msgs.append(m)
        tokens = m.reply.split(".")
        out.append((m.subject, m.data, sorted((m.headers or {}).keys()), len(tokens),
                    tokens[:7], tokens[8]))  # all but the timestamp
    ack = await nc.request(msgs[1].reply, b"+ACK", timeout=2)
    out.append(("double ack", ack.data))
    await msgs[0].term()
    await nc.flush()
    resp = await nc.request("$JS.API.CONSUMER.INFO.PU.push", b"", timeout=2)
    out.append(_masked(json.loads(resp.data), ("delivered", "ack_floor", "num_ack_pending",
                                                 "num_pending", "num_redelivered")))
    await nc.close()
    return out


def test_jetstream_push_deliveries_match_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play_push)


PRIORITY_PULLS = [
    ("ov", {"batch": 1, "expires": 300_000_000}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "B"}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "A", "priority": 12}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "A", "id": "x"}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "A", "min_pending": 5}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "A", "min_pending": 1}),
    ("ov", {"batch": 1, "expires": 300_000_000, "group": "A"}),
    ("plain", {"batch": 1, "expires": 300_000_000, "min_pending": 1}),
]


async def _play_priority(url):
    nc = await nats.connect(url, allow_reconnect=False)
    await nc.request("$JS.API.STREAM.CREATE.PR", json.dumps({
        "name": "PR", "subjects": ["pr"]}).encode(), timeout=2)
    for i in range(2):
        await nc.request("pr", b"%d" % i, timeout=2)
    out = []
    for name, cfg in (("ov", {"priority_policy": "overflow", "priority_groups": ["A"]}),
                      ("plain", {}),
                      ("bad", {"priority_policy": "overflow"}),
                      ("bad2", {"priority_groups": ["A"]})):
        resp = await nc.request("$JS.API.CONSUMER.CREATE.PR.%s" % name, json.dumps({
            "stream_name": "PR", "config": dict(cfg, name=name, ack_policy="explicit")}
        ).encode(), timeout=2)
        body = json.loads(resp.data)
        out.append(body.get("error") or sorted(body["config"]))
    for name, body in PRIORITY_PULLS:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.PR.%s" % name, json.dumps(body).encode(),
                         reply=inbox)
        try:
            m = await sub.next_msg(timeout=1.5)
            hdrs = dict(m.headers or {})
            out.append((hdrs.get("Status"), hdrs.get("Description"), m.data))
        except nats.errors.TimeoutError:
            out.append("timeout")
        await sub.unsubscribe()
    await nc.close()
    return out


def test_jetstream_priority_groups_match_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play_priority,
                     ["create ov", "create plain", "create bad", "create bad2"] + PRIORITY_PULLS)


async def _play_pinned(url):
    nc = await nats.connect(url, allow_reconnect=False)
    await nc.request("$JS.API.STREAM.CREATE.PN", json.dumps({
        "name": "PN", "subjects": ["pn"]}).encode(), timeout=2)
    for i in range(4):
        await nc.request("pn", b"%d" % i, timeout=2)
    await nc.request("$JS.API.CONSUMER.CREATE.PN.pin", json.dumps({
        "stream_name": "PN", "config": {"name": "pin", "ack_policy": "explicit",
                                        "priority_policy": "pinned_client",
                                        "priority_groups": ["A"]}}).encode(), timeout=2)
    pins = []
    out = []

    async def pull(body):
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.PN.pin",
                         json.dumps(dict(body, expires=400_000_000, batch=1)).encode(),
                         reply=inbox)
        try:
            m = await sub.next_msg(timeout=1.5)
            hdrs = dict(m.headers or {})
            pin = hdrs.pop("Nats-Pin-Id", None)
            if pin and pin not in pins:
                pins.append(pin)
            out.append((hdrs.get("Status"), hdrs.get("Description"), m.data,
                        pins.index(pin) if pin else None))
        except nats.errors.TimeoutError:
            out.append("timeout")
        await sub.unsubscribe()

    await pull({"group": "A"})
    await pull({"group": "A", "id": "wrong"})
    await pull({"group": "A"})
    await pull({"group": "A", "id": pins[0] if pins else "none"})
    resp = await nc.request("$JS.API.CONSUMER.INFO.PN.pin", b"", timeout=2)
    groups = json.loads(resp.data).get("priority_groups")
    out.append([sorted(g) for g in groups] if groups else groups)
    resp = await nc.request("$JS.API.CONSUMER.UNPIN.PN.pin", json.dumps({"group": "A"}).encode(),
                            timeout=2)
    out.append(sorted(json.loads(resp.data)))
    resp = await nc.request("$JS.API.CONSUMER.UNPIN.PN.pin", json.dumps({"group": "Z"}).encode(),
                            timeout=2)
    out.append(json.loads(resp.data).get("error"))
    await pull({"group": "A", "id": pins[0] if pins else "none"})
    await pull({"group": "A"})
    await nc.close()
    return out


def test_jetstream_pinned_client_matches_go(js_server, go_nats_server, tmp_path):
    _compare_with_go(js_server, go_nats_server, tmp_path, _play_pinned)
