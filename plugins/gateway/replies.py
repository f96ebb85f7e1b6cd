"""Replies across clusters, sans-IO (GATEWAY.md section 7): which replies to
map to ``_GR_.<cluster>.<server>.<reply>`` on the way out, and where a
responder's answer on the plain reply subject must go on the way back.

Time is passed in (seconds, monotonic), so both tables are testable without
sleeping. Both forget entries after :data:`RECENT_SUB_EXPIRATION`, as
nats-server does (``defaultGatewayRecentSubExpiration``).
"""

import collections

from pluggy_nats.sublist import Sublist

RECENT_SUB_EXPIRATION = 2.0


class _Recent:
    __slots__ = ("subject", "queue", "weight")

    def __init__(self, subject):
        self.subject = subject
        self.queue = None
        self.weight = 1


class RecentSubs:
    """Subscriptions made in the last two seconds, per account: a request
    whose reply matches one gets its reply mapped (Go
    ``shouldMapReplyForGatewaySend``), because the requester's interest may
    not have crossed the gateway yet, and the answer must reach the exact
    server the request came from."""

    def __init__(self, ttl=RECENT_SUB_EXPIRATION):
        self.ttl = ttl
        self.by_account = {}  # name -> Sublist of _Recent
        self.expiry = collections.deque()  # (deadline, account, _Recent)

    def added(self, account, subject, now):
        self.expire(now)  # bounded by the subscriptions of the last two seconds
        sublist = self.by_account.get(account)
        if sublist is None:
            sublist = self.by_account[account] = Sublist()
        entry = _Recent(subject)
        try:
            sublist.insert(entry)
        except ValueError:
            return
        self.expiry.append((now + self.ttl, account, entry))

    def expire(self, now):
        expiry = self.expiry
        while expiry and expiry[0][0] <= now:
            _deadline, account, entry = expiry.popleft()
            sublist = self.by_account.get(account)
            if sublist is not None:
                sublist.remove(entry)
                if not sublist.count():
                    del self.by_account[account]

    def should_map(self, account, reply, now):
        if not self.by_account:
            return False
        self.expire(now)
        sublist = self.by_account.get(account)
        return sublist is not None and sublist.has_interest(reply)


class ReplyMap:
    """Plain reply -> routed reply, per account, for requests that came over a
    gateway with a mapped reply (Go ``trackGWReply``): the responder answers
    on the plain subject and the answer is sent straight back to the origin
    cluster under the routed subject (``handleGWReplyMap``)."""

    def __init__(self, ttl=RECENT_SUB_EXPIRATION):
        self.ttl = ttl
        self.by_account = {}  # name -> {plain reply: (routed reply, deadline)}
        self.count = 0
        self.next_sweep = 0.0

    def track(self, account, plain, routed, now):
        if now >= self.next_sweep:  # at most one sweep per ttl: answered or not, entries go
            self.expire(now)
            self.next_sweep = now + self.ttl
        m = self.by_account.get(account)
        if m is None:
            m = self.by_account[account] = {}
        if plain not in m:
            self.count += 1
        m[plain] = (routed, now + self.ttl)

    def lookup(self, account, subject, now):
        """The routed subject for a publish on ``subject``, or None."""
        m = self.by_account.get(account)
        if not m:
            return None
        got = m.get(subject)
        if got is None:
            return None
        if got[1] <= now:
            del m[subject]
            self.count -= 1
            return None
        return got[0]

    def expire(self, now):
        for account, m in list(self.by_account.items()):
            for plain, (_routed, deadline) in list(m.items()):
                if deadline <= now:
                    del m[plain]
                    self.count -= 1
            if not m:
                del self.by_account[account]
