"""A raw protocol client for tests: send bytes, expect a pattern, expect nothing."""

import json
import re
import socket
import time


def wait_for(predicate, timeout=5.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns a truthy value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


class RawClient:
    """A socket to a server. ``info`` is the parsed first INFO."""

    def __init__(self, host, port, timeout=5.0, read_info=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        self.info = None
        if read_info:
            line = self.expect(rb"^INFO (\{.*\}) ?\r\n")
            self.info = json.loads(line.group(1))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def expect(self, pattern, timeout=None):
        """Wait until the buffered input matches ``pattern`` (at its start, with
        re.DOTALL); consume through the match and return it."""
        regex = re.compile(pattern, re.DOTALL)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            match = regex.match(self.buf)
            if match:
                self.buf = self.buf[match.end():]
                return match
            if self.closed or not self._fill(deadline):
                raise AssertionError("expected %r, got %r%s" % (
                    pattern, self.buf[:500], " (closed)" if self.closed else ""))

    def expect_nothing(self, timeout=0.3):
        """Nothing arrives for ``timeout`` seconds (and the connection stays open)."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        assert not self.buf, "expected nothing, got %r" % self.buf[:500]
        assert not self.closed, "connection closed"

    def read_all(self, timeout=0.5):
        """Everything that arrives within ``timeout`` or until the server closes."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def expect_closed(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            if not self._fill(deadline) and not self.closed:
                raise AssertionError("connection still open; buffered %r" % self.buf[:500])
        return self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_for_mesh(servers, timeout=20.0):
    """Wait until a message published on any server reaches a subscriber on
    every other one (interest has propagated across the whole cluster)."""
    subs = []
    try:
        for i, server in enumerate(servers):
            client = RawClient("127.0.0.1", server.port)
            client.send(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _mesh.%d 1\r\n'
                        b"PING\r\n" % i)
            client.expect(rb"PONG\r\n")
            subs.append(client)
        pubs = [RawClient("127.0.0.1", s.port) for s in servers]
        for pub in pubs:
            pub.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        deadline = time.monotonic() + timeout
        for i, sub in enumerate(subs):
            for j, pub in enumerate(pubs):
                if i == j:
                    continue
                while True:
                    pub.send(b"PUB _mesh.%d 1\r\nx\r\n" % i)
                    try:
                        sub.expect(rb"(INFO [^\r]*\r\n|PING\r\n)*MSG _mesh.%d 1 1\r\nx\r\n" % i,
                                   timeout=0.2)
                        break
                    except AssertionError:
                        if time.monotonic() > deadline:
                            raise AssertionError("no route from server %d to server %d" % (j, i))
                sub.read_all(timeout=0.05)
        for client in pubs:
            client.close()
    finally:
        for client in subs:
            client.close()
