"""Internal clients: server-side code (JetStream, $SYS services) that publishes
and subscribes through the same subject index as everyone else.

A message for an internal subscription is handed to its callback in the
publisher's greenlet: ``callback(sub, subject, reply, headers, payload)`` with
``headers`` the raw header block (bytes) or None; ``sub.conn.publisher`` is
who published it (a connection or another internal client). A callback must not block;
work that waits spawns a greenlet with ``server.spawn``.
"""

import itertools
from operator import itemgetter

import structlog

from .connection import SYSTEM, log_crash
from .delivery import deliver, deliver_run
from .links import jsdeliver
from .links.kinds import ALL_ORIGINS, CLIENT_ORIGIN
from .subscription import Subscription

_first, _second = itemgetter(0), itemgetter(1)
_BYTES = {bytes}


def _subject_and_size(message):
    return message[0], len(message[1])


class InternalClient:
    """A connection-like object with no socket, bound to one account."""

    kind = SYSTEM
    echo = True
    headers = True
    closed = False
    noecho = None
    is_link = False
    origin = CLIENT_ORIGIN  # internal interest is local interest
    messages_from = ALL_ORIGINS
    queue_fallback = False
    peer_group = None
    link_frame = None  # links/jsdeliver.py
    publisher = None  # the publisher of the message a callback is handling

    def __init__(self, server, account, name="internal"):
        self.server = server
        self.touched = server.touched
        self.account = account
        self.name = name
        self.cid = 0
        self.subs = set()
        self._sids = itertools.count(1)
        self.in_msgs = self.out_msgs = self.in_bytes = self.out_bytes = 0
        self.log = structlog.get_logger("pluggy_nats.internal").bind(client=name)

    def subscribe(self, subject, callback, queue=None):
        """Subscribe with a callback; subject and queue may be str or bytes."""
        if isinstance(subject, str):
            subject = subject.encode()
        if isinstance(queue, str):
            queue = queue.encode()
        sid = str(next(self._sids)).encode()
        sub = Subscription(self, subject, queue, sid, callback=callback)
        self.subs.add(sub)
        self.server.add_subscription(self.account, sub)
        return sub

    def remove_subscription(self, sub):
        if sub in self.subs:
            self.subs.discard(sub)
            self.server.remove_subscription(self.account, sub)

    unsubscribe = remove_subscription

    def publish(self, subject, payload=b"", reply=None, headers=None, flush=True, via=None):
        """Publish into this client's account. ``headers`` is a raw header block
        (``NATS/1.0\\r\\n...\\r\\n\\r\\n``) or None. Returns the number of deliveries.
        ``flush=False`` leaves the output queued for the caller's ``server.flush_touched()``
        (a callback running in a client's reader, or a loop sending many messages).
        ``via``: match subscriptions on this subject instead while the message keeps
        ``subject`` (JetStream delivers a stored message, under its own subject, to
        a consumer's deliver subject or a pull request's reply inbox)."""
        if isinstance(subject, str):
            subject = subject.encode()
        if isinstance(reply, str):
            reply = reply.encode()
        if isinstance(payload, str):
            payload = payload.encode()
        hdr = len(headers) if headers else 0
        msg = headers + payload if headers else payload
        self.out_msgs += 1
        if isinstance(via, str):
            via = via.encode()
        frame = jsdeliver.encode(subject, reply, via) if via is not None else None
        result = self.account.sublist.match(via if via is not None else subject)
        if result.psubs or result.qsubs:
            self.link_frame = frame  # links get the deliver subject, reply@subject
            try:
                n = deliver(result, subject, reply, hdr, msg, self)
            finally:
                self.link_frame = None
        else:
            n = 0
        links = self.server.links
        if links.client_forwarders:  # gateways: after local delivery, on the routing subject
            if frame is not None:
                links.forward(self, self.account, frame[0], frame[1], hdr, msg, result)
            else:
                links.forward(self, self.account, via if via is not None else subject, reply,
                              hdr, msg, result)
        if flush:
            self.server.flush_touched()
        return n

    def publish_many(self, messages):
        """``publish(subject, payload, flush=False)`` for each ``(subject,
        payload)`` of ``messages``, in order (bytes, no reply, no headers):
        the PubAcks a stream releases after one write. Consecutive messages
        on one subject reach its subscriptions as one run (``deliver_run``)
        where a run is exact, so a publisher's answers cost one match and one
        framing pass, not one ``publish`` each."""
        if self.server.links.client_forwarders:  # gateways forward per message
            for subject, payload in messages:
                self.publish(subject, payload, flush=False)
            return
        match = self.account.sublist.match
        # a run's frames share one control line: one subject, one size
        for (subject, _), group in itertools.groupby(messages, _subject_and_size):
            group = list(group)
            if len(group) > 1 and type(subject) is bytes:
                payloads = list(map(_second, group))
                if set(map(type, payloads)) == _BYTES:
                    result = match(subject)
                    if not (result.psubs or result.qsubs) or deliver_run(
                            result, [(subject, None, payloads)], self):
                        self.out_msgs += len(group)
                        continue
            for subject, payload in group:
                self.publish(subject, payload, flush=False)

    def deliver_msgs(self, sub, subject, msgs, publisher):
        """Hand ``sub``'s ``run_callback`` a run of header-less messages
        ``[(subject, reply, payload)]`` matched on ``subject`` (a stream's
        intake, a remote mirror's deliveries), as ``deliver_msg`` hands one."""
        self.in_msgs += len(msgs)
        self.publisher = publisher
        try:
            sub.run_callback(sub, subject, msgs)
        except Exception as exc:
            log_crash(self.log.bind(subject=subject[:128]), exc, "internal_callback_failed")

    def deliver_msg(self, sub, subject, reply, hdr, msg, publisher=None):
        self.in_msgs += 1
        # Who published the message being handed over: a callback reads it
        # first thing (``sub.conn.publisher``), before any nested delivery.
        self.publisher = publisher
        try:
            sub.callback(sub, subject, reply, msg[:hdr] if hdr else None, msg[hdr:] if hdr else msg)
        except Exception as exc:
            # a published payload never logs more than a line (no traceback)
            log_crash(self.log.bind(subject=subject[:128]), exc, "internal_callback_failed")

    def close(self):
        for sub in list(self.subs):
            self.remove_subscription(sub)
        self.closed = True
