"""Leaf links over TLS (``leafnodes { tls {} }`` on the hub, ``remotes[].tls``
on the leaf): the hub's INFO in plaintext says ``tls_required``, then both sides
handshake before CONNECT (nats-server 2.15.1), ours and Go's both ways."""

import nats
import pytest

from pluggy_nats.testing.leaf import wait_leafs
from pluggy_nats.testing.plugin import run

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
