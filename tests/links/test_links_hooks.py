"""The hooks the link kinds build on, seen from outside (tests/plugins/hooks_plugin.py):
a plugin's own hookspecs (nats_addhooks), accounts created, closes told
their kind, fields added to route INFOs and read from peers' INFOs, and
nats_configure called through pluggy (hook tracing shows it)."""

import json
import os

import nats

from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.join(os.path.dirname(HERE), "plugins")


def events(server):
    async def main():
        nc = await nats.connect(server.url, allow_reconnect=False)
        reply = await nc.request("hooks.events", b"", timeout=2)
        await nc.close()
        return json.loads(reply.data)
    return run(main())


def test_links_hooks_seen_by_a_plugin(make_cluster, make_server, raw_client, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", PLUGIN_DIR)
    a, b = make_cluster(2, args=["--plugin", "hooks_plugin"])
    got = events(a)
    assert got["answer"] == "answer to ready"  # its own hookspec, implemented by itself
    assert ["account_created", "$G"] in got["events"]
    # the peer's route INFO carried the field its plugin added
    assert ["peer_info", "route", "py-1"] in got["events"]
    c = raw_client(a)
    c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
    c.expect(rb"PONG\r\n")
    c.close()
    wait_for(lambda: ["closed", "client"] in events(a)["events"], message="client close told")
    b.stop()
    wait_for(lambda: ["closed", "route"] in events(a)["events"], message="route close told")


def test_links_hooks_configure_is_traced(make_server, monkeypatch):
    monkeypatch.setenv("PLUGGY_NATS_TRACE_HOOKS", "1")
    server = make_server("-D")
    assert "nats_configure" in server.logs()
