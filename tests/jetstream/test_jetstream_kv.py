"""Key-value and object stores through nats-py's real APIs (stream conventions)."""

import asyncio

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

from pluggy_nats.testing.plugin import run

from .conftest import connect


def test_jetstream_kv_basics(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="CFG", history=5)
        r1 = await kv.put("a", b"1")
        r2 = await kv.put("a", b"2")
        assert r2 == r1 + 1
        entry = await kv.get("a")
        assert entry.value == b"2" and entry.revision == r2
        old = await kv.get("a", revision=r1)
        assert old.value == b"1"
        r3 = await kv.update("a", b"3", last=r2)
        with pytest.raises(KeyWrongLastSequenceError):
            await kv.update("a", b"4", last=r2)
        await kv.create("b", b"new")
        with pytest.raises(KeyWrongLastSequenceError):
            await kv.create("b", b"again")
        assert sorted(await kv.keys()) == ["a", "b"]
        history = await kv.history("a")
        assert [e.value for e in history] == [b"1", b"2", b"3"]
        await kv.delete("b")
        with pytest.raises(KeyNotFoundError):
            await kv.get("b")
        assert await kv.keys() == ["a"]
        await kv.purge("a")
        with pytest.raises(KeyNotFoundError):
            await kv.get("a")
        with pytest.raises(NoKeysError):
            await kv.keys()
        status = await kv.status()
        assert status.bucket == "CFG" and status.history == 5
        assert r3 > r2
        await nc.close()

    run(main())


def test_jetstream_kv_direct_get_and_watch(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="W", history=1, direct=True)
        await kv.put("k1", b"v1")
        await kv.put("k2", b"v2")
        assert (await kv.get("k1")).value == b"v1"  # through DIRECT.GET
        watcher = await kv.watchall()
        initial = []
        while True:
            e = await watcher.updates(timeout=2)
            if e is None:
                break  # the initial values are done
            initial.append((e.key, e.value))
        assert initial == [("k1", b"v1"), ("k2", b"v2")]
        await kv.put("k1", b"v1b")
        await kv.delete("k2")
        e = await watcher.updates(timeout=2)
        assert (e.key, e.value, e.operation) == ("k1", b"v1b", None)
        e = await watcher.updates(timeout=2)
        assert (e.key, e.operation) == ("k2", "DEL")
        await watcher.stop()
        await nc.close()

    run(main())


def test_jetstream_kv_ttl(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="T", ttl=0.5)
        await kv.put("gone", b"soon")
        assert (await kv.get("gone")).value == b"soon"
        for _ in range(60):
            try:
                await kv.get("gone")
            except KeyNotFoundError:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("key did not expire")
        await nc.close()

    run(main())


def test_jetstream_object_store(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        obs = await js.create_object_store(bucket="FILES")
        data = bytes(range(256)) * 2000  # 512000 bytes: several 128 KiB chunks
        info = await obs.put("blob.bin", data)
        assert info.size == len(data) and info.chunks == 4
        res = await obs.get("blob.bin")
        assert res.data == data
        await obs.put("small.txt", b"hello")
        names = sorted(o.name for o in await obs.list())
        assert names == ["blob.bin", "small.txt"]
        await obs.delete("small.txt")
        names = sorted(o.name for o in await obs.list(ignore_deletes=True))
        assert names == ["blob.bin"]
        info = await obs.get_info("blob.bin")
        assert info.digest.startswith("SHA-256=")
        watcher = await obs.watch(include_history=False)
        await obs.put("later.txt", b"late")
        for _ in range(5):
            e = await watcher.updates(timeout=2)
            if e is not None and e.name == "later.txt":
                break
        else:
            pytest.fail("no watch update for later.txt")
        await obs.seal()
        status = await obs.status()
        assert status.sealed
        await nc.close()

    run(main())


def test_jetstream_kv_per_key_ttl_and_delete_markers(js_server):
    srv = js_server()

    async def main():
        nc = await connect(srv)
        js = nc.jetstream()
        await js.add_stream(name="KV_M", subjects=["$KV.M.>"], allow_msg_ttl=True,
                            allow_rollup_hdrs=True, max_msgs_per_subject=1, discard="new",
                            max_age=1.0, subject_delete_marker_ttl=1.0, allow_direct=True)
        kv = await js.key_value("M")
        await kv.create("short", b"v", msg_ttl=1)
        await kv.put("aged", b"w")
        watcher = await kv.watchall(include_history=True)
        seen = {}
        loop = asyncio.get_running_loop()
        end = loop.time() + 6
        while loop.time() < end and len(seen) < 2:
            e = await watcher.updates(timeout=1)
            if e is not None and e.operation in ("DEL", "PURGE"):
                seen[e.key] = e.operation
        assert seen.get("aged") in ("DEL", "PURGE"), seen  # the server's MaxAge marker
        # the per-message TTL expired too; its marker then expires by its own TTL
        for _ in range(80):
            try:
                await kv.get("short")
            except KeyNotFoundError:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("short never went")
        await watcher.stop()
        await nc.close()

    run(main())
