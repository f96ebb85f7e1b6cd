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
        self.transports = {}  # URL scheme -> dial(url, timeout, tls_config) (ws, wss)
        self._client_kinds = ()  # their kinds (forward_run)
        # Prefixes a kind takes over on every link (claim()): (prefix, handler)
        self.subject_claims = ()
        self.reply_claims = ()
        # JetStream deliveries arrive as <deliver subject> <ack reply>@<stored subject>
        from .jsdeliver import ACK_PREFIX, claimed_reply, claimed_run
        self.claim(ACK_PREFIX, replies=claimed_reply)
        # ... and a read's run of them for one internal subscriber at once
        self.reply_run_claim = claimed_run

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
        self._client_kinds = tuple(k for k in self.kinds.values() if k.forwarder is not None
                                   and CLIENT_ORIGIN in k.forward_from)
        self.server._interest_links = True
        if self.client_forwarders:
            self.server.refresh_publish_observers()

    def claim(self, prefix, subjects=None, replies=None):
        """Let a kind take over messages arriving on any link (of any kind)
        whose subject, or reply, starts with ``prefix`` (bytes): gateways
        route ``_GR_.`` replies home and hide the prefix from clients.

        ``subjects(link, account, subject, reply, hdr, msg)`` gets a message
        on such a subject instead of delivery (checked before matching for
        single messages, and when nothing matched for the bulk paths, which
        keep their speed). ``replies(link, account, subject, reply, hdr, msg,
        queues)`` gets a message with such a reply and returns True if it
        delivered it. Register in ``nats_configure``: links read the claims
        when they are made."""
        if subjects is not None:
            self.subject_claims += ((prefix, subjects),)
        if replies is not None:
            self.reply_claims += ((prefix, replies),)

    def claimed_subject(self, link, account, subject, reply, hdr, msg):
        """True if a claim took the message (see :meth:`claim`)."""
        for prefix, handler in self.subject_claims:
            if subject.startswith(prefix):
                handler(link, account, subject, reply, hdr, msg)
                return True
        return False

    def claimed_reply(self, link, account, subject, reply, hdr, msg, queues):
        for prefix, handler in self.reply_claims:
            if reply.startswith(prefix):
                return handler(link, account, subject, reply, hdr, msg, queues)
        return False

    def has_interest(self, account, subject):
        """Whether anyone, here or beyond a link, would get a message on
        ``subject`` in ``account``: the index (local and link interest), then
        the kinds that keep their peers' interest to themselves."""
        if account.sublist.has_interest(subject):
            return True
        name = account.name
        return any(k.interest(name, subject) for k in self.kinds.values()
                   if k.interest is not None)

    def forwarders_for(self, origin):
        """The forwarders a message from ``origin`` goes through after local delivery."""
        got = self._forwarders.get(origin)
        if got is None:
            got = self._forwarders[origin] = tuple(
                k.forwarder for k in self.kinds.values()
                if k.forwarder is not None and origin in k.forward_from)
        return got

    def forward(self, publisher, account, subject, reply, hdr, msg, result):
        """Run the forwarders for a message ``publisher`` (a client) published.
        True if one of them sent it somewhere (a request that crossed a
        gateway must not get a no-responders answer here)."""
        sent = False
        for forward in self.client_forwarders:
            if forward(publisher, account, subject, reply, hdr, msg, result):
                sent = True
        return sent

    def forward_run(self, publisher, account, items):
        """:meth:`forward` for a run of header-less messages in publish order,
        ``items`` being ``((subject, reply, payloads), match result)``: a kind's
        ``run_forwarder`` takes them at once, else its forwarder one by one."""
        for kind in self._client_kinds:
            _kind_run(kind, publisher, account, items)

    def forward_lane(self, publisher, account, items, subjects, results):
        """``forward_run`` for a run without replies given as columns (a
        client's ``_pub_lane``): a kind's ``lane_forwarder`` takes them as
        they are. Returns (messages, payload bytes) of ``items`` if a kind
        counted them, else None."""
        counted = None
        for kind in self._client_kinds:
            if kind.lane_forwarder is not None:
                counted = kind.lane_forwarder(publisher, account, items, subjects,
                                              results) or counted
            else:
                _kind_run(kind, publisher, account, list(zip(items, results, strict=True)))
        return counted

    # -- transports -------------------------------------------------------------------

    def register_transport(self, scheme, dial):
        """Let links dial ``scheme://`` URLs over something other than plain
        TCP (the websocket plugin registers ``ws`` and ``wss``).
        ``dial(url, timeout, tls_config, **options)`` returns a connected
        socket-like object; a transport that needs TLS does it underneath
        itself. ``options`` are the Solicitor's ``transport_options``."""
        self.transports[scheme] = dial

    def transport_for(self, url):
        """The registered dial function for ``url``'s scheme, or None (TCP)."""
        scheme, sep, _ = url.partition("://")
        return self.transports.get(scheme.lower()) if sep else None

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
        self.server.hook.nats_link_up(link=link)

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
        self.count_interest(sub.conn, account.name, sub.subject, sub.queue, delta)

    def count_interest(self, origin_conn, name, subject, queue, delta):
        """Count interest of ``origin_conn``'s origin in account ``name`` and
        re-advertise it where the propagation table allows. Also called for
        interest that is not in the account's sublist: what a gateway peer
        told our outbound (a hub offers it to its leafs)."""
        origin = origin_conn.origin
        key = (name, subject, queue)
        ledger = self.ledger
        ledger.change(key, origin, delta)
        for link in self.links:
            if origin in link.interest_from and link is not origin_conn and link.carries(name):
                link.advertise(name, subject, queue, ledger.weight_for(link, key))

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


def _kind_run(kind, publisher, account, items):
    """A run (``forward_run``'s items) handed to one kind's forwarder."""
    if kind.run_forwarder is not None:
        kind.run_forwarder(publisher, account, items)
        return
    for (subject, reply, payloads), result in items:
        for payload in payloads:
            kind.forwarder(publisher, account, subject, reply, 0, payload, result)
