"""Subject mappings (top-level ``mappings {}``, the global account) with nats-py:
literal, wildcard, partition, split and weighted destinations."""

import asyncio
import collections

import nats
import nats.errors

from pluggy_nats.testing.plugin import run

CONF = """
mappings {
  "m.lit": "m.dest"
  "w.*.*": "wd.$2.$1"
  "f.*.>": "fd.{{wildcard(1)}}.>"
  "p.*": "pp.{{partition(3,1)}}.{{wildcard(1)}}"
  "s.*": "ss.{{split(1,-)}}"
  "sl.*": "sl2.{{slicefromleft(1,2)}}"
  "weighted": [{destination: "wa", weight: 70%}, {destination: "wb", weight: 30%}]
  "half": [{destination: "h1", weight: 50}]
}
"""


def fnv32a(data):
    """FNV-1a, written out here so the test checks the server's partitions."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) % 2**32
    return h


async def _drain(sub, quiet=0.3):
    out = []
    while True:
        try:
            msg = await sub.next_msg(timeout=quiet)
        except nats.errors.TimeoutError:
            return out
        out.append(msg)


async def settle(nc):
    await asyncio.sleep(0.01)
    await nc.flush()


def test_client_mappings_rewrite_subjects(make_server):
    server = make_server(config=CONF)

    async def main():
        nc = await nats.connect(server.url, allow_reconnect=False)
        sub = await nc.subscribe(">")
        await settle(nc)
        for subject in ("m.lit", "w.a.b", "f.x.y.z", "s.a-b--c", "sl.abcde", "unmapped.x"):
            await nc.publish(subject, subject.encode())
        await settle(nc)
        got = [(m.subject, m.data.decode()) for m in await _drain(sub)]
        await nc.close()
        return got

    got = run(main())
    assert got == [("m.dest", "m.lit"), ("wd.b.a", "w.a.b"), ("fd.x.y.z", "f.x.y.z"),
                   ("ss.a.b.c", "s.a-b--c"), ("sl2.ab.cd.e", "sl.abcde"),
                   ("unmapped.x", "unmapped.x")]


def test_client_mappings_partition_and_weights(make_server):
    server = make_server(config=CONF)
    n = 2000

    async def main():
        nc = await nats.connect(server.url, allow_reconnect=False)
        sub = await nc.subscribe(">", pending_msgs_limit=100000)
        await settle(nc)
        for i in range(300):
            await nc.publish("p.k%d" % i, b"")
        for _ in range(n):
            await nc.publish("weighted", b"")
            await nc.publish("half", b"")
        await settle(nc)
        got = await _drain(sub, quiet=1.0)
        await nc.close()
        return [m.subject for m in got]

    subjects = run(main())
    parts = [s for s in subjects if s.startswith("pp.")]
    assert len(parts) == 300
    buckets = collections.Counter()
    for s in parts:
        _, bucket, key = s.split(".")
        assert int(bucket) == fnv32a(key.encode()) % 3, s
        buckets[bucket] += 1
    assert set(buckets) == {"0", "1", "2"} and min(buckets.values()) > 60, buckets
    counts = collections.Counter(s for s in subjects if not s.startswith("pp."))
    assert set(counts) == {"wa", "wb", "h1", "half"}, counts
    assert counts["wa"] + counts["wb"] == n and counts["h1"] + counts["half"] == n
    # 70/30 and 50/50 (the rest of "half" keeps its subject), within 5 points
    assert abs(counts["wa"] / n - 0.70) < 0.05, counts
    assert abs(counts["h1"] / n - 0.50) < 0.05, counts


def test_client_mappings_reload_applies_to_connected_clients(make_server, tmp_path, raw_client):
    """SIGHUP with new mappings: a client connected before the reload (on the
    fast publish path then) publishes through the new mappings at once."""
    import signal

    from pluggy_nats.testing.raw import wait_for

    server = make_server(config="ping_max: 2\n")
    conf = tmp_path / ("%s.conf" % server.name)
    c = raw_client(server)
    c.send(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB > 1\r\n'
           b"PUB a 1\r\nx\r\nPUB c 1\r\ny\r\nPING\r\n")
    c.expect(rb"MSG a 1 1\r\nx\r\nMSG c 1 1\r\ny\r\nPONG\r\n")

    def reload(text, count):
        conf.write_text(text)
        server.signal(signal.SIGHUP)
        wait_for(lambda: server.logs().count("config_reloaded") == count,
                 message="reload %d logged" % count)

    reload('ping_max: 2\nmappings { "c": "d" }\n', 1)
    c.send(b"PUB a 1\r\nx\r\nPUB c 1\r\ny\r\nPING\r\n")
    c.expect(rb"MSG a 1 1\r\nx\r\nMSG d 1 1\r\ny\r\nPONG\r\n")
    reload("ping_max: 2\n", 2)  # and gone again
    c.send(b"PUB c 1\r\ny\r\nPING\r\n")
    c.expect(rb"MSG c 1 1\r\ny\r\nPONG\r\n")
