"""The fault-injection harness itself (pluggy_nats.testing.faults), on real
clusters of our servers: a cut route stops delivery between its two servers
(and only them), heal restores it, delay holds messages back, kill -9 and
restart keeps the ports, SIGSTOP freezes a server until SIGCONT."""

import time

import pytest

from pluggy_nats.testing.raw import wait_for_mesh

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


@pytest.fixture
def pair(raw_client):
    """pair(cluster, i, j) -> send(timeout): publish on server i to a
    subscriber on server j; True when the message arrived within ``timeout``
    (2 s: the machine may be loaded; checks that nothing arrives pass 1 s)."""
    counter = iter(range(10**6))

    def make(cluster, i, j):
        sub = raw_client(cluster.servers[j])
        sub.send(CONNECT + b"SUB probe.%d.%d 1\r\nPING\r\n" % (i, j))
        sub.expect(rb"PONG\r\n")
        pub = raw_client(cluster.servers[i])
        pub.send(CONNECT)

        def send(timeout=2.0):
            n = next(counter)
            pub.send(b"PUB probe.%d.%d %d\r\n%d\r\n" % (i, j, len(str(n)), n))
            try:
                # Skip what came before (a probe that arrived after its own timeout).
                sub.expect(rb".*?MSG probe\.%d\.%d 1 \d+\r\n%d\r\n" % (i, j, n),
                           timeout=timeout)
                return True
            except AssertionError:
                return False

        return send

    return make


def test_cluster_faults_cut_and_heal_one_route(make_fault_cluster, pair, wait_for):
    cluster = make_fault_cluster(3)
    zero_to_one, one_to_zero = pair(cluster, 0, 1), pair(cluster, 1, 0)
    zero_to_two = pair(cluster, 0, 2)
    # interest crosses the routes first (a loaded machine: poll, do not assume)
    wait_for(lambda: zero_to_one(0.5) and one_to_zero(0.5) and zero_to_two(0.5), timeout=15,
             message="first deliveries")
    link = cluster.link(0, 1)
    used = link.connections
    link.cut()
    assert not zero_to_one(1.0) and not one_to_zero(1.0)
    assert zero_to_two()  # the other routes are untouched
    time.sleep(1.0)  # the route keeps redialling; the cut proxy keeps refusing
    assert not zero_to_one(1.0)
    link.heal()
    wait_for(lambda: zero_to_one(0.5), timeout=15, message="delivery after heal")
    assert one_to_zero()
    assert link.connections > used  # the route was re-established through the proxy


def test_cluster_faults_partition_isolates_a_server(make_fault_cluster, pair, wait_for):
    cluster = make_fault_cluster(3)
    probes = {(i, j): pair(cluster, i, j) for i in range(3) for j in range(3) if i != j}
    cluster.partition([2], [0, 1])
    assert [k for k, send in probes.items() if send()] == [(0, 1), (1, 0)]
    cluster.heal_all()
    wait_for_mesh(cluster.servers, timeout=15)


def test_cluster_faults_delay_holds_messages_back(make_fault_cluster, pair, wait_for):
    cluster = make_fault_cluster(2)
    send = pair(cluster, 0, 1)
    # interest crosses the route first (a loaded machine: poll, do not assume)
    wait_for(lambda: send(0.5), timeout=15, message="first delivery")
    cluster.link(0, 1).delay(1500)
    started = time.monotonic()
    assert send(timeout=6.0)
    assert time.monotonic() - started >= 1.5
    cluster.link(0, 1).heal()
    started = time.monotonic()
    assert send(timeout=3.0)
    assert time.monotonic() - started < 1.5  # generous: the machine may be loaded


def test_cluster_faults_kill_and_restart_keeps_ports(make_fault_cluster, raw_client):
    cluster = make_fault_cluster(3)
    port, pid = cluster.servers[1].port, cluster.servers[1].pid
    cluster.kill(1)
    assert cluster.servers[1].proc.returncode == -9
    cluster.restart(1)
    assert cluster.servers[1].port == port and cluster.servers[1].pid != pid
    wait_for_mesh(cluster.servers, timeout=15)


def test_cluster_faults_pause_and_resume(make_fault_cluster, raw_client):
    cluster = make_fault_cluster(2)
    client = raw_client(cluster.servers[1])
    client.send(CONNECT + b"PING\r\n")
    client.expect(rb"PONG\r\n")
    cluster.pause(1)
    client.send(b"PING\r\n")
    client.expect_nothing(timeout=0.5)
    cluster.resume(1)
    client.expect(rb"PONG\r\n", timeout=5)


def test_cluster_faults_blackhole_keeps_the_connection_silent(make_fault_cluster, pair,
                                                              wait_for):
    cluster = make_fault_cluster(2)
    send = pair(cluster, 0, 1)
    # interest crosses the route first (a loaded machine: poll, do not assume)
    wait_for(lambda: send(0.5), timeout=15, message="first delivery")
    link = cluster.link(0, 1)
    used = link.connections
    link.blackhole()
    assert not send(1.0) and not send(1.0)
    assert link.connections == used  # nothing was closed
    link.heal()
    # A frame cut in the middle may leave the route to be closed and redialled.
    wait_for(lambda: send(0.5), timeout=15, message="delivery after the blackhole heals")


@pytest.mark.interop
def test_cluster_faults_with_a_go_server(make_fault_cluster, pair, wait_for):
    """The harness drives mixed clusters too: server 1 is the Go nats-server."""
    cluster = make_fault_cluster(3, go=(1,))
    to_go, from_go = pair(cluster, 0, 1), pair(cluster, 1, 2)
    # the subscriptions' interest crosses the routes first (a loaded machine: poll)
    wait_for(lambda: to_go(0.5) and from_go(0.5), timeout=15, message="delivery both ways")
    cluster.partition([1], [0, 2])
    assert not to_go(1.0) and not from_go(1.0)
    cluster.heal_all()
    wait_for(lambda: to_go(0.5) and from_go(0.5), timeout=15, message="delivery after heal")
