"""A subscriber that stops reading is cut off as a slow consumer once its
pending bytes pass max_pending, whether its messages were delivered one by one
or in batches, and the publisher carries on unharmed."""

import json
import urllib.request

import pytest

PAYLOAD = b"x" * 1024
CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


def monitor(server, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (server.http_port, path),
                                timeout=5) as resp:
        return json.load(resp)


@pytest.mark.parametrize("mixed", [False, True], ids=["batched", "per_message"])
def test_client_slow_consumer_pending_bytes(make_server, raw_client, tmp_path, wait_for, mixed):
    conf = tmp_path / "slow.conf"
    conf.write_text("max_pending: 256KB\nmax_payload: 4KB\n")
    server = make_server("-c", str(conf), "-m", "-1")
    sub = raw_client(server)
    sub.send(CONNECT + b"SUB foo.* 1\r\nPING\r\n")
    sub.expect(rb"PONG\r\n")
    pub = raw_client(server)
    pub.send(CONNECT)
    frames = [b"PUB foo.a 1024\r\n" + PAYLOAD + b"\r\n",
              b"PUB foo.b 1024\r\n" + PAYLOAD + b"\r\n" if mixed else None]
    chunk = b"".join(frames[i % 2] or frames[0] for i in range(64))  # 64 KiB a write
    # The subscriber reads nothing: once the kernel's socket buffers are full
    # (a few MB on loopback), the server's pending bytes grow past 256 KB.
    for _ in range(40 * 16):  # 40 MB
        pub.send(chunk)
    pub.send(b"PING\r\n")
    pub.expect(rb"PONG\r\n", timeout=30)  # the publisher was never blocked or closed

    def closed_as_slow():
        conns = monitor(server, "/connz?state=closed").get("connections") or []
        return any(c.get("reason") == "Slow Consumer (Pending Bytes)" for c in conns)

    wait_for(closed_as_slow, timeout=15, message="subscriber closed as slow consumer")
    assert monitor(server, "/varz")["slow_consumers"] >= 1
    # What the kernel held is still readable; then the server's close shows.
    sub.sock.settimeout(15)
    total = 0
    while True:
        data = sub.sock.recv(1 << 20)
        if not data:
            break
        total += len(data)
    assert total < 40 << 20  # cut off long before the 40 MB were delivered
