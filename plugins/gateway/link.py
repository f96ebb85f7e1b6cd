"""One gateway connection on the shared link layer: the gateway's handshake,
its interest verbs and its two special cases on the way in (GATEWAY.md).

A gateway connection carries data one way: the side that dialled (the
*outbound*, ``solicited``) sends RMSG/HMSG and reads interest (RS+, RS-, A+,
A-, INFO ``gateway_cmd``); the side that accepted (the *inbound*) reads
messages and sends interest. A verb on the wrong side closes the connection
as nats-server does.

The peer's interest does not go into the account's subject index: what may
cross depends on the per-account mode (optimistic or interest-only) and on
which queue groups the local cluster already served, so it lives in the
outbound's :class:`~.interest.OutboundInterest` and the manager's forwarder
reads it after local delivery.
"""

from pluggy_nats.connection import ClosedReason
from pluggy_nats.links import Link
from pluggy_nats.protocol.parser import make_op_table

from . import wire
from .interest import InboundInterest, OutboundInterest


class GatewayLink(Link):
    """A gateway connection (either direction)."""

    encode_info = staticmethod(wire.encode_info)  # "INFO {..}\r\n", no space (Go InfoProto)

    def __init__(self, server, sock, addr, manager, solicited=False, url=None, remote=None):
        super().__init__(server, sock, addr, manager, solicited, url)
        self.remote = remote  # RemoteGateway we dialled (outbound)
        self.gateway = remote.name if remote is not None else None  # the peer's cluster
        self.outbound = None  # OutboundInterest (outbound links)
        self.inbound = None  # InboundInterest (inbound links)
        self.use_old_prefix = False
        self.headers = True
        self.priming = False  # registering an inbound: record interest, send nothing yet
        self.name = ""  # the peer's server id (/gatewayz "name", as Go's c.opts.Name)

    @classmethod
    def bind_kind(cls, kind):
        super().bind_kind(kind)
        # Before an accepted gateway's CONNECT, every other verb is an
        # authorization violation (Go: expectConnect), payloads consumed.
        cls.PRE_CONNECT_OPS = make_op_table({
            verb: (shape, fn if verb == b"CONNECT" else _before_connect)
            for verb, (shape, fn) in cls.OPS.items() if verb == verb.upper()})
        return cls

    def on_start(self):
        if not self.solicited:
            self.parser.ops = self.PRE_CONNECT_OPS
        super().on_start()

    def connect_accepted(self, opts):
        self.parser.ops = self.OPS

    # -- handshake ---------------------------------------------------------------

    def info_dict(self):
        return self.manager.server_info()

    def connect_dict(self):
        return self.manager.connect_fields(self)

    def op_info(self, rest):
        # The dialler checks the acceptor's INFO before it says anything
        # (Go processGatewayInfo): a wrong port or cluster gets no CONNECT.
        if self.solicited and not self.registered and not self.closed:
            info = self._json(rest)
            if info is None:
                return
            try:
                wire.check_dialer_info(info, self.manager.name, self.gateway)
            except wire.HandshakeError as exc:
                self.refuse(exc)
                return
        super().op_info(rest)

    def refuse(self, exc):
        """Close after a failed handshake step, as Go logs and answers it."""
        self.log.error("gateway_refused", error=exc.log, gateway=self.gateway)
        self.close(getattr(ClosedReason, exc.reason, ClosedReason.PROTOCOL_VIOLATION), exc.err)

    def accept_connect(self, opts):
        try:
            self.gateway = self.manager.check_connect(opts)
        except wire.HandshakeError as exc:
            self.refuse(exc)
            return False
        return True

    def handshake_info(self, info):
        self.remote_id = info.get("server_id") or ""
        self.remote_name = info.get("server_name", "")
        self.remote_info = info
        self.name = self.remote_id
        if self.manager.is_duplicate_server_name(self.remote_name):
            self.log.error("gateway_duplicate_server_name", name=self.remote_name)
            self.close(ClosedReason.DUPLICATE_SERVER_NAME)
            return
        if self.solicited:
            self.outbound = OutboundInterest(bool(info.get("gateway_iom")))
            self.use_old_prefix = not info.get("gateway_nrp")
            self.headers = bool(info.get("headers"))
            self.manager.register_outbound(self, info)
        else:
            if not info.get("gateway"):
                self.close(ClosedReason.PROTOCOL_VIOLATION)
                return
            self.gateway = info["gateway"]
            self.headers = bool(info.get("headers"))
            self.inbound = InboundInterest(self.manager.name, self.plain_subjects)
            self.manager.register_inbound(self, info)

    def info_update(self, info):
        self.manager.info_update(self, info)

    def lame_duck(self):
        """nats-server tells clients and routes about lame duck mode, not gateways."""

    # -- interest: what the peer tells our outbound ---------------------------------

    def _interest_args(self, args, verb):
        """The account and the rest of an interest verb, or None (closed)."""
        if not self.solicited:
            # Go: "Received RS+ from gateway on inbound connection"
            self.log.error("gateway_interest_on_inbound", verb=verb)
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return None
        if not args:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return None
        return args[0].decode(errors="replace"), args[1:]

    def op_rs_plus(self, args):
        got = self._interest_args(args, "RS+")
        if got is None:
            return
        account, rest = got
        if len(rest) == 1:
            self._count(account, self.outbound.rs_plus(account, rest[0]), 1)
        elif len(rest) == 3 and rest[2].isdigit():
            self._count(account, self.outbound.rs_plus(account, rest[0], rest[1], int(rest[2])), 1)
        else:
            self.log.error("gateway_parse_error", verb="RS+")
            self.close(ClosedReason.PROTOCOL_VIOLATION)

    def op_rs_minus(self, args):
        got = self._interest_args(args, "RS-")
        if got is None:
            return
        account, rest = got
        if len(rest) not in (1, 2):
            self.log.error("gateway_parse_error", verb="RS-")
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        self._count(account, self.outbound.rs_minus(account, rest[0],
                                                     rest[1] if len(rest) == 2 else None), -1)

    def op_a_plus(self, args):
        got = self._interest_args(args, "A+")
        if got is not None:
            self.outbound.a_plus(got[0])

    def op_a_minus(self, args):
        got = self._interest_args(args, "A-")
        if got is not None:
            before = self.outbound.subscriptions(got[0])
            self.outbound.a_minus(got[0])
            after = set(self.outbound.subscriptions(got[0]))
            for sub in before:
                if sub not in after:
                    self._count(got[0], sub, -1)

    def _count(self, account, sub, delta):
        """The peer's interest ``sub`` (None: nothing changed) came or went.
        Interest-only accounts and queue groups are tracked per subject; the
        layer counts them as gateway-origin interest, which a hub offers its
        leafs (Go initLeafNodeSmapAndSendSubs, updateInterestForAccountOnGateway):
        without it a leaf never sends what only the other cluster wants."""
        if sub is not None:
            self.server.links.count_interest(self, account, sub.subject, sub.queue, delta)

    def drop_peer_interest(self):
        """The outbound closed: its peer's interest is gone from the layer."""
        if self.outbound is not None:
            for account in list(self.outbound.accounts):
                for sub in self.outbound.subscriptions(account):
                    self._count(account, sub, -1)

    # -- interest: what our inbound tells the peer --------------------------------

    def advertise(self, account_name, subject, queue, weight):
        """The layer's cluster-wide interest for this link changed: only the
        first and the last subscription matter to a gateway peer (queue
        weight is always 1 on the wire), and in optimistic mode only what
        undoes an earlier RS-/A-."""
        if self.inbound is None:
            return  # outbound links carry no interest
        key = (account_name, subject, queue)
        had = self.advertised.get(key, 0)
        if weight:
            self.advertised[key] = weight
        else:
            self.advertised.pop(key, None)
        if bool(had) == bool(weight) or self.priming:
            return
        if queue is None and not self.inbound.is_interest_only(account_name):
            # A new account (Go switches it on registration): switch now.
            lines = self.inbound.switch(account_name, self.cmd_line)
            if lines:
                self.send(b"".join(lines))
                return
        lines = self.inbound.local_sub_changed(account_name, subject, queue, bool(weight))
        if lines:
            self.send(b"".join(lines))

    def plain_subjects(self, account_name):
        return [subject for (acc, subject, queue) in self.advertised
                if acc == account_name and queue is None]

    def cmd_line(self, cmd, account_name):
        return wire.encode_info(wire.cmd_info(self.manager.name, cmd, account_name))

    def send_sub(self, account_name, subject, queue, weight):
        """Unused: ``advertise`` writes the gateway's lines itself."""

    def send_unsub(self, account_name, subject, queue):
        """Unused: ``advertise`` writes the gateway's lines itself."""

    # -- messages in (inbound links) --------------------------------------------

    def _inbound(self, args, hdr, msg):
        # ``_GR_.`` subjects and mapped replies are claimed by the manager
        # (LinkLayer.claim) inside the layer's _inbound.
        if self.solicited:
            self.close(ClosedReason.PROTOCOL_VIOLATION)  # messages come on inbounds only
            return
        super()._inbound(args, hdr, msg)
        if not self.closed and len(args) >= 2 and self.inbound is not None:
            self._maybe_no_interest(args)

    def _maybe_no_interest(self, args):
        """Optimistic peers learn what we do not want (A-/RS-); interest-only
        accounts never need it."""
        name = args[0].decode(errors="replace")
        if self.inbound is None or self.inbound.is_interest_only(name):
            return
        account = self.server.accounts.get(name)
        if account is None or not account.sublist.count():
            lines = self.inbound.no_account_interest(name)
        elif not account.sublist.match(args[1]).psubs:
            lines = self.inbound.no_subject_interest(name, args[1], self.cmd_line)
        else:
            return
        if lines:
            self.send(b"".join(lines))

    # -- messages out (outbound links) -------------------------------------------

    def send_gateway_msg(self, account, subject, reply, hdr, msg, queues):
        if hdr and not self.headers:
            msg = msg[hdr:]
            hdr = 0
        self.send_msg(account, subject, reply, hdr, msg, queues)

    def op_pong(self):
        super().op_pong()
        if self.outbound is not None:
            self.manager.rtt_changed()



__all__ = ["GatewayLink"]


def _before_connect(link, *args):
    link.close(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
