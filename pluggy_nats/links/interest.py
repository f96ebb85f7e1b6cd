"""Interest per origin: the ledger every link's advertisements are computed from.

The ledger counts subscriptions per (account, subject, queue) *and origin
class*. A link advertises the sum over the origins its row of the propagation
table allows (``link.interest_from``), minus what the link itself holds (no
echo), so one ledger serves every kind and role: a route (local and hub-leaf
interest), a hub's leaf link (everything), a spoke's (local only).
"""


class InterestLedger:
    """``(account name, subject, queue) -> {origin class: subscription count}``."""

    def __init__(self):
        self.counts = {}

    def change(self, key, origin, delta):
        """Count ``delta`` (+1/-1) subscriptions of ``origin`` for ``key``."""
        per_origin = self.counts.get(key)
        if per_origin is None:
            if delta <= 0:
                return
            per_origin = self.counts[key] = {}
        n = per_origin.get(origin, 0) + delta
        if n > 0:
            per_origin[origin] = n
        else:
            per_origin.pop(origin, None)
            if not per_origin:
                del self.counts[key]

    def weight_for(self, link, key):
        """What ``link`` should advertise for ``key``: 0 (nothing), 1 for plain
        interest, the member count for a queue group."""
        per_origin = self.counts.get(key)
        if not per_origin:
            return 0
        allowed = link.interest_from
        n = 0
        for origin, count in per_origin.items():
            if origin in allowed:
                n += count
        if n and link.origin in allowed and key in link.remote_subs:
            n -= 1  # the link's own interest is never echoed back to it
        if n <= 0:
            return 0
        return n if key[2] is not None else 1

    def keys(self):
        return list(self.counts)
