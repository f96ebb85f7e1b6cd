"""One route connection: the route protocol's verbs on top of the shared
:class:`~pluggy_nats.links.Link` (docs/architecture.md, "The link layer").

Wire format (PROTOCOL.md 1.2, checked against nats-server 2.15.1 on the wire):
``RS+ <acc> <subj> [<queue> <weight>]``, ``RS- <acc> <subj> [queue]``,
``RMSG <acc> <subj> [reply | + reply q... | \\| q...] <size>`` and ``HMSG`` with
``<hdr> <size>``. On a route pinned to one account (``route_account`` in INFO)
the account token is left out. Messages in and out (single, batch, run) are the
layer's; this module adds the handshake fields, the interest verbs and the
route forms of the leaf verbs.
"""

from pluggy_nats.connection import ROUTE, ClosedReason
from pluggy_nats.links import Framing, Link, LinkKind
from pluggy_nats.protocol.parser import HPAYLOAD, LINE


class RouteConnection(Link):
    def __init__(self, server, sock, addr, manager, solicited=False, pool_idx=0,
                 pinned=None, url=None):
        super().__init__(server, sock, addr, manager, solicited, url)
        self.pool_idx = pool_idx
        self.bind_account(pinned)

    @property
    def pinned(self):
        """The Account this route is dedicated to, or None (pooled)."""
        return self.bound_account

    # -- handshake ------------------------------------------------------------

    def info_dict(self):
        info = self.manager.route_info()
        if self.solicited:
            if self.pinned is not None:
                info["route_account"] = self.pinned.name
            elif self.pool_idx:
                info["route_pool_idx"] = self.pool_idx
        return info

    def connect_dict(self):
        return self.manager.route_connect()

    def accept_connect(self, opts):
        return self.manager.accept_connect(self, opts)

    def handshake_info(self, info):
        if not self.solicited:
            self.pool_idx = info.get("route_pool_idx", 0) or 0
            account = info.get("route_account")
            if account:
                self.bind_account(self.server.accounts.get_or_create(account))
        self.manager.register_route(self, info)

    def info_update(self, info):
        self.manager.route_info_update(self, info)

    def lame_duck(self):
        # One INFO per peer, on the connection of the global account.
        if self.registered and self.manager.carrier(self, "$G"):
            self.send_info({"ldm": True})

    def carries(self, account_name):
        return self.manager.carrier(self, account_name)

    # -- interest ---------------------------------------------------------------

    def op_rs_plus(self, args):
        account, rest = self._account_and_args(args)
        if account is None or len(rest) not in (1, 3):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not self.registered:
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

    def op_lmsg(self, args, hdr, msg):
        # LMSG <origin> ...: a message that entered the peer's cluster from a leaf.
        self._inbound(args[1:], hdr, msg)


ROUTE_KIND = LinkKind(
    name="route",
    kind=ROUTE,
    framing=Framing(msg=b"RMSG", hmsg=b"HMSG", account=True),
    ops={
        b"RS+": (LINE, RouteConnection.op_rs_plus),
        b"RS-": (LINE, RouteConnection.op_rs_minus),
        b"LS+": (LINE, RouteConnection.op_ls_plus),
        b"LS-": (LINE, RouteConnection.op_ls_minus),
        b"LMSG": (HPAYLOAD, RouteConnection.op_lmsg),
    },
)

RouteConnection.bind_kind(ROUTE_KIND)
ROUTE_OPS = RouteConnection.OPS  # the op table bind_kind built (tests swap it per connection)
