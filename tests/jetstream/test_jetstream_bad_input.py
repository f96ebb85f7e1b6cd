"""Bad input: garbage requests and acks, a corrupted block file, an unusable
store directory. A clear error or log line, never a crash, and the other
streams keep working."""

import glob
import json
import os

import pytest

from pluggy_nats.testing.plugin import run

from .conftest import api, connect


def test_jetstream_garbage_requests(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="G", subjects=["g"])
        await js.add_consumer("G", durable_name="c")
        for body in (b"\xff\xfe\x00", b"[1,2]", b"null", b'"str"', b"{" * 5000,
                     json.dumps({"name": "G", "subjects": {"a": 1}}).encode(),
                     json.dumps({"name": "G" * 300}).encode()):
            resp = await api(nc, "$JS.API.STREAM.CREATE.G", body)
            assert resp["error"]["err_code"] in (10025, 10052, 10056, 10058), resp
        resp = await api(nc, "$JS.API.STREAM.CREATE.G", b"x" * 900_000)
        assert resp["error"]["err_code"] == 10025
        # requests without a reply, garbage acks, bad pull requests: no harm
        await nc.publish("$JS.API.STREAM.DELETE.G", b"")
        for subject in ("$JS.ACK.G.c", "$JS.ACK.G.c.x.y.z.1.2.3", "$JS.ACK.NOPE.c.1.1.1.1.1",
                        "$JS.ACK.G.c.1.1.1.1.1"):
            await nc.publish(subject, b"-NAK {garbage")
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.G.c", b'{"batch": "many"}', reply=inbox)
        m = await sub.next_msg(timeout=2)
        assert m.headers["Status"] == "400"
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.G.c", b"{not json", reply=inbox)
        m = await sub.next_msg(timeout=2)
        assert m.headers["Status"] == "400"
        ack = await js.publish("g", b"still fine")
        assert ack.stream == "G" and ack.seq == 1
        info = await js.account_info()
        assert info.streams == 1
        await nc.close()

    run(main())
    assert "Traceback" not in srv.logs()


def test_jetstream_corrupted_block_other_streams_work(js_server):
    srv = js_server()

    async def fill():
        nc = await connect(srv)
        js = nc.jetstream()
        for name in ("BROKEN", "GOOD"):
            await js.add_stream(name=name, subjects=[name.lower()])
            for i in range(50):
                await js.publish(name.lower(), b"%s-%d" % (name.encode(), i))
        await nc.close()

    run(fill())
    srv.stop()
    store_dirs = glob.glob(os.path.join(os.path.dirname(srv.logfile), "store-js", "jetstream",
                                        "*", "streams", "BROKEN"))
    assert store_dirs, "no file store directory for BROKEN"
    blocks = glob.glob(os.path.join(store_dirs[0], "msgs", "*.blk"))
    assert blocks
    for path in glob.glob(os.path.join(store_dirs[0], "msgs", "index.db")):
        os.unlink(path)  # force a rebuild from the blocks
    with open(blocks[0], "r+b") as f:
        size = f.seek(0, 2)
        f.seek(size // 2)
        f.write(b"\x00garbage\xff" * 20)
    srv.start()

    async def check():
        nc = await connect(srv)
        js = nc.jetstream()
        good = await js.stream_info("GOOD")
        assert good.state.messages == 50
        ack = await js.publish("good", b"after")
        assert ack.seq == 51
        broken = await js.stream_info("BROKEN")  # recovered what it could
        assert broken.state.messages < 50
        raw = await api(nc, "$JS.API.STREAM.INFO.BROKEN")
        assert raw["state"]["lost"]["msgs"], raw["state"]  # and says what it lost
        ack = await js.publish("broken", b"after")
        assert ack.seq > 0
        await nc.close()

    run(check())
    assert "Traceback" not in srv.logs()


def test_jetstream_unusable_store_dir(make_server, tmp_path):
    """A file where the store directory should be: the server does not start,
    with nats-server's fatal words (compared with Go in
    tests/operability/test_operability_startup_errors.py)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store directory should be")
    with pytest.raises(RuntimeError, match="storage directory is not a directory"):
        make_server("-js", "-sd", str(blocker))
