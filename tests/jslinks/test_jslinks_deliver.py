"""JetStream deliveries across leaf and gateway links, framed as nats-server
frames them (links/jsdeliver.py): the routed message travels on the deliver
subject with ``<ack reply>@<stored subject>``, and the far side's client sees
the stored subject and the plain ack reply. Checked against Go both ways."""

import asyncio

import nats
import pytest

from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.raw import wait_for_mesh
from pluggy_nats.testing.supercluster import gateway_block

PAIRINGS = {"py-hub_py-leaf": (False, False), "go-hub_py-leaf": (True, False),
            "py-hub_go-leaf": (False, True)}


async def _connect(server):
    return await nats.connect(server.url, allow_reconnect=False)


async def _push_across(js_side, sub_side, tries=40):
    """A push consumer at ``js_side`` delivering to a subscriber at
    ``sub_side``: the subscriber gets the stored subject and the ack reply,
    and its ack reaches the consumer."""
    nc_js = await _connect(js_side)
    nc_sub = await _connect(sub_side)
    try:
        js = nc_js.jetstream()
        await js.add_stream(name="S", subjects=["foo.>"])
        sub = await nc_sub.subscribe("dlv.x")
        await nc_sub.flush()
        await js.publish("foo.a", b"one")
        await js.publish("foo.b", b"two", headers={"K": "v"})
        await nc_js.request("$JS.API.CONSUMER.CREATE.S.C", (
            b'{"stream_name":"S","config":{"durable_name":"C","deliver_subject":"dlv.x",'
            b'"ack_policy":"explicit","ack_wait":30000000000}}'), timeout=5)
        got = []
        for _ in range(tries):  # interest in dlv.x may still be crossing
            try:
                got.append(await sub.next_msg(timeout=0.5))
            except nats.errors.TimeoutError:
                continue
            if len(got) == 2:
                break
        assert [(m.subject, m.data) for m in got] == [("foo.a", b"one"), ("foo.b", b"two")]
        with pytest.raises(nats.errors.TimeoutError):  # each delivered once
            extra = await sub.next_msg(timeout=0.5)
            raise AssertionError("delivered twice: %r" % extra)
        assert got[1].headers == {"K": "v"}
        for m in got:
            assert m.reply.startswith("$JS.ACK.S.C.1.") and "@" not in m.reply, m.reply
            await nc_sub.publish(m.reply, b"+ACK")
        await nc_sub.flush()
        for _ in range(50):
            info = await js.consumer_info("S", "C")
            if info.ack_floor.stream_seq == 2:
                break
            await asyncio.sleep(0.1)
        assert info.ack_floor.stream_seq == 2 and info.num_ack_pending == 0
    finally:
        await nc_js.close()
        await nc_sub.close()


@pytest.mark.parametrize("pairing", list(PAIRINGS))
def test_push_delivery_hub_to_leaf(make_hub, make_leaf, tmp_path, pairing):
    go_hub, go_leaf = PAIRINGS[pairing]
    hub = make_hub(go=go_hub, args=["-js", "-sd", str(tmp_path / "hub")])
    leaf = make_leaf(hub, go=go_leaf)
    run(_push_across(hub, leaf))


def test_push_delivery_leaf_to_hub(make_hub, make_leaf, tmp_path):
    hub = make_hub()
    leaf = make_leaf(hub, args=["-js", "-sd", str(tmp_path / "leaf")])
    run(_push_across(leaf, hub))


def test_pull_fetch_across_leaf(make_hub, make_leaf, tmp_path):
    """A pull request's inbox is the deliver subject (``via``): the leaf's
    client, asking through the hub's domain, gets the stored subject."""
    hub = make_hub(args=["-sd", str(tmp_path / "hub")], config="jetstream { domain: hub }\n")
    leaf = make_leaf(hub)

    async def main():
        nc_hub = await _connect(hub)
        nc_leaf = await _connect(leaf)
        try:
            js = nc_hub.jetstream()
            await js.add_stream(name="P", subjects=["p.>"])
            await js.publish("p.1", b"x")
            await js.add_consumer("P", durable_name="PC", ack_policy="explicit")
            inbox = await nc_leaf.subscribe("pull.inbox")
            await nc_leaf.flush()
            msg = None
            for _ in range(40):  # until the inbox's interest crossed; statuses skipped
                await nc_leaf.publish("$JS.hub.API.CONSUMER.MSG.NEXT.P.PC",
                                      b'{"batch":1,"expires":500000000}', reply="pull.inbox")
                try:
                    got = await inbox.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    continue
                if got.data:
                    msg = got
                    break
            assert msg is not None
            assert msg.subject == "p.1" and msg.data == b"x"
            assert msg.reply.startswith("$JS.ACK.P.PC.1.1.1.")
        finally:
            await nc_hub.close()
            await nc_leaf.close()

    run(main())


@pytest.mark.parametrize("go_b", [False, True], ids=["py-py", "py-go"])
def test_push_delivery_across_gateway(launcher, tmp_path, go_b):
    """JetStream in cluster A, the subscriber in cluster B (and B's replies
    back), both directions of framing when B is Go."""
    ports = {"A": free_port(), "B": free_port()}
    urls = {n: ["nats://127.0.0.1:%d" % p] for n, p in ports.items()}
    b_cmd = require_go_nats_server() if go_b else pluggy_nats_command()
    a = launcher.start(pluggy_nats_command(), ["-js", "-sd", str(tmp_path / "a"), "-n", "A0"],
                       config=gateway_block("A", ports["A"], {"B": urls["B"]}), name="A0")
    b = launcher.start(b_cmd, ["-n", "B0"],
                       config=gateway_block("B", ports["B"], {"A": urls["A"]}), name="B0")
    wait_for_mesh([a, b], timeout=20)
    run(_push_across(a, b, tries=60))

    async def api_once():
        """A JetStream API request from B answered in A: one answer, not
        two (replies crossing a gateway were once forwarded twice)."""
        nc = await _connect(b)
        try:
            inbox = await nc.subscribe("api.answers")
            await nc.flush()
            for _ in range(60):
                await nc.publish("$JS.API.STREAM.INFO.S", b"", reply="api.answers")
                try:
                    first = await inbox.next_msg(timeout=0.5)
                    break
                except nats.errors.TimeoutError:
                    continue
            assert b'stream_info_response"' in first.data
            with pytest.raises(nats.errors.TimeoutError):
                extra = await inbox.next_msg(timeout=0.7)
                raise AssertionError("answered twice: %r" % extra.data[:80])
        finally:
            await nc.close()

    run(api_once())
