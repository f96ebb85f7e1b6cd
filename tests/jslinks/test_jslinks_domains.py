"""JetStream domains across a leaf link (plugins/leafnode/jsdomain.py): plain
``$JS.API`` stays on its own side, ``$JS.<domain>.API`` reaches the other
side's JetStream, Go's deny rules and log line, against Go both ways."""

import json

import pytest
from nats.js.errors import NotFoundError

from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

from .helpers import connect, js_conf, retrying

PAIRINGS = {"py-hub_py-leaf": (False, False), "go-hub_py-leaf": (True, False),
            "py-hub_go-leaf": (False, True)}


@pytest.mark.parametrize("pairing", list(PAIRINGS))
def test_domains_hub_and_leaf(make_hub, make_leaf, tmp_path, pairing):
    go_hub, go_leaf = PAIRINGS[pairing]
    hub = make_hub(go=go_hub, config=js_conf("hub", tmp_path / "hub"))
    leaf = make_leaf(hub, go=go_leaf, config=js_conf("edge", tmp_path / "leaf"))

    async def main():
        nc_hub, nc_leaf = await connect(hub), await connect(leaf)
        try:
            await nc_hub.jetstream().add_stream(name="H", subjects=["h.>"])
            own = nc_leaf.jetstream()
            await own.add_stream(name="E", subjects=["e.>"])
            # the leaf's plain API is its own JetStream, every time (no answer
            # from the hub races it: $JS.API.> is denied on the link)
            for _ in range(5):
                with pytest.raises(NotFoundError):
                    await own.stream_info("H")
            remote = nc_leaf.jetstream(domain="hub")
            info = await retrying(lambda: remote.stream_info("H"))
            assert info.config.name == "H"
            ack = await retrying(lambda: remote.publish("h.1", b"x"))
            assert ack.stream == "H" and ack.domain == "hub"
            # and the hub reaches the leaf's JetStream by its domain
            edge = nc_hub.jetstream(domain="edge")
            assert (await retrying(lambda: edge.stream_info("E"))).config.name == "E"
            with pytest.raises(NotFoundError):
                await nc_hub.jetstream().stream_info("E")
            # $JS.API from the hub side never crosses: the leaf's own answer only
            msg = await nc_hub.request("$JS.API.INFO", b"", timeout=2)
            assert json.loads(msg.data).get("domain") == "hub"
        finally:
            await nc_hub.close()
            await nc_leaf.close()

    run(main())
    if not go_leaf:
        wait_for(lambda: 'JetStream using domains: local \\"edge\\", remote \\"hub\\"' in
                 leaf.logs() or 'local "edge", remote "hub"' in leaf.logs(), timeout=5,
                 message="the leaf logs the domains")
    if not go_hub:
        wait_for(lambda: 'local \\"hub\\", remote \\"edge\\"' in hub.logs() or
                 'local "hub", remote "edge"' in hub.logs(), timeout=5,
                 message="the hub logs the domains")


def test_kv_and_obj_stay_on_their_side(make_hub, make_leaf, tmp_path):
    """``$KV.>`` and ``$OBJ.>`` are denied on the link: a leaf's KV put goes
    to the leaf's bucket only."""
    hub = make_hub(config=js_conf("hub", tmp_path / "hub"))
    leaf = make_leaf(hub, config=js_conf("edge", tmp_path / "leaf"))

    async def main():
        nc_hub, nc_leaf = await connect(hub), await connect(leaf)
        try:
            kv_hub = await nc_hub.jetstream().create_key_value(bucket="cfg")
            kv_leaf = await nc_leaf.jetstream().create_key_value(bucket="cfg")
            await kv_leaf.put("k", b"leaf")
            await kv_hub.put("k", b"hub")
            assert (await kv_leaf.get("k")).value == b"leaf"
            assert (await kv_hub.get("k")).value == b"hub"
            assert (await kv_leaf.status()).values == 1
            assert (await kv_hub.status()).values == 1
        finally:
            await nc_hub.close()
            await nc_leaf.close()

    run(main())
