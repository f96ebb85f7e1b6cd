"""One leaf node link: the leaf verbs and the handshake on top of the shared Link.

Roles: the side that dials is the *spoke* and the side that accepts the *hub*,
unless the dialler's remote says ``hub: true`` (CONNECT ``is_hub``), which swaps
them. ``we_are_hub`` says which we are on this link; it decides what interest
we offer the peer and where its messages may go (the manager's rules).

Handshake (nats-server 2.15.1 on the wire, see :mod:`.protocol`):

* accepting: INFO -> (CONNECT) -> auth, checks, bind account -> second INFO
  (``connect_info``) -> register (our LS+ follow) -> PING;
* dialling: (INFO) -> CONNECT -> (second INFO) -> register -> our LS+.

There is no account on the wire: the link is bound to one local account
(``self.account``) and everything it carries belongs to it.
"""

from pluggy_nats.connection import LEAF, ClosedReason
from pluggy_nats.delivery import deliver
from pluggy_nats.links import Link
from pluggy_nats.protocol import encode
from pluggy_nats.protocol.parser import BARE, HPAYLOAD, LINE, PAYLOAD, REST, make_op_table
from pluggy_nats.sublist import EMPTY_RESULT

from . import protocol as P


class LeafConnection(Link):
    kind = LEAF

    def __init__(self, server, sock, addr, manager, solicited=False, remote=None, url=None):
        super().__init__(server, sock, addr, manager, solicited)
        self.remote = remote  # RemoteConfig we dialled for (solicited links)
        self.url = url
        self.we_are_hub = not solicited  # swapped by remote.hub / CONNECT is_hub
        if remote is not None and remote.hub:
            self.we_are_hub = True
        self.account = None  # the local account this link is bound to
        self.remote_account = ""  # the account the peer bound it to (its name)
        self.remote_cluster = ""
        self.first_info = None  # the INFO we sent (hub) or got (spoke)
        self.connect_received = False
        self.client_type = "LEAFNODE"  # what user JWTs' allowed_connection_types see
        self.nonce = None
        self.headers = True
        self.retry_after = None  # seconds the dialler waits after the peer's -ERR
        # Filters set from deny rules and permissions (None: nothing denied):
        # what we never send the peer, and what we never take from it.
        self.out_denied = None
        self.in_denied = None
        self.isolated = False  # interest learned from other leafs is not offered

    @property
    def is_spoke(self):
        """This side is the spoke (what /leafz calls ``is_spoke``)."""
        return not self.we_are_hub

    # -- handshake ------------------------------------------------------------

    def on_start(self):
        if not self.solicited:
            self.first_info = self.manager.hub_info(self)
            self.send(encode.info(self.first_info))

    def op_info(self, rest):
        try:
            info = P.parse_json(rest)
        except P.LeafProtocolError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.registered:
            self.manager.info_update(self, info)
            return
        if not self.solicited:
            return  # a leaf does not send INFO before CONNECT (a bare INFO: ignore)
        if self.first_info is None:
            if not info.get("client_id"):
                # nats-server's own check: a client port, not a leafnode port.
                self.log.error("attempted to connect to wrong port (client port?)")
                self.close(ClosedReason.WRONG_PORT)
                return
            self.first_info = info
            if not self.manager.send_connect(self, info):
                return
            if not info.get("info_on_connect"):
                self.manager.register(self, info)  # an old hub: no second INFO comes
            return
        if info.get("connect_info"):
            self.manager.register(self, info)

    def op_connect(self, rest):
        if self.solicited or self.connect_received:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        try:
            connect = P.parse_json(rest)
        except P.LeafProtocolError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self.connect_received = True
        self.manager.accept_connect(self, connect)

    def op_ping(self):
        self.send(encode.PONG)

    def op_pong(self):
        self.pings_out = 0

    def op_ok(self):
        pass

    def op_err(self, rest):
        text = rest.decode(errors="replace").strip().strip("'")
        self.log.error("Leafnode Error '%s'" % text[:300])
        self.retry_after = P.reconnect_delay(text)
        self.close(ClosedReason.PROTOCOL_VIOLATION)

    def fail(self, reason, err):
        """Close with a -ERR the peer (a Go server) recognises and logs."""
        self.log.error(err)
        self.close(reason, err)

    # -- interest -----------------------------------------------------------------

    def op_ls_plus(self, args):
        try:
            subject, queue, weight = P.parse_ls_plus(args)
        except P.LeafProtocolError as exc:
            self.log.debug("bad_ls_plus", error=str(exc))
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not self.registered:
            return
        if subject.startswith(P.LDS_PREFIX) and self.manager.is_own_lds(self.account, subject):
            self.manager.loop_detected(self)
            return
        if self.out_denied is not None and not P.is_unchecked(subject) \
                and self.out_denied(subject):
            if self.we_are_hub:
                self.fail(ClosedReason.PROTOCOL_VIOLATION,
                          'Permissions Violation for Subscription to "%s"' % subject.decode())
            return  # a spoke silently ignores interest it may not serve
        self.on_remote_sub(self.account, subject, queue, weight)

    def op_ls_minus(self, args):
        try:
            subject, queue = P.parse_ls_minus(args)
        except P.LeafProtocolError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.registered:
            self.on_remote_unsub(self.account, subject, queue)

    def send_sub(self, account_name, subject, queue, weight):
        self.send(P.encode_sub(subject, queue, weight))

    def send_unsub(self, account_name, subject, queue):
        self.send(P.encode_unsub(subject, queue))

    # -- messages -------------------------------------------------------------------

    def send_msg(self, account, subject, reply, hdr, msg, queues):
        if self.out_denied is not None and self.out_denied(subject):
            return
        out = self.out
        out += P.msg_head(subject, reply, hdr, len(msg), queues)
        out += msg
        out += b"\r\n"
        self.out_msgs += 1
        self.out_bytes += len(msg)
        if not self.flush_queued:
            self.flush_queued = True
            self.touched.append(self)

    def op_lmsg(self, args, msg):
        self._inbound(args, 0, msg)

    def op_hmsg(self, args, hdr, msg):
        self._inbound(args, hdr, msg)

    def _inbound(self, args, hdr, msg):
        try:
            subject, reply, queues = P.parse_msg_args(args)
        except P.LeafProtocolError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self.in_msgs += 1
        self.in_bytes += len(msg)
        account = self.account
        if account is None or not self.registered:
            return
        if self.in_denied is not None and self.in_denied(subject):
            if self.we_are_hub:
                self.fail(ClosedReason.PROTOCOL_VIOLATION,
                          'Permissions Violation for Publish to "%s"' % subject.decode())
            return
        result = account.sublist.match(subject)
        if result is EMPTY_RESULT:
            return
        targets = self.manager.targets(self, result, queues)
        if targets:
            deliver(targets, subject, reply, hdr, msg, self)

    def on_close(self, reason):
        super().on_close(reason)


LEAF_OPS = make_op_table({
    b"INFO": (REST, LeafConnection.op_info),
    b"CONNECT": (REST, LeafConnection.op_connect),
    b"PING": (BARE, LeafConnection.op_ping),
    b"PONG": (BARE, LeafConnection.op_pong),
    b"+OK": (BARE, LeafConnection.op_ok),
    b"-ERR": (REST, LeafConnection.op_err),
    b"LS+": (LINE, LeafConnection.op_ls_plus),
    b"LS-": (LINE, LeafConnection.op_ls_minus),
    b"LMSG": (PAYLOAD, LeafConnection.op_lmsg),
    b"HMSG": (HPAYLOAD, LeafConnection.op_hmsg),
})

LeafConnection.OPS = LEAF_OPS
