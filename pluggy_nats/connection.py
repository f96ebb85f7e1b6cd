"""Connections: one reader greenlet each, an outbound buffer, and a writer
greenlet that exists only while a socket pushes back.

The write path (docs/architecture.md, "The data path"): delivering a message appends bytes to the
target's ``out`` buffer and queues the target on the server's ``touched`` list
once. After the publisher's read batch is handled, every touched connection is
flushed with one non-blocking ``send``; only if the kernel does not take it all
is a writer greenlet started, which finishes the job with ``sendall`` under
``write_deadline``. Publishers never block on a subscriber's socket, and an idle
connection owns one greenlet, not two.
"""

import enum
import itertools
import socket
import time

import gevent
import structlog

from .delivery import forget_plans
from .links.kinds import ALL_ORIGINS, CLIENT_ORIGIN
from .protocol import encode
from .protocol.errors import ProtocolError
from .protocol.parser import Parser

CLIENT, ROUTE, GATEWAY, LEAF, SYSTEM, ACCOUNT, JETSTREAM = range(7)
KIND_NAMES = {CLIENT: "Client", ROUTE: "Router", GATEWAY: "Gateway", LEAF: "Leafnode",
              SYSTEM: "System", ACCOUNT: "Account", JETSTREAM: "JetStream"}

READ_SIZE = 65536
# A connection streaming big payloads (the parser's ``big``: its last run had
# payloads of at least 256 bytes) reads this much at once: the fixed cost of a
# read, a parse and a flush is then spread over four times the messages
# (pubsub 1 KiB +25%, gateway and leaf 1 KiB +40%, measured beside Go), while
# small frames keep 64 KiB reads, whose runs stay in the CPU's caches (256 KiB
# reads of 16 B frames were 20% slower over links; 1 MiB reads slower at both).
READ_BIG = 262144
# A blocked writer sends at most this much per send, so the write deadline
# measures progress, not the size of a backlog (nats-server sets its deadline
# per batched write).
WRITE_CHUNK = 65536


class ClosedReason(enum.Enum):
    """Why a connection closed; the values are nats-server's ClosedState texts (/connz)."""

    CLIENT_CLOSED = "Client Closed"
    AUTHENTICATION_TIMEOUT = "Authentication Timeout"
    AUTHENTICATION_VIOLATION = "Authentication Failure"
    AUTHENTICATION_EXPIRED = "Authentication Expired"
    REVOCATION = "Credentials Revoked"
    TLS_HANDSHAKE_ERROR = "TLS Handshake Failure"
    SLOW_CONSUMER_PENDING_BYTES = "Slow Consumer (Pending Bytes)"
    SLOW_CONSUMER_WRITE_DEADLINE = "Slow Consumer (Write Deadline)"
    WRITE_ERROR = "Write Error"
    READ_ERROR = "Read Error"
    PARSE_ERROR = "Parse Error"
    STALE_CONNECTION = "Stale Connection"
    PROTOCOL_VIOLATION = "Protocol Violation"
    BAD_CLIENT_PROTOCOL_VERSION = "Bad Client Protocol Version"
    WRONG_PORT = "Incorrect Port"
    MAX_CONNECTIONS_EXCEEDED = "Maximum Connections Exceeded"
    MAX_ACCOUNT_CONNECTIONS_EXCEEDED = "Maximum Account Connections Exceeded"
    MAX_PAYLOAD_EXCEEDED = "Maximum Message Payload Exceeded"
    MAX_CONTROL_LINE_EXCEEDED = "Maximum Control Line Exceeded"
    MAX_SUBSCRIPTIONS_EXCEEDED = "Maximum Subscriptions Exceeded"
    NO_RESPONDERS_REQUIRES_HEADERS = "No Responders Requires Headers"
    DUPLICATE_ROUTE = "Duplicate Route"
    DUPLICATE_REMOTE_LEAFNODE = "Duplicate Remote LeafNode Connection"
    ROUTE_REMOVED = "Route Removed"
    SERVER_SHUTDOWN = "Server Shutdown"
    CLUSTER_NAME_CONFLICT = "Cluster Name Conflict"
    WRONG_GATEWAY = "Wrong Gateway"
    DUPLICATE_SERVER_NAME = "Duplicate Server Name"
    KICKED = "Kicked"
    INTERNAL_ERROR = "Internal Error"


# Which -ERR texts map to which close reason (the rest are protocol violations).
_ERR_REASONS = {
    "Maximum Payload Violation": ClosedReason.MAX_PAYLOAD_EXCEEDED,
    "maximum control line exceeded": ClosedReason.MAX_CONTROL_LINE_EXCEEDED,
}

_cids = itertools.count(1)


class _TLSSend:
    """Stands in for the raw socket of a TLS connection. ``send`` (the flush
    fast path) never writes: it reports "would block", so the writer greenlet
    sends through the SSL socket. ``send_now`` is the best-effort non-blocking
    write used when closing (a final -ERR): one SSL record write on the
    non-blocking descriptor, abandoned if it would block."""

    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    def send(self, data):
        raise BlockingIOError

    def send_now(self, data):
        sslobj = getattr(self.sock, "_sslobj", None)
        if sslobj is None:
            return 0
        try:
            return sslobj.write(bytes(data))
        except (OSError, ValueError):
            return 0


class _Handshaking:
    """Sits in ``Connection.writer`` during a TLS handshake, so a flush (a
    PING from the sweep, say) leaves its bytes in ``out`` until TLS is up."""

    def kill(self, block=False):
        pass


_HANDSHAKING = _Handshaking()


def log_crash(log, exc, event="connection_crashed"):
    """Log an unexpected exception in one bounded line (type, message cut to
    200 characters, innermost file:line); the traceback only at debug level."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = "%s:%d" % (tb.tb_frame.f_code.co_filename.rsplit("/", 1)[-1], tb.tb_lineno) \
        if tb is not None else "?"
    log.error(event, error="%s: %s" % (type(exc).__name__, str(exc)[:200]), at=where)
    log.debug(event + "_traceback", exc_info=exc)


def next_cid():
    return next(_cids)


class Connection:
    """What every connection kind shares: socket, buffers, flushing, closing, stats.

    Subclasses provide ``OPS`` (their op table), ``kind`` and ``deliver_msg``
    (how a message matched by one of their subscriptions is framed).
    """

    kind = CLIENT
    OPS = {}
    noecho = None  # set to the connection itself when it must not get its own messages
    is_link = False  # routes, gateways and leaf connections carry remote interest
    # The link layer's tables (links/kinds.py): whose interest this is, and
    # whose messages it may be handed. A client takes messages from anywhere.
    origin = CLIENT_ORIGIN
    messages_from = ALL_ORIGINS
    # A queue member on this connection is picked for a client's message only
    # when the group has no other member (leaf links: nats-server keeps a leaf
    # member as the fallback, processMsgResults).
    queue_fallback = False
    # (subject, reply) links get instead, while a JetStream delivery is handed
    # on (links/jsdeliver.py); None the rest of the time.
    link_frame = None
    # Links of one peer group never pass messages to each other (the links of
    # one leaf cluster on its hub: nats-server's same-cluster rule); None: none.
    peer_group = None
    # Set once a delivery plan names this connection (``delivery.make_plan``):
    # plans are shared module-wide, so closing it must drop them or they keep
    # the whole closed connection alive.
    in_plans = False

    def __init__(self, server, sock, addr):
        self.server = server
        self.sock = sock
        # The real, non-blocking socket under gevent's wrapper: flushes try it
        # first, so a send that fits the kernel buffer never switches greenlets.
        self._raw = getattr(sock, "_sock", sock)
        # TLS (pluggy_nats.tls): the TLSConfig to handshake with, whether the
        # handshake comes before on_start (routes, handshake_first) or after the
        # plaintext INFO (clients), which side we are, and the peer's name.
        self.tls_config = None
        self.tls_first = False
        self.tls_optional = False  # allow_non_tls: TLS only if the client starts it
        self.tls_server_side = True
        self.tls_hostname = None
        self.tls = False  # True once the handshake is done
        self.tls_version = self.tls_cipher = None  # as /connz shows them: "1.3", suite
        self.host, self.port = (addr[0], addr[1]) if addr else ("", 0)
        self.cid = next_cid()
        self.out = bytearray()
        self.touched = server.touched  # the server's flush list, looked up once
        self.flush_queued = False
        self.writer = None
        self.closed = False
        self.closed_reason = None
        self.start = time.time()
        self.stop = None
        self.start_mono = self.last_activity = time.monotonic()
        self.last_ping = self.last_activity
        self.pings_out = 0
        self.rtt_start = 0.0
        self.rtt = 0.0
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.max_pending = server.options.max_pending
        # How long a blocked write may wait for the peer, and whether a write
        # that made some progress survives it (nats-server's write_timeout
        # "retry", the default of links; clients are closed).
        self.write_deadline = server.options.write_deadline
        self.write_retry = False
        self.is_slow = False  # the last write passed the deadline (retry policy)
        self.parser = Parser(self, self.OPS, server.options.max_control_line,
                             server.options.max_payload)
        self._log = None

    @property
    def log(self):
        """This connection's bound logger, made on first use (idle connections
        that never log do not pay for one)."""
        if self._log is None:
            self._log = structlog.get_logger("pluggy_nats.conn").bind(
                cid=self.cid, kind=KIND_NAMES[self.kind], remote="%s:%s" % (self.host, self.port))
        return self._log

    # -- reading ------------------------------------------------------------

    def run(self):
        """The reader loop: the greenlet of this connection."""
        feed = self.parser.feed
        server = self.server
        try:
            tls = self.tls_config
            if tls is not None and self.tls_first and tls.first_fallback is not None \
                    and not self._peer_spoke(tls.first_fallback):
                self.tls_first = False  # handshake_first with fallback: INFO, then TLS
            if tls is not None and self.tls_first and not self.start_tls():
                return
            self.on_start()
            server.flush_touched()
            if tls is not None and not self.tls_first and not self.closed \
                    and (not self.tls_optional or self._peer_wants_tls(tls.timeout)) \
                    and not self.start_tls():
                return
            recv = self.sock.recv
            parser = self.parser
            while not self.closed:
                try:
                    data = recv(READ_BIG if parser.big else READ_SIZE)
                except (OSError, ValueError, AttributeError):
                    # AttributeError/ValueError: an SSL socket closed by another
                    # greenlet while this one waited to read (gevent.ssl).
                    if not self.closed:
                        self.close(ClosedReason.READ_ERROR)
                    break
                if not data:
                    self.close(ClosedReason.CLIENT_CLOSED)
                    break
                self.last_activity = time.monotonic()
                try:
                    feed(data)
                except ProtocolError as exc:
                    self.protocol_error(exc)
                server.flush_touched()
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            # One bad connection never takes the server down, and what a peer
            # sends never makes a log bigger than one line (DESIGN: no traceback
            # on garbage): the exception and where it was raised; the traceback
            # only with -D.
            log_crash(self.log, exc)
            self.close(ClosedReason.INTERNAL_ERROR)
        finally:
            server.flush_touched()
            if not self.closed:
                self.close(ClosedReason.CLIENT_CLOSED)

    def on_start(self):
        """Called in the reader greenlet before the first read (send INFO here)."""

    def _peer_wants_tls(self, timeout):
        """allow_non_tls: whether the client's first byte (peeked, within
        ``timeout``) starts a TLS handshake (0x16); else it speaks plaintext
        (nats-server sniffs the same way after INFO)."""
        from gevent.socket import wait_read

        try:
            wait_read(self.sock.fileno(), timeout=timeout)
            first = self.sock.recv(1, socket.MSG_PEEK)
        except (TimeoutError, OSError):
            return False
        return first == b"\x16"

    def _peer_spoke(self, delay):
        """True if the peer sent something (a ClientHello) within ``delay``."""
        from gevent.socket import wait_read

        try:
            wait_read(self.sock.fileno(), timeout=delay)
        except (TimeoutError, OSError):
            return False
        return True

    def start_tls(self):
        """Run the TLS handshake (``tls_config``) on this connection's socket.
        What was queued before (a plaintext INFO) is written first. On failure
        the connection is closed (TLS_HANDSHAKE_ERROR) and False returned."""
        from .tls import TLSHandshakeError, handshake

        cfg = self.tls_config
        if self.writer is not None:  # the plaintext INFO is still going out
            self.writer.join(cfg.timeout)
        if self.out and not self.closed:
            try:
                self.sock.sendall(bytes(self.out))
            except OSError:
                self.close(ClosedReason.WRITE_ERROR)
                return False
            self.out.clear()
        if self.closed:
            return False
        self.writer = _HANDSHAKING
        try:
            ctx = cfg.server_context() if self.tls_server_side else cfg.client_context()
            self.sock = handshake(self.sock, ctx, cfg.timeout, self.tls_server_side,
                                  self.tls_hostname, cfg.pinned_certs)
        except TLSHandshakeError as exc:
            self.writer = None
            self.log.info("tls_handshake_failed", error=str(exc))
            self.close(ClosedReason.TLS_HANDSHAKE_ERROR)
            return False
        self.writer = None
        # Flushes must go through TLS: the non-blocking fast path on the raw
        # socket would write plaintext. _TLSSend defers every flush to the
        # writer greenlet, whose sendall encrypts (correctness first).
        self._raw = _TLSSend(self.sock)
        self.tls = True
        self.tls_version = (self.sock.version() or "").replace("TLSv", "")
        self.tls_cipher = (self.sock.cipher() or ("",))[0]
        self.log.debug("tls_handshake_done", version=self.tls_version, cipher=self.tls_cipher)
        if self.out:
            self.flush()  # queued during the handshake: now over TLS
        return True

    def protocol_error(self, exc):
        self.log.debug("protocol_error", error=exc.detail)
        reason = _ERR_REASONS.get(exc.err, ClosedReason.PROTOCOL_VIOLATION)
        self.close(reason, exc.err)

    # -- writing ------------------------------------------------------------

    def send(self, data):
        """Queue ``data`` to be flushed at the end of the current batch."""
        if self.closed:
            return
        self.out += data
        if not self.flush_queued:
            self.flush_queued = True
            self.server.touched.append(self)

    def flush(self):
        """Write what is pending without blocking; leave the rest to a writer."""
        out = self.out
        if not out or self.writer is not None or self.closed:
            return
        try:
            n = self._raw.send(out)
        except BlockingIOError:
            n = 0
        except OSError:
            self.close(ClosedReason.WRITE_ERROR)
            return
        if n == len(out):
            out.clear()
            return
        del out[:n]
        self.writer = self.server.spawn(self._write_loop)

    def _take_pending(self):
        """What the writer sends next: everything queued (a connection that
        frames its output, WebSocket, overrides this)."""
        data, self.out = self.out, bytearray()
        return data

    def _write_loop(self):
        try:
            while self.pending_bytes and not self.closed:
                data = memoryview(self._take_pending())
                # Sockets that frame what they send (WebSocket) take whole
                # pieces through send_piece; plain and TLS sockets may send part.
                send = getattr(self.sock, "send_piece", None) or self.sock.send
                while data and not self.closed:
                    sent = self._send_within_deadline(send, data)
                    data = data[sent:]
            self.is_slow = False
        except gevent.Timeout:
            self.writer = None
            self.close(ClosedReason.SLOW_CONSUMER_WRITE_DEADLINE)
        except (OSError, ValueError, AttributeError):
            # AttributeError/ValueError: an SSL socket closed under a blocked
            # send (gevent wakes the writer after close() dropped the SSL object).
            self.writer = None
            self.close(ClosedReason.WRITE_ERROR)
        finally:
            self.writer = None

    def _send_within_deadline(self, send, data):
        """Send ``data`` with ``send`` in WRITE_CHUNK pieces until ``write_deadline`` passes;
        the bytes sent. Past the deadline it is a slow consumer (nats-server
        handleWriteTimeout): gevent.Timeout is raised (the caller closes) when
        nothing was sent or the policy is close, else it is counted and the
        caller tries again."""
        sent = 0
        timer = gevent.Timeout(self.write_deadline)
        timer.start()
        try:
            while sent < len(data):
                sent += send(data[sent:sent + WRITE_CHUNK])
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self.server.stats.slow_consumer(self, again=self.is_slow)
            self.log.info("slow_consumer", reason="write_deadline",
                          deadline=self.write_deadline, sent=sent, pending=len(data) - sent)
            if sent == 0 or not self.write_retry:
                raise
            self.is_slow = True
        finally:
            timer.close()
        return sent

    def slow_consumer(self):
        """Pending bytes passed max_pending: cut this connection off."""
        self.server.stats.slow_consumer(self)
        self.log.info("slow_consumer", reason="max_pending", pending=len(self.out),
                      max_pending=self.max_pending)
        self.out.clear()
        self.close(ClosedReason.SLOW_CONSUMER_PENDING_BYTES)

    # -- liveness -------------------------------------------------------------

    def ping_check(self, now, interval, ping_max):
        """Called by the server's sweep: PING an idle peer, close a stale one."""
        if now - self.last_ping < interval:
            return
        self.last_ping = now
        if now - self.last_activity < interval and self.pings_out == 0:
            return  # traffic counts as liveness (nats-server skips the PING)
        if self.pings_out >= ping_max:
            self.log.debug("stale_connection", pings_out=self.pings_out)
            self.close(ClosedReason.STALE_CONNECTION, "Stale Connection")
            return
        self.pings_out += 1
        self.rtt_start = now
        self.send(encode.PING)  # flushed by the sweep with everything else

    # -- closing --------------------------------------------------------------

    def close(self, reason, err=None):
        """Close once: final -ERR (if any) and pending data are sent best-effort,
        interest is removed, plugins are told, the socket is closed."""
        if self.closed:
            return
        if err:
            self.out += encode.err(err)
        # Best effort: whatever the kernel takes now (PONGs, -ERR) goes out.
        if self.out and self.writer is None:
            try:
                if self.tls:
                    self._raw.send_now(self.out)
                else:
                    self._raw.send(self.out)
            except OSError:
                pass
        self.closed = True
        self.closed_reason = reason
        self.parser.stop()
        self.stop = time.time()
        self.out = bytearray()
        self.log.debug("connection_closed", reason=reason.value)
        try:
            self.on_close(reason)
        finally:
            if self.in_plans:
                forget_plans()
            self.server.connection_closed(self, reason)
            try:
                self.sock.close()
            except OSError:
                pass
            writer = self.writer
            if writer is not None and writer is not gevent.getcurrent():
                writer.kill(block=False)

    def on_close(self, reason):
        """Subclasses drop their interest here."""

    # -- info for monitoring ------------------------------------------------

    @property
    def pending_bytes(self):
        return len(self.out)
