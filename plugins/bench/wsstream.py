"""The load generator over WebSocket: a socket look-alike that carries the
NATS byte stream in WebSocket frames, so every worker runs unchanged with a
``ws://`` URL. Client frames are masked with the all-zero key (valid, RFC
6455 5.3: the mask must be present; its value is the client's choice), which
leaves payloads untouched: the generator spends no time masking."""

import base64
import os
import socket
import struct

ZERO_MASK = b"\0\0\0\0"


def _header(opcode, length):
    first = 0x80 | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length) + ZERO_MASK
    if length < 65536:
        return struct.pack("!BBH", first, 0x80 | 126, length) + ZERO_MASK
    return struct.pack("!BBQ", first, 0x80 | 127, length) + ZERO_MASK


class WSStream:
    """sendall/recv/recv_into over WebSocket frames (server frames are unmasked)."""

    def __init__(self, sock, rest=b""):
        self.sock = sock
        self.raw = bytearray(rest)  # frame bytes not yet decoded
        self.data = bytearray()  # decoded NATS bytes not yet returned
        self.eof = False

    # socket look-alike ---------------------------------------------------------
    def settimeout(self, t):
        self.sock.settimeout(t)

    def gettimeout(self):
        return self.sock.gettimeout()

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    def sendall(self, data):
        self.sock.sendall(_header(2, len(data)) + data)

    def recv(self, size):
        if not self.data and not self._fill():
            return b""
        out = bytes(self.data[:size])
        del self.data[:size]
        return out

    def recv_into(self, view):
        if not self.data and not self._fill():
            return 0
        n = min(len(view), len(self.data))
        view[:n] = self.data[:n]
        del self.data[:n]
        return n

    # frames ----------------------------------------------------------------------
    def _fill(self):
        """Read until some NATS bytes are decoded; False at end of stream."""
        while not self.data:
            if not self._decode() and not self.eof:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.eof = True
                else:
                    self.raw += chunk
                    continue
            if self.eof and not self.data:
                return False
        return True

    def _decode(self):
        """Decode the complete frames in ``raw``; True if any was decoded."""
        raw = self.raw
        pos = 0
        decoded = False
        while len(raw) - pos >= 2:
            first, second = raw[pos], raw[pos + 1]
            n = second & 0x7F
            head = 2
            if n == 126:
                if len(raw) - pos < 4:
                    break
                n = struct.unpack_from("!H", raw, pos + 2)[0]
                head = 4
            elif n == 127:
                if len(raw) - pos < 10:
                    break
                n = struct.unpack_from("!Q", raw, pos + 2)[0]
                head = 10
            if len(raw) - pos < head + n:
                break
            opcode = first & 0x0F
            body = raw[pos + head:pos + head + n]
            pos += head + n
            decoded = True
            if opcode in (0, 1, 2):
                self.data += body
            elif opcode == 9:  # ping
                self.sock.sendall(_header(10, len(body)) + bytes(body))
            elif opcode == 8:  # close
                self.eof = True
        del raw[:pos]
        return decoded


def ws_connect(host, port, timeout=10.0):
    """TCP connect, upgrade, and return a :class:`WSStream`."""
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (host, port, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk or len(buf) > 65536:
            sock.close()
            raise ConnectionError("websocket upgrade refused by %s:%d" % (host, port))
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError("websocket upgrade refused: %r" % head.split(b"\r\n")[0])
    return WSStream(sock, rest)
