"""Accepting and dialling leaf links: the listener, and one solicitor per
remote that keeps its link up (reconnect interval with jitter, the peer's
requested delay after a loop or a refusal, failover over the remote's URLs
and the hub cluster's ``leafnode_urls``)."""

import random
import socket
import time
from urllib.parse import urlsplit

import gevent
import gevent.server
import gevent.socket

from .connection import LeafConnection


class Transport:
    def __init__(self, server, manager):
        self.server = server
        self.manager = manager
        self.listener = None
        self.stopping = False

    def listen(self, host, port):
        self.listener = gevent.server.StreamServer((host, max(port, 0)), self._accept,
                                                   spawn=self.server._client_pool)
        self.listener.init_socket()
        self.listener.start()
        return self.listener.address[1]

    def stop(self):
        self.stopping = True
        if self.listener is not None:
            self.listener.close()

    def _accept(self, sock, addr):
        if self.stopping:
            sock.close()
            return
        self._run(LeafConnection(self.server, sock, addr, self.manager))

    def _run(self, conn):
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.register(conn)
        conn.run()

    def _urls(self, remote):
        urls = list(remote.urls)
        for url in self.manager.discovered_urls.get(id(remote), ()):
            full = _with_userinfo(url, remote.urls[0])
            if full not in urls and not any(_hostport(u) == url for u in urls):
                urls.append(full)
        if not remote.no_randomize:
            random.shuffle(urls)
        return urls

    def solicit(self, remote):
        reconnect = self.manager.config.reconnect
        while not self.stopping:
            for url in self._urls(remote):
                if self.stopping:
                    return
                conn = self._dial(remote, url)
                if conn is None:
                    continue
                started = time.monotonic()
                self._run(conn)  # returns when the link closes
                if conn.retry_after:
                    conn.log.info("leafnode_reconnect_delayed", seconds=conn.retry_after)
                    gevent.sleep(conn.retry_after)
                elif time.monotonic() - started < reconnect:
                    gevent.sleep(reconnect * random.random())
                break
            else:
                # nothing answered: the reconnect interval plus up to as much in jitter
                gevent.sleep(reconnect * (1 + random.random()))

    def _dial(self, remote, url):
        parts = urlsplit(url if "://" in url else "nats-leaf://" + url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 7422
        timeout = remote.dial_timeout or self.manager.config.dial_timeout or 1.0
        try:
            sock = gevent.socket.create_connection((host, port), timeout=timeout)
            sock.settimeout(None)
        except OSError:
            return None
        return LeafConnection(self.server, sock, (host, port), self.manager, solicited=True,
                              remote=remote, url=url)


def _hostport(url):
    parts = urlsplit(url if "://" in url else "nats-leaf://" + url)
    return "%s:%d" % (parts.hostname, parts.port or 7422)


def _with_userinfo(hostport, template):
    """A discovered ``host:port`` with the configured URL's scheme and userinfo
    (nats-server reuses them for discovered URLs)."""
    parts = urlsplit(template if "://" in template else "nats-leaf://" + template)
    userinfo = parts.netloc.rpartition("@")[0]
    return "%s://%s%s" % (parts.scheme, userinfo + "@" if userinfo else "", hostport)
