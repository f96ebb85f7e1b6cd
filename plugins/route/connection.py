"""One route connection: the route protocol's verbs on top of the shared Link.

Wire format (PROTOCOL.md 1.2, checked against nats-server 2.15.1 on the wire):
``RS+ <acc> <subj> [<queue> <weight>]``, ``RS- <acc> <subj> [queue]``,
``RMSG <acc> <subj> [reply | + reply q... | \\| q...] <size>`` and ``HMSG`` with
``<hdr> <size>``. On a route pinned to one account (``route_account`` in INFO)
the account token is left out.
"""

from pluggy_nats.connection import ROUTE, ClosedReason
from pluggy_nats.delivery import SIZE_CRLF, deliver, deliver_batch, deliver_run
from pluggy_nats.links import Link
from pluggy_nats.protocol import encode
from pluggy_nats.protocol.jsonarg import INFO_FIELDS, check_fields, loads_object
from pluggy_nats.protocol.parser import BARE, HPAYLOAD, LINE, PAYLOAD, REST, make_op_table
from pluggy_nats.subjects import is_valid_wire_subject
from pluggy_nats.sublist import EMPTY_RESULT, SublistResult

_TARGET_CACHE_MAX = 1024


class RouteConnection(Link):
    kind = ROUTE

    def __init__(self, server, sock, addr, manager, solicited=False, pool_idx=0,
                 pinned=None, url=None):
        super().__init__(server, sock, addr, manager, solicited)
        self.pool_idx = pool_idx
        self.pinned = pinned  # Account this route is dedicated to, or None
        self.url = url  # the URL we dialled (solicited routes)
        self.connect_received = False
        self.info_sent = False
        self.account = None  # account of the message being delivered inbound
        self._targets = {}  # subject -> (sublist result, local targets) for inbound msgs
        self._accounts = {}  # account token on the wire -> Account

    # -- handshake ------------------------------------------------------------

    def on_start(self):
        if not self.solicited:
            self.send_info()

    def send_info(self):
        info = self.manager.route_info()
        if self.solicited:
            if self.pinned is not None:
                info["route_account"] = self.pinned.name
            elif self.pool_idx:
                info["route_pool_idx"] = self.pool_idx
        self.info_sent = True
        self.send(encode.info(info))

    def op_connect(self, rest):
        try:
            opts = loads_object(rest)
        except ValueError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not isinstance(opts, dict) or not self.manager.accept_connect(self, opts):
            return
        self.connect_received = True

    def op_info(self, rest):
        try:
            info = loads_object(rest)
            check_fields(info, INFO_FIELDS)  # Go's Info types; the dict is used as sent
        except ValueError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not isinstance(info, dict):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.registered:
            self.manager.route_info_update(self, info)
            return
        if not self.solicited and not self.connect_received:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.solicited:
            # The acceptor spoke first; answer with CONNECT and our own INFO.
            self.send(encode.connect(self.manager.route_connect()))
            self.send_info()
        else:
            self.pool_idx = info.get("route_pool_idx", 0) or 0
            account = info.get("route_account")
            if account:
                self.pinned = self.server.accounts.get_or_create(account)
        self.manager.register_route(self, info)

    def op_ping(self):
        self.send(encode.PONG)

    def op_pong(self):
        self.pings_out = 0

    def op_ok(self):
        pass

    def op_err(self, rest):
        self.log.info("route_error", error=rest.decode(errors="replace")[:200])
        self.close(ClosedReason.PROTOCOL_VIOLATION)

    # -- interest ---------------------------------------------------------------

    def _account_and_args(self, args):
        if self.pinned is not None:
            return self.pinned, args
        if not args:
            return None, args
        account = self._accounts.get(args[0])
        if account is None:
            account = self.server.accounts.get_or_create(args[0].decode(errors="replace"))
            self._accounts[args[0]] = account
        return account, args[1:]

    def op_rs_plus(self, args):
        account, rest = self._account_and_args(args)
        if account is None or len(rest) not in (1, 3):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not self.registered:
            return
        if not is_valid_wire_subject(rest[0]):
            # nats-server: "Could not insert subscription", -ERR, the route stays
            self.log.debug("invalid_remote_subscription", subject=rest[0][:128])
            self.send(encode.err("Invalid Subscription"))
            return
        if len(rest) == 1:
            self.on_remote_sub(account, rest[0])
        else:
            weight = int(rest[2]) if rest[2].isdigit() else 1
            self.on_remote_sub(account, rest[0], rest[1], weight)

    def op_rs_minus(self, args):
        account, rest = self._account_and_args(args)
        if account is None or len(rest) not in (1, 2):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self.on_remote_unsub(account, rest[0], rest[1] if len(rest) == 2 else None)

    def op_ls_plus(self, args):
        # LS+ <origin> [acc] <subj> [queue weight]: interest of a leaf behind the
        # peer. Until leaf nodes exist it is treated as plain remote interest.
        if args:
            self.op_rs_plus(args[1:])

    def op_ls_minus(self, args):
        if args:
            self.op_rs_minus(args[1:])

    def send_sub(self, account_name, subject, queue, weight):
        acc = b"" if self.pinned is not None else account_name.encode() + b" "
        if queue is None:
            self.send(b"RS+ %s%s\r\n" % (acc, subject))
        else:
            self.send(b"RS+ %s%s %s %d\r\n" % (acc, subject, queue, weight))

    def send_unsub(self, account_name, subject, queue):
        acc = b"" if self.pinned is not None else account_name.encode() + b" "
        if queue is None:
            self.send(b"RS- %s%s\r\n" % (acc, subject))
        else:
            self.send(b"RS- %s%s %s\r\n" % (acc, subject, queue))

    # -- messages -----------------------------------------------------------------

    def send_msg(self, account, subject, reply, hdr, msg, queues):
        acc = b"" if self.pinned is not None else account.name_bytes + b" "
        if queues:
            mid = (b" + " + reply + b" " if reply else b" | ") + b" ".join(queues) + b" "
        elif reply:
            mid = b" " + reply + b" "
        else:
            mid = b" "
        if hdr:
            head = b"HMSG %s%s%s%d %d\r\n" % (acc, subject, mid, hdr, len(msg))
        else:
            head = b"RMSG %s%s%s%d\r\n" % (acc, subject, mid, len(msg))
        out = self.out
        out += head
        out += msg
        out += b"\r\n"
        self.out_msgs += 1
        self.out_bytes += len(msg)
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)

    def send_msgs(self, account, subject, reply, payloads):
        # All RMSG heads of the batch are equal: one join frames them all.
        acc = b"" if self.pinned is not None else account.name_bytes + b" "
        mid = b" " + reply + b" " if reply else b" "
        head = b"RMSG %s%s%s%d\r\n" % (acc, subject, mid, len(payloads[0]))
        out = self.out
        out += head
        out += (b"\r\n" + head).join(payloads)
        out += b"\r\n"
        n = len(payloads)
        self.out_msgs += n
        self.out_bytes += n * len(payloads[0])
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)

    def send_run(self, account, msgs):
        # Every frame of the run built by one join and appended at once.
        acc = b"RMSG " if self.pinned is not None else b"RMSG " + account.name_bytes + b" "
        sizes = SIZE_CRLF
        parts = []
        nbytes = 0
        for subject, reply, payload in msgs:
            n = len(payload)
            nbytes += n
            size_crlf = sizes.get(n) or b"%d\r\n" % n
            if reply:
                parts += (acc, subject, b" ", reply, b" ", size_crlf, payload, b"\r\n")
            else:
                parts += (acc, subject, b" ", size_crlf, payload, b"\r\n")
        self.out += b"".join(parts)
        self.out_msgs += len(msgs)
        self.out_bytes += nbytes
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)

    def op_rmsg(self, args, payload):
        self._inbound(args, 0, payload)

    def op_rmsg_batch(self, args, payloads):
        """RMSG frames with one control line (the parser's batches): account,
        subject and targets are looked up once for all of them."""
        if self.pinned is not None or len(args) != 2:  # queue groups, replies, pinned
            for payload in payloads:
                self._inbound(args, 0, payload)
            return
        account = self._accounts.get(args[0])
        if account is None:
            account, _rest = self._account_and_args(args)
        subject = args[1]
        result = account.sublist.match(subject)
        if result is not EMPTY_RESULT:
            cached = self._targets.get(subject)
            if cached is not None and cached[0] is result:
                targets = cached[1]
            else:
                targets = self._local_targets(subject, result, None)
            if targets:
                self.account = account
                if not deliver_batch(targets, subject, None, payloads, self):
                    for payload in payloads:  # counted by _inbound
                        self._inbound(args, 0, payload)
                    return
        n = len(payloads)
        self.in_msgs += n
        self.in_bytes += n * len(payloads[0])

    def op_rmsg_run(self, run):
        """A read buffer's run of RMSGs (the parser's run function): items are
        ``(args, None, payload)``, or a list of payloads for a batch of one
        control line. Consecutive plain messages (no reply, no queue groups)
        of one account whose local targets are the same subscriptions are
        delivered at once (``deliver_run``); the rest go one by one in between."""
        seg = []  # (subject, None, payload) reaching seg_targets, not yet delivered
        seg_account = seg_targets = None
        accounts = self._accounts
        pinned = self.pinned is not None
        for args, _, payload in run:
            account = None if pinned or len(args) != 2 else accounts.get(args[0])
            if account is None or payload.__class__ is list:
                if seg:
                    self._deliver_segment(seg_account, seg_targets, seg)
                    seg = []
                if self.closed:
                    return
                if payload.__class__ is list:
                    self.op_rmsg_batch(args, payload)
                else:
                    self._inbound(args, 0, payload)
                continue
            subject = args[1]
            result = account.sublist.match(subject)
            targets = None
            if result is not EMPTY_RESULT:
                cached = self._targets.get(subject)
                if cached is not None and cached[0] is result:
                    targets = cached[1]
                else:
                    targets = self._local_targets(subject, result, None)
            if not targets:  # nobody here: counted, nothing to deliver
                self.in_msgs += 1
                self.in_bytes += len(payload)
                continue
            if seg:
                if account is seg_account and targets[0] == seg_targets[0] and \
                        targets[1] == seg_targets[1]:
                    seg.append((subject, None, payload))
                    continue
                if not self._deliver_segment(seg_account, seg_targets, seg):
                    seg = []  # delivered one by one (which may unsubscribe): match anew
                    self._inbound(args, 0, payload)
                    continue
            seg = [(subject, None, payload)]
            seg_account = account
            seg_targets = targets
        if seg:
            self._deliver_segment(seg_account, seg_targets, seg)

    def _deliver_segment(self, account, targets, seg):
        """Deliver a segment of ``op_rmsg_run``; False if it went message by
        message (through ``_inbound``, which matches each anew)."""
        if len(seg) > 1:
            self.account = account
            if deliver_run(targets, seg, self):
                self.in_msgs += len(seg)
                self.in_bytes += sum([len(m[2]) for m in seg])
                return True
        name = account.name_bytes
        for subject, _, payload in seg:
            self._inbound([name, subject], 0, payload)
        return False

    def op_hmsg(self, args, hdr, msg):
        self._inbound(args, hdr, msg)

    def op_lmsg(self, args, hdr, msg):
        # LMSG <origin> ...: a message that entered the peer's cluster from a leaf.
        self._inbound(args[1:], hdr, msg)

    def _inbound(self, args, hdr, msg):
        # Hot path: an unpinned route naming an account seen before (one dict
        # lookup instead of a method call).
        account = self._accounts.get(args[0]) if self.pinned is None and args else None
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
        result = account.sublist.match(subject)
        if result is EMPTY_RESULT:
            return
        # The per-subject target cache of _local_targets, checked inline for
        # messages without queue groups (most of them).
        cached = None if queues else self._targets.get(subject)
        if cached is not None and cached[0] is result:
            targets = cached[1]
        else:
            targets = self._local_targets(subject, result, queues)
        if targets:
            self.account = account
            deliver(targets, subject, reply, hdr, msg, self)

    def _local_targets(self, subject, result, queues):
        """What a routed message may reach here: local plain subscriptions, and
        one local member of each queue group the sender named (one hop only:
        never another route)."""
        if not queues:
            cached = self._targets.get(subject)
            if cached is not None and cached[0] is result:
                return cached[1]
        plain = tuple(s for s in result.psubs if not s.conn.is_link)
        picked = ()
        if queues and result.qsubs:
            names = set(queues)
            groups = tuple(tuple(s for s in group if not s.conn.is_link)
                           for group in result.qsubs if group[0].queue in names)
            picked = tuple(g for g in groups if g)
        targets = SublistResult(plain, picked) if (plain or picked) else None
        if not queues:
            if len(self._targets) >= _TARGET_CACHE_MAX:
                self._targets.clear()
            self._targets[subject] = (result, targets)
        return targets


ROUTE_OPS = make_op_table({
    b"INFO": (REST, RouteConnection.op_info),
    b"CONNECT": (REST, RouteConnection.op_connect),
    b"PING": (BARE, RouteConnection.op_ping),
    b"PONG": (BARE, RouteConnection.op_pong),
    b"+OK": (BARE, RouteConnection.op_ok),
    b"-ERR": (REST, RouteConnection.op_err),
    b"RS+": (LINE, RouteConnection.op_rs_plus),
    b"RS-": (LINE, RouteConnection.op_rs_minus),
    b"LS+": (LINE, RouteConnection.op_ls_plus),
    b"LS-": (LINE, RouteConnection.op_ls_minus),
    b"RMSG": (PAYLOAD, RouteConnection.op_rmsg, RouteConnection.op_rmsg_batch,
              RouteConnection.op_rmsg_run),
    b"HMSG": (HPAYLOAD, RouteConnection.op_hmsg),
    b"LMSG": (HPAYLOAD, RouteConnection.op_lmsg),
})

RouteConnection.OPS = ROUTE_OPS
