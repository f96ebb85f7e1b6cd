"""Leaf nodes over WebSocket: a leaf remote with a ws:// URL dials the hub's
WebSocket port (path /leafnode) and the link is an ordinary leaf link after
the upgrade. Ours and the Go server on either side."""

import nats
import pytest

from pluggy_nats.testing.leaf import hub_config, wait_leafs
from pluggy_nats.testing.plugin import run

WS = 'websocket { listen: "127.0.0.1:-1", no_tls: true }\n'


def _leaf_config(hub, masking=True):
    extra = "" if masking else ", ws_no_masking: true"
    return 'leafnodes { remotes: [ { url: "ws://127.0.0.1:%d"%s } ] }\n' % (hub.ws_port, extra)


async def _exchange(hub, leaf):
    """Messages and a request cross the link both ways."""
    h = await nats.connect(hub.url)
    lf = await nats.connect(leaf.url)
    down = await lf.subscribe("down.>")
    up = await h.subscribe("up.>")

    async def echo(msg):
        await msg.respond(b"echo:" + msg.data)

    await h.subscribe("svc", cb=echo)
    await h.flush()
    await lf.flush()
    for attempt in range(100):  # until interest has crossed the link
        await h.publish("down.x", b"%d" % attempt)
        await lf.publish("up.y", b"%d" % attempt)
        try:
            await down.next_msg(timeout=0.1)
            await up.next_msg(timeout=0.1)
            break
        except nats.errors.TimeoutError:
            continue
    else:
        pytest.fail("no message crossed the WebSocket leaf link")
    payload = bytes(range(256)) * 64  # 16 KiB in one message
    await h.publish("down.big", payload)
    got = await down.next_msg(timeout=2)
    while got.subject != "down.big":
        got = await down.next_msg(timeout=2)
    assert got.data == payload
    reply = await lf.request("svc", b"hi", timeout=2)
    assert reply.data == b"echo:hi"
    await h.close()
    await lf.close()


@pytest.mark.parametrize("hub_impl,leaf_impl,masking", [
    ("ours", "ours", True),
    ("ours", "ours", False),
    pytest.param("ours", "go", True, marks=pytest.mark.interop),
    pytest.param("go", "ours", True, marks=pytest.mark.interop),
    pytest.param("go", "ours", False, marks=pytest.mark.interop),
])
def test_websocket_leaf_link(make_server, go_nats_server, hub_impl, leaf_impl, masking):
    start = {"ours": make_server, "go": go_nats_server}
    hub = start[hub_impl]("-m", "-1", config=hub_config(WS), name="hub")
    assert hub.ws_port, hub.logs()[-2000:]
    leaf = start[leaf_impl]("-m", "-1", config=_leaf_config(hub, masking), name="leaf")
    wait_leafs(hub, 1, timeout=15)
    run(_exchange(hub, leaf))
    assert "Traceback" not in hub.logs() + leaf.logs()


def test_websocket_leaf_refused_without_a_leafnodes_block(make_server, wait_for):
    """A hub without a leafnodes {} block does not take leafs on its
    WebSocket port (nats-server: "Not configured to accept leaf node
    connections"); the leaf keeps retrying and nothing breaks."""
    hub = make_server("-m", "-1", config=WS, name="hub")
    leaf = make_server("-m", "-1", config=_leaf_config(hub), name="leaf")
    wait_for(lambda: "Not configured to accept leaf node connections" in hub.logs(),
             timeout=10, message="the hub refusing the leaf")

    async def body():  # the hub still serves its clients
        nc = await nats.connect(hub.url)
        sub = await nc.subscribe("still")
        await nc.publish("still", b"here")
        assert (await sub.next_msg(timeout=2)).data == b"here"
        await nc.close()

    run(body())
    assert "Traceback" not in hub.logs() + leaf.logs()
