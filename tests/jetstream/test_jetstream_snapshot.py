"""Stream snapshot and restore over the API, driven as clients drive it (raw
nats-py requests following nats-server's chunk protocol, as ``nats stream
backup/restore`` does): chunks with flow-control acks, the 204 end, a restore
uploaded chunk by chunk. The protocol is compared with the Go server; the
archives differ (ours is a gzip'd tar), so a Go snapshot sent to us is refused
with 10062."""

import asyncio
import json
import re

import nats

from pluggy_nats.testing.plugin import run

from .conftest import api, connect


async def take_snapshot(nc, stream, hold=0, **opts):
    """-> (API response, archive bytes, chunk replies, end status). ``hold``: that
    many chunks must come before any ack, and no more (the server's window)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.flush()
    resp = await api(nc, "$JS.API.STREAM.SNAPSHOT." + stream, dict(deliver_subject=inbox, **opts))
    data, replies, status = [], [], None
    if hold:
        held = [await sub.next_msg(timeout=10) for _ in range(hold)]
        try:
            extra = await sub.next_msg(timeout=0.3)
        except nats.errors.TimeoutError:
            extra = None
        assert extra is None, "a chunk past the window before any ack"
        for msg in held:
            data.append(msg.data)
            replies.append(msg.reply)
            await nc.publish(msg.reply, b"")
    if "error" not in resp:
        while True:
            msg = await sub.next_msg(timeout=10)
            if not msg.data:  # the end: a status header, no body
                status = (msg.headers or {}).get("Status")
                break
            data.append(msg.data)
            replies.append(msg.reply)
            if msg.reply:
                await nc.publish(msg.reply, b"")
    await sub.unsubscribe()
    return resp, b"".join(data), replies, status


async def upload(nc, stream, config, archive, chunk=4096):
    """STREAM.RESTORE then the chunks as requests; -> (restore response, final)."""
    resp = await api(nc, "$JS.API.STREAM.RESTORE." + stream, {"config": config, "state": {}})
    if "error" in resp:
        return resp, None
    for i in range(0, len(archive), chunk):
        ack = await nc.request(resp["deliver_subject"], archive[i:i + chunk], timeout=5)
        if ack.data:  # an error answered mid-way
            return resp, json.loads(ack.data)
    end = await nc.request(resp["deliver_subject"], b"", timeout=10)
    return resp, json.loads(end.data)


def test_snapshot_restore_round_trip(js_server):
    """A file stream with headers, deleted messages, a purged prefix and a durable
    with acks comes back with the same sequences, contents and ack floor; the
    same archive restores as a memory stream too."""
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="ORD", subjects=["ord.>"])
        for i in range(3000):
            await nc.publish("ord.%d" % (i % 7), b"m%05d" % i + b"x" * (i % 50),
                             headers={"Idx": str(i)} if i % 3 == 0 else None)
        await nc.flush()
        await api(nc, "$JS.API.STREAM.PURGE.ORD", {"seq": 11})  # first_seq 11
        for seq in (20, 21, 500):
            await api(nc, "$JS.API.STREAM.MSG.DELETE.ORD", {"seq": seq})
        await js.add_consumer("ORD", durable_name="d", ack_policy="explicit")
        psub = await js.pull_subscribe("ord.>", durable="d", stream="ORD")
        for m in await psub.fetch(5):
            await m.ack_sync()
        before = await api(nc, "$JS.API.STREAM.INFO.ORD")
        cbefore = await api(nc, "$JS.API.CONSUMER.INFO.ORD.d")

        resp, archive, replies, status = await take_snapshot(
            nc, "ORD", hold=4, chunk_size=1024, window_size=4096)
        assert resp["type"] == "io.nats.jetstream.api.v1.stream_snapshot_response"
        assert resp["state"]["messages"] == before["state"]["messages"]
        assert resp["config"]["name"] == "ORD"
        assert status == "204" and archive[:2] == b"\x1f\x8b"
        assert len(replies) > 5 and not replies[-1]  # the short last chunk: no ack
        for i, reply in enumerate(replies[:-1], 1):
            assert re.fullmatch(r"\$JS\.SNAPSHOT\.ACK\.ORD\.\w+\.1024\.%d" % i, reply), reply

        await psub.unsubscribe()
        await api(nc, "$JS.API.STREAM.DELETE.ORD")
        config = dict(resp["config"])
        r, done = await upload(nc, "ORD", config, archive)
        assert re.fullmatch(r"\$JS\.SNAPSHOT\.RESTORE\.ORD\.\w+", r["deliver_subject"])
        assert done["type"] == "io.nats.jetstream.api.v1.stream_create_response", done
        after = await api(nc, "$JS.API.STREAM.INFO.ORD")
        for key in ("messages", "bytes", "first_seq", "last_seq", "num_deleted",
                    "first_ts", "last_ts"):
            assert after["state"][key] == before["state"][key], key
        for seq in (11, 12, 499, 501, 3000):
            got = await api(nc, "$JS.API.STREAM.MSG.GET.ORD", {"seq": seq})
            assert got["message"]["subject"] == "ord.%d" % ((seq - 1) % 7)
        gone = await api(nc, "$JS.API.STREAM.MSG.GET.ORD", {"seq": 500})
        assert gone["error"]["err_code"] == 10037
        info = await api(nc, "$JS.API.CONSUMER.INFO.ORD.d")
        floor = {k: info["ack_floor"][k] for k in ("consumer_seq", "stream_seq")}
        assert floor == {"consumer_seq": 5, "stream_seq": 15}
        assert info["num_pending"] == cbefore["num_pending"] == 2987 - 5
        await nc.publish("ord.x", b"after")  # the restored stream takes publishes
        await nc.flush()
        psub = await js.pull_subscribe("ord.>", durable="d", stream="ORD")
        first = (await psub.fetch(1))[0]
        assert first.metadata.sequence.stream == 16

        config2 = dict(config, name="MEM", storage="memory", subjects=["mem.>"])
        _, done = await upload(nc, "MEM", config2, archive, chunk=64 * 1024)
        assert done["state"]["messages"] == before["state"]["messages"], done
        assert done["config"]["storage"] == "memory"
        await nc.close()

    run(main())


def test_snapshot_restore_errors(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        await api(nc, "$JS.API.STREAM.CREATE.E", {"name": "E", "subjects": ["e"]})
        for subject, body, code in (
                ("$JS.API.STREAM.SNAPSHOT.E", b"", 10003),
                ("$JS.API.STREAM.SNAPSHOT.NONE", {"deliver_subject": "x"}, 10059),
                ("$JS.API.STREAM.SNAPSHOT.E", {"deliver_subject": "a.*"}, 10015),
                ("$JS.API.STREAM.SNAPSHOT.E", b"{bad", 10025),
                ("$JS.API.STREAM.RESTORE.E", {"config": {"name": "E"}}, 10130),
                ("$JS.API.STREAM.RESTORE.F", {"config": {"name": "G"}}, 10056),
                ("$JS.API.STREAM.RESTORE.F", b"", 10003)):
            resp = await api(nc, subject, body)
            assert resp["error"]["err_code"] == code, (subject, resp)

        # not an archive at all: the upload is refused at its end, nothing is left
        resp, done = await upload(nc, "JUNK", {"name": "JUNK"}, b"\x1f\x8b" + b"junk" * 100)
        assert done["error"]["err_code"] == 10062, done
        names = await api(nc, "$JS.API.STREAM.NAMES")
        assert names["streams"] == ["E"]
        # the server is fine and a good restore still works afterwards
        _, archive, _, _ = await take_snapshot(nc, "E")
        _, done = await upload(nc, "E2", {"name": "E2", "subjects": ["e2"]}, archive)
        assert done["state"]["messages"] == 0 and "error" not in done
        await nc.close()

    run(main())


def test_snapshot_protocol_matches_go_and_go_archive_refused(js_server, go_nats_server,
                                                             tmp_path):
    """Go and ours speak the same chunk protocol (response keys, ack subjects,
    the 204 end, the restore answers); a snapshot taken from Go and uploaded
    to us is refused with 10062 on its first chunk."""
    go = go_nats_server("-js", "-sd", str(tmp_path / "go"))
    ours = js_server()

    async def play(url):
        nc = await nats.connect(url, allow_reconnect=False)
        await api(nc, "$JS.API.STREAM.CREATE.P", {"name": "P", "subjects": ["p.*"]})
        for i in range(400):
            await nc.publish("p.%d" % (i % 3), b"%0200d" % i)
        await api(nc, "$JS.API.CONSUMER.CREATE.P.c", {"stream_name": "P", "config": {
            "durable_name": "c", "ack_policy": "explicit"}})
        resp, archive, replies, status = await take_snapshot(
            nc, "P", chunk_size=1024, window_size=2048)
        shape = (sorted(resp), sorted(resp["state"]), status, not replies[-1],
                 all(re.fullmatch(r"\$JS\.SNAPSHOT\.ACK\.P\.\w+\.1024\.\d+", r)
                     for r in replies[:-1]))
        restore = await api(nc, "$JS.API.STREAM.RESTORE.Q", {"config": {
            "name": "Q", "subjects": ["q"]}})
        empty = await nc.request(restore["deliver_subject"], b"", timeout=5)  # no archive
        out = [shape, sorted(restore), bool(re.fullmatch(
            r"\$JS\.SNAPSHOT\.RESTORE\.Q\.\w+", restore["deliver_subject"])),
            json.loads(empty.data)["error"]["err_code"]]
        await nc.close()
        return out, archive

    go_out, go_archive = run(play(go.url))
    our_out, _ = run(play(ours.url))
    assert go_out == our_out

    async def send_go_archive():
        nc = await connect(ours)
        resp, done = await upload(nc, "GOSNAP", {"name": "GOSNAP", "subjects": ["g"]},
                                  go_archive)
        assert done["error"]["err_code"] == 10062, done
        assert "nats-server snapshot" in done["error"]["description"]
        await asyncio.sleep(0.2)
        names = await api(nc, "$JS.API.STREAM.NAMES")
        assert "GOSNAP" not in names["streams"]
        await nc.close()

    run(send_go_archive())
