"""Leafs that present .creds (a user JWT and the nonce signed with its seed)
to an operator-mode hub: bound to the user's account (tenant isolation by
JWT), and the account JWT's leaf limit enforced with Go's error."""

import nats
import pytest
from leaf_helpers import PAIRINGS, connect, drain, exactly_once, until_delivered

from pluggy_nats.testing.leaf import leafz
from pluggy_nats.testing.operator import Trust
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("pairing", sorted(PAIRINGS))
def test_leaf_creds_bind_the_jwt_account(pairing, make_hub, make_leaf, tmp_path):
    hub_go, leaf_go = PAIRINGS[pairing]
    trust = Trust(tmp_path)
    acc_a, acc_b = trust.account("A"), trust.account("B")
    hub = make_hub(go=hub_go, config=trust.config())
    leaf_a = make_leaf(hub, credentials=trust.user_creds(acc_a, "leafA"), go=leaf_go,
                       name="leafA")
    leaf_b = make_leaf(hub, credentials=trust.user_creds(acc_b, "leafB"), go=leaf_go,
                       name="leafB")
    assert sorted(e["account"] for e in leafz(hub)["leafs"]) == sorted([acc_a.pubkey,
                                                                       acc_b.pubkey])

    async def main():
        hub_a = await nats.connect(hub.url, user_credentials=trust.user_creds(acc_a, "ca"),
                                   allow_reconnect=False)
        la, lb = await connect(leaf_a), await connect(leaf_b)
        on_a, on_b = await la.subscribe("t.>"), await lb.subscribe("t.>")
        await la.flush()
        await lb.flush()
        await until_delivered(hub_a, "t.probe", on_a)
        await exactly_once(hub_a, "t.x", on_a)
        assert await drain(on_b) == []  # tenant B's leaf saw none of A's traffic
        for nc in (hub_a, la, lb):
            await nc.close()

    run(main())


@pytest.mark.parametrize("hub_go", [True, False], ids=["go-hub", "py-hub"])
def test_leaf_account_leaf_limit(hub_go, make_hub, make_leaf, tmp_path):
    trust = Trust(tmp_path)
    acc = trust.account("C", limits={"leaf": 1})
    hub = make_hub(go=hub_go, config=trust.config())
    make_leaf(hub, credentials=trust.user_creds(acc, "one"), name="one")
    second = make_leaf(hub, credentials=trust.user_creds(acc, "two"), name="two", wait=False)
    wait_for(lambda: "maximum account active connections exceeded" in second.logs(),
             timeout=10, message="the second leaf refused")
    assert leafz(hub)["leafnodes"] == 1


@pytest.mark.parametrize("hub_go", [True, False], ids=["go-hub", "py-hub"])
def test_leaf_account_limits_max_leafnodes(hub_go, make_hub, make_leaf):
    """The same limit from a config-mode account's ``limits { max_leafnodes }``."""
    hub = make_hub(go=hub_go, config="accounts { A: { users: [ {user: a, password: a} ], "
                                      "limits: { max_leafnodes: 1 } } }\n")
    make_leaf(hub, user="a", password="a", name="one")
    second = make_leaf(hub, user="a", password="a", name="two", wait=False)
    wait_for(lambda: "maximum account active connections exceeded" in second.logs(),
             timeout=10, message="the second leaf refused")
    assert leafz(hub)["leafnodes"] == 1


@pytest.mark.parametrize("pairing", ["go-hub_py-leaf", "py-hub_go-leaf", "py-hub_py-leaf"])
def test_leaf_nkey_seed_remote(pairing, make_hub, make_leaf):
    """A remote with ``nkey`` (a user seed) signs the hub's nonce; the hub's
    ``leafnodes.authorization { nkey }`` checks it. A wrong key is refused."""
    import secrets

    import nkeys

    hub_go, leaf_go = PAIRINGS[pairing]
    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER).decode()
    public = nkeys.from_seed(bytearray(seed.encode())).public_key.decode()
    other = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER).decode()
    hub = make_hub(go=hub_go, leafnodes='authorization { nkey: "%s" }' % public)
    good = make_leaf(hub, go=leaf_go, remote='nkey: "%s"' % seed, name="good")
    bad = make_leaf(hub, go=leaf_go, remote='nkey: "%s"' % other, name="bad", wait=False)
    wait_for(lambda: "Authorization Violation" in bad.logs(), timeout=10,
             message="the wrong key refused")
    assert leafz(good)["leafnodes"] == 1 and leafz(hub)["leafnodes"] == 1
