"""The base of every link connection: remote interest, the handshake driver,
PING/PONG, and one bulk path in and out for routed messages.

A kind subclasses :class:`Link`, binds its :class:`~pluggy_nats.links.kinds.LinkKind`
with :meth:`Link.bind_kind` (which builds the op table: the layer's verbs, the
kind's framing for messages, the kind's own verbs) and implements:

* ``info_dict()`` / ``connect_dict()``: what it sends in the handshake;
* ``accept_connect(opts)``: check a peer's CONNECT (False: it closed the link);
* ``handshake_info(info)``: the peer's INFO during the handshake; register the
  link with ``server.links.link_up(self)`` (after the duplicate rules), or close;
* ``info_update(info)``: an INFO after the handshake (gossip, lame duck);
* ``send_sub(account_name, subject, queue, weight)`` / ``send_unsub(...)``: its
  interest verbs, and ``on_remote_sub``/``on_remote_unsub`` from its own ops.

Messages in and out need nothing more: ``send_msg`` (one message) and
``send_run`` (a segment) frame with the kind's
:class:`~pluggy_nats.links.kinds.Framing`, and ``op_msg`` (the parser's list
of frames) and ``op_hmsg`` deliver what arrives under the forwarding rule
(``messages_from`` of each target).
"""

import time
from functools import partial
from itertools import chain, islice, repeat, zip_longest
from operator import itemgetter

from ..connection import ClosedReason, Connection
from ..delivery import (
    NO_PLAN,
    SIZE_CRLF,
    append_joined,
    count_items,
    deliver,
    deliver_planned,
    deliver_run,
    hold_plans,
    make_plan,
)
from ..protocol import encode
from ..protocol.jsonarg import INFO_FIELDS, check_fields, loads_object
from ..protocol.parser import BARE, HPAYLOAD, PAYLOAD, REST, make_op_table
from ..subjects import is_valid_wire_subject
from ..sublist import EMPTY_RESULT, SublistResult
from ..subscription import Subscription
from .kinds import CLIENT_ORIGIN

_TARGET_CACHE_MAX = 1024
_SIZES_MAX = len(SIZE_CRLF)
# b" <size>\r\n": what follows the subject in a link frame without a reply
SP_SIZE_CRLF = [b" %d\r\n" % n for n in range(_SIZES_MAX)]
_join = b"".join
_flat = chain.from_iterable
_first = itemgetter(0)
_second = itemgetter(1)
_third = itemgetter(2)


class Link(Connection):
    """Base of route, gateway and leaf connections (and any third-party kind)."""

    is_link = True
    link_kind = None  # the LinkKind bound to this class
    msg_lead = b"RMSG "  # the framing's verbs, with their space
    hmsg_lead = b"HMSG "
    account_token = True  # the framing names the account (unless bound to one)
    solicitor_sends_info = True  # the dialling side answers INFO with CONNECT + its INFO
    encode_info = staticmethod(encode.info)  # a kind may frame its INFO as its Go code does

    def __init__(self, server, sock, addr, manager, solicited=False, url=None):
        super().__init__(server, sock, addr)
        self.manager = manager
        self.solicited = solicited
        self.url = url  # the URL we dialled (solicited links)
        self.remote_id = None
        self.remote_name = ""
        self.remote_info = {}
        self.registered = False  # handshake done, interest flowing
        # The kind's write_deadline (else the server's) and write_timeout
        # policy: links keep a peer that made progress ("retry", nats-server's
        # default for routes, gateways and leafs) unless told "close".
        cfg = getattr(manager, "config", None)
        self.write_deadline = getattr(cfg, "write_deadline", None) or self.write_deadline
        self.write_retry = getattr(cfg, "write_timeout", None) != "close"
        self.connect_received = False
        self.connect_sent = False
        self.info_sent = False
        # (account name, subject, queue) -> Subscription held for the peer
        self.remote_subs = {}
        # (account name, subject, queue) -> weight we told the peer (plain: 1)
        self.advertised = {}
        self.subs = self.remote_subs  # /connz counts them like a client's
        # Optional subject filters a kind sets from its permissions: what the
        # peer may subscribe to here, and which of our interest we tell it.
        self.accept_filter = None
        self.advertise_filter = None
        # The propagation and forwarding rows (kinds.py); a kind whose links
        # play different roles sets them per link (leaf: hub or spoke).
        kind = self.link_kind
        self.origin = kind.origin
        self.interest_from = kind.interest_from
        self.messages_from = kind.messages_from
        self.forwarders = server.links.forwarders_for(self.origin)
        self.subject_claims = server.links.subject_claims  # LinkLayer.claim
        self.reply_claims = server.links.reply_claims
        self.reply_run_claim = server.links.reply_run_claim
        self.bound_account = None  # set by bind_account: every message is in it
        self.acc_token = self.account_token
        if not self.account_token:  # a framing without accounts: bound from the start
            self.bind_account(server.accounts.global_account)
        self.account = None  # account of the message being delivered inbound
        # subject -> (sublist result, targets, delivery plan) for inbound messages
        self._targets = {}
        # line (args tuple) -> delivery plan of plain messages on it, and the
        # genid of each account's sublist they were decided on (_lane_run)
        self._lanes = {}
        self._lane_gens = {}
        self._lane_keys = {}  # (account, key) -> itself, one object each
        hold_plans(self)
        self._accounts = {}  # account token on the wire -> Account
        self._leads = {}  # Account -> b"RMSG <account> " (send_msg, send_run)

    @classmethod
    def bind_kind(cls, kind):
        """Make ``cls`` the connection class of ``kind``: its kind constant,
        framing and op table (the layer's verbs, the message verbs, the kind's)."""
        cls.link_kind = kind
        cls.kind = kind.kind
        cls.msg_lead = kind.framing.msg + b" "
        cls.hmsg_lead = kind.framing.hmsg + b" "
        cls.account_token = kind.framing.account
        entries = {
            b"INFO": (REST, cls.op_info),
            b"CONNECT": (REST, cls.op_connect),
            b"PING": (BARE, cls.op_ping),
            b"PONG": (BARE, cls.op_pong),
            b"+OK": (BARE, cls.op_ok),
            b"-ERR": (REST, cls.op_err),
            kind.framing.msg: (PAYLOAD, cls.op_msg),
            kind.framing.hmsg: (HPAYLOAD, cls.op_hmsg),
        }
        entries.update(kind.ops)
        cls.OPS = make_op_table(entries)
        return cls

    def set_role(self, origin, interest_from=None, messages_from=None):
        """Play ``origin``'s rows of the propagation and forwarding tables (a
        leaf link is ``leaf_hub`` or ``leaf_spoke`` once the handshake says
        which). Call before the link is registered (``links.link_up``)."""
        from .kinds import FORWARDING, PROPAGATION

        self.origin = origin
        self.interest_from = frozenset(interest_from) if interest_from is not None \
            else PROPAGATION.get(origin, self.link_kind.interest_from)
        self.messages_from = frozenset(messages_from) if messages_from is not None \
            else FORWARDING.get(origin, self.link_kind.messages_from)
        self.forwarders = self.server.links.forwarders_for(origin)
        self.forget_plans()

    def bind_account(self, account):
        """Every message and interest on this link is in ``account`` (a pinned
        route, a leaf link): the framing leaves the account token out."""
        self.bound_account = account
        self.acc_token = self.account_token and account is None

    # -- the handshake driver ------------------------------------------------------

    def on_start(self):
        if not self.solicited:
            self.send_info()

    def send_info(self, extra=None):
        info = self.info_dict()
        if extra:
            info.update(extra)
        self.server.hook.nats_link_info(link=self, info=info)
        self.info_sent = True
        self.send(self.encode_info(info))

    def _json(self, rest, fields=None):
        """The JSON object of a CONNECT or INFO, decoded as Go decodes it
        (bounded cost, fields type-checked when ``fields`` is given); a bad
        one closes the link as a protocol violation."""
        try:
            value = loads_object(rest)
            if fields is not None and isinstance(value, dict):
                check_fields(value, fields)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return None
        return value

    def op_connect(self, rest):
        opts = self._json(rest)
        if opts is None or not self.accept_connect(opts):
            return
        self.connect_received = True
        self.connect_accepted(opts)

    def op_info(self, rest):
        info = self._json(rest, INFO_FIELDS)
        if info is None:
            return
        if self.registered:
            self.info_update(info)
            if not self.closed:
                self.server.hook.nats_link_info_received(link=self, info=info)
            return
        if not self.solicited and not self.connect_received:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.solicited and not self.connect_sent:
            # The acceptor spoke first; answer with CONNECT (and our own INFO),
            # once: a kind may register only on a later INFO (a leaf waits for
            # the hub's connect_info), and each one comes to handshake_info.
            self.connect_sent = True
            self.send(encode.connect(self.connect_dict()))
            if self.solicitor_sends_info:
                self.send_info()
        self.handshake_info(info)
        if self.registered and not self.closed:
            self.server.hook.nats_link_info_received(link=self, info=info)

    def info_dict(self):
        """The INFO this link sends (plugins add fields via ``nats_link_info``)."""
        return {"server_id": self.server.server_id, "server_name": self.server.server_name}

    def connect_dict(self):
        """The CONNECT the dialling side sends."""
        return {"echo": True, "verbose": False, "pedantic": False,
                "name": self.server.server_id}

    def accept_connect(self, opts):
        """Check the peer's CONNECT; close and return False to refuse."""
        return True

    def connect_accepted(self, opts):
        """Called once the peer's CONNECT was accepted (acceptor side)."""

    def handshake_info(self, info):
        """The peer's INFO during the handshake: register or close."""
        self.remote_id = info.get("server_id")
        self.remote_name = info.get("server_name", "")
        self.remote_info = info
        self.server.links.link_up(self)

    def info_update(self, info):
        """An INFO after the handshake."""
        self.remote_info = info

    def lame_duck(self):
        """Tell the peer we are in lame duck mode (INFO ``ldm``)."""
        if self.registered:
            self.send_info({"ldm": True})

    # -- liveness ----------------------------------------------------------------

    def op_ping(self):
        self.send(encode.PONG)

    def op_pong(self):
        self.pings_out = 0
        if self.rtt_start:
            self.rtt = time.monotonic() - self.rtt_start

    def op_ok(self):
        pass

    def op_err(self, rest):
        self.log.info("link_error", error=rest.decode(errors="replace")[:200])
        self.close(ClosedReason.PROTOCOL_VIOLATION)

    def ping_check(self, now, interval, ping_max):
        every = self.link_kind.ping_interval_max
        if every is not None and every < interval:
            # PINGs regardless of traffic (gateways): traffic does not reset the clock.
            self.last_activity = min(self.last_activity, self.last_ping)
            interval = every
        super().ping_check(now, interval, ping_max)

    # -- interest the peer sends us ----------------------------------------------

    def on_remote_sub(self, account, subject, queue=None, weight=1):
        key = (account.name, subject, queue)
        sub = self.remote_subs.get(key)
        if sub is None:
            if not is_valid_wire_subject(subject):
                # nats-server: "Could not insert subscription", -ERR, the link stays
                self.log.debug("invalid_remote_subscription", subject=subject[:128])
                self.send(encode.err("Invalid Subscription"))
                return
            if self.accept_filter is not None and not self.accept_filter(subject):
                self.log.debug("remote_interest_refused", subject=subject)
                return
            sub = Subscription(self, subject, queue, weight=max(weight, 1))
            self.remote_subs[key] = sub
            self.server.add_subscription(account, sub)
        elif queue is not None and weight != sub.weight:
            account.sublist.update_weight(sub, max(weight, 1))

    def on_remote_unsub(self, account, subject, queue=None):
        sub = self.remote_subs.pop((account.name, subject, queue), None)
        if sub is not None:
            self.server.remove_subscription(account, sub)

    def drop_remote_interest(self):
        accounts = self.server.accounts
        for (acc_name, _subject, _queue), sub in list(self.remote_subs.items()):
            account = accounts.get(acc_name)
            if account is not None:
                self.server.remove_subscription(account, sub)
        self.remote_subs.clear()

    def remove_subscription(self, sub):
        """Remote subscriptions are only removed by the peer (or on close)."""

    # -- interest we send the peer ------------------------------------------------

    def carries(self, account_name):
        """Does this link carry ``account_name``'s interest and messages? (A
        route pool spreads accounts over its connections.)"""
        bound = self.bound_account
        return bound is None or bound.name == account_name

    def advertise(self, account_name, subject, queue, weight):
        """Tell the peer our interest is now ``weight`` (0 = none), if it changed."""
        key = (account_name, subject, queue)
        if self.advertised.get(key, 0) == weight:
            return
        if weight and self.advertise_filter is not None and not self.advertise_filter(subject):
            return
        if weight:
            self.advertised[key] = weight
            self.send_sub(account_name, subject, queue, weight)
        else:
            del self.advertised[key]
            self.send_unsub(account_name, subject, queue)

    def send_sub(self, account_name, subject, queue, weight):
        raise NotImplementedError

    def send_unsub(self, account_name, subject, queue):
        raise NotImplementedError

    # -- messages out: one framing, a message or a segment --------------------------

    def send_msg(self, account, subject, reply, hdr, msg, queues):
        size = len(msg)
        out = self.out
        if not (queues or reply or hdr) and size < _SIZES_MAX:
            # The usual frame: four pre-built pieces around the subject.
            out += self._lead(account) if self.acc_token else self.msg_lead
            out += subject
            out += SP_SIZE_CRLF[size]
            out += msg
            out += b"\r\n"
        else:
            acc = account.name_bytes + b" " if self.acc_token else b""
            if queues:
                mid = (b" + " + reply + b" " if reply else b" | ") + b" ".join(queues) + b" "
            elif reply:
                mid = b" " + reply + b" "
            else:
                mid = b" "
            if hdr:
                head = b"%s%s%s%s%d %d\r\n" % (self.hmsg_lead, acc, subject, mid, hdr, size)
            else:
                head = b"%s%s%s%s%d\r\n" % (self.msg_lead, acc, subject, mid, size)
            out += head
            out += msg
            out += b"\r\n"
        self.out_msgs += 1
        self.out_bytes += size
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)

    def run_leads(self, account, subject):
        """``(MSG lead, HMSG lead)`` framing a run of messages on ``subject``
        in ``account`` for this link (the lead is the verb and the account
        token: subject, reply and sizes follow), the HMSG lead None when the
        peer takes no headers (it gets the payloads); None when the link must
        not carry ``subject``. JetStream frames a consumer's run with them
        (plugins/jetstream/direct.py)."""
        if self.acc_token:
            lead = self._lead(account)
            return lead, self.hmsg_lead + lead[len(self.msg_lead):]
        return self.msg_lead, self.hmsg_lead

    def _lead(self, account):
        """``RMSG <account> `` for ``account`` (built once per account)."""
        lead = self._leads.get(account)
        if lead is None:
            if len(self._leads) >= _TARGET_CACHE_MAX:
                self._leads.clear()
            lead = self._leads[account] = self.msg_lead + account.name_bytes + b" "
        return lead

    def send_run(self, account, items, plain=False):
        """Header-less ``(subject, reply, payloads)`` items in order (no queue
        groups; a segment of the bulk paths, each item's payloads of one
        size): every frame built by one join and appended at once.
        ``plain``: the caller knows no item has a reply. Returns (messages,
        payload bytes) of ``items``, so a bulk path need not count again."""
        lead = self._lead(account) if self.acc_token else self.msg_lead
        payloads = list(_flat(map(_third, items)))
        count = len(payloads)
        sizes = list(map(len, payloads))
        nbytes = sum(sizes)
        size_parts = None
        if count == len(items) and count and (plain or not any(map(_second, items))):
            try:  # (a size past the table raises: no max() comparing each size)
                size_parts = list(map(SP_SIZE_CRLF.__getitem__, sizes))
            except IndexError:
                pass
        if size_parts is not None:
            # A frame per item, no replies (subjects that change from message
            # to message): the frames' pieces lined up and joined in C,
            # each frame's CRLF and the next one's verb as one piece.
            append_joined(self, chain((lead,), _flat(zip_longest(
                map(_first, items), size_parts, payloads,
                repeat(b"\r\n" + lead, count - 1), fillvalue=b"\r\n"))))
        else:
            parts = []
            for subject, reply, payloads in items:
                size = len(payloads[0])
                size_crlf = SIZE_CRLF.get(size) or b"%d\r\n" % size
                head = _join((lead, subject, b" ", reply, b" ", size_crlf)) if reply \
                    else _join((lead, subject, b" ", size_crlf))
                if len(payloads) == 1:
                    parts += (head, payloads[0], b"\r\n")
                else:  # one control line: the payloads joined by the head
                    parts += (head, (b"\r\n" + head).join(payloads), b"\r\n")
            append_joined(self, parts)
        self.out_msgs += count
        self.out_bytes += nbytes
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)
        return count, nbytes

    # -- messages in: one path for every frame -----------------------------------

    def _account_and_args(self, args):
        if self.bound_account is not None:
            return self.bound_account, args
        if not args:
            return None, args
        account = self._accounts.get(args[0])
        if account is None:
            account = self.server.accounts.get_or_create(args[0].decode(errors="replace"))
            self._accounts[args[0]] = account
        return account, args[1:]

    def op_hmsg(self, args, hdr, msg):
        self._inbound(args, hdr, msg)

    def op_msg(self, items):
        """The message verb's one entry point: ``items`` are ``(args,
        payloads)`` in order (the parser's run of a read, or a single frame;
        an item's payloads share its control line).

        Plain messages (no reply, no queue groups) of a known account go the
        bulk way: consecutive items whose targets are the same subscriptions
        form a segment delivered at once (``deliver_run``), a message whose
        targets differ from its neighbours' is delivered alone. Anything else
        (replies, queue groups, claims, forwarders, a new account) takes
        ``_inbound`` one by one in between, so every target keeps the order."""
        if self.forwarders:  # each message also goes to the forwarders
            for args, payloads in items:
                for payload in payloads:
                    if self.closed:
                        return
                    self._inbound(args, 0, payload)
            return
        if len(items) > 2 and self._lane_run(items):
            return
        bound = self.bound_account  # then the lines carry no account token
        accounts = self._accounts if bound is None else _Always(bound)
        nargs = 2 if bound is None else 1
        tcache_get = self._targets.get
        claims = self.subject_claims
        seg = -1  # index where the pending segment starts (-1: none)
        seg_account = seg_targets = seg_key = None
        plans = []  # the plan of each item of a keyed segment
        last = account = subject = targets = result = sublist = plan = key = None
        count = nbytes = 0
        i = -1
        pending_items = iter(items)
        for args, payloads in pending_items:
            i += 1
            if args is not last:  # (items of one control line share args)
                last = args
                account = accounts.get(args[0]) if len(args) == nargs else None
                if account is None and len(args) == nargs:
                    account = self._account_and_args(args)[0]  # its first message
                if account is not None:
                    subject = args[-1]
                    sublist = account.sublist
                    result = sublist._cache_get(subject) or sublist.match(subject)
                    if result is EMPTY_RESULT:
                        targets = None
                    else:
                        cached = tcache_get(subject)
                        if cached is None or cached[0] is not result:
                            cached = self._target_entry(subject, result)
                        targets = cached[1]
                        plan = cached[2]
                        key = plan[2]
                        if key is not None and len(args) == nargs:
                            self._lane_add(args, account, plan)
            if seg >= 0:
                if targets is not None and account is seg_account:
                    if seg_key is not None:
                        if key is seg_key:
                            plans.append(plan)  # the same connections: the segment grows
                            n = len(payloads)
                            count += n
                            nbytes += len(payloads[0]) * n
                            continue
                    elif targets is seg_targets or (targets[0] == seg_targets[0] and
                                                    targets[1] == seg_targets[1]):
                        n = len(payloads)  # the same subscriptions: the segment grows
                        count += n
                        nbytes += len(payloads[0]) * n
                        continue
                gen = seg_account.sublist.genid
                self._deliver_segment(seg_account, seg_targets, seg_key, items[seg:i], plans)
                seg = -1
                if seg_account.sublist.genid != gen:
                    last = None  # interest changed (auto-unsubscribe): match anew
                    if account is not None:
                        result = sublist.match(subject)
                        if result is EMPTY_RESULT:
                            targets = None
                        else:
                            _, targets, plan = self._target_entry(subject, result)
                            key = plan[2]
            if account is None or (result is EMPTY_RESULT and claims):
                # replies, queue groups, an account not seen yet, a claimed prefix
                if len(args) == nargs + 1 and self.reply_run_claim is not None:
                    # a run of JetStream deliveries (one subject, ack replies)
                    # taken at once where one internal subscriber gets them
                    n = self.reply_run_claim(self, items, i, nargs)
                    if n:
                        if n > 1:
                            next(islice(pending_items, n - 1, n - 1), None)  # skip what it took
                            i += n - 1
                        last = None
                        continue
                for payload in payloads:
                    if self.closed:
                        return
                    self._inbound(args, 0, payload)
                last = None
                continue
            n = len(payloads)
            count += n
            nbytes += len(payloads[0]) * n
            if not targets:
                continue  # nobody here: counted, nothing to deliver
            seg = i
            seg_account = account
            seg_targets = targets
            seg_key = key
            if key is not None:
                plans = [plan]
        if seg >= 0:
            self._deliver_segment(seg_account, seg_targets, seg_key, items[seg:], plans)
        self.in_msgs += count
        self.in_bytes += nbytes

    def _lane_run(self, items):
        """``op_msg`` for a run whose every line was decided before (a
        *lane*: the plan of a plain message on that line, while its
        account's interest is unchanged) with one account and one key: the
        usual run of real traffic, delivered at once with no pass over its
        items here. False, having done nothing, for anything else."""
        lanes = self._lanes
        if not lanes:
            return False
        try:
            plans = list(map(lanes.__getitem__, map(_first, items)))
        except KeyError:
            return False
        for sublist, genid in self._lane_gens.items():
            if sublist.genid != genid:  # interest changed: decide afresh
                self.forget_lanes()
                return False
        # (a lane's plan carries (account, key) as its key: one account too)
        keys = list(map(_third, plans))
        if keys.count(keys[0]) != len(keys):
            return False
        self.account = keys[0][0]
        counted = deliver_planned(items, plans, self) or count_items(items)
        self.in_msgs += counted[0]
        self.in_bytes += counted[1]
        return True

    def _lane_add(self, args, account, plan):
        """Remember ``plan`` for plain messages on line ``args`` (``_lane_run``),
        valid while ``account``'s sublist does not change."""
        sublist = account.sublist
        gens = self._lane_gens
        if gens.get(sublist) != sublist.genid or len(self._lanes) >= _TARGET_CACHE_MAX:
            if sublist in gens or len(self._lanes) >= _TARGET_CACHE_MAX:
                self.forget_lanes()  # older lines were decided on older interest
            gens[sublist] = sublist.genid
        key = (account, plan[2])
        key = self._lane_keys.setdefault(key, key)  # one object: compared by identity
        self._lanes[args] = plan[:2] + (key,) + plan[3:]

    def forget_lanes(self):
        """Drop what ``_lane_add`` remembered."""
        self._lanes.clear()
        self._lane_gens.clear()
        self._lane_keys.clear()

    def _deliver_segment(self, account, targets, key, seg, plans):
        """Deliver a segment of ``op_msg``: by plans (``key``: messages
        reaching the same connections), at once (the same subscriptions), or
        message by message (each matched anew, as a lone message would be)."""
        self.account = account
        if key is not None:
            deliver_planned(seg, plans, self)
            return
        if len(seg) == 1 and len(seg[0][1]) == 1:
            args, payloads = seg[0]
            deliver(targets, args[-1], None, 0, payloads[0], self)
            return
        msgs = [(args[-1], None, payloads) for args, payloads in seg]
        if deliver_run(targets, msgs, self):
            return
        sublist = account.sublist
        for subject, _, payloads in msgs:
            for payload in payloads:
                result = sublist.match(subject)
                if result is not EMPTY_RESULT:
                    targets = self._local_targets(subject, result, None)
                    if targets:
                        self.account = account
                        deliver(targets, subject, None, 0, payload, self)

    def _inbound(self, args, hdr, msg):
        # Hot path: a link naming an account seen before (one dict lookup
        # instead of a method call).
        account = self._accounts.get(args[0]) if self.bound_account is None and args else None
        if account is not None:
            rest = args[1:]
        else:
            account, rest = self._account_and_args(args)
        if account is None or not rest:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        subject = rest[0]
        reply = None
        queues = None
        if len(rest) == 2:
            reply = rest[1]
        elif len(rest) > 2:
            if rest[1] == b"+":
                reply = rest[2]
                queues = rest[3:]
            elif rest[1] == b"|":
                queues = rest[2:]
            else:
                self.close(ClosedReason.PROTOCOL_VIOLATION)
                return
        self.in_msgs += 1
        self.in_bytes += len(msg)
        if self.subject_claims and self.server.links.claimed_subject(
                self, account, subject, reply, hdr, msg):
            return
        if reply is not None and self.reply_claims and self.server.links.claimed_reply(
                self, account, subject, reply, hdr, msg, queues):
            return
        result = account.sublist.match(subject)
        if result is not EMPTY_RESULT:
            # The per-subject target cache of _local_targets, checked inline for
            # messages without queue groups (most of them).
            cached = None if queues else self._targets.get(subject)
            if cached is not None and cached[0] is result:  # (result, targets, plan)
                targets = cached[1]
            else:
                targets = self._local_targets(subject, result, queues)
            if targets:
                self.account = account
                deliver(targets, subject, reply, hdr, msg, self)
        if self.forwarders:
            for forward in self.forwarders:
                forward(self, account, subject, reply, hdr, msg, result)

    def _local_targets(self, subject, result, queues):
        """What a message from this link may reach here (the forwarding rule):
        plain subscriptions whose connection takes messages of this link's
        origin, and one member of each queue group the sender named (local
        members first, links only as a fallback). Never this link itself."""
        if queues:
            return forwarding_targets(result, self, queues)
        cached = self._targets.get(subject)
        if cached is None or cached[0] is not result:
            cached = self._target_entry(subject, result)
        return cached[1]

    def _target_entry(self, subject, result):
        """Cache and return ``(result, targets, plan)`` for a message on
        ``subject`` without queue groups (the plan: ``delivery.make_plan``)."""
        targets = forwarding_targets(result, self, None)
        entry = (result, targets, NO_PLAN if targets is None else make_plan(targets, subject))
        if len(self._targets) >= _TARGET_CACHE_MAX:
            self._targets.clear()
        self._targets[subject] = entry
        return entry

    def forget_plans(self):
        """Delivery plans changed (``delivery.forget_plans``): drop the cached ones."""
        self._targets.clear()
        self.forget_lanes()

    def on_close(self, reason):
        self.drop_remote_interest()
        self.advertised.clear()
        self.server.links.link_down(self)
        self.manager.link_closed(self, reason)


class _Always:
    """A bound link's stand-in for its token -> account map: every line is in
    the one account (keeps the unbound run loop free of a test per message).
    Its ``get`` is C: ``next(repeat(account), key)`` is the account."""

    __slots__ = ("get",)

    def __init__(self, account):
        self.get = partial(next, repeat(account))


def forwarding_targets(result, source, queues):
    """The part of a match ``result`` a message arriving on link ``source`` may
    be delivered to (nats-server ``processMsgResults``), or None: plain
    subscriptions of connections whose ``messages_from`` holds the source's
    origin, never the source; of the queue groups named in ``queues`` only,
    the members allowed, local ones (clients, internal) preferred."""
    origin = source.origin
    group = source.peer_group
    if group is None:
        plain = tuple(s for s in result.psubs
                      if s.conn is not source and origin in s.conn.messages_from)
    else:  # never back into the sender's peer group (a leaf cluster's other links)
        plain = tuple(s for s in result.psubs if s.conn is not source and
                      origin in s.conn.messages_from and s.conn.peer_group != group)
    picked = ()
    if queues and result.qsubs:
        names = set(queues)
        groups = []
        for group in result.qsubs:
            if group[0].queue not in names:
                continue
            allowed = [s for s in group if s.conn is not source and
                       origin in s.conn.messages_from and
                       (source.peer_group is None or s.conn.peer_group != source.peer_group)]
            local = [s for s in allowed if not s.conn.is_link]
            members = local or allowed
            if members:
                groups.append(tuple(members))
        picked = tuple(groups)
    if not picked and not result.qsubs and len(plain) == len(result.psubs):
        return result  # nothing left out: the match itself (its delivery plan is shared)
    return SublistResult(plain, picked) if (plain or picked) else None


__all__ = ["CLIENT_ORIGIN", "Link", "forwarding_targets"]
