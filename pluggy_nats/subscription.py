"""A subscription: the one object the subject index holds, whoever owns it."""


class Subscription:
    """Interest of ``conn`` in ``subject`` (optionally as a member of ``queue``).

    ``conn`` is a client connection, a link (route, gateway, leaf) holding
    remote interest, or an internal client whose ``callback`` receives messages.
    ``weight`` is 1 for local members; a remote queue sub carries the member
    count the peer advertised, so random selection stays proportional.
    """

    __slots__ = ("conn", "subject", "queue", "sid", "sid_part", "msg_head", "weight",
                 "max_msgs", "delivered", "callback", "run_callback", "closed")

    def __init__(self, conn, subject, queue=None, sid=b"", callback=None, weight=1):
        self.conn = conn
        self.subject = subject
        self.queue = queue
        self.sid = sid
        # " <sid> " pre-encoded: the per-subscription part of every MSG frame.
        self.sid_part = b" " + sid + b" "
        # b"MSG <subject> <sid> ": the whole head of a MSG frame when the published
        # subject equals ours (always for literal subscriptions), saving an append.
        self.msg_head = b"MSG " + subject + self.sid_part
        self.weight = weight
        self.max_msgs = 0  # auto-unsubscribe after this many deliveries (0 = never)
        self.delivered = 0
        self.callback = callback
        # an internal subscriber taking a run of JetStream deliveries that
        # arrived on a link at once: run_callback(sub, subject, [(stored
        # subject, ack reply, payload)]) (links/jsdeliver.py claimed_run)
        self.run_callback = None
        self.closed = False

    def __repr__(self):
        q = " " + self.queue.decode(errors="replace") if self.queue else ""
        return "<Subscription %s%s sid=%s>" % (self.subject.decode(errors="replace"), q,
                                                self.sid.decode(errors="replace"))
