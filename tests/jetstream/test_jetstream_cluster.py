"""Clustered JetStream on three of our servers: the meta group, an R3 stream
(create, publish, info with its cluster fields, every replica identical),
Go's refusals, step-down, /jsz and /raftz. Faults: test_jetstream_cluster_faults.py."""

import asyncio
import glob
import json
import os
import subprocess

import nats.js.errors
import pytest

from pluggy_nats.testing.launch import pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server

from .clusterkit import (
    add_stream,
    connect,
    js_cluster,
    leader_index,
    monitor,
    read_replica,
    retry,
    wait_for,
)


def test_r3_stream_create_publish_info(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 1)
        js = nc.jetstream(timeout=5)
        si = await add_stream(js, name="ORDERS", subjects=["orders.>"], num_replicas=3)
        assert si.config.num_replicas == 3
        if si.cluster.leader is None:
            # add_stream re-sent a create that timed out under load: the meta
            # leader answers "exists" before the group has elected (Go's meta
            # leader does the same), so ask the stream for its leader
            async def elected():
                info = await js.stream_info("ORDERS")
                return info if info.cluster.leader else None
            si = await wait_for(elected, what="ORDERS elected a leader")
        assert si.cluster.name == "jsc" and si.cluster.leader in cluster.names
        assert sorted([si.cluster.leader] + [r.name for r in si.cluster.replicas]) == \
            sorted(cluster.names)
        for i in range(100):
            ack = await js.publish("orders.%d" % (i % 5), b"order-%d" % i)
            assert (ack.stream, ack.seq) == ("ORDERS", i + 1)
        # the same create again answers with the stream, as Go does
        again = await js.add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3)
        assert again.state.messages == 100
        with pytest.raises(nats.js.errors.BadRequestError) as exc:
            await js.add_stream(name="ORDERS", subjects=["other.>"], num_replicas=3)
        assert exc.value.err_code == 10058
        info = await js.stream_info("ORDERS")
        assert (info.state.messages, info.state.last_seq) == (100, 100)
        # every server's own copy, through /jsz
        for i in range(3):
            detail = await wait_for(lambda i=i: _detail(cluster, i, "ORDERS", 100),
                                    what="server %d holds 100 messages" % i)
            assert detail["stream_raft_group"].startswith("S-R3F-")
        jsz = monitor(cluster, 0, "/jsz")
        meta = jsz["meta_cluster"]
        assert meta["cluster_size"] == 3 and meta["quorum_needed"] == 2
        assert meta["leader"] in cluster.names
        raftz = monitor(cluster, 0, "/raftz")
        assert "_pn_meta_" in raftz["$SYS"]  # Go's shape: account -> group -> status
        assert raftz["$SYS"]["_pn_meta_"]["state"] in ("LEADER", "FOLLOWER")
        # names and list come from the meta leader
        assert await js.streams_info() and (await js.streams_info())[0].config.name == "ORDERS"
        await js.delete_stream("ORDERS")
        await wait_for(lambda: all(_detail(cluster, i, "ORDERS", None) is None
                                   for i in range(3)), what="stream deleted everywhere")
        await nc.close()

    run(body(), timeout=120)
    cluster.close()
    # nothing left behind on disk for the deleted stream
    for i in range(3):
        assert not os.path.exists(os.path.join(cluster.store_dir(i), "jetstream", "$G",
                                               "rstreams", "ORDERS"))


def _detail(cluster, i, stream, messages):
    data = monitor(cluster, i, "/jsz?streams=true")
    for acc in data.get("account_details", []):
        for d in acc.get("stream_detail", []):
            if d["name"] == stream:
                return d if messages is None or d["state"]["messages"] == messages else None
    return None


def test_replicas_identical_and_consumer_continues_after_stepdown(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)
    names = cluster.names

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="EV", subjects=["ev.>"], num_replicas=3)
        acks = await asyncio.gather(*[js.publish("ev.%d" % (i % 3), b"%d" % i)
                                      for i in range(300)])
        assert sorted(a.seq for a in acks) == list(range(1, 301))
        sub = await retry(lambda: js.pull_subscribe("ev.>", "worker", stream="EV"))
        got = []
        while len(got) < 120:
            for msg in await sub.fetch(40, timeout=5):
                got.append(msg.metadata.sequence.stream)
                await msg.ack_sync()
        assert got == list(range(1, 121))
        info = await js.consumer_info("EV", "worker")
        assert info.ack_floor.stream_seq == 120
        assert info.cluster.leader in names
        # move the leader where asked (placement.preferred)
        old = leader_index(cluster, "EV")
        target = names[(old + 1) % 3]
        resp = await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.EV",
                                json.dumps({"placement": {"preferred": target}}).encode(),
                                timeout=5)
        assert json.loads(resp.data) == {
            "type": "io.nats.jetstream.api.v1.stream_leader_stepdown_response",
            "success": True}
        try:
            await wait_for(lambda: leader_index(cluster, "EV") == names.index(target),
                           timeout=15, what="leader moved to %s" % target)
        except AssertionError:
            # seen once under full-suite load: the transfer lapsed and the old
            # leader led on (its transfer deadline); asking again must work
            await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.EV", json.dumps(
                {"placement": {"preferred": target}}).encode(), timeout=5)
            await wait_for(lambda: leader_index(cluster, "EV") == names.index(target),
                           what="leader moved to %s" % target)
        # the consumer continues on the new leader exactly where it was
        info = await retry(lambda: js.consumer_info("EV", "worker"))
        assert info.ack_floor.stream_seq == 120 and info.cluster.leader == target
        msgs = await retry(lambda: sub.fetch(10, timeout=5), what="fetch after step-down")
        assert msgs[0].metadata.sequence.stream == 121
        assert msgs[0].metadata.num_delivered == 1
        # naming the current leader is refused (Go: an error, nothing moves)
        resp = await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.EV",
                                json.dumps({"placement": {"preferred": target}}).encode(),
                                timeout=5)
        assert json.loads(resp.data)["error"]["err_code"] == 10005
        await nc.close()

    run(body(), timeout=120)
    cluster.close()
    copies = [read_replica(cluster, i, "EV") for i in range(3)]
    assert len(copies[0]) == 300
    assert copies[0] == copies[1] == copies[2]


def test_bad_requests_get_go_errors(make_fault_cluster, run):
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 2)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="OK", subjects=["ok"], num_replicas=3)
        with pytest.raises(nats.js.errors.BadRequestError) as exc:
            await js.add_stream(name="BIG", subjects=["big"], num_replicas=5)
        assert exc.value.err_code == 10005  # no suitable peers for placement
        with pytest.raises(nats.js.errors.BadRequestError) as exc:
            await js.add_stream(name="TAGGED", subjects=["t"], num_replicas=3,
                                placement=nats.js.api.Placement(tags=["ssd"]))
        assert exc.value.err_code == 10005
        with pytest.raises(nats.js.errors.BadRequestError) as exc:
            await js.add_stream(name="OVER", subjects=["ok"], num_replicas=3)
        assert exc.value.err_code == 10065  # subjects overlap
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.stream_info("MISSING")
        # an R1 stream in a cluster: one server, no replicas
        si = await add_stream(js, name="ONE", subjects=["one"])
        assert si.cluster.leader in cluster.names and not si.cluster.replicas
        for i in range(10):
            assert (await js.publish("one", b"x")).seq == i + 1
        await nc.close()

    run(body(), timeout=90)


def _start_refused(command, tmp_path, name):
    conf = tmp_path / ("%s.conf" % name)
    conf.write_text("server_name: %s\ncluster { name: c, listen: \"127.0.0.1:-1\" }\n"
                    "jetstream { store_dir: \"%s\" }\n" % (name, tmp_path / name))
    proc = subprocess.run(list(command) + ["-c", str(conf), "-p", "-1"], capture_output=True,
                          text=True, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


def test_no_configured_routes_is_refused_as_go(tmp_path):
    words = "JetStream cluster requires configured routes or solicited leafnode " \
            "for the system account"
    code, out = _start_refused(pluggy_nats_command(), tmp_path, "ours")
    assert code == 1 and words in out, out
    code, out = _start_refused(list(require_go_nats_server()), tmp_path, "go")
    assert code == 1 and words in out, out


def test_go_server_in_the_cluster_stays_out_of_our_meta_group(make_fault_cluster, run):
    """A Go nats-server with JetStream routed to two of ours: our meta group is
    ours alone (founded without waiting for it), a log line says the two
    JetStream clusters stay apart, and the Go server keeps running."""
    require_go_nats_server()
    cluster = make_fault_cluster(3, name="mix", jetstream=True, go=(2,),
                                 env={"PLUGGY_NATS_RAFT_SCALE": "0.1"})

    def meta_of_ours():
        metas = [monitor(cluster, i, "/jsz")["meta_cluster"] for i in (0, 1)]
        return all(m.get("leader") in cluster.names[:2] and m["cluster_size"] == 2
                   for m in metas)

    async def body():
        await wait_for(meta_of_ours, timeout=40, what="a meta group of our two servers")

    run(body(), timeout=60)
    logs = "".join(open(path).read() for i in (0, 1) for path in
                   glob.glob(os.path.join(cluster.workdir, "%s.*.log" % cluster.names[i])))
    assert "runs another JetStream (nats-server)" in logs and "mix-2" in logs
    assert cluster.servers[2].proc.poll() is None  # the Go server is still up
    monitor(cluster, 2, "/jsz")


def test_burst_of_publishes_over_a_route_is_stored_and_acked_in_order(make_fault_cluster, run):
    """A client on a follower publishes 600 messages without waiting: they
    reach the stream leader as runs of frames on one subject (the stream's
    subscription takes a link's run at once), with a header message and a
    second subject breaking the runs. Every message is stored at its
    sequence on every replica and answered once, in order."""
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="BURST", subjects=["burst.*"], num_replicas=3)
        leaders = await wait_for(lambda: [leader_index(cluster, "BURST")] if
                                 leader_index(cluster, "BURST") is not None else None,
                                 what="BURST leader")
        client = await connect(cluster, (leaders[0] + 1) % 3)
        acks = []

        async def on_ack(msg):
            acks.append(msg.data)

        inbox = client.new_inbox()
        sub = await client.subscribe(inbox, cb=on_ack)
        await client.flush()
        sent = []
        for i in range(600):
            subject = "burst.b" if 300 <= i < 310 else "burst.a"
            data = b"m-%d" % i
            sent.append((subject, data))
            headers = {"X-Mid": "1"} if i == 450 else None
            await client.publish(subject, data, reply=inbox, headers=headers)
        await client.flush()
        await wait_for(lambda: len(acks) >= 600, what="600 PubAcks")
        await asyncio.sleep(0.3)  # nothing more comes
        assert [json.loads(a)["seq"] for a in acks] == list(range(1, 601))
        await sub.unsubscribe()
        await client.close()
        await nc.close()
        return sent

    sent = run(body())
    for i in range(3):
        cluster.kill(i)
    want = [(n + 1, subject, data) for n, (subject, data) in enumerate(sent)]
    for i in range(3):
        got = [(seq, subject, bytes(data)) for seq, subject, data in read_replica(
            cluster, i, "BURST")]
        assert got == want, cluster.names[i]


def test_direct_get_of_an_r3_stream_is_answered_once(make_fault_cluster, run):
    """DIRECT.GET of an R3 stream with ``allow_direct`` (answered by its
    leader, in Go's queue group ``_sys_``): a batch of 5 comes back once
    (5 messages and one EOB), not once per replica, from whichever server
    the client is on; a last-by-subject get too."""
    cluster = js_cluster(make_fault_cluster)

    async def body():
        nc = await connect(cluster, 0)
        js = nc.jetstream(timeout=5)
        await add_stream(js, name="DG", subjects=["dg.>"], num_replicas=3, allow_direct=True)
        for i in range(10):
            await js.publish("dg.%d" % i, b"m%d" % i)
        for i in range(3):
            await wait_for(lambda i=i: _detail(cluster, i, "DG", 10),
                           what="server %d holds 10 messages" % i)
        for i in range(3):
            client = await connect(cluster, i)
            got = []
            inbox = client.new_inbox()

            async def collect(msg, got=got):
                got.append(msg)
            sub = await client.subscribe(inbox, cb=collect)
            await client.publish("$JS.API.DIRECT.GET.DG", b'{"seq": 3, "batch": 5}',
                                 reply=inbox)
            await wait_for(lambda got=got: any((m.headers or {}).get("Status") == "204"
                                               for m in got),
                           what="the EOB")
            await asyncio.sleep(0.5)  # time for copies from other members, if any
            seqs = [int(m.headers["Nats-Sequence"]) for m in got
                    if m.headers and "Nats-Sequence" in m.headers]
            assert seqs == [3, 4, 5, 6, 7] and len(got) == 6, [m.headers for m in got]
            last = await client.jetstream().get_last_msg("DG", "dg.9", direct=True)
            assert last.seq == 10 and last.data == b"m9"
            await sub.unsubscribe()
            await client.close()
        await nc.close()

    run(body(), timeout=120)
