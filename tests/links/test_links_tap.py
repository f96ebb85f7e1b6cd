"""A second link kind built on the link layer alone (tests/plugins/tap_plugin.py,
a one-way "tap"): its interest propagates, messages are delivered over it with
the layer's framing (single frames, batches, runs, headers, queue groups), and
nothing flows back the other way."""

import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.join(os.path.dirname(HERE), "plugins")
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'


@pytest.fixture
def tapped_pair(make_server, raw_client, monkeypatch):
    """(tapped server, tapping server)."""
    monkeypatch.setenv("PYTHONPATH", PLUGIN_DIR)
    source = make_server("--plugin", "tap_plugin", "--tap-listen", "127.0.0.1:0", name="source")
    port = raw_client(source).info["tap_port"]
    tap = make_server("--plugin", "tap_plugin", "--tap-from", "nats-tap://127.0.0.1:%d" % port,
                      name="tap")
    return source, tap


def client(raw_client, server):
    c = raw_client(server)
    c.send(CONNECT + b"PING\r\n")
    c.expect(rb"PONG\r\n")
    return c


def wait_delivered(wait_for, pub, sub, subject, pattern):
    """Publish on ``subject`` until ``sub`` receives it (interest crossed the link)."""
    def crossed():
        pub.send(b"PUB %s 5\r\nprobe\r\n" % subject)
        return re.search(pattern, sub.read_all(timeout=0.1))
    wait_for(crossed, timeout=10, message="interest in %s over the tap" % subject)


def test_links_tap_interest_and_delivery(tapped_pair, raw_client, wait_for):
    source, tap = tapped_pair
    sub = client(raw_client, tap)
    sub.send(b"SUB tap.> 7\r\nPING\r\n")
    sub.expect(rb"PONG\r\n")
    pub = client(raw_client, source)
    wait_delivered(wait_for, pub, sub, b"tap.probe", rb"MSG tap\.probe 7 5\r\nprobe\r\n")
    sub.read_all(timeout=0.1)

    # single frames with a reply, a batch of identical lines, a run of subjects, headers
    pub.send(b"PUB tap.one inbox.1 3\r\none\r\n")
    pub.send(b"PUB tap.same 2\r\nb1\r\nPUB tap.same 2\r\nb2\r\nPUB tap.same 2\r\nb3\r\n")
    pub.send(b"PUB tap.r1 2\r\nr1\r\nPUB tap.r2 2\r\nr2\r\nPUB tap.r3 2\r\nr3\r\n")
    pub.send(b"HPUB tap.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
    pub.expect(rb"PONG\r\n")
    sub.expect(rb"MSG tap\.one 7 inbox\.1 3\r\none\r\n"
               rb"MSG tap\.same 7 2\r\nb1\r\nMSG tap\.same 7 2\r\nb2\r\nMSG tap\.same 7 2\r\nb3\r\n"
               rb"MSG tap\.r1 7 2\r\nr1\r\nMSG tap\.r2 7 2\r\nr2\r\nMSG tap\.r3 7 2\r\nr3\r\n"
               rb"HMSG tap\.h 7 12 14\r\nNATS/1\.0\r\n\r\nhi\r\n", timeout=5)

    # Interest withdrawn: the tapped server stops sending.
    sub.send(b"UNSUB 7\r\nSUB tap.other 8\r\nPING\r\n")
    sub.expect(rb"PONG\r\n")
    wait_delivered(wait_for, pub, sub, b"tap.other", rb"MSG tap\.other 8 ")
    pub.send(b"PUB tap.one 3\r\none\r\nPING\r\n")
    pub.expect(rb"PONG\r\n")
    sub.expect_nothing(timeout=0.3)


def test_links_tap_is_one_way(tapped_pair, raw_client, wait_for):
    source, tap = tapped_pair
    # Interest on the tapped side is not told to the tapping side, so nothing
    # published there crosses back.
    src_sub = client(raw_client, source)
    src_sub.send(b"SUB back.> 1\r\nPING\r\n")
    src_sub.expect(rb"PONG\r\n")
    # a message that did cross proves the link is up in the meantime
    tap_sub = client(raw_client, tap)
    tap_sub.send(b"SUB fwd 2\r\nPING\r\n")
    tap_sub.expect(rb"PONG\r\n")
    src_pub = client(raw_client, source)
    wait_delivered(wait_for, src_pub, tap_sub, b"fwd", rb"MSG fwd 2 5")
    tap_pub = client(raw_client, tap)
    tap_pub.send(b"PUB back.x 1\r\nx\r\nPING\r\n")
    tap_pub.expect(rb"PONG\r\n")
    src_sub.expect_nothing(timeout=0.3)


def test_links_tap_queue_group(tapped_pair, raw_client, wait_for):
    source, tap = tapped_pair
    # The tap's queue group is served over the link (the group named in the
    # TMSG): each message once, in order.
    q1 = client(raw_client, tap)
    q1.send(b"SUB work grp 1\r\nPING\r\n")
    q1.expect(rb"PONG\r\n")
    pub = client(raw_client, source)
    wait_delivered(wait_for, pub, q1, b"work", rb"MSG work 1 5")
    for i in range(20):
        pub.send(b"PUB work 2\r\n%02d\r\n" % i)
    pub.send(b"PING\r\n")
    pub.expect(rb"PONG\r\n")
    received = []
    wait_for(lambda: received.extend(re.findall(rb"MSG work 1 2\r\n(\d\d)",
                                                q1.read_all(timeout=0.1))) or len(received) >= 20,
             timeout=5, message="20 queue messages over the tap")
    assert received == [b"%02d" % i for i in range(20)]
