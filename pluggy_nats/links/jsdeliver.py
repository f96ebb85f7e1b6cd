"""JetStream deliveries across links, framed as nats-server frames them.

A consumer delivers a stored message under its *stored* subject to a
subscription matched on its *deliver* subject (a push consumer's
``deliver_subject``, a pull request's inbox): ``InternalClient.publish(...,
via=deliver)``. A link cannot carry two subjects, so nats-server
(client.go ``processMsgResults``, ``sendMsgToGateways``) sends the routed
message on the deliver subject, which the peer matches, and appends the
stored subject to the ack reply::

    RMSG $G dlv $JS.ACK.S.C.1.5.5.1733380000.0@orders.eu 5

The receiving server (``jsAckDeliverIdx``) splits the reply at the first
``@`` after the eight dots of the ack token: its clients get ``MSG orders.eu
<sid> $JS.ACK.S.C.1.5.5.1733380000.0``, its links the frame unchanged.

The sending half is one connection attribute, ``link_frame``: while a
publisher's ``deliver`` runs, ``(deliver subject, ack reply@stored subject)``
replaces subject and reply for the links it reaches. The receiving half is a
reply claim on ``$JS.ACK.`` (``LinkLayer.claim``), registered by the layer.
"""

from ..delivery import deliver
from ..sublist import EMPTY_RESULT

ACK_PREFIX = b"$JS.ACK."


def encode(subject, reply, via):
    """``(link subject, link reply)`` for a message published on ``subject``
    with ``reply`` and matched on ``via``; None when links need no rewrite
    (no deliver subject, or no reply to carry the stored subject: Go
    appends only to a reply, and never twice)."""
    if via is None or not reply or deliver_index(reply) != -1:
        return None
    return via, reply + b"@" + subject


def deliver_index(reply):
    """The offset of the ``@`` in ``$JS.ACK.<8 tokens>@<stored subject>``, or
    -1 (Go ``jsAckDeliverIdx``: stream, consumer and subject tokens may hold
    an ``@`` themselves, so only one after the eighth dot counts)."""
    if not reply.startswith(ACK_PREFIX):
        return -1
    at = reply.find(b"@")
    while at != -1:
        if reply.count(b".", 0, at) >= 8:
            return at
        at = reply.find(b"@", at + 1)
    return -1


def split(reply):
    """``(stored subject, ack reply)`` of an encoded reply, or None."""
    at = deliver_index(reply)
    if at == -1 or at == len(reply) - 1:
        return None
    return reply[at + 1:], reply[:at]


def claimed_reply(link, account, subject, reply, hdr, msg, queues):
    """The ``$JS.ACK.`` reply claim: a JetStream delivery arriving on
    ``link`` goes to the subscriptions of its deliver subject here under the
    stored subject and plain ack reply; links it is passed on to (and the
    forwarders) get the frame as it came. False for a plain ``$JS.ACK.``
    reply (the normal path takes it)."""
    parts = split(reply)
    if parts is None:
        return False
    stored, ack = parts
    result = account.sublist.match(subject)
    if result is not EMPTY_RESULT:
        targets = link._local_targets(subject, result, queues)
        if targets:
            link.account = account
            link.link_frame = (subject, reply)
            try:
                deliver(targets, stored, ack, hdr, msg, link)
            finally:
                link.link_frame = None
    for forward in link.forwarders:
        forward(link, account, subject, reply, hdr, msg, result)
    return True
