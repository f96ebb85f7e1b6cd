"""A blocking NATS client for the command line: scatter ``$SYS`` requests and
collect the answers (``pluggy-nats topology`` / ``explain``). The user in the
URL must belong to the system account, as for ``nats server`` tooling."""

import os
import socket
import time

from pluggy_nats_plugins.bench.proto import CRLF, MAX_LINE, ProtocolError, dial

from . import gather


class SysClient:
    def __init__(self, url, timeout=5.0):
        self.sock, self.info = dial(url, timeout=timeout, name="pluggy-nats-topology")
        self.buf = b""
        self.prefix = "_INBOX.cli.%s" % os.urandom(8).hex()
        self.seq = 0
        self.sock.sendall(b"SUB %s.> 1\r\nPING\r\n" % self.prefix.encode())
        deadline = time.monotonic() + timeout
        while self._next(deadline) != "PONG":  # the SUB is in place
            pass

    @property
    def server_id(self):
        return self.info.get("server_id", "")

    def close(self):
        self.sock.close()

    # -- the wire ------------------------------------------------------------------------

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError from None
        if not chunk:
            raise ProtocolError("connection closed by the server")
        self.buf += chunk

    def _next(self, deadline):
        """The next event: "PONG", or (subject, payload) of a message."""
        while True:
            while CRLF not in self.buf:
                if len(self.buf) > MAX_LINE:
                    raise ProtocolError("control line too long")
                self._fill(deadline)
            line, _, rest = self.buf.partition(CRLF)
            if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                parts = line.split()
                size = int(parts[-1])
                while len(rest) < size + 2:
                    self._fill(deadline)
                    line, _, rest = self.buf.partition(CRLF)
                hdr = int(parts[-2]) if line.startswith(b"HMSG ") else 0
                payload = rest[hdr:size]
                self.buf = rest[size + 2:]
                return parts[1].decode(errors="replace"), payload
            self.buf = rest
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"PONG"):
                return "PONG"
            elif line.startswith(b"-ERR"):
                raise ProtocolError("server: %s" % line[5:].decode(errors="replace"))

    def publish(self, subject, reply, payload):
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(),
                                                      len(payload), payload))

    def receive(self, seconds):
        """(last reply token, payload) of the next answer, or None."""
        try:
            event = self._next(time.monotonic() + seconds)
        except TimeoutError:
            return None
        if event == "PONG":
            return None
        return event[0].rsplit(".", 1)[-1], event[1]

    # -- requests ------------------------------------------------------------------------

    def gather(self, gathering, timeout):
        self.seq += 1
        gather.run(gathering, self.publish, self.receive, timeout,
                   reply_prefix="%s.%d" % (self.prefix, self.seq))
        if not any(gathering.answers.values()):
            return ["no server answered within %.1fs: is the user in the URL one of the "
                    "system account's?" % timeout]
        return []

    def request(self, subject, payload, timeout):
        """One answer's payload to a request, or None after ``timeout``."""
        self.seq += 1
        reply = "%s.%d.R" % (self.prefix, self.seq)
        self.publish(subject, reply, payload)
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._next(deadline)
            except TimeoutError:
                return None
            if event != "PONG" and event[0] == reply:
                return event[1]
