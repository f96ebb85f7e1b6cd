"""Leaf links over TLS (``leafnodes { tls {} }`` on the hub, ``remotes[].tls``
on the leaf): the hub's INFO in plaintext says ``tls_required``, then both sides
handshake before CONNECT (nats-server 2.15.1), ours and Go's both ways."""

import time

import nats
import pytest

from pluggy_nats.testing.leaf import leafz, wait_leafs
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

PAIRS = {"py-hub_py-leaf": (False, False), "go-hub_py-leaf": (True, False),
         "py-hub_go-leaf": (False, True)}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_leaf_tls_both_ways(pair, make_server, go_nats_server, certs):
    hub_go, leaf_go = PAIRS[pair]
    hub_conf = 'leafnodes { listen: "127.0.0.1:-1", %s }\n' % certs.tls_block()
    hub = (go_nats_server if hub_go else make_server)("-m", "-1", config=hub_conf, name="hub")
    leaf_conf = ('leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:%d", '
                 'tls { ca_file: "%s" } } ] }\n' % (hub.leaf_port, certs.ca))
    leaf = (go_nats_server if leaf_go else make_server)("-m", "-1", config=leaf_conf,
                                                         name="leaf")
    wait_leafs(leaf, 1, timeout=20)

    async def main():
        nh = await nats.connect(hub.url, allow_reconnect=False)
        nl = await nats.connect(leaf.url, allow_reconnect=False)
        sub = await nl.subscribe("secure.>")
        await nl.flush()
        for _ in range(200):
            await nh.publish("secure.x", b"over tls")
            await nh.flush()
            try:
                msg = await sub.next_msg(timeout=0.1)
                break
            except nats.errors.TimeoutError:
                continue
        assert msg.data == b"over tls"
        await nh.close()
        await nl.close()

    run(main())


@pytest.mark.parametrize("hub_go", [False, True], ids=["py-hub", "go-hub"])
def test_leaf_listener_tls_added_and_removed_on_reload(hub_go, make_server, go_nats_server,
                                                        certs):
    """nats-server takes a reload of the leaf listener's ``tls`` (reload.go
    leaves TLSConfig out of its comparison), except that adding it changes
    the default auth timeout (2 s, or the TLS timeout plus one), which it
    refuses with the same text here. With an explicit ``authorization {
    timeout }`` ours applies it: new leafs must handshake and a plaintext one
    stays out; once removed, they join in plaintext. A leaf already linked
    keeps its link throughout."""
    listen = 'leafnodes { listen: "127.0.0.1:-1" %s %s }\n'
    timeout = ", authorization { timeout: 2 }"
    hub = (go_nats_server if hub_go else make_server)("-m", "-1", name="hub",
                                                       config=listen % ("", timeout))
    port = hub.leaf_port

    def leaf(name, tls):
        block = ', tls { ca_file: "%s" }' % certs.ca if tls else ""
        return make_server("-m", "-1", name=name, config=(
            'leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:%d" %s } ] }\n' % (port, block)))

    def refused():
        logs = hub.logs()
        return logs.count("Failed to reload") + logs.count("config_reload_failed")

    first = leaf("first", tls=False)
    wait_leafs(hub, 1)
    secure = ", " + certs.tls_block().strip()
    hub.reload(listen % (secure, ""))  # the default auth timeout: 2 s -> 3 s
    assert refused() == 1 and '"AuthTimeout": old=2, new=3' in hub.logs(), hub.logs()[-1500:]
    hub.reload(listen % (secure, timeout))
    assert refused() == 1, hub.logs()[-2000:]
    if hub_go:
        # nats-server 2.15.1 takes this reload but its listener stays in
        # plaintext (seen: a TLS leaf's handshake gets a plaintext INFO); ours
        # applies it to new leafs (docs/architecture.md, leaf nodes)
        return
    secured = leaf("secured", tls=True)
    wait_leafs(secured, 1, timeout=20)
    outsider = leaf("outsider", tls=False)
    wait_for(lambda: leafz(hub)["leafnodes"] == 2, timeout=10, message="two leafs on the hub")
    time.sleep(1.5)  # (the outsider keeps trying; it must not get in)
    assert leafz(outsider)["leafnodes"] == 0 and leafz(hub)["leafnodes"] == 2

    hub.reload(listen % ("", timeout))
    assert refused() == 1, hub.logs()[-2000:]
    wait_leafs(outsider, 1, timeout=20)  # its next attempt, in plaintext
    assert leafz(first)["leafnodes"] == 1 and leafz(secured)["leafnodes"] == 1


@pytest.mark.parametrize("leaf_go", [False, True], ids=["py-leaf", "go-leaf"])
def test_leaf_remote_tls_changed_on_reload(leaf_go, make_server, go_nats_server, certs):
    """A remote's ``tls`` may change on reload and the next dial uses it
    (nats-server: "TLSConfig is always applied"), but it may not come or go:
    nats-server compares the remote's TLSTimeout (0 without tls) and refuses,
    with the same text here."""
    hub = make_server("-m", "-1", name="hub", config=(
        'leafnodes { listen: "127.0.0.1:-1", %s }\n' % certs.tls_block().strip()))
    remote = ('server_name: leaf\n'
              'leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:%d" %s } ] }\n')
    wrong_ca = ', tls { ca_file: "%s" }' % certs.client_cert  # trusts no server cert
    leaf = (go_nats_server if leaf_go else make_server)(
        "-m", "-1", name="leaf", config=remote % (hub.leaf_port, wrong_ca))
    time.sleep(1.5)  # (it keeps dialling; with the wrong CA it cannot link)
    assert leafz(leaf)["leafnodes"] == 0

    def refused():
        return leaf.logs().count("Failed to reload") + leaf.logs().count("config_reload_failed")

    leaf.reload(remote % (hub.leaf_port, ""))  # tls removed: refused
    assert refused() == 1 and '"TLSTimeout": old=2, new=0' in leaf.logs(), leaf.logs()[-1500:]
    leaf.reload(remote % (hub.leaf_port, ', tls { ca_file: "%s" }' % certs.ca))
    assert refused() == 1, leaf.logs()[-1500:]
    wait_leafs(leaf, 1, timeout=20)
