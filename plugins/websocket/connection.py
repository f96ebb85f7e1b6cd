"""A WebSocket client connection: after the HTTP upgrade it is an ordinary
client connection (same parser, delivery, auth). Only the two ends change:
reads go through :class:`FrameReader` (wsproto's frame decoder) into the
parser, and each flush frames everything pending as one binary frame.

The flush keeps the core's shape (connection.py): one non-blocking send of
the framed bytes, and a writer greenlet only while the socket pushes back.
Framed bytes that did not go out wait in ``wire``, so a frame is never cut
by a later one.
"""

import struct
import time
import zlib

import gevent
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from pluggy_nats.client import PRE_AUTH_OPS, ClientConnection
from pluggy_nats.connection import READ_SIZE, ClosedReason

from .upgrade import UpgradeError, UpgradeReader

# nats-server's wsEnqueueCloseMessage: the close status for each reason.
_POLICY = {ClosedReason.AUTHENTICATION_TIMEOUT, ClosedReason.AUTHENTICATION_VIOLATION,
           ClosedReason.SLOW_CONSUMER_PENDING_BYTES, ClosedReason.SLOW_CONSUMER_WRITE_DEADLINE,
           ClosedReason.MAX_ACCOUNT_CONNECTIONS_EXCEEDED, ClosedReason.MAX_CONNECTIONS_EXCEEDED,
           ClosedReason.MAX_CONTROL_LINE_EXCEEDED, ClosedReason.MAX_SUBSCRIPTIONS_EXCEEDED,
           ClosedReason.AUTHENTICATION_EXPIRED, ClosedReason.REVOCATION}
_PROTOCOL = {ClosedReason.PARSE_ERROR, ClosedReason.PROTOCOL_VIOLATION,
             ClosedReason.BAD_CLIENT_PROTOCOL_VERSION}
_GOING_AWAY = {ClosedReason.WRITE_ERROR, ClosedReason.READ_ERROR,
               ClosedReason.STALE_CONNECTION, ClosedReason.SERVER_SHUTDOWN}
CONTROL_PAYLOAD_MAX = 125
COMPRESS_THRESHOLD = 64  # Go does not compress smaller buffers


def close_status(reason):
    if reason is ClosedReason.CLIENT_CLOSED:
        return 1000
    if reason in _POLICY:
        return 1008
    if reason is ClosedReason.TLS_HANDSHAKE_ERROR:
        return 1015
    if reason in _PROTOCOL:
        return 1002
    if reason is ClosedReason.MAX_PAYLOAD_EXCEEDED:
        return 1009
    if reason in _GOING_AWAY:
        return 1001
    return 1011


def frame_header(opcode, length, rsv1=False):
    """A server frame's header (final, unmasked)."""
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def close_frame(status, text):
    """Go's wsCreateCloseMessage: a reason longer than a control frame allows
    is cut and ends in "..."."""
    body = text.encode()
    if len(body) > CONTROL_PAYLOAD_MAX - 2:
        body = body[:CONTROL_PAYLOAD_MAX - 5] + b"..."
    payload = struct.pack("!H", status) + body
    return frame_header(Opcode.CLOSE, len(payload)) + payload


class BoundedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a cap on what one message may
    inflate to (nats-server: 8x max_payload, at most 64 MiB), so a small
    compressed frame cannot blow up into gigabytes."""

    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit
        self.inflated = 0

    def frame_inbound_payload_data(self, proto, data):
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        try:
            out = self._decompressor.decompress(bytes(data), self.limit - self.inflated + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated += len(out)
        if self.inflated > self.limit or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto, fin):
        if fin:
            self.inflated = 0
        return super().frame_inbound_complete(proto, fin)


def inflate_limit(max_payload):
    return min(max_payload * 8, 64 << 20)


class FrameReader:
    """Stands in for the socket in the reader loop: ``recv`` returns the NATS
    bytes carried by data frames, answers PINGs, and returns b"" when the
    client closes. A framing error closes the connection with status 1002."""

    def __init__(self, conn, sock, decoder):
        self.conn = conn
        self.sock = sock
        self.decoder = decoder

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    def sendall(self, data):
        """``data`` is already framed."""
        self.sock.sendall(data)

    def send_piece(self, data):
        """The writer's path: ``data`` is already framed; all of it was sent."""
        self.sock.sendall(data)
        return len(data)

    def recv(self, size):
        conn = self.conn
        decoder = self.decoder
        while True:
            data = self.sock.recv(size)
            if not data:
                return b""
            decoder.receive_bytes(data)
            chunks = []
            try:
                for frame in decoder.received_frames():
                    opcode = frame.opcode
                    if opcode is Opcode.BINARY or opcode is Opcode.TEXT \
                            or opcode is Opcode.CONTINUATION:
                        payload = frame.payload
                        if payload:
                            chunks.append(payload if isinstance(payload, bytes)
                                          else bytes(payload) if isinstance(payload, bytearray)
                                          else payload.encode())
                    elif opcode is Opcode.PING:
                        conn.send_control(Opcode.PONG, bytes(frame.payload))
                    elif opcode is Opcode.CLOSE:
                        code, text = frame.payload
                        # Echo the client's close frame, as nats-server does.
                        conn.close_frame_due = False
                        echo = b"" if code == 1005 else struct.pack("!H", code) + text.encode()
                        conn.send_control(Opcode.CLOSE, echo)
                        if chunks:
                            conn.parser.feed(b"".join(chunks))
                        return b""
            except ParseFailed as exc:
                # nats-server queues a close frame (1002, the problem) and ends
                # the connection (websocket.go wsHandleProtocolError).
                conn.log.debug("websocket_framing_error", error=str(exc))
                conn.close(ClosedReason.PROTOCOL_VIOLATION, close_text=str(exc))
                raise OSError("websocket framing error") from None
            if chunks:
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class WebSocketClientConnection(ClientConnection):
    """A client whose bytes travel in WebSocket frames."""

    is_websocket = True
    conn_type = "websocket"  # /connz "type"
    client_type = "WEBSOCKET"  # allowed_connection_types

    def __init__(self, server, sock, addr, manager):
        super().__init__(server, sock, addr)
        self.manager = manager
        self.wire = bytearray()  # framed bytes not yet taken by the kernel
        self.ws_sock = sock  # the byte stream under the frames (TLS or plain)
        self.close_frame_due = True  # False: close without a close frame (as Go)
        self.compress = False
        self._compressor = None
        self.cookies = {}
        self.ws_client_ip = ""
        self.no_auth_user = manager.config.no_auth_user
        if manager.config.auth_override and not server.auth_required:
            # The block's own authorization: CONNECT first, as with any auth.
            self.parser.ops = PRE_AUTH_OPS

    # -- the upgrade --------------------------------------------------------

    def on_start(self):
        """Read the HTTP upgrade, answer it, then go on as a client (INFO)."""
        cfg = self.manager.config
        if self.tls:
            self.ws_sock = self.sock
        reader = UpgradeReader(cfg, tls=self.tls)
        timeout = self.manager.handshake_timeout()
        try:
            with gevent.Timeout(timeout, False):
                upgrade = None
                while upgrade is None:
                    data = self.ws_sock.recv(READ_SIZE)
                    if not data:
                        break
                    reader.feed(data)
                    upgrade = reader.result()
            if upgrade is None:  # timed out or closed before the request ended
                self._close_silently(ClosedReason.READ_ERROR)
                return
        except UpgradeError as exc:
            self.manager.log.error("websocket_handshake_error", remote="%s:%s" % (
                self.host, self.port), reason=exc.reason)
            self._close_silently(ClosedReason.PROTOCOL_VIOLATION, exc.response)
            return
        except OSError:
            self._close_silently(ClosedReason.READ_ERROR)
            return
        if upgrade.kind != "client":
            self._hand_over(upgrade)
            return
        self.compress = upgrade.compress
        self.cookies = upgrade.cookies
        self.ws_client_ip = upgrade.client_ip
        extensions = []
        if upgrade.compress:
            pmd = BoundedDeflate(inflate_limit(self.parser.max_payload),
                                 client_no_context_takeover=True,
                                 server_no_context_takeover=True)
            pmd.accept(upgrade.extensions_offer)
            extensions.append(pmd)
        # wsproto checks the mask bit from the side it plays: "client" frames
        # may arrive unmasked only when the client asked (Nats-No-Masking).
        decoder = FrameProtocol(client=upgrade.no_masking, extensions=extensions)
        self.wire += upgrade.response
        self.sock = FrameReader(self, self.ws_sock, decoder)
        self.server.register(self)  # a client from here on (counted, in /connz)
        super().on_start()

    def _hand_over(self, upgrade):
        """A leaf node dialled ``/leafnode``: the leafnode plugin takes the
        WebSocket stream from here (nats-server's createLeafNode over ws)."""
        from .transport import WebSocketSocket

        server = self.server
        try:
            self.ws_sock.sendall(upgrade.response)
        except OSError:
            self._close_silently(ClosedReason.WRITE_ERROR)
            return
        stream = WebSocketSocket(self.ws_sock, expect_masked=not upgrade.no_masking, mask=False)
        # This connection was only the upgrade and was never registered as a
        # client: it ends here without close hooks, as Go never made a client of it.
        self.closed = True
        handled = server.hook.nats_link_accept(server=server, kind=upgrade.kind, sock=stream,
                                               addr=(self.host, self.port))
        if not handled:  # no leafnodes {} block (nats-server's words)
            self.manager.log.error("Not configured to accept leaf node connections")
            stream.close()

    def _close_silently(self, reason, response=b""):
        """Before the upgrade: an HTTP answer (if any), then close. Never a
        client, so no close hooks, no /connz entry (as in Go)."""
        if response:
            try:
                self.ws_sock.sendall(response)
            except OSError:
                pass
        self.closed = True
        self.closed_reason = reason
        self.parser.stop()
        try:
            self.ws_sock.close()
        except OSError:
            pass

    # -- CONNECT ----------------------------------------------------------------

    def _authenticate(self, opts):
        """Credentials a browser cannot put in CONNECT come from the cookies the
        block names (nats-server: only when CONNECT lacks them)."""
        cfg = self.manager.config
        for field, cookie in (("jwt", cfg.jwt_cookie), ("user", cfg.user_cookie),
                              ("pass", cfg.pass_cookie), ("auth_token", cfg.token_cookie)):
            if cookie and not opts.get(field) and cookie in self.cookies:
                opts[field] = self.cookies[cookie]
        return super()._authenticate(opts)

    # -- writing --------------------------------------------------------------

    def _frame(self, data):
        """``data`` as one binary frame (compressed when negotiated and worth it)."""
        if self.compress and len(data) > COMPRESS_THRESHOLD:
            # No context takeover: a fresh raw deflate stream per message,
            # without the 00 00 ff ff tail (RFC 7692 7.2.1).
            comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            body = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
            if body.endswith(b"\x00\x00\xff\xff"):
                body = body[:-4]
            return frame_header(Opcode.BINARY, len(body), rsv1=True) + body
        return frame_header(Opcode.BINARY, len(data)) + data

    def send_control(self, opcode, payload=b""):
        self.wire += frame_header(opcode, len(payload)) + payload
        if not self.flush_queued:
            self.flush_queued = True
            self.server.touched.append(self)

    def flush(self):
        out = self.out
        if self.writer is not None or self.closed:
            return
        if out:
            self.wire += self._frame(out)
            out.clear()
        wire = self.wire
        if not wire:
            return
        if self.tls:
            n = 0  # TLS writes go through the writer's sendall (as in the core)
        else:
            try:
                n = self._raw.send(wire)
            except BlockingIOError:
                n = 0
            except OSError:
                self.close(ClosedReason.WRITE_ERROR)
                return
        if n == len(wire):
            wire.clear()
            return
        del wire[:n]
        self.writer = self.server.spawn(self._write_loop)

    def _take_pending(self):
        """The core's writer sends framed bytes: what waits in ``wire``, then
        whatever was queued since, as one more frame."""
        if self.out:
            self.wire += self._frame(self.out)
            self.out = bytearray()
        data, self.wire = self.wire, bytearray()
        return data

    @property
    def pending_bytes(self):
        return len(self.out) + len(self.wire)

    # -- closing --------------------------------------------------------------

    def close(self, reason, err=None, close_text=None):
        """Close with pending data, the -ERR (if any) and a close frame whose
        status follows the reason (nats-server's wsEnqueueCloseMessage)."""
        if self.closed:
            return
        if not self.close_frame_due:  # what is queued still goes
            final = bytes(self.wire)
            self.wire.clear()
            if final and self.writer is None and not self.tls:
                try:
                    self._raw.send(final)
                except OSError:
                    pass
        else:
            final = bytearray(self.wire)
            pending = bytes(self.out) + (self._err_bytes(err) if err else b"")
            if pending:
                final += self._frame(pending)
            final += close_frame(close_status(reason), close_text or reason.value)
            self.wire.clear()
            self.out = bytearray()
            if self.writer is None:
                try:
                    if self.tls:
                        self._raw.send_now(final)
                    else:
                        self._raw.send(final)
                except OSError:
                    pass
        self.stop = time.time()
        super().close(reason)

    @staticmethod
    def _err_bytes(err):
        from pluggy_nats.protocol import encode

        return encode.err(err)
