"""A WebSocket byte stream that looks like a socket, for connections whose
code should not care how their bytes travel (leaf links over ``ws://``).

:class:`WebSocketSocket` has the socket methods a
:class:`~pluggy_nats.connection.Connection` uses. Its ``send`` always
reports "would block", so every flush goes through the connection's writer
greenlet and ``sendall``, which frames what it is given (the same path TLS
connections take). :func:`ws_dial` is the client side: TCP (and TLS for
``wss://``), the HTTP upgrade, and the stream.
"""

import base64
import os
import struct

import gevent.lock
import gevent.socket
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from .upgrade import accept_key

LEAF_PATH = "/leafnode"


class WebSocketError(OSError):
    """The upgrade was refused or a frame was malformed."""


def frame(opcode, payload, mask):
    """One final frame; masked (client side) with a random key when ``mask``."""
    n = len(payload)
    first = 0x80 | opcode
    bit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    # XOR by whole words: int.from_bytes over the payload is C speed.
    words = key * (n // 4 + 1)
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(words[:n], "big")).to_bytes(n, "big")
    return head + key + body


class WebSocketSocket:
    """The NATS byte stream carried in WebSocket frames over ``sock``.

    ``expect_masked``: frames from the peer carry a mask (we are the server
    and no-masking was not agreed). ``mask``: our frames must be masked (we
    are the client and no-masking was not agreed).
    """

    def __init__(self, sock, expect_masked, mask, rest=b""):
        self.sock = sock
        self.mask = mask
        # wsproto's "client" role expects unmasked frames from its peer.
        self.decoder = FrameProtocol(client=not expect_masked, extensions=[])
        self.pending = bytearray()
        self.write_lock = gevent.lock.Semaphore()
        self.closed_by_peer = False
        if rest:
            self.decoder.receive_bytes(rest)

    # what Connection uses ---------------------------------------------------------
    def fileno(self):
        return self.sock.fileno()

    def getpeername(self):
        return self.sock.getpeername()

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def settimeout(self, value):
        self.sock.settimeout(value)

    def close(self):
        self.sock.close()

    def send(self, data):
        raise BlockingIOError  # framed writes only, through sendall

    def send_piece(self, data):
        """The writer's path: one frame for ``data``; all of it was sent."""
        self.sendall(data)
        return len(data)

    def sendall(self, data):
        if data:
            self._write(frame(Opcode.BINARY, bytes(data), self.mask))

    def _write(self, framed):
        with self.write_lock:  # the reader answers pings while a writer may be sending
            self.sock.sendall(framed)

    def recv(self, size):
        while not self.pending:
            if self.closed_by_peer:
                return b""
            if not self._decode():
                data = self.sock.recv(size)
                if not data:
                    return b""
                self.decoder.receive_bytes(data)
        out = bytes(self.pending[:size])
        del self.pending[:size]
        return out

    def _decode(self):
        """Decode what has arrived; True if anything was (data or control)."""
        progressed = False
        try:
            for item in self.decoder.received_frames():
                progressed = True
                opcode = item.opcode
                if opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONTINUATION):
                    payload = item.payload
                    self.pending += payload.encode() if isinstance(payload, str) else payload
                elif opcode is Opcode.PING:
                    self._write(frame(Opcode.PONG, bytes(item.payload), self.mask))
                elif opcode is Opcode.CLOSE:
                    self.closed_by_peer = True
                    break
        except ParseFailed as exc:
            raise WebSocketError("websocket framing error: %s" % exc) from None
        return progressed


def ws_dial(url, timeout=2.0, tls_context=None, server_hostname=None, path=LEAF_PATH,
            no_masking=False, headers=()):
    """Dial ``ws://host:port`` or ``wss://host:port`` and upgrade; returns a
    :class:`WebSocketSocket`. ``no_masking`` asks the server to let our frames
    go unmasked (nats-server's ``Nats-No-Masking``; used only if it agrees)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = gevent.socket.create_connection((host, port), timeout=timeout)
    try:
        if parts.scheme == "wss":
            if tls_context is None:
                raise WebSocketError("wss:// needs a TLS configuration")
            sock = tls_context.wrap_socket(sock, server_hostname=server_hostname or host)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % (parts.path or path), "Host: %s:%d" % (host, port),
                 "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
        if no_masking:
            lines.append("Nats-No-Masking: true")
        lines += ["%s: %s" % h for h in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        with gevent.Timeout(timeout, WebSocketError("websocket upgrade timed out")):
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk or len(buf) > 65536:
                    raise WebSocketError("websocket upgrade: connection closed")
                buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise WebSocketError("websocket upgrade refused: %s" % lines[0])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("sec-websocket-accept") != accept_key(key):
            raise WebSocketError("websocket upgrade: wrong Sec-WebSocket-Accept")
        agreed = no_masking and fields.get("nats-no-masking") == "true"
        sock.settimeout(None)
        return WebSocketSocket(sock, expect_masked=False, mask=not agreed, rest=rest)
    except BaseException:
        sock.close()
        raise


def dial_link(url, timeout, tls_config, no_masking=False):
    """The link layer's transport for ``ws://`` and ``wss://`` URLs (leaf
    remotes): ``tls_config`` (a pluggy_nats.tls.TLSConfig) secures wss://;
    without one, the system's default client context is used. ``no_masking``:
    a remote's ``ws_no_masking``."""
    context = None
    if url.lower().startswith("wss://"):
        import ssl

        context = tls_config.client_context() if tls_config is not None \
            else ssl.create_default_context()
    return ws_dial(url, timeout=timeout, tls_context=context, no_masking=no_masking)
