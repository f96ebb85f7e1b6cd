"""deny_imports / deny_exports on a leaf's remote, as nats-server applies them
on both sides (the spoke filters, and tells the hub its deny_imports as
CONNECT deny_pub), in all four Go/ours pairings."""

import pytest
from leaf_helpers import PAIRINGS, connect, drain, until_delivered

from pluggy_nats.testing.leaf import leaf_interest
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop

DENY = 'deny_imports: ["secret.>"], deny_exports: ["private.>"]'


@pytest.mark.parametrize("pairing", sorted(PAIRINGS))
def test_leaf_deny_rules_both_directions(pairing, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[pairing]
    hub = make_hub(go=hub_go)
    leaf = make_leaf(hub, go=leaf_go, remote=DENY)

    async def main():
        nh, nl = await connect(hub), await connect(leaf)
        on_leaf = await nl.subscribe(">")
        secret_sub = await nl.subscribe("secret.>")
        on_hub = await nh.subscribe(">")
        await nl.flush()
        await nh.flush()
        await until_delivered(nh, "public.probe", on_leaf)
        await until_delivered(nl, "public.probe", on_hub)
        # the leaf never asks for what it may not import
        assert leaf_interest(hub, ">") and not leaf_interest(hub, "secret.>")
        await drain(secret_sub)
        for i in range(5):
            await nh.publish("secret.%d" % i, b"s")  # import denied at the leaf
            await nh.publish("public.%d" % i, b"p")
            await nl.publish("private.%d" % i, b"x")  # export denied at the leaf
            await nl.publish("open.%d" % i, b"o")
        await nh.flush()
        await nl.flush()
        leaf_got = [m.subject for m in await drain(on_leaf, quiet=0.5) if "probe" not in m.subject]
        hub_got = [m.subject for m in await drain(on_hub, quiet=0.5) if "probe" not in m.subject]
        assert [s for s in leaf_got if s.startswith("public.")] == \
            ["public.%d" % i for i in range(5)]
        assert not [s for s in leaf_got if s.startswith("secret.")]
        assert await drain(secret_sub) == []
        assert [s for s in hub_got if s.startswith("open.")] == ["open.%d" % i for i in range(5)]
        assert not [s for s in hub_got if s.startswith("private.")]
        await nh.close()
        await nl.close()

    run(main())
