"""Monitoring of leaf links: /leafz (with subs=1 and acc=) with the fields
nats-server 2.15.1 shows, the /varz leaf block and count, /accountz leafnode
counts, and $SYS.REQ.SERVER.PING.LEAFZ."""

import json
import urllib.request

import nats
import pytest
from leaf_helpers import connect

from pluggy_nats.testing.leaf import leaf_interest, leafz
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

SYS = ("system_account: SYS\naccounts { SYS: { users: [ {user: sys, password: sys} ] },"
       " APP: { users: [ {user: app, password: app} ] } }\n")


def get(server, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (server.http_port, path),
                                timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def both(make_hub, make_leaf):
    """A Go pair and ours, the same topology: a hub with accounts and a leaf
    bound to APP with a deny rule."""
    def build(go):
        hub = make_hub(go=go, config=SYS, name="hub-%s" % ("go" if go else "py"))
        leaf = make_leaf(hub, user="app", password="app", go=go,
                         remote='deny_imports: ["secret.>"]',
                         name="leaf-%s" % ("go" if go else "py"))
        return hub, leaf
    return build(True), build(False)


def test_leaf_leafz_varz_accountz_like_go(both):
    async def main():
        conns = []
        for _hub, leaf in both:
            nl = await connect(leaf)
            await nl.subscribe("watch.me")
            await nl.flush()
            conns.append(nl)
        for hub, _leaf in both:
            wait_for(lambda hub=hub: leaf_interest(hub, "watch.me"), message="LS+ on the hub")
        check(both)
        for nl in conns:
            await nl.close()

    run(main())


def check(both):
    (go_hub, go_leaf), (py_hub, py_leaf) = both
    for side in ("hub", "leaf"):
        go_server, py_server = (go_hub, py_hub) if side == "hub" else (go_leaf, py_leaf)
        want, got = leafz(go_server, "?subs=1"), leafz(py_server, "?subs=1")
        assert set(got) >= {"server_id", "now", "leafnodes", "leafs"}
        assert got["leafnodes"] == want["leafnodes"] == 1
        w, g = want["leafs"][0], got["leafs"][0]
        assert set(g) >= set(w) - {"rtt"}, (side, sorted(set(w) - set(g)))
        for key in ("is_spoke", "account"):
            assert g[key] == w[key] or (key == "account"), (side, key, g[key], w[key])
    # the hub names the bound account; the leaf is the spoke
    assert leafz(py_hub)["leafs"][0]["account"] == "APP"
    assert leafz(py_hub, "?acc=APP")["leafnodes"] == 1
    assert leafz(py_hub, "?acc=SYS")["leafnodes"] == 0
    assert "watch.me" in leafz(py_hub, "?subs=1")["leafs"][0]["subscriptions_list"]
    for hub, leaf in both:
        varz = get(leaf, "/varz")
        assert varz["leafnodes"] == 1
        remote = varz["leaf"]["remotes"][0]
        assert remote["local_account"] == "$G" and remote["urls"]
        assert get(hub, "/varz")["leaf"]["port"] == hub.leaf_port
    acc = get(py_hub, "/accountz?acc=APP")["account_detail"]
    assert acc["leafnode_connections"] == 1


def test_leaf_sys_ping_leafz(make_hub, make_leaf):
    hub = make_hub(config=SYS)
    make_leaf(hub, user="app", password="app")

    async def main():
        nc = await nats.connect(hub.url, user="sys", password="sys", allow_reconnect=False)
        msg = await nc.request("$SYS.REQ.SERVER.PING.LEAFZ", b"", timeout=3)
        data = json.loads(msg.data)["data"]
        assert data["leafnodes"] == 1 and data["leafs"][0]["account"] == "APP"
        await nc.close()

    run(main())


@pytest.mark.parametrize("go", [False, True], ids=["py-hub", "go-hub"])
def test_leaf_connect_disconnect_events(make_hub, make_leaf, go):
    """A leaf link's $SYS account events on its hub, as nats-server sends
    them: CONNECT and DISCONNECT in the bound account (client kind
    "Leafnode"), and the account's connection count with its leafnodes."""
    hub = make_hub(go=go, config=SYS)

    async def main():
        nc = await nats.connect(hub.url, user="sys", password="sys", allow_reconnect=False)
        events = await nc.subscribe("$SYS.ACCOUNT.APP.>")
        await nc.flush()
        leaf = make_leaf(hub, user="app", password="app")
        got = {}

        async def until(subject_end, predicate=lambda event: True):
            for _ in range(100):
                for subject, event in got.items():
                    if subject.endswith(subject_end) and predicate(event):
                        return event
                try:
                    msg = await events.next_msg(timeout=0.2)
                except nats.errors.TimeoutError:
                    continue
                got[msg.subject] = json.loads(msg.data)
            raise AssertionError("no %s event in %s" % (subject_end, sorted(got)))

        connect_event = await until(".CONNECT")
        assert connect_event["client"]["kind"] == "Leafnode"
        assert connect_event["client"]["acc"] == "APP"
        conns = await until(".CONNS", lambda e: e.get("leafnodes") == 1)
        assert conns["total_conns"] >= 1
        leaf.stop()
        disconnect = await until(".DISCONNECT")
        assert disconnect["client"]["kind"] == "Leafnode" and disconnect["reason"]
        await nc.close()
        # the fields nats-server 2.15.1 sends for a leaf
        fields = {"acc", "host", "id", "kind", "name", "name_tag", "start", "user", "ver"}
        assert set(connect_event["client"]) == fields
        assert set(disconnect["client"]) - {"rtt"} == fields | {"stop"}  # rtt: omitempty
        assert connect_event["client"]["user"] == "app"

    run(main())
