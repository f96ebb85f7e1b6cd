"""A raw WebSocket client for tests: sends exactly the upgrade request and
frames it is told to (valid or not) and reads what the server answers, as
bytes. Works against ours and the Go nats-server alike (loopback only)."""

import base64
import os
import socket
import struct
import time
import zlib

HOST = "127.0.0.1"


def mask_frame(opcode, payload, fin=True, rsv1=False, masked=True, length=None):
    """A client frame; ``length`` lies about the payload length when given."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", first, mask_bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def upgrade_request(port, path="/", key=None, headers=(), method="GET", host=True):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = ["%s %s HTTP/1.1" % (method, path)]
    if host:
        lines.append("Host: %s:%d" % (HOST, port))
    lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key,
              "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WSRawClient:
    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.response = b""
        self.compressed = False

    def upgrade(self, request=None, **kwargs):
        """Send the upgrade request; return the response head (bytes)."""
        self.sock.sendall(request if request is not None else upgrade_request(self.port, **kwargs))
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf and time.monotonic() < deadline:
            data = self._recv(deadline)
            if not data:
                break
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        self.response = head + sep
        self.buf = rest
        self.compressed = b"permessage-deflate" in head.lower()
        return self.response

    def read_body(self, timeout=1.0):
        """After an HTTP error: the rest of what the server sends before closing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._recv(deadline):
                break
        body, self.buf = self.buf, b""
        return body

    def _recv(self, deadline):
        self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            return b""
        self.buf += data
        return data

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, data, compress=False):
        """NATS bytes in one masked binary frame."""
        if compress:
            comp = zlib.compressobj(wbits=-15)
            body = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
            self.sock.sendall(mask_frame(2, body[:-4], rsv1=True))
        else:
            self.sock.sendall(mask_frame(2, data))

    def frames(self, timeout=1.0, until=None):
        """Read frames for up to ``timeout`` s (or until ``until(frames)``):
        [(opcode, payload)], payloads inflated when compressed."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self._take_frame()
            if frame is not None:
                out.append(frame)
                if frame[0] == 8 or (until and until(out)):
                    break
                continue
            if not self._recv(deadline):
                if self.buf and self._take_frame() is None:
                    break
                if not self.buf:
                    break
        return out

    def _take_frame(self):
        buf = self.buf
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        n = second & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack("!H", buf[2:4])[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack("!Q", buf[2:10])[0]
            pos = 10
        if len(buf) < pos + n:
            return None
        payload = buf[pos:pos + n]
        self.buf = buf[pos + n:]
        if first & 0x40:
            payload = zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")
        return first & 0x0F, payload

    def nats_bytes(self, timeout=1.0, until=None):
        """The NATS protocol bytes carried by data frames within ``timeout``
        (stops early once ``until`` (bytes) appears)."""
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for opcode, payload in self.frames(timeout=max(deadline - time.monotonic(), 0.01),
                                               until=lambda fs: True):
                if opcode in (1, 2, 0):
                    data += payload
                elif opcode == 8:
                    return data
            if until is not None and until in data:
                break
        return data

    def close_frame(self, timeout=2.0):
        """(status, text) of the server's close frame, or None."""
        for opcode, payload in self.frames(timeout=timeout):
            if opcode == 8:
                status = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return status, payload[2:].decode(errors="replace")
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
