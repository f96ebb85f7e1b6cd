"""Account connections counted across the cluster (nats-server events.go
``sendAccConnsUpdate`` / ``remoteConnsUpdate`` and accounts.go
``updateRemoteServer``).

Each server tells the others how many clients each account (not ``$G``) has
on it, on ``$SYS.SERVER.ACCOUNT.<acc>.CONNS`` and ``$SYS.ACCOUNT.<acc>.SERVER.CONNS``,
whenever the number changes and every 30 s while it is not zero. What the others
report is kept in ``Account.remote_conns`` (server id -> connections), which the
core adds to the local count when it checks an account's ``max_connections``.
When a report puts an account over its limit, the newest local clients are
closed (``maximum account active connections exceeded``), as nats-server does
("better to be conservative and a bit harsh"). A server's SHUTDOWN event
drops its counts. When an account gets its first local client here, the
others are asked for their counts (``$SYS.REQ.ACCOUNT.<acc>.CONNS``, answered
to ``$SYS._INBOX_.<server id>``; nats-server enableAccountTracking), since
what they reported before it was loaded here was dropped.
"""

import itertools
import json

import gevent

from pluggy_nats.accounts import GLOBAL_ACCOUNT
from pluggy_nats.connection import CLIENT, ClosedReason
from pluggy_nats.protocol import encode
from pluggy_nats.protocol import errors as E

HB_INTERVAL = 30.0  # nats-server eventsHBInterval
EVENT_TYPE = "io.nats.server.advisory.v1.account_connections"
SUBJECTS = ("$SYS.SERVER.ACCOUNT.%s.CONNS", "$SYS.ACCOUNT.%s.SERVER.CONNS")


class AccountConns:
    """Publishes this server's counts and applies the others' (one per
    system service, created once the system account's client exists)."""

    def __init__(self, server, client, server_info, now):
        self.server = server
        self.client = client
        self.server_info = server_info  # () -> the "server" object of events
        self.now = now
        self.ids = itertools.count(1)
        self.tracked = set()  # accounts whose counts were asked for
        self.inbox = "$SYS._INBOX_.%s" % server.server_id
        client.subscribe(SUBJECTS[0] % "*", self._on_remote)
        client.subscribe(self.inbox, self._on_remote)
        client.subscribe("$SYS.REQ.ACCOUNT.*.CONNS", self._on_request)
        client.subscribe("$SYS.SERVER.*.SHUTDOWN", self._on_shutdown)
        server.spawn(self._heartbeat)

    def changed(self, account):
        """A client of ``account`` connected or left: tell the others."""
        if account is None or account.name == GLOBAL_ACCOUNT:
            return
        if account.name not in self.tracked:
            self.tracked.add(account.name)
            request = {"server": self.server_info(), "acc": account.name}
            self.client.publish("$SYS.REQ.ACCOUNT.%s.CONNS" % account.name,
                                json.dumps(request).encode(), reply=self.inbox)
        self._send(account, SUBJECTS)

    def _send(self, account, subjects):
        event = {"type": EVENT_TYPE, "id": "%s-%d" % (self.server.server_id, next(self.ids)),
                 "timestamp": self.now(), "server": self.server_info(),
                 "acc": account.name, "name": account.name}
        conns = sum(1 for c in list(account.clients) if c.kind == CLIENT and not c.closed)
        leafs = sum(1 for link in self.server.links.links_of("leaf")
                    if link.bound_account is account and not link.closed)
        event.update({"conns": conns, "leafnodes": leafs, "total_conns": conns + leafs,
                      "num_subscriptions": account.sublist.count(),
                      "sent": {"msgs": 0, "bytes": 0}, "received": {"msgs": 0, "bytes": 0},
                      "slow_consumers": 0})
        payload = json.dumps(event).encode()
        for subject in subjects:
            self.client.publish(subject.replace("%s", account.name), payload)

    def _on_request(self, sub, subject, reply, headers, payload):
        """Another server asks for this server's count of an account (only
        answered when there are local clients, as nats-server connsRequest)."""
        name = subject.split(b".")[3].decode(errors="replace")
        account = self.server.accounts.get(name)
        if reply and account is not None and any(
                c.kind == CLIENT and not c.closed for c in list(account.clients)):
            self._send(account, (reply.decode() if isinstance(reply, bytes) else reply,))

    def _heartbeat(self):
        while True:
            gevent.sleep(HB_INTERVAL)
            for account in self.server.accounts:
                if account.clients and account.name != GLOBAL_ACCOUNT:
                    self.changed(account)

    def _on_remote(self, sub, subject, reply, headers, payload):
        try:
            msg = json.loads(bytes(payload))
            sid, name, conns = msg["server"]["id"], msg["acc"], int(msg.get("conns", 0))
        except (ValueError, KeyError, TypeError):
            return
        account = self.server.accounts.get(name)  # never creates one
        if account is None or sid == self.server.server_id:
            return
        account.remote_conns[sid] = conns
        self._enforce(account)

    def _on_shutdown(self, sub, subject, reply, headers, payload):
        sid = subject.split(b".")[2].decode(errors="replace")
        for account in self.server.accounts:
            account.remote_conns.pop(sid, None)

    def _enforce(self, account):
        limit = account.limits.get("max_connections", -1)
        if limit is None or limit < 0:
            return
        local = [c for c in list(account.clients) if c.kind == CLIENT and not c.closed]
        over = len(local) + sum(account.remote_conns.values()) - limit
        if over <= 0:
            return
        local.sort(key=lambda c: c.start, reverse=True)  # the newest first
        for conn in local[:over]:
            conn.send(encode.err(E.MAX_ACCOUNT_CONNECTIONS))
            conn.close(ClosedReason.MAX_ACCOUNT_CONNECTIONS_EXCEEDED)
        self.server.flush_touched()


