"""A toy link kind built on the link layer alone: a one-way "tap".

``pluggy-nats serve --plugin tap_plugin --tap-listen 127.0.0.1:0`` lets other
servers tap it; ``--tap-from nats-tap://host:port`` taps one. The tapping
server tells the tapped one its local interest (``T+``/``T-``); the tapped one
sends what matches over the link (``TMSG``/``THMSG``, the layer's framing).
Nothing flows the other way: the tapped side is offered no interest and the
tapping side is given no messages. The tapped server reports its tap port in
the log (``tap_listening port=N``) and in INFO (``tap_port``).
"""

from pluggy_nats import hookimpl
from pluggy_nats.connection import ROUTE, ClosedReason
from pluggy_nats.links import (
    CLIENT_ORIGIN,
    KEEP_EXISTING,
    Framing,
    Link,
    LinkKind,
    PeerTable,
    Solicitor,
    run_link,
)
from pluggy_nats.protocol.parser import LINE

NOTHING = frozenset()


class TapLink(Link):
    def __init__(self, server, sock, addr, manager, solicited=False, url=None):
        super().__init__(server, sock, addr, manager, solicited, url)
        if solicited:  # the tapping side: tells its local interest, takes nothing
            self.interest_from = frozenset({CLIENT_ORIGIN})
            self.messages_from = frozenset({CLIENT_ORIGIN})  # (it holds no interest)
        else:  # the tapped side: tells nothing, sends what the tap wants
            self.interest_from = NOTHING

    def info_dict(self):
        return {"server_id": self.server.server_id, "server_name": self.server.server_name,
                "tap": True}

    def handshake_info(self, info):
        self.remote_id = info.get("server_id")
        if not info.get("tap") or not self.remote_id:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.manager.peers.claim(self, "tap", info) is not None:
            self.server.links.link_up(self)

    def send_sub(self, account_name, subject, queue, weight):
        q = b" %s %d" % (queue, weight) if queue else b""
        self.send(b"T+ %s %s%s\r\n" % (account_name.encode(), subject, q))

    def send_unsub(self, account_name, subject, queue):
        q = b" " + queue if queue else b""
        self.send(b"T- %s %s%s\r\n" % (account_name.encode(), subject, q))

    def op_t_plus(self, args):
        if self.solicited or len(args) not in (2, 4):  # interest only flows to the tapped side
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        account = self.server.accounts.get_or_create(args[0].decode(errors="replace"))
        weight = int(args[3]) if len(args) == 4 and args[3].isdigit() else 1
        self.on_remote_sub(account, args[1], args[2] if len(args) == 4 else None, weight)

    def op_t_minus(self, args):
        if len(args) not in (2, 3):
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        account = self.server.accounts.get_or_create(args[0].decode(errors="replace"))
        self.on_remote_unsub(account, args[1], args[2] if len(args) == 3 else None)


TAP_KIND = LinkKind(
    name="tap", kind=ROUTE, origin="tap",
    interest_from=frozenset({CLIENT_ORIGIN}), messages_from=frozenset({CLIENT_ORIGIN}),
    framing=Framing(msg=b"TMSG", hmsg=b"THMSG", account=True),
    ops={b"T+": (LINE, TapLink.op_t_plus), b"T-": (LINE, TapLink.op_t_minus)},
)
TapLink.bind_kind(TAP_KIND)


class TapManager:
    def __init__(self, server, listen, taps):
        self.server = server
        self.listen_at = listen
        self.taps = taps
        self.peers = PeerTable(server.server_id, KEEP_EXISTING)
        self.port = None
        server.links.register_kind(TAP_KIND)

    @hookimpl
    def nats_server_start(self, server):
        if self.listen_at:
            host, _, port = self.listen_at.rpartition(":")
            listener = server.listen(host or "127.0.0.1", int(port), self._accept, "tap")
            self.port = listener.address[1]
            server.extra_info["tap_port"] = self.port
            server.log.info("tap_listening", port=self.port)
        for url in self.taps:
            server.links.solicit(Solicitor(server, url, self._connect, scheme="nats-tap"))

    def _accept(self, sock, addr):
        run_link(self.server, TapLink(self.server, sock, addr, self))

    def _connect(self, sock, addr):
        return TapLink(self.server, sock, addr, self, solicited=True)

    def link_closed(self, link, reason):
        self.peers.release(link)


@hookimpl
def nats_addoption(parser):
    group = parser.add_argument_group("tap (test link kind)")
    group.add_argument("--tap-listen", metavar="HOST:PORT", help="accept taps here")
    group.add_argument("--tap-from", metavar="URL", action="append", help="tap this server")


@hookimpl
def nats_configure(config, server):
    args = config.args
    listen = getattr(args, "tap_listen", None) if args is not None else None
    taps = (getattr(args, "tap_from", None) or []) if args is not None else []
    if listen or taps:
        server.pluginmanager.register(TapManager(server, listen, taps), "tap-manager")
