"""Account binding is the tenant isolation: two tenants' leafs on one hub,
publishing and subscribing on the same subjects, never see each other's
traffic, in either direction; the hub's clients see only their own tenant."""

import asyncio

import nats
import pytest
from leaf_helpers import PAIRINGS, connect, drain, until_delivered

from pluggy_nats.testing.leaf import leafz
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop

HUB_ACCOUNTS = """
accounts {
  TENANT_A: { users: [ {user: a, password: pa}, {user: ca, password: ca} ] }
  TENANT_B: { users: [ {user: b, password: pb}, {user: cb, password: cb} ] }
}
"""


@pytest.fixture(params=sorted(PAIRINGS))
def tenants(request, make_hub, make_leaf):
    hub_go, leaf_go = PAIRINGS[request.param]
    hub = make_hub(go=hub_go, config=HUB_ACCOUNTS)
    leaf_a = make_leaf(hub, user="a", password="pa", go=leaf_go, name="leafA")
    leaf_b = make_leaf(hub, user="b", password="pb", go=leaf_go, name="leafB")
    return hub, leaf_a, leaf_b


def test_leaf_tenants_isolated_on_the_same_subjects(tenants):
    hub, leaf_a, leaf_b = tenants

    async def main():
        hub_a = await nats.connect(hub.url, user="ca", password="ca", allow_reconnect=False)
        hub_b = await nats.connect(hub.url, user="cb", password="cb", allow_reconnect=False)
        la, lb = await connect(leaf_a), await connect(leaf_b)
        subs = {}
        for name, nc in (("hub_a", hub_a), ("hub_b", hub_b), ("la", la), ("lb", lb)):
            subs[name] = await nc.subscribe("orders.>")
            await nc.flush()
        # each tenant's path works...
        await until_delivered(la, "orders.probe", subs["hub_a"])
        await until_delivered(lb, "orders.probe", subs["hub_b"])
        await until_delivered(hub_a, "orders.probe", subs["la"])
        await until_delivered(hub_b, "orders.probe", subs["lb"])
        await until_delivered(la, "orders.probe2", subs["hub_a"])  # drain stray probes
        for sub in subs.values():
            await drain(sub)
        # ...and the same subjects stay within the tenant, both directions
        for i in range(20):
            await la.publish("orders.new", b"A%d" % i)
            await hub_b.publish("orders.new", b"B%d" % i)
        await la.flush()
        await hub_b.flush()
        got = {name: [m.data for m in await drain(sub, quiet=0.5)] for name, sub in subs.items()}
        assert got["hub_a"] == [b"A%d" % i for i in range(20)]
        assert got["la"] == [b"A%d" % i for i in range(20)]  # its own, echo on
        assert got["lb"] == [b"B%d" % i for i in range(20)]
        assert got["hub_b"] == [b"B%d" % i for i in range(20)]
        # request/reply inside a tenant; the other tenant's responder is not reachable
        async def responder(msg):
            await msg.respond(b"from-b")

        await lb.subscribe("svc", cb=responder)
        await lb.flush()
        await asyncio.sleep(0.3)
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await la.request("svc", b"", timeout=0.5)
        assert (await hub_b.request("svc", b"", timeout=3)).data == b"from-b"
        for nc in (hub_a, hub_b, la, lb):
            await nc.close()

    run(main())
    accounts = sorted(entry["account"] for entry in leafz(hub)["leafs"])
    assert accounts == ["TENANT_A", "TENANT_B"]


def test_leaf_wrong_password_refused_others_unaffected(make_hub, make_leaf, wait_for):
    hub = make_hub(config=HUB_ACCOUNTS)
    good = make_leaf(hub, user="a", password="pa", name="good")
    bad = make_leaf(hub, user="a", password="wrong", name="bad", wait=False)
    wait_for(lambda: "Authorization Violation" in bad.logs(), message="refusal logged")
    assert leafz(bad)["leafnodes"] == 0
    assert leafz(good)["leafnodes"] == 1 and leafz(hub)["leafnodes"] == 1
