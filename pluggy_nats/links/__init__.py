"""Links: the connections that join servers (routes today; gateways and leaf
nodes share the shape). DESIGN.md section 5: one mechanism, three plugins.

A link is a :class:`~pluggy_nats.connection.Connection` whose subscriptions are
*remote interest*: what the peer asked for lives in the same subject index as
local clients' subscriptions, so delivering to a peer is the same step as
delivering to a client (``deliver`` calls ``send_msg`` once per link per
message). What every link kind shares lives here:

* remote interest in (``on_remote_sub``/``on_remote_unsub``/``drop_remote_interest``)
* an explicit map of the interest advertised to the peer (``advertise``), which
  a reconnect rebuilds from scratch, so interest can never go stale;
* :class:`InterestTable`, the local interest a kind of link offers its peers,
  counted per (account, subject, queue) with the transitions that matter.

A kind adds its verbs (``send_sub``, ``send_unsub``, ``send_msg``), its op table,
its handshake and its split-horizon rule (which origins count for its table).
"""

from .connection import Connection
from .subscription import Subscription


class InterestTable:
    """Local interest offered to one kind of link, per (account, subject, queue).

    ``change`` returns what peers must now be told: for plain interest the
    advertised weight only changes on 0 <-> 1; for a queue group the weight is
    the member count. ``None`` means nothing changed for peers.
    """

    def __init__(self):
        self.counts = {}

    def change(self, key, delta):
        count = self.counts.get(key, 0) + delta
        if count > 0:
            self.counts[key] = count
        else:
            self.counts.pop(key, None)
            count = 0
        queue = key[2]
        if queue is None:
            if (count == 1 and delta > 0) or count == 0:
                return 1 if count else 0
            return None
        return count

    def items(self):
        """(key, weight to advertise) for everything currently offered."""
        for key, count in list(self.counts.items()):
            yield key, (count if key[2] is not None else 1)


class Link(Connection):
    """Base of route, gateway and leaf connections."""

    is_link = True

    def __init__(self, server, sock, addr, manager, solicited=False):
        super().__init__(server, sock, addr)
        self.manager = manager
        self.solicited = solicited
        self.remote_id = None
        self.remote_name = ""
        self.remote_info = {}
        self.registered = False  # handshake done, interest flowing
        # (account name, subject, queue) -> Subscription held for the peer
        self.remote_subs = {}
        # (account name, subject, queue) -> weight we told the peer (plain: 1)
        self.advertised = {}
        self.subs = self.remote_subs  # /connz counts them like a client's
        # Optional subject filters a kind sets from its permissions: what the
        # peer may subscribe to here, and which of our interest we tell it.
        self.accept_filter = None
        self.advertise_filter = None

    # -- interest the peer sends us --------------------------------------------

    def on_remote_sub(self, account, subject, queue=None, weight=1):
        key = (account.name, subject, queue)
        sub = self.remote_subs.get(key)
        if sub is None:
            if self.accept_filter is not None and not self.accept_filter(subject):
                self.log.debug("remote_interest_refused", subject=subject)
                return
            sub = Subscription(self, subject, queue, weight=max(weight, 1))
            self.remote_subs[key] = sub
            self.server.add_subscription(account, sub)
        elif queue is not None and weight != sub.weight:
            account.sublist.update_weight(sub, max(weight, 1))

    def on_remote_unsub(self, account, subject, queue=None):
        sub = self.remote_subs.pop((account.name, subject, queue), None)
        if sub is not None:
            self.server.remove_subscription(account, sub)

    def drop_remote_interest(self):
        accounts = self.server.accounts
        for (acc_name, _subject, _queue), sub in list(self.remote_subs.items()):
            account = accounts.get(acc_name)
            if account is not None:
                self.server.remove_subscription(account, sub)
        self.remote_subs.clear()

    def remove_subscription(self, sub):
        """Remote subscriptions are only removed by the peer (or on close)."""

    def send_msgs(self, account, subject, reply, payloads):
        """Forward a batch of header-less messages of one subject and reply (no
        queue groups). A kind may frame the batch at once; this is the default."""
        for payload in payloads:
            self.send_msg(account, subject, reply, 0, payload, ())

    def send_run(self, account, msgs):
        """Forward header-less ``(subject, reply, payload)`` messages in order
        (no queue groups). A kind may frame them at once; this is the default."""
        for subject, reply, payload in msgs:
            self.send_msg(account, subject, reply, 0, payload, ())

    # -- interest we send the peer ----------------------------------------------

    def advertise(self, account_name, subject, queue, weight):
        """Tell the peer our interest is now ``weight`` (0 = none), if it changed."""
        key = (account_name, subject, queue)
        if self.advertised.get(key, 0) == weight:
            return
        if weight and self.advertise_filter is not None and not self.advertise_filter(subject):
            return
        if weight:
            self.advertised[key] = weight
            self.send_sub(account_name, subject, queue, weight)
        else:
            del self.advertised[key]
            self.send_unsub(account_name, subject, queue)

    def send_initial_interest(self, table, accounts=None):
        """Advertise everything in ``table`` (for ``accounts`` only, if given)."""
        for (acc, subject, queue), weight in table.items():
            if accounts is None or acc in accounts:
                self.advertise(acc, subject, queue, weight)

    def on_close(self, reason):
        self.drop_remote_interest()
        self.advertised.clear()
        self.manager.link_closed(self, reason)
