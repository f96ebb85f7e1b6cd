"""Peers and their links, and the duplicate-connection rules.

A kind keeps a :class:`PeerTable` of the servers it is linked to. Each link of
a peer fills a *slot* (a route: its pool index or pinned account; a gateway:
the outbound; a leaf: the remote account), and a second link for a taken slot
is a duplicate. Which one survives is the kind's policy:

* ``KEEP_SOLICITED_BY_SMALLER_ID`` (routes): if one side dialled twice (an
  explicit and a gossiped URL for the same server), the link already carrying
  traffic stays; if both sides dialled each other, the one dialled by the
  server with the smaller id stays, so both ends pick the same one;
* ``KEEP_EXISTING`` (a gateway's one outbound per remote cluster);
* ``REPLACE`` (a leaf reconnecting from the same server: the old one is stale).
"""

from ..connection import ClosedReason

KEEP_SOLICITED_BY_SMALLER_ID = "keep_solicited_by_smaller_id"
KEEP_EXISTING = "keep_existing"
REPLACE = "replace"


def duplicate_loser(existing, new, local_id, policy):
    """Which of two links for one slot of one peer must close."""
    if policy == REPLACE:
        return existing
    if policy == KEEP_EXISTING or existing.solicited == new.solicited:
        return new
    keep_new = (local_id < new.remote_id) == new.solicited
    return existing if keep_new else new


class Peer:
    """Another server and our links to it, by slot."""

    def __init__(self, server_id, info):
        self.server_id = server_id
        self.info = info
        self.slots = {}  # slot -> link

    def links(self):
        return list(self.slots.values())


class PeerTable:
    """The peers of one kind: ``peers[server_id]`` with their links by slot."""

    def __init__(self, local_id, policy=KEEP_SOLICITED_BY_SMALLER_ID,
                 reason=ClosedReason.DUPLICATE_ROUTE):
        self.local_id = local_id
        self.policy = policy
        self.reason = reason  # the close reason of the link that loses
        self.peers = {}

    def __contains__(self, server_id):
        return server_id in self.peers

    def __iter__(self):
        return iter(list(self.peers.values()))

    def __len__(self):
        return len(self.peers)

    def get(self, server_id):
        return self.peers.get(server_id)

    def claim(self, link, slot, info=None):
        """Put ``link`` (its ``remote_id`` set) in ``slot`` of its peer. Returns
        the Peer, or None when the duplicate rule closed ``link`` instead."""
        peer = self.peers.get(link.remote_id)
        if peer is None:
            peer = self.peers[link.remote_id] = Peer(link.remote_id, info or {})
        existing = peer.slots.get(slot)
        if existing is not None and existing is not link and not existing.closed:
            loser = duplicate_loser(existing, link, self.local_id, self.policy)
            if loser is link:
                if not peer.slots:
                    del self.peers[link.remote_id]
                link.close(self.reason)
                return None
            peer.slots[slot] = link
            existing.close(self.reason)
        peer.slots[slot] = link
        return peer

    def release(self, link):
        """Forget ``link``; returns its Peer if that was the peer's last link."""
        peer = self.peers.get(link.remote_id) if link.remote_id else None
        if peer is None:
            return None
        for slot, value in list(peer.slots.items()):
            if value is link:
                del peer.slots[slot]
        if peer.slots:
            return None
        del self.peers[link.remote_id]
        return peer
