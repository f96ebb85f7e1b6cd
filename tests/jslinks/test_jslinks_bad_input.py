"""Bad input across links: a mirror of a missing stream, a wrong API prefix
(the answers nats-server gives, checked against Go in the same run), and
odd ``$JS.ACK`` replies on the wire."""

import json

import nats
import pytest
from pluggy_nats_plugins.jetstream.remote import ack_info

from pluggy_nats.links import jsdeliver
from pluggy_nats.testing.plugin import run

from .helpers import js_conf, until

PAIRINGS = {"go-hub_go-leaf": (True, True), "py-hub_py-leaf": (False, False),
            "go-hub_py-leaf": (True, False)}
NOT_FOUND = {"code": 404, "err_code": 10059, "description": "stream not found"}


@pytest.mark.parametrize("pairing", list(PAIRINGS))
def test_mirror_of_missing_stream_and_wrong_prefix(make_hub, make_leaf, tmp_path, pairing):
    go_hub, go_leaf = PAIRINGS[pairing]
    hub = make_hub(go=go_hub, config=js_conf("hub", tmp_path / "hub"))
    leaf = make_leaf(hub, go=go_leaf, config=js_conf("edge", tmp_path / "leaf"))

    async def main():
        nc = await nats.connect(leaf.url, allow_reconnect=False)

        async def req(subject, body):
            return json.loads((await nc.request(subject, json.dumps(body).encode(),
                                                timeout=3)).data)

        specs = {"M1": {"name": "MISSING", "external": {"api": "$JS.hub.API"}},
                 "M2": {"name": "MISSING", "external": {"api": "$JS.nope.API"}},
                 "M3": {"name": "MISSING"}}
        for name, spec in specs.items():
            created = await req("$JS.API.STREAM.CREATE." + name, {"name": name, "mirror": spec})
            assert "error" not in created, created  # Go accepts it: the error comes later
            assert created["config"]["mirror"]["name"] == "MISSING"

        async def mirror(name):
            return (await req("$JS.API.STREAM.INFO." + name, {}))["mirror"]

        async def errored(name):
            return (await mirror(name)).get("error")

        assert await until(lambda: errored("M1"), timeout=15) == NOT_FOUND
        assert await until(lambda: errored("M3"), timeout=15) == NOT_FOUND
        m2 = await mirror("M2")  # nobody answers $JS.nope.API: no error, never active
        assert m2["external"] == {"api": "$JS.nope.API", "deliver": ""}
        assert "error" not in m2 and m2["active"] == -1 and m2["lag"] == 0
        await nc.close()

    run(main())


def test_encoded_reply_splits_only_a_whole_ack_token():
    """``jsAckDeliverIdx``: the first ``@`` after the eighth dot, not a
    trailing one; stream and consumer names may hold ``@``."""
    ok = b"$JS.ACK.S.C.1.5.5.1733380000.0@orders.eu"
    assert jsdeliver.split(ok) == (b"orders.eu", b"$JS.ACK.S.C.1.5.5.1733380000.0")
    at_name = b"$JS.ACK.S@x.C.1.5.5.17.0@a.b"
    assert jsdeliver.split(at_name) == (b"a.b", b"$JS.ACK.S@x.C.1.5.5.17.0")
    for bad in (b"$JS.ACK.S.C.1.5.5.17.0@", b"$JS.ACK.S.C@x", b"_INBOX.a@b", b"$JS.ACK.@",
                b"$JS.ACK.S.C.1.5.5.17.0"):
        assert jsdeliver.split(bad) is None, bad
    assert jsdeliver.encode(b"o.x", b"$JS.ACK.S.C.1.2.3.4.0", b"dlv") == (
        b"dlv", b"$JS.ACK.S.C.1.2.3.4.0@o.x")
    assert jsdeliver.encode(b"o.x", ok, b"dlv") is None  # never twice
    assert jsdeliver.encode(b"o.x", None, b"dlv") is None


def test_ack_reply_parsing():
    assert ack_info("$JS.ACK.S.C.1.7.3.1733380000.2") == ("C", 1, 7, 3, 1733380000, 2)
    assert ack_info("$JS.ACK.hub.ACCHASH.S.C.1.7.3.1733380000.2.rnd") == \
        ("C", 1, 7, 3, 1733380000, 2)
    for bad in ("$JS.ACK.S.C.1.x.3.4.5", "$JS.ACK.S.C.1", "_INBOX.a.b.c.d.e.f.g.h", ""):
        assert ack_info(bad) is None, bad


def test_garbage_ack_replies_over_a_leaf_keep_the_link(make_hub, make_leaf):
    """Messages with odd ``$JS.ACK`` replies crossing a leaf are delivered
    as plain messages (or split), never break the link."""
    hub = make_hub()
    leaf = make_leaf(hub)

    async def main():
        nl = await nats.connect(leaf.url, allow_reconnect=False)
        nh = await nats.connect(hub.url, allow_reconnect=False)
        sub = await nl.subscribe("dlv")
        await nl.flush()
        probe = await until(lambda: _probe(nh, sub), timeout=10)
        assert probe
        for reply in ("$JS.ACK.S.C.1.5.5.17.0@", "$JS.ACK.@", "$JS.ACK.S.C.1.5.5.17.0@o.x",
                      "$JS.ACK.a.b@c"):
            await nh.publish("dlv", b"x", reply=reply)
        await nh.flush()
        got = [await sub.next_msg(timeout=3) for _ in range(4)]
        assert [(m.subject, m.reply) for m in got] == [
            ("dlv", "$JS.ACK.S.C.1.5.5.17.0@"), ("dlv", "$JS.ACK.@"),
            ("o.x", "$JS.ACK.S.C.1.5.5.17.0"), ("dlv", "$JS.ACK.a.b@c")]
        await nh.close()
        await nl.close()

    run(main())


async def _probe(nc, sub):
    await nc.publish("dlv", b"probe")
    await nc.flush()
    try:
        await sub.next_msg(timeout=0.3)
        return True
    except nats.errors.TimeoutError:
        return False
