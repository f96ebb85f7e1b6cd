"""A hub user's permissions on its leaf link, as nats-server applies them
(reversed for the link, sent to the leaf as INFO import/export): the leaf gets
only what the user may subscribe to, and what it may not publish never
reaches the hub. All four Go/ours pairings."""

import pytest
from leaf_helpers import PAIRINGS, connect, drain, until_delivered

from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop

USERS = """accounts { A: { users: [
  {user: a, password: a, permissions: { publish: { deny: ["nopub.>"] },
                                        subscribe: { deny: ["nosub.>"] } } },
  {user: c, password: c} ] } }
"""


@pytest.mark.parametrize("pairing", sorted(PAIRINGS))
def test_leaf_user_permissions_on_the_link(pairing, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[pairing]
    hub = make_hub(go=hub_go, config=USERS)
    leaf = make_leaf(hub, user="a", password="a", go=leaf_go)

    async def main():
        import nats

        nh = await nats.connect(hub.url, user="c", password="c", allow_reconnect=False)
        nl = await connect(leaf)
        on_leaf, on_hub = await nl.subscribe(">"), await nh.subscribe(">")
        await nl.flush()
        await nh.flush()
        await until_delivered(nh, "ok.down", on_leaf)
        await until_delivered(nl, "ok.up", on_hub)
        await drain(on_leaf)
        await drain(on_hub)
        for i in range(5):
            await nh.publish("nosub.%d" % i, b"x")  # the user may not subscribe: not sent
            await nh.publish("ok.d%d" % i, b"d")
            await nl.publish("nopub.%d" % i, b"x")  # the user may not publish: not taken
            await nl.publish("ok.u%d" % i, b"u")
        await nh.flush()
        await nl.flush()
        down = [m.subject for m in await drain(on_leaf, quiet=0.5)]
        up = [m.subject for m in await drain(on_hub, quiet=0.5)]
        assert [s for s in down if s.startswith("ok.d")] == ["ok.d%d" % i for i in range(5)]
        assert not [s for s in down if s.startswith("nosub.")]
        assert [s for s in up if s.startswith("ok.u")] == ["ok.u%d" % i for i in range(5)]
        assert not [s for s in up if s.startswith("nopub.")]
        await nh.close()
        await nl.close()

    run(main())
