"""Fuzzing the WebSocket parsers (issue 18 for issue 16): the HTTP upgrade
request and the frames after it, seeded and bounded, against a real server
process. No exception escapes, the log rule holds, what comes back is a
well-formed HTTP answer followed by well-formed frames carrying well-formed
NATS protocol, and the server keeps serving its other clients."""

import socket
import struct
import zlib

from hypothesis import strategies as st

from pluggy_nats.testing import fuzz
from pluggy_nats.testing.wsraw import mask_frame, upgrade_request

CONFIG = 'websocket { listen: "127.0.0.1:-1", no_tls: true, compression: true }\n'
EXAMPLES = 120


def _frame_inputs():
    """A few frames: every opcode (and unknown ones), fin and rsv bits right
    and wrong, masked or not, lengths that lie, payloads from the client
    protocol fuzzer or raw bytes, sometimes deflated."""
    payload = st.one_of(fuzz.client_inputs(), st.binary(max_size=200))
    frame = st.tuples(
        st.sampled_from([2, 2, 2, 1, 0, 8, 9, 10, 3, 11]),  # opcode
        payload,
        # 1: deflated (rsv1); 2: rsv2 set; 3: unmasked; 4: a lying length;
        # 5: not final (with the flag below); else a plain frame
        st.integers(0, 9),
        st.booleans(),
    )

    def build(items):
        out = b""
        for opcode, data, variant, unfinished in items:
            if variant == 1:
                comp = zlib.compressobj(wbits=-15)
                body = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
                out += mask_frame(opcode, body[:-4], rsv1=True)
            elif variant == 2:
                framed = mask_frame(opcode, data)
                out += bytes([framed[0] | 0x20]) + framed[1:]
            elif variant == 3:
                out += mask_frame(opcode, data, masked=False)
            elif variant == 4:
                out += mask_frame(opcode, data, length=len(data) + 7)
            else:
                out += mask_frame(opcode, data, fin=not (unfinished and variant == 5))
        return out

    return st.lists(frame, min_size=1, max_size=5).map(build)


def _upgrade_inputs(port):
    """Upgrade requests, mutated: methods, missing and doubled headers, keys
    and versions, junk lines, truncation."""
    base = upgrade_request(port)
    lines = base.split(b"\r\n")

    def mutate(choice):
        kind, junk = choice
        if kind == 0:
            return base.replace(b"GET", junk[:8] or b"PUT", 1)
        if kind == 1:
            drop = 1 + len(junk) % (len(lines) - 3)
            return b"\r\n".join(lines[:drop] + lines[drop + 1:])
        if kind == 2:
            return base[:len(junk) % len(base)]
        if kind == 3:
            return base.replace(b"\r\n\r\n", b"\r\n" + junk + b"\r\n\r\n")
        if kind == 4:
            return base.replace(b"Version: 13", b"Version: " + junk[:4])
        return junk + b"\r\n\r\n"

    return st.tuples(st.integers(0, 5), st.binary(max_size=60)).map(mutate)


def _check_ws_reply(_data, reply):
    """An HTTP head, then (after a 101) whole frames whose data carries only
    NATS protocol a client may get."""
    if not reply:
        return
    head, sep, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), "not HTTP: %r" % reply[:80]
    if not head.startswith(b"HTTP/1.1 101"):
        return
    nats_bytes = b""
    pos = 0
    while pos < len(rest):
        assert len(rest) - pos >= 2, "truncated frame header %r" % rest[pos:]
        first, second = rest[pos], rest[pos + 1]
        assert not second & 0x80, "server frames are never masked"
        n, pos = second & 0x7F, pos + 2
        if n == 126:
            n, pos = struct.unpack("!H", rest[pos:pos + 2])[0], pos + 2
        elif n == 127:
            n, pos = struct.unpack("!Q", rest[pos:pos + 8])[0], pos + 8
        body = rest[pos:pos + n]
        assert len(body) == n, "truncated frame"
        pos += n
        if first & 0x40:
            body = zlib.decompressobj(wbits=-15).decompress(body + b"\x00\x00\xff\xff")
        if first & 0x0F in (1, 2):
            nats_bytes += body
    fuzz.check_reply(nats_bytes)


class UpgradedTarget(fuzz.WireTarget):
    """Each input goes after a completed upgrade: the request, the 101 head
    read back, then the frames (sent together with the request they would be
    "data before the handshake", which Go and we refuse unanswered)."""

    def send(self, data, stats):
        request = upgrade_request(self.port)
        sock = socket.create_connection((self.host, self.port), timeout=5)
        try:
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                assert chunk, "upgrade not answered"
                head += chunk
            assert head.startswith(b"HTTP/1.1 101"), head[:80]
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reply = head
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                reply += chunk
        finally:
            sock.close()
        stats.examples += 1
        stats.sent += len(request) + len(data)
        self.replies_with_frames += bool(reply.partition(b"\r\n\r\n")[2])
        _check_ws_reply(data, reply)
        if stats.examples % self.sentinel_every == 0:
            assert self.serving(), "server stopped serving after %r" % data
        return reply


def test_fuzz_websocket_frames(make_server):
    server = make_server(config=CONFIG)
    target = UpgradedTarget(server.logfile, "127.0.0.1", server.ws_port,
                            sentinel_port=server.port)
    target.replies_with_frames = 0
    stats = fuzz.run(target, _frame_inputs(), EXAMPLES, seed_value=8080,
                     explicit=[mask_frame(2, b"PING\r\n", masked=False),
                               mask_frame(9, b"p" * 126), mask_frame(8, b"\x03")])
    assert stats.examples == 3 + fuzz.examples(EXAMPLES)
    # the inputs reached the frame parser: INFO (at least) came back framed
    assert target.replies_with_frames == stats.examples


def test_fuzz_websocket_upgrade(make_server):
    server = make_server(config=CONFIG)
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.ws_port, read_info=False,
                             check=_check_ws_reply, sentinel_port=server.port)
    # One error line per refused upgrade is the log's price (Go logs it too).
    stats = fuzz.run(target, _upgrade_inputs(server.ws_port), EXAMPLES, seed_value=8081,
                     explicit=[b"GET / HTTP/1.1\r\n" + b"H: v\r\n" * 200 + b"\r\n"],
                     log_per_connection=200)
    assert stats.examples == 1 + fuzz.examples(EXAMPLES)
