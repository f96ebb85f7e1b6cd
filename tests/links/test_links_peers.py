"""The duplicate-connection rules of the link layer (links/peers.py) and the
Solicitor's dial loop against a real listener that refuses, then accepts."""

import socket
import threading
import time

import pytest

from pluggy_nats.connection import ClosedReason
from pluggy_nats.links.peers import (
    KEEP_EXISTING,
    KEEP_SOLICITED_BY_SMALLER_ID,
    REPLACE,
    PeerTable,
    duplicate_loser,
)
from pluggy_nats.testing.launch import free_port


class Stub:
    """What the rules read of a link: which side dialled, the peer, closing."""

    def __init__(self, solicited, remote_id="B"):
        self.solicited = solicited
        self.remote_id = remote_id
        self.closed = False
        self.reason = None

    def close(self, reason):
        self.closed, self.reason = True, reason


@pytest.mark.parametrize("local,existing_solicited,new_solicited,policy,loser", [
    # routes: one side dialled twice -> the link already there stays
    ("A", True, True, KEEP_SOLICITED_BY_SMALLER_ID, "new"),
    ("A", False, False, KEEP_SOLICITED_BY_SMALLER_ID, "new"),
    # both sides dialled: the one dialled by the smaller id stays, on both ends
    ("A", False, True, KEEP_SOLICITED_BY_SMALLER_ID, "existing"),  # A < B: ours stays
    ("A", True, False, KEEP_SOLICITED_BY_SMALLER_ID, "new"),
    ("C", False, True, KEEP_SOLICITED_BY_SMALLER_ID, "new"),  # B < C: B's dial stays
    ("C", True, False, KEEP_SOLICITED_BY_SMALLER_ID, "existing"),
    ("A", False, True, KEEP_EXISTING, "new"),
    ("A", True, False, REPLACE, "existing"),
])
def test_links_duplicate_rules(local, existing_solicited, new_solicited, policy, loser):
    existing, new = Stub(existing_solicited), Stub(new_solicited)
    got = duplicate_loser(existing, new, local, policy)
    assert got is (existing if loser == "existing" else new)


def test_links_peer_table_claim_and_release():
    table = PeerTable("A", KEEP_SOLICITED_BY_SMALLER_ID, ClosedReason.DUPLICATE_ROUTE)
    first = Stub(True)
    peer = table.claim(first, ("pool", 0), {"server_id": "B"})
    assert peer is not None and peer.links() == [first] and "B" in table
    second = Stub(True)  # the same side dialled again: refused, first stays
    assert table.claim(second, ("pool", 0)) is None
    assert second.reason is ClosedReason.DUPLICATE_ROUTE and not first.closed
    other = Stub(False)  # B dialled us (B > A): ours stays, B's is refused
    assert table.claim(other, ("pool", 0)) is None and other.closed
    extra = Stub(True)
    assert table.claim(extra, ("pool", 1)) is peer
    assert table.release(first) is None  # the peer still has a link
    assert table.release(extra) is peer and "B" not in table


def test_links_solicitor_backs_off_then_connects():
    from pluggy_nats import Server
    from pluggy_nats.links import Solicitor

    server = Server(autoload=False, port=0)
    port = free_port()  # nothing listens there yet: dials fail
    attempts = []
    accepted = threading.Event()

    def listen_later():
        time.sleep(0.3)
        lsock = socket.create_server(("127.0.0.1", port))
        conn, _ = lsock.accept()
        accepted.set()
        conn.close()
        lsock.close()

    threading.Thread(target=listen_later, daemon=True).start()

    def connect(sock, addr):
        from pluggy_nats.client import ClientConnection

        attempts.append(time.monotonic())
        solicitor.stop()  # one successful dial is enough here
        return ClientConnection(server, sock, addr)  # runs until the peer hangs up

    solicitor = Solicitor(server, "nats://127.0.0.1:%d" % port, connect,
                          backoff_min=0.02, backoff_max=0.1)
    greenlet = server.links.solicit(solicitor)
    greenlet.join(timeout=5)
    assert attempts and accepted.wait(2)
    assert not server.links.solicitors  # it unregistered itself when it ended


def test_links_solicitor_gives_up_after_its_retries():
    from pluggy_nats import Server
    from pluggy_nats.links import Solicitor

    server = Server(autoload=False, port=0)
    port = free_port()
    gave_up = []
    solicitor = Solicitor(server, "127.0.0.1:%d" % port, lambda s, a: None, retries=3,
                          backoff_min=0.01, backoff_max=0.02, on_give_up=lambda: gave_up.append(1))
    started = time.monotonic()
    server.links.solicit(solicitor).join(timeout=5)
    assert gave_up == [1] and time.monotonic() - started < 2
