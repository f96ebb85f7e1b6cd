"""Which gateways a message entering this server goes to, and which queue
groups each must serve (GATEWAY.md sections 6 and 9; Go
``sendMsgToGateways``), sans-IO.

The publishing cluster serves its own queue members first: the groups
delivered here (locally or over a route) are ``served``. The outbounds are
walked in RTT order; each gets the message if the peer wants it for plain
subscribers or has members of a group nobody served yet, and the groups it
is sent for count as served, so a farther cluster never gets them too.
"""


def plan(outbounds, account, subject, served):
    """``outbounds``: ``(link, interest)`` pairs in RTT order (interest an
    :class:`~.interest.OutboundInterest`); ``served``: queue names already
    served. Returns ``[(link, [queue names])]`` in the same order."""
    sends = []
    served = set(served) if served else set()
    for link, interest in outbounds:
        plain, groups = interest.interest(account, subject)
        queues = []
        for members in groups:
            if members:
                name = members[0].queue
                if name not in served:
                    served.add(name)
                    queues.append(name)
        if plain or queues:
            sends.append((link, queues))
    return sends


def direct_target(outbounds_by_hash, routed_subject_hash):
    """The outbound to the cluster whose name hash a ``_GR_.`` subject names
    (a reply on its way back home), or None."""
    return outbounds_by_hash.get(routed_subject_hash)
