"""The link layer of one server (``server.links``): the registered kinds, the
links that are up, interest propagation per origin, forwarders, stop and lame duck.

The server calls :meth:`LinkLayer.interest_changed` on every subscription
change once any kind is registered (a direct call, no hook), and
:meth:`LinkLayer.stop` when it stops or enters lame duck mode.
"""

import gevent.server
import structlog

from .interest import InterestLedger


class LinkLayer:
    def __init__(self, server):
        self.server = server
        self.log = structlog.get_logger("pluggy_nats.links")
        self.kinds = {}  # name -> LinkKind
        self.links = []  # registered links of every kind (handshake done)
        self.ledger = InterestLedger()
        self.listeners = []
        self.solicitors = []
        self.stopping = False
        self._forwarders = {}  # origin class -> tuple of forwarders its messages take
        self.client_forwarders = ()  # forwarders for messages clients publish

    # -- kinds ------------------------------------------------------------------

    def register_kind(self, kind):
        """Register a :class:`~pluggy_nats.links.kinds.LinkKind` (in the
        plugin's ``nats_configure``). Its links propagate interest, take
        messages and run its forwarder from then on."""
        from .kinds import CLIENT_ORIGIN

        if kind.name in self.kinds:
            raise ValueError("link kind %r registered twice" % kind.name)
        if kind.forwarder is None and CLIENT_ORIGIN not in kind.messages_from:
            # deliver() hands clients' messages to every link with matching
            # interest in the index: a kind that must not get them keeps its
            # peers' interest out of the index and sends through a forwarder.
            raise ValueError("link kind %r must take clients' messages" % kind.name)
        self.kinds[kind.name] = kind
        self._forwarders = {}
        self.client_forwarders = self.forwarders_for(CLIENT_ORIGIN)
        self.server._interest_links = True
        if self.client_forwarders:
            self.server.refresh_publish_observers()

    def forwarders_for(self, origin):
        """The forwarders a message from ``origin`` goes through after local delivery."""
        got = self._forwarders.get(origin)
        if got is None:
            got = self._forwarders[origin] = tuple(
                k.forwarder for k in self.kinds.values()
                if k.forwarder is not None and origin in k.forward_from)
        return got

    def forward(self, publisher, account, subject, reply, hdr, msg, result):
        """Run the forwarders for a message ``publisher`` (a client) published."""
        for forward in self.client_forwarders:
            forward(publisher, account, subject, reply, hdr, msg, result)

    # -- listening ------------------------------------------------------------------

    def listen(self, host, port, handle, name, factory=None):
        """Accept connections on (host, port) (port 0: a free one) with
        ``handle(sock, addr)`` in the server's connection pool; closed when the
        server stops (lame duck keeps it). Returns the bound listener
        (``.address[1]`` is the port). ``factory(address, handle, spawn)``
        builds another gevent server class (the monitor's WSGIServer)."""
        address = (host, max(port, 0))
        if factory is not None:
            listener = factory(address, handle, spawn=self.server._client_pool)
        else:
            listener = gevent.server.StreamServer(address, self._guard(handle),
                                                  spawn=self.server._client_pool)
        listener.init_socket()
        listener.start()
        self.listeners.append(listener)
        self.log.debug("link_listener", name=name, host=host, port=listener.address[1])
        return listener

    def _guard(self, handle):
        def accept(sock, addr):
            if self.stopping:
                sock.close()
                return
            handle(sock, addr)
        return accept

    def solicit(self, solicitor):
        """Run a :class:`~pluggy_nats.links.dial.Solicitor` until it ends or the server stops."""
        self.solicitors.append(solicitor)

        def run():
            try:
                solicitor.run()
            finally:
                if solicitor in self.solicitors:
                    self.solicitors.remove(solicitor)
        return self.server.spawn(run)

    # -- links up and down ------------------------------------------------------------

    def link_up(self, link):
        """``link`` passed its handshake and the kind's duplicate rule: interest
        flows both ways from now on, starting with everything it is offered."""
        link.registered = True
        if link not in self.links:
            self.links.append(link)
        self.send_initial_interest(link)

    def link_down(self, link):
        if link in self.links:
            self.links.remove(link)

    def links_of(self, name):
        return [link for link in self.links if link.link_kind.name == name]

    def send_initial_interest(self, link, accounts=None):
        """Advertise to ``link`` all the interest it is offered (for
        ``accounts`` only, if given)."""
        ledger = self.ledger
        for key in ledger.keys():
            acc = key[0]
            if (accounts is None or acc in accounts) and link.carries(acc):
                link.advertise(acc, key[1], key[2], ledger.weight_for(link, key))

    def resend_info(self, name):
        """Send a fresh INFO on every link of kind ``name`` (a plugin changed
        what ``nats_link_info`` adds, e.g. a gateway URL on routes)."""
        for link in self.links_of(name):
            link.send_info()
        self.server.flush_touched()

    # -- interest -----------------------------------------------------------------------

    def interest_changed(self, account, sub, delta):
        """A subscription of any origin came or went: count it, and tell every
        link whose propagation row takes that origin what it now advertises."""
        origin_conn = sub.conn
        origin = origin_conn.origin
        key = (account.name, sub.subject, sub.queue)
        ledger = self.ledger
        ledger.change(key, origin, delta)
        name = account.name
        for link in self.links:
            if origin in link.interest_from and link is not origin_conn and link.carries(name):
                link.advertise(name, sub.subject, sub.queue, ledger.weight_for(link, key))

    # -- stop ------------------------------------------------------------------------------

    def stop(self, lame_duck):
        """Lame duck: tell every peer (INFO ``ldm``), keep the links. Stop:
        close the listeners, end the solicitors, close every link."""
        from ..connection import ClosedReason

        if lame_duck:
            for link in list(self.links):
                link.lame_duck()
            self.server.flush_touched()
            return
        self.stopping = True
        for listener in self.listeners:
            if not listener.closed:  # a plugin may have stopped its own already
                listener.close()
        for solicitor in list(self.solicitors):
            solicitor.stop()
        for conn in list(self.server.conns.values()):
            if conn.is_link:
                conn.close(ClosedReason.SERVER_SHUTDOWN)
