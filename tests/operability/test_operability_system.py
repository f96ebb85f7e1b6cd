"""System account services over NATS: events and $SYS.REQ requests, on one
server and across a cluster, driven by a nats-py client in the system account."""

import asyncio
import json

import nats

from pluggy_nats.testing.plugin import run

SYS_CONF = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  APP: { users: [{user: app, password: app}] }
}
system_account: SYS
"""


def _url(server, user):
    return "nats://%s:%s@127.0.0.1:%d" % (user, user, server.port)


def test_operability_system_events_and_requests(make_server):
    server = make_server(config=SYS_CONF)

    async def main():
        sys_nc = await nats.connect(_url(server, "sys"), allow_reconnect=False)
        events = await sys_nc.subscribe("$SYS.ACCOUNT.APP.>")
        await sys_nc.flush()
        conns = []

        async def next_event():
            """The next CONNECT/DISCONNECT; account connection counts (sent
            with each change, as nats-server) are kept aside."""
            while True:
                msg = await events.next_msg(timeout=3)
                if not msg.subject.endswith(".SERVER.CONNS"):
                    return msg
                conns.append(json.loads(msg.data)["conns"])

        app = await nats.connect(_url(server, "app"), allow_reconnect=False, name="the-app")
        connect = await next_event()
        assert connect.subject == "$SYS.ACCOUNT.APP.CONNECT"
        body = json.loads(connect.data)
        assert body["type"] == "io.nats.server.advisory.v1.client_connect"
        assert body["client"]["acc"] == "APP" and body["client"]["name"] == "the-app"
        await app.publish("x", b"12345")
        await app.close()
        disconnect = await next_event()
        assert disconnect.subject == "$SYS.ACCOUNT.APP.DISCONNECT"
        assert conns[:1] == [1]  # the count after the connect
        body = json.loads(disconnect.data)
        # nats-server: "sent" is what the client sent (its inMsgs)
        assert body["sent"]["msgs"] == 1 and body["reason"] == "Client Closed"

        ping = json.loads((await sys_nc.request("$SYS.REQ.SERVER.PING", b"", timeout=2)).data)
        server_id = ping["server"]["id"]
        assert ping["statsz"]["connections"] >= 1
        varz = json.loads((await sys_nc.request("$SYS.REQ.SERVER.PING.VARZ", b"",
                                                timeout=2)).data)
        assert varz["data"]["server_id"] == server_id
        connz = json.loads((await sys_nc.request("$SYS.REQ.SERVER.%s.CONNZ" % server_id,
                                                 b'{"subscriptions": true}', timeout=2)).data)
        assert connz["data"]["num_connections"] >= 1
        bad = json.loads((await sys_nc.request("$SYS.REQ.SERVER.%s.NOPEZ" % server_id, b"",
                                               timeout=2)).data)
        assert bad["error"]["code"] == 404
        await sys_nc.close()

    run(main())


def test_operability_system_ping_reaches_every_server_of_a_cluster(make_server):
    seed = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "sys",
                       config=SYS_CONF)
    others = [make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "sys",
                          "--routes", seed.route_url, config=SYS_CONF) for _ in range(2)]

    async def main():
        nc = await nats.connect(_url(seed, "sys"), allow_reconnect=False)
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox)
        await nc.flush()
        ids = set()
        # (time-bounded, not counted: a loaded machine may take seconds to
        # form the cluster and start the system account's responders)
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            await nc.publish("$SYS.REQ.SERVER.PING", b"", reply=inbox)
            await asyncio.sleep(0.1)
            while True:
                try:
                    msg = await replies.next_msg(timeout=0.05)
                except nats.errors.TimeoutError:
                    break
                ids.add(json.loads(msg.data)["server"]["id"])
            if len(ids) == 3:
                break
        await nc.close()
        return ids

    assert len(run(main(), timeout=40)) == 1 + len(others)
