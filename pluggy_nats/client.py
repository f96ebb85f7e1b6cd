"""Client connections: the NATS client protocol (PROTOCOL.md 1.1) on top of
:class:`~pluggy_nats.connection.Connection`."""

import json
import time

from .auth import Allow, Deny
from .connection import CLIENT, ClosedReason, Connection
from .delivery import deliver, deliver_batch, deliver_run
from .protocol import encode
from .protocol import errors as E
from .protocol.parser import BARE, HPUB, LINE, PUB, REST, make_op_table
from .subjects import is_valid_literal_subject, is_valid_queue, is_valid_subject
from .sublist import EMPTY_RESULT
from .subscription import Subscription


class ClientConnection(Connection):
    kind = CLIENT

    def __init__(self, server, sock, addr):
        super().__init__(server, sock, addr)
        self.account = None
        self.subs = {}  # sid -> Subscription
        self.authenticated = False
        self.connect_received = False
        # True while an authenticator decides (an auth callout may wait up to the
        # auth timeout); the auth timer leaves such a connection alone, as
        # nats-server stops it once CONNECT is being processed.
        self.authenticating = False
        self.info_sent_after_connect = False
        # CONNECT defaults when a field is absent (nats-server ClientOpts)
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.protocol = 0
        self.name = self.lang = self.version = ""
        self.user = None
        self.connect_user = ""
        self.permissions = None
        self.deny_delivery = None  # callable(subject) -> True to drop a message for us
        # allow_responses: callable(reply) recording a reply subject handed to
        # us (read only when deny_delivery is set; nats-server deliverMsg)
        self.reply_tracker = None
        # Until CONNECT (or forever, without auth) the op table decides what is allowed.
        self.match = None  # the account's sublist.match, bound once
        self.fast_pub = False
        limit = server.options.max_subscriptions
        self.max_subs = limit if limit > 0 else None  # None: no limit
        if server.auth_required:
            self.parser.ops = PRE_AUTH_OPS
        else:
            self.bind_account(server.accounts.global_account)

    def bind_account(self, account):
        if account is self.account:
            return
        if self.account is not None:
            self.account.clients.discard(self)
        self.account = account
        self.match = account.sublist.match
        account.clients.add(self)

    def _apply_account_limits(self, user_limits=None):
        """The user's and the account's limits over the server's (the smallest
        wins, as nats-server's applyAccountLimits). Returns False when the
        account has no room for another connection (the connection is then
        closed)."""
        limits = self.account.limits
        if not limits and not user_limits:
            return True
        max_conns = (limits or {}).get("max_connections", -1)
        if max_conns is not None and 0 <= max_conns < len(self.account.clients):
            self.close(ClosedReason.MAX_ACCOUNT_CONNECTIONS_EXCEEDED, E.MAX_ACCOUNT_CONNECTIONS)
            return False
        for source in (limits, user_limits):
            if not source:
                continue
            max_subs = source.get("max_subscriptions", -1)
            if max_subs is not None and max_subs >= 0 and (self.max_subs is None
                                                            or max_subs < self.max_subs):
                self.max_subs = max_subs
            max_payload = source.get("max_payload", -1)
            if max_payload is not None and 0 <= max_payload < self.parser.max_payload:
                self.parser.max_payload = max_payload
        return True

    def _update_fast_pub(self):
        # One flag gates both op_pub and op_pub_batch: anything that must see
        # each message joins this expression, so the fast path stays a single
        # attribute test. Subject mappings rewrite each published subject.
        self.fast_pub = not (self.verbose or self.pedantic or self.permissions is not None
                             or self.server.observe_publish or self.server.links.client_forwarders
                             or (self.account is not None and self.account.mappings is not None))
        self.noecho = None if self.echo else self

    # -- start -----------------------------------------------------------------

    def on_start(self):
        info = self.server.client_info(self)
        self.send(encode.info(info))
        if self.server.connection_limit_reached(self):
            self.close(ClosedReason.MAX_CONNECTIONS_EXCEEDED, E.MAX_CONNECTIONS)

    # -- ops -----------------------------------------------------------------------

    def op_connect(self, rest):
        try:
            opts = json.loads(rest)
            if not isinstance(opts, dict):
                raise ValueError("CONNECT needs a JSON object")
            for field in _STRING_FIELDS:
                if field in opts and not isinstance(opts[field], (str, type(None))):
                    raise ValueError("CONNECT field %r must be a string" % field)
        except ValueError as exc:
            self.log.debug("bad_connect", error=str(exc))
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self.verbose = bool(opts.get("verbose", True))
        self.pedantic = bool(opts.get("pedantic", True))
        self.echo = bool(opts.get("echo", True))
        self.headers = bool(opts.get("headers", False))
        self.no_responders = bool(opts.get("no_responders", False))
        self.name = str(opts.get("name") or "")
        self.lang = str(opts.get("lang") or "")
        self.version = str(opts.get("version") or "")
        protocol = opts.get("protocol", 0)
        if not isinstance(protocol, int) or protocol < 0 or protocol > 1:
            self.close(ClosedReason.BAD_CLIENT_PROTOCOL_VERSION, E.INVALID_CLIENT_PROTOCOL)
            return
        self.protocol = protocol
        if self.no_responders and not self.headers:
            self.close(ClosedReason.NO_RESPONDERS_REQUIRES_HEADERS, E.NO_RESPONDERS_NEEDS_HEADERS)
            return
        self.connect_user = opts.get("user") or ""  # as sent, for $SYS auth error events
        if not self.authenticated and not self._authenticate(opts):
            return
        self.connect_received = True
        self._update_fast_pub()
        if self.verbose:
            self.send(encode.OK)

    def _authenticate(self, opts):
        server = self.server
        self.authenticating = True
        try:
            decision = server.hook.nats_authenticate(conn=self, connect=opts)
        finally:
            self.authenticating = False
        if self.closed:
            return False
        if isinstance(decision, Deny) or (decision is None and server.auth_required):
            reason = decision.reason if isinstance(decision, Deny) else "no authenticator accepted"
            self.log.info("authentication_failed", reason=reason, user=opts.get("user"))
            server.auth_failed(self, reason)
            self.close(ClosedReason.AUTHENTICATION_VIOLATION, E.AUTH_VIOLATION)
            return False
        if isinstance(decision, Allow):
            self.user = decision.user
            self.permissions = decision.permissions
            # Subscribe deny rules inside an allowed wildcard are applied per message.
            self.deny_delivery = getattr(decision.permissions, "deny_delivery", None)
            self.reply_tracker = getattr(decision.permissions, "reply_tracker", None)
            account = decision.account or server.accounts.global_account
            if isinstance(account, str):
                account = server.accounts.get_or_create(account)
            self.bind_account(account)
            if not self._apply_account_limits(decision.limits):
                return False
        self.authenticated = True
        self.parser.ops = CLIENT_OPS
        server.hook.nats_client_connected(conn=self)
        return True

    def op_ping(self):
        self.send(encode.PONG)
        if self.protocol >= 1 and self.connect_received and not self.info_sent_after_connect:
            # nats-server 2.15 follows the first PONG of a protocol-1 client
            # with an INFO confirming its id, ip and account.
            self.info_sent_after_connect = True
            info = self.server.client_info(self)
            info["connect_info"] = True
            info["remote_account"] = self.account.name
            info["max_payload"] = self.parser.max_payload  # the account's limit may be lower
            self.send(encode.info(info))

    def op_pong(self):
        self.pings_out = 0
        if self.rtt_start:
            self.rtt = time.monotonic() - self.rtt_start
            self.rtt_start = 0.0

    def op_ok(self):
        pass

    def op_info(self, rest):
        pass  # clients may not update server state with INFO; nats-server ignores it

    def op_err(self, rest):
        self.log.debug("client_sent_err", text=rest[:128])
        self.close(ClosedReason.CLIENT_CLOSED)

    def op_sub(self, args):
        if len(args) == 2:
            subject, sid = args
            queue = None
        elif len(args) == 3:
            subject, queue, sid = args
        else:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not is_valid_subject(subject) or (queue is not None and not is_valid_queue(queue)):
            self.send(encode.err(E.INVALID_SUBJECT))
            return
        if sid in self.subs:
            if self.verbose:
                self.send(encode.OK)
            return  # a duplicate sid is ignored, as nats-server does
        limit = self.max_subs
        if limit is not None and len(self.subs) >= limit:
            self.send(encode.err(E.MAX_SUBSCRIPTIONS))
            return
        if self.permissions is not None and not self.permissions.can_subscribe(subject, queue):
            text = 'Permissions Violation for Subscription to "%s"' % subject.decode(
                errors="replace")
            if queue is not None:
                text += ' using queue "%s"' % queue.decode(errors="replace")
            self.send(encode.err(text))
            return
        sub = Subscription(self, subject, queue, sid)
        self.subs[sid] = sub
        self.server.add_subscription(self.account, sub)
        if self.verbose:
            self.send(encode.OK)

    def op_unsub(self, args):
        if not args or len(args) > 2:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        sub = self.subs.get(args[0])
        if sub is not None:
            max_msgs = int(args[1]) if len(args) == 2 and args[1].isdigit() else 0
            if max_msgs and sub.delivered < max_msgs:
                sub.max_msgs = max_msgs
            else:
                self.remove_subscription(sub)
        if self.verbose:
            self.send(encode.OK)

    def op_pub(self, subject, reply, payload):
        """The hot path. A connection without verbose, pedantic, permissions
        or publish observers (``fast_pub``) goes straight to match and deliver."""
        self.in_msgs += 1
        self.in_bytes += len(payload)
        if not self.fast_pub:
            self.publish(subject, reply, 0, payload)
            return
        result = self.match(subject)
        if result is EMPTY_RESULT:
            if reply and self.no_responders:
                self._send_no_responders(subject, reply)
        elif not deliver(result, subject, reply, 0, payload, self) and reply and \
                self.no_responders:
            self._send_no_responders(subject, reply)

    def op_pub_batch(self, subject, reply, payloads):
        """Consecutive PUBs with one control line (the parser's batches): one
        match and one framing per subscriber for all of them. Anything that
        needs a per-message answer or check takes ``op_pub`` per message."""
        if self.fast_pub and not (reply and self.no_responders):
            result = self.match(subject)
            if result is EMPTY_RESULT or deliver_batch(result, subject, reply, payloads, self):
                n = len(payloads)
                self.in_msgs += n
                self.in_bytes += n * len(payloads[0])
                return
        for payload in payloads:
            if self.closed:
                return
            self.op_pub(subject, reply, payload)

    def op_pub_run(self, run):
        """A read buffer's run of PUBs (the parser's run function): items are
        ``(subject, reply, payload)``, or a list of payloads for a batch of
        identical control lines. Consecutive messages whose matches hold the
        same subscriptions (several subjects under one wildcard) form a segment
        delivered at once by ``deliver_run``; batches, requests that may need
        a no-responders answer, and anything off the fast path go one by one
        in between, so every subscriber still sees publish order."""
        if not self.fast_pub:
            for subject, reply, payload in run:
                if self.closed:
                    return
                if payload.__class__ is list:
                    self.op_pub_batch(subject, reply, payload)
                else:
                    self.op_pub(subject, reply, payload)
            return
        match = self.match
        no_responders = self.no_responders
        seg = []  # messages matching seg_result's subscriptions, not yet delivered
        seg_psubs = seg_qsubs = seg_result = None
        count = nbytes = 0
        for item in run:
            subject, reply, payload = item
            if payload.__class__ is list or (reply and no_responders):
                if seg:
                    self._deliver_segment(seg_result, seg)
                    seg = []
                if payload.__class__ is list:
                    self.op_pub_batch(subject, reply, payload)
                else:
                    self.op_pub(subject, reply, payload)
                continue
            count += 1
            nbytes += len(payload)
            result = match(subject)
            if result is EMPTY_RESULT:
                continue
            if seg:
                # Same subscriptions: a sublist node's tuples are shared by
                # every subject it matches, so identity is the usual test.
                psubs, qsubs = result
                if (psubs is seg_psubs or psubs == seg_psubs) and \
                        (qsubs is seg_qsubs or qsubs == seg_qsubs):
                    seg.append(item)
                    continue
                if not self._deliver_segment(seg_result, seg):
                    result = match(subject)  # a per-message delivery may have unsubscribed
                    if result is EMPTY_RESULT:
                        seg = []
                        continue
            seg = [item]
            seg_result = result
            seg_psubs, seg_qsubs = result
        if seg:
            self._deliver_segment(seg_result, seg)
        self.in_msgs += count
        self.in_bytes += nbytes

    def _deliver_segment(self, result, seg):
        """Deliver a segment of ``op_pub_run``; False if it went message by
        message (each matched anew, as ``op_pub`` would)."""
        if len(seg) > 1 and deliver_run(result, seg, self):
            return True
        match = self.match
        for subject, reply, payload in seg:
            r = result if len(seg) == 1 else match(subject)
            if r is not EMPTY_RESULT:
                deliver(r, subject, reply, 0, payload, self)
        return False

    def op_hpub(self, subject, reply, hdr, msg):
        if not self.headers:
            self.log.debug("hpub_without_headers")
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self.in_msgs += 1
        self.in_bytes += len(msg)
        self.publish(subject, reply, hdr, msg)

    def publish(self, subject, reply, hdr, msg):
        # The order of replies is nats-server's: the pedantic check and +OK
        # belong to the control line, permissions and delivery to the message.
        if self.pedantic and not is_valid_literal_subject(subject):
            self.send(encode.err(E.INVALID_PUB_SUBJECT))
            if self.verbose:
                self.send(encode.OK)
            return
        if self.verbose:
            self.send(encode.OK)
        if self.permissions is not None and not self.permissions.can_publish(subject):
            self.send(encode.err('Permissions Violation for Publish to "%s"'
                                 % subject.decode(errors="replace")))
            return
        self._route(subject, reply, hdr, msg)

    def _route(self, subject, reply, hdr, msg):
        server = self.server
        if server.observe_publish:
            server.hook.nats_message_published(
                conn=self, subject=subject, reply=reply,
                headers=msg[:hdr] if hdr else None, payload=msg[hdr:] if hdr else msg)
        mappings = self.account.mappings
        if mappings is not None:
            subject = mappings.map(subject)
        result = self.match(subject)
        delivered = 0 if result is EMPTY_RESULT else deliver(result, subject, reply, hdr, msg, self)
        if server.links.client_forwarders:  # gateways: after local delivery
            server.links.forward(self, self.account, subject, reply, hdr, msg, result)
        if not delivered and reply and self.no_responders:
            self._send_no_responders(subject, reply)

    def _send_no_responders(self, subject, reply):
        """A request nobody received: answer with a 503 status on the requester's
        own subscription for the reply subject (PROTOCOL.md C5)."""
        for sub in self.account.sublist.match(reply).psubs:
            if sub.conn is self:
                hdrs = encode.status_headers(503, extra=((b"Nats-Subject", subject),))
                self.send(encode.hmsg(reply, sub.sid, None, len(hdrs), hdrs))
                return

    def op_not_authorized(self, *args):
        self.close(ClosedReason.AUTHENTICATION_VIOLATION, E.AUTH_VIOLATION)

    def flush(self):
        # max_pending is checked here, once per read batch for every subscriber
        # that got messages, rather than once per delivery: the hot path saves
        # a length check per message, and a buffer may pass the limit by at most
        # what one read delivered before the connection is cut off.
        if len(self.out) > self.max_pending:
            self.slow_consumer()
            return
        Connection.flush(self)

    # -- subscriptions ------------------------------------------------------------

    def remove_subscription(self, sub):
        if self.subs.pop(sub.sid, None) is sub:
            self.server.remove_subscription(self.account, sub)

    def on_close(self, reason):
        account = self.account
        if account is not None:
            account.clients.discard(self)
            remove = self.server.remove_subscription
            for sub in list(self.subs.values()):
                remove(account, sub)
        self.subs.clear()


def _before_connect(op):
    """An op that arrives before CONNECT on a server that requires auth: with
    a ``no_auth_user`` the connection is bound to that user first (PROTOCOL.md
    C8) and the op proceeds; otherwise it is an authorization violation."""

    def guarded(conn, *args):
        if conn.server.options.no_auth_user and conn._authenticate({}):
            op(conn, *args)
        else:
            conn.op_not_authorized()

    return guarded


CLIENT_OPS = make_op_table({
    b"PUB": (PUB, ClientConnection.op_pub, ClientConnection.op_pub_batch,
             ClientConnection.op_pub_run),
    b"HPUB": (HPUB, ClientConnection.op_hpub),
    b"SUB": (LINE, ClientConnection.op_sub),
    b"UNSUB": (LINE, ClientConnection.op_unsub),
    b"PING": (BARE, ClientConnection.op_ping),
    b"PONG": (BARE, ClientConnection.op_pong),
    b"CONNECT": (REST, ClientConnection.op_connect),
    b"INFO": (REST, ClientConnection.op_info),
    b"+OK": (BARE, ClientConnection.op_ok),
    b"-ERR": (REST, ClientConnection.op_err),
})

# Before a client authenticates, every verb but CONNECT is an authorization
# violation unless a no_auth_user takes it (the shapes still matter: a PUB's
# payload must be consumed).
PRE_AUTH_OPS = make_op_table({
    verb: (shape, _before_connect(fn) if verb != b"CONNECT" else fn)
    for verb, (shape, fn, _batch, _run) in CLIENT_OPS.items() if verb == verb.upper()
})

# CONNECT fields nats-server decodes as strings: another JSON type is a
# decoding error there, which closes the connection without a word.
_STRING_FIELDS = ("user", "pass", "auth_token", "nkey", "sig", "jwt", "name", "lang", "version")

ClientConnection.OPS = CLIENT_OPS
