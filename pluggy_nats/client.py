"""Client connections: the NATS client protocol (PROTOCOL.md 1.1) on top of
:class:`~pluggy_nats.connection.Connection`."""

import time
from operator import is_, itemgetter

import gevent

from .auth import Allow, Deny
from .connection import CLIENT, ClosedReason, Connection
from .delivery import (
    _PLANS,
    count_items,
    deliver,
    deliver_planned,
    deliver_run,
    forget_plans,
    make_plan,
)
from .permissions import always_allowed
from .protocol import encode, jsonarg
from .protocol import errors as E
from .protocol.jsonarg import BOOL, INT, PERMISSION, STRING, check_fields, loads_object
from .protocol.parser import BARE, HPUB, LINE, PUB, REST, make_op_table
from .subjects import is_valid_wire_literal_subject, is_valid_wire_subject
from .sublist import EMPTY_RESULT
from .subscription import Subscription

_first = itemgetter(0)
_second = itemgetter(1)
_third = itemgetter(2)


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
        self.pub_check = None  # permissions.can_publish when publishing is restricted
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
        if max_conns is not None and 0 <= max_conns < len(self.account.clients) + sum(
                self.account.remote_conns.values()):
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
        if self.max_subs is not None and len(self.subs) >= self.max_subs:
            # At the limit already (a user JWT without "subs" means 0): as
            # nats-server, from aside (after what this read asked for) the
            # error, and the close 20ms later.
            self.server.spawn(self._subs_at_limit)
        return True

    def _subs_at_limit(self):
        if self.closed:
            return
        self.send(encode.err(E.MAX_SUBSCRIPTIONS))
        self.server.flush_touched()
        gevent.sleep(0.02)
        self.close(ClosedReason.MAX_SUBSCRIPTIONS_EXCEEDED)
        self.server.flush_touched()

    def _update_fast_pub(self):
        # One flag gates op_pub's fast path: anything that must see
        # each message joins this expression, so the fast path stays a single
        # attribute test. Subject mappings rewrite each published subject.
        # Publish permissions and subject mappings stay on the bulk path:
        # op_pub checks and maps each control line of a read, not each message.
        # With allow_responses it checks the static rules (``static_publish``);
        # an item they refuse goes message by message (a tracked reply may be
        # allowed, and each answer is counted), as nats-server's pubAllowed.
        perms = self.permissions
        self.fast_pub = not (self.verbose or self.pedantic or self.server.observe_publish)
        check = None if perms is None else getattr(perms, "static_publish", perms.can_publish)
        self.pub_check = None if check is None or always_allowed(check) else check
        # Steps after local delivery (gateways), taken on the fast paths too.
        self.forwarders = self.server.links.client_forwarders
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
            opts = check_fields(loads_object(rest), CONNECT_FIELDS)
        except ValueError as exc:
            # nats-server closes without a word on a CONNECT it cannot decode
            self.log.debug("bad_connect", error=str(exc)[:200])
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        # Decoded over the current options, as nats-server unmarshals into the
        # client's: a second CONNECT changes only the fields it carries.
        self.verbose = opts.get("verbose", self.verbose)
        self.pedantic = opts.get("pedantic", self.pedantic)
        self.echo = opts.get("echo", self.echo)
        # no_header_support: the server says headers:false and takes no HPUB
        self.headers = (opts.get("headers", self.headers)
                        and not self.server.options.no_header_support)
        self.no_responders = opts.get("no_responders", self.no_responders)
        self.name = opts.get("name", self.name)
        self.lang = opts.get("lang", self.lang)
        self.version = opts.get("version", self.version)
        protocol = opts.get("protocol", self.protocol)
        if protocol < 0 or protocol > 1:
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
        if self.authenticated:
            # HPUB is refused at its control line without headers (nats-server)
            self.parser.ops = CLIENT_OPS if self.headers else CLIENT_OPS_NO_HEADERS
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
            forget_plans()
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
        # Clients may not update server state with INFO and nats-server ignores
        # one it can decode; one it cannot closes the connection.
        try:
            check_fields(loads_object(rest), jsonarg.INFO_FIELDS)
        except ValueError as exc:
            self.log.debug("bad_info", error=str(exc)[:200])
            self.close(ClosedReason.PROTOCOL_VIOLATION)

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
        # (nats-server does not check the queue name: the parser made it one field)
        if not is_valid_wire_subject(subject):
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
        max_tokens = self.server.options.max_sub_tokens
        if max_tokens and subject.count(b".") >= max_tokens:
            name = subject.decode(errors="replace")
            self.log.error('Subscription Violation Too Many Tokens - Subject "%s", SID %s'
                           % (name, sid.decode(errors="replace")))
            self.send(encode.err('Permissions Violation for Subscription to "%s", too many tokens'
                                 % name))
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
            # nats-server's parseSize: not 1-9 digits means no limit (unsubscribe now)
            max_msgs = int(args[1]) if len(args) == 2 and args[1].isdigit() \
                and len(args[1]) <= 9 else 0
            if max_msgs and sub.delivered < max_msgs:
                sub.max_msgs = max_msgs
                forget_plans()  # its deliveries are counted from now on
            else:
                self.remove_subscription(sub)
        if self.verbose:
            self.send(encode.OK)

    def op_pub(self, items):
        """PUB's one entry point: ``items`` are ``(subject, reply, payloads)`` in
        publish order (the parser's run of a read, or a single frame; an item's
        payloads share its control line).

        A connection without verbose, pedantic or publish observers
        (``fast_pub``) takes the bulk path (``_pub_run``). Publish
        permissions are checked and subject mappings applied per item first:
        a refused item (or, with allow_responses, one only a tracked reply
        may allow) goes message by message, its -ERR where it stands (the items before it are
        delivered first), a mapped one travels on with its new subject."""
        if not self.fast_pub:
            self._pub_each(items)
            return
        check = self.pub_check
        mappings = self.account.mappings
        if check is None and mappings is None:
            self._pub_run(items)
            return
        run = []
        for item in items:
            subject, reply, payloads = item
            if check is not None and not check(subject):
                if run:
                    self._pub_run(run)
                    run = []
                self._pub_each([item])  # its -ERR per message, counted
                continue
            if mappings is None:
                run.append(item)
                continue
            to = mappings.map(subject)
            if len(payloads) == 1 or mappings.fixed(subject):
                run.append(item if to is subject else (to, reply, payloads))
            else:  # a weighted mapping picks a destination per message
                run.append((to, reply, payloads[:1]))
                run += [(mappings.map(subject), reply, [p]) for p in payloads[1:]]
        if run:
            self._pub_run(run)

    def _pub_each(self, items):
        """Message by message through ``publish`` (every check and hook)."""
        for subject, reply, payloads in items:
            for payload in payloads:
                if self.closed:
                    return
                self.in_msgs += 1
                self.in_bytes += len(payload)
                self.publish(subject, reply, 0, payload)

    def _pub_run(self, items):
        """The bulk path of checked and mapped items: match and deliver.
        Consecutive items reaching the same connections (delivery plans with
        one key: literal subscriptions, a route's interest) or the same
        subscriptions (one subject repeated, or several under one wildcard)
        form a *segment* delivered at once (``deliver_planned``,
        ``deliver_run``). A request that may need a no-responders answer goes
        alone, so every subscriber still sees publish order."""
        if self.closed or (len(items) > 2 and self._pub_lane(items)):
            return
        sublist = self.account.sublist
        cache_get = sublist._cache_get  # the match cache, inline (hits counted below)
        misses = sublist._misses
        match = self.match
        plans_get = _PLANS.get
        keyed = self.noecho is None  # (a no-echo publisher: by subscriptions only)
        gen = sublist.genid
        no_responders = self.no_responders
        # Items for the forwarders (gateways), in publish order: handed over
        # before any message that forwards by itself (a request).
        fwd = [] if self.forwarders else None
        seg = -1  # index where the pending segment starts (-1: none)
        seg_key = seg_result = seg_psubs = seg_qsubs = None
        plans = []  # the plan of each item of a keyed segment
        last = None  # the subject ``result`` belongs to
        result = plan = key = None
        looked = count = nbytes = 0
        i = -1
        for item in items:
            i += 1
            subject, reply, payloads = item
            n = len(payloads)
            count += n
            nbytes += len(payloads[0]) * n
            if subject is not last:
                result = cache_get(subject) or match(subject)
                looked += 1
                last = subject
                if result is not EMPTY_RESULT and keyed:
                    plan = plans_get(subject)
                    if plan is None or plan[0] is not result:
                        plan = make_plan(result, subject)
                    key = plan[2]
            if fwd is not None:
                fwd.append((item, result))
            alone = reply and no_responders  # a request: may need an answer
            if seg >= 0:
                if not alone:
                    if seg_key is not None:
                        if key is seg_key and result is not EMPTY_RESULT:
                            plans.append(plan)  # the same connections: the segment grows
                            continue
                    elif result[0] is seg_psubs and result[1] is seg_qsubs:
                        continue  # the same subscriptions: the segment grows
                # The segment ends here: deliver it, then match this one anew
                # if that changed interest (auto-unsubscribe, internal clients).
                self._deliver_segment(seg_result, seg_key, items[seg:i], plans)
                seg = -1
                if sublist.genid != gen:
                    gen = sublist.genid
                    result = match(subject)
                    if result is not EMPTY_RESULT and keyed:
                        plan = make_plan(result, subject)
                        key = plan[2]
            if alone:
                if fwd:
                    fwd.pop()
                    if fwd:
                        self.server.links.forward_run(self, self.account, fwd)
                    fwd = []
                for payload in payloads:
                    self._request(subject, reply, payload, result, fwd is not None)
                    result = match(subject)  # (a delivery may change interest)
                gen = sublist.genid
                last = None
                continue
            if result is EMPTY_RESULT:
                continue
            seg = i
            seg_result = result
            seg_psubs, seg_qsubs = result
            seg_key = key if keyed else None
            if seg_key is not None:
                plans = [plan]
        if seg >= 0:
            self._deliver_segment(seg_result, seg_key, items[seg:], plans)
        if fwd:
            self.server.links.forward_run(self, self.account, fwd)
        sublist._hits += looked - (sublist._misses - misses)
        self.in_msgs += count
        self.in_bytes += nbytes

    def _pub_lane(self, items):
        """``_pub_run`` for the usual run of real traffic, with no pass over
        its items here: no replies, every subject in the match cache, and
        either nothing here wants any of them (they only cross a link's
        forwarder, a gateway) or their plans share one key (one segment).
        False, having done nothing, for anything else."""
        if any(map(_second, items)):
            return False  # requests: each may need a no-responders answer
        sublist = self.account.sublist
        subjects = list(map(_first, items))
        try:  # (a subject not cached or not planned raises KeyError)
            results = list(map(sublist._cache.__getitem__, subjects))
            n = len(results)
            counted = None
            # (the first result tells which case: count() compares with == each
            # result not EMPTY_RESULT itself, a cost per message)
            if results[0] is not EMPTY_RESULT or results.count(EMPTY_RESULT) != n:
                if self.noecho is not None:
                    return False
                plans = list(map(_PLANS.__getitem__, subjects))
                if not all(map(is_, map(_first, plans), results)):
                    return False
                keys = list(map(_third, plans))
                if keys[0] is None or keys.count(keys[0]) != n:
                    return False
                counted = deliver_planned(items, plans, self)
        except KeyError:
            return False
        sublist._hits += n
        if self.forwarders:
            got = self.server.links.forward_lane(self, self.account, items, subjects, results)
            if counted is None:
                counted = got
        if counted is None:
            counted = count_items(items)
        self.in_msgs += counted[0]
        self.in_bytes += counted[1]
        return True

    def _request(self, subject, reply, payload, result, forward):
        """One message that may need a no-responders answer: delivered,
        forwarded, and answered 503 if nobody got it."""
        n = 0 if result is EMPTY_RESULT else deliver(result, subject, reply, 0, payload, self)
        if forward and self.server.links.forward(self, self.account, subject, reply, 0,
                                                 payload, result):
            n = 1  # it crossed a gateway: no no-responders answer here
        if not n:
            self._send_no_responders(subject, reply)

    def _deliver_segment(self, result, key, seg, plans):
        """Deliver a segment of ``op_pub``: by plans (``key``: messages reaching
        the same connections), at once (messages reaching the same
        subscriptions), or message by message (each matched anew, as a lone
        message would be)."""
        if key is not None:
            deliver_planned(seg, plans, self)
            return
        if len(seg) == 1 and len(seg[0][2]) == 1:
            subject, reply, payloads = seg[0]
            deliver(result, subject, reply, 0, payloads[0], self)
            return
        if deliver_run(result, seg, self):
            return
        # Matched anew per message; an item of several payloads (one control
        # line) may still go as a run of its own (a segment refused for one
        # denied subject or one reply among its items).
        match = self.match
        several = len(seg) > 1
        for item in seg:
            subject, reply, payloads = item
            if several and len(payloads) > 1:
                r = match(subject)
                if r is EMPTY_RESULT or deliver_run(r, [item], self):
                    continue
            for payload in payloads:
                r = match(subject)
                if r is not EMPTY_RESULT:
                    deliver(r, subject, reply, 0, payload, self)

    def op_hpub_refused(self, args):
        """HPUB from a client that did not ask for headers: closed when its
        control line is read, before any payload (nats-server's
        ErrMsgHeadersNotSupported)."""
        self.log.debug("hpub_without_headers")
        self.close(ClosedReason.PROTOCOL_VIOLATION)

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
        if self.pedantic and not is_valid_wire_literal_subject(subject):
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
        if server.links.client_forwarders and server.links.forward(
                self, self.account, subject, reply, hdr, msg, result):
            delivered += 1  # gateways: after local delivery
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
    b"PUB": (PUB, ClientConnection.op_pub),
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
    for verb, (shape, fn) in CLIENT_OPS.items() if verb == verb.upper()
})

# CONNECT fields and their types (nats-server's ClientOpts): another JSON type
# is a decoding error there, which closes the connection without a word.
CONNECT_FIELDS = {
    **dict.fromkeys(("echo", "verbose", "pedantic", "tls_required", "new_account", "headers",
                     "no_responders"), BOOL),
    **dict.fromkeys(("nkey", "jwt", "sig", "auth_token", "user", "pass", "name", "lang",
                     "version", "account", "remote_account", "proxy_sig"), STRING),
    "protocol": INT,
    "import": PERMISSION,
    "export": PERMISSION,
}


# The table of a client that did not ask for headers (every client until CONNECT).
CLIENT_OPS_NO_HEADERS = make_op_table({
    **{verb: entry for verb, entry in CLIENT_OPS.items() if verb == verb.upper()},
    b"HPUB": (LINE, ClientConnection.op_hpub_refused),
})

ClientConnection.OPS = CLIENT_OPS_NO_HEADERS
