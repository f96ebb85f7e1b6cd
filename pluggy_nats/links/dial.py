"""Accepting and soliciting links: one listener helper, one dialling loop.

:func:`use_tls` sets a link up for TLS (first, before any INFO, as routes and
gateways do on the wire, or after the INFO); :func:`run_link` registers a
connection with the server and runs its reader until it closes.

:class:`Solicitor` keeps one outbound link up: dial, back off with jitter on
failure, reconnect when the link drops, stop on a retry budget or a condition
the kind gives (the peer was found through another link, the server stops).
"""

import random
import socket
import time
from urllib.parse import urlsplit

import gevent
import gevent.socket

RECONNECT_MIN = 0.05
RECONNECT_MAX = 2.0
DIAL_TIMEOUT = 2.0


def use_tls(conn, tls_config, server_side, first=True, hostname=None):
    """Run TLS (``pluggy_nats.tls.TLSConfig``) on ``conn``: ``first`` before
    any protocol byte (routes, gateways: nats-server 2.15.1 on the wire)."""
    if tls_config is not None:
        conn.tls_config = tls_config
        conn.tls_first = first
        conn.tls_server_side = server_side
        conn.tls_hostname = hostname


def run_link(server, conn):
    """Register ``conn`` with the server and run its reader (returns at close)."""
    try:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    server.register(conn)
    conn.run()


def host_port(url, scheme, default_port):
    """(host, port, username, password) of ``url`` (``host:port`` too)."""
    parts = urlsplit(url if "://" in url else scheme + "://" + url)
    return (parts.hostname or "127.0.0.1", parts.port or default_port,
            parts.username, parts.password)


class Solicitor:
    """Keep a link to ``url`` up. ``connect(sock, addr)`` makes the link
    (a Link, solicited), set up and not yet run; ``retries`` is the number of
    failed dials tolerated in a row (None: forever). ``should_dial()`` is asked
    before every attempt: False pauses (the peer is linked another way), and
    ``finished()`` True ends the loop. ``after(link)`` is told how each link
    ended and returns True to stop (a duplicate the kind will not redial), or
    a number of seconds to wait before the next dial (the peer asked for a
    delay: a leaf loop waits 30 s). ``next_url()``, when given, names the URL
    of each attempt (failover over a peer cluster's URLs); else ``url`` always.
    ``on_dial_failed(failures)`` is called after the wait that follows each
    failed dial, before the next one (nats-server's reconnect timer firing),
    ``on_dialled()`` when a dial succeeds, before the link runs."""

    def __init__(self, server, url, connect, *, scheme="nats", default_port=4222,
                 retries=None, backoff_min=RECONNECT_MIN, backoff_max=RECONNECT_MAX,
                 jitter=0.2, dial_timeout=DIAL_TIMEOUT, should_dial=None, finished=None,
                 after=None, on_give_up=None, idle_wait=0.5, next_url=None, label=None,
                 transport_tls=None, transport_options=None, on_dial_failed=None,
                 on_dialled=None):
        self.server = server
        # "route", "gateway", "leafnode": failed dials are logged as nats-server
        # logs them ("Error trying to connect to route ..."), at error level as
        # often as connect_error_reports / reconnect_error_reports say
        self.label = label
        self.dialled = False  # has a dial ever succeeded
        self.url = url
        self.scheme = scheme
        self.default_port = default_port
        self.next_url = next_url
        self.connect = connect
        # TLS a registered transport runs underneath (wss://), not the link itself
        self.transport_tls = transport_tls
        self.transport_options = transport_options or {}  # e.g. no_masking for ws
        self.host, self.port, self.username, self.password = host_port(url, scheme, default_port)
        self.retries = retries
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.jitter = jitter
        self.dial_timeout = dial_timeout
        self.should_dial = should_dial
        self.finished = finished
        self.after = after
        self.on_give_up = on_give_up
        self.on_dial_failed = on_dial_failed
        self.on_dialled = on_dialled
        self.idle_wait = idle_wait
        self.stopped = False
        self.link = None  # the current link, while one is up

    def _report(self, attempts, exc):
        if self.label is None:
            return
        log = self.server.links.log
        report = log.error if self.server.should_report_connect_error(
            not self.dialled, attempts) else log.debug
        report("Error trying to connect to %s (attempt %d): %s" % (self.label, attempts, exc))

    def stop(self):
        self.stopped = True

    def _sleep(self, delay):
        gevent.sleep(delay * (1 + random.random() * self.jitter))

    def run(self):
        """The loop (run it with ``server.spawn(solicitor.run)``)."""
        delay = self.backoff_min
        failures = 0
        while not self.stopped and not self.server.links.stopping:
            if self.finished is not None and self.finished():
                return
            if self.should_dial is not None and not self.should_dial():
                gevent.sleep(self.idle_wait)
                continue
            if self.next_url is not None:
                self.url = self.next_url()
                self.host, self.port, self.username, self.password = host_port(
                    self.url, self.scheme, self.default_port)
            try:
                transport = self.server.links.transport_for(self.url)
                if transport is not None:
                    sock = transport(self.url, self.dial_timeout, self.transport_tls,
                                     **self.transport_options)
                else:
                    sock = gevent.socket.create_connection((self.host, self.port),
                                                           timeout=self.dial_timeout)
                    sock.settimeout(None)
            except OSError as exc:
                failures += 1
                self._report(failures, exc)
                if self.retries is not None and failures > self.retries:
                    if self.on_give_up is not None:
                        self.on_give_up()
                    return
                self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                if self.on_dial_failed is not None:
                    self.on_dial_failed(failures)
                continue
            delay = self.backoff_min
            failures = 0
            self.dialled = True
            if self.on_dialled is not None:
                self.on_dialled()
            link = self.link = self.connect(sock, (self.host, self.port))
            started = time.monotonic()
            run_link(self.server, link)  # returns when the link closes
            self.link = None
            verdict = self.after(link) if self.after is not None else None
            if verdict is True:
                return
            if verdict:  # seconds the peer asked us to wait
                gevent.sleep(verdict)
                continue
            if time.monotonic() - started < self.backoff_min:
                self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
