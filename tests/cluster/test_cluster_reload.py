"""SIGHUP with a changed cluster block: the route plugin answers
nats_reload_block: ``routes`` may change (new ones dialled, removed ones
closed), anything else in the block needs a restart."""

import json
import signal
import urllib.request

from pluggy_nats.testing.raw import wait_for

BLOCK = 'cluster { listen: "127.0.0.1:-1", name: c1%s }\n'


def routez(server):
    with urllib.request.urlopen("http://127.0.0.1:%d/routez" % server.http_port, timeout=5) as r:
        return json.load(r)


def reload(server, path, text):
    path.write_text(text)
    before = server.logs().count("reload")
    server.signal(signal.SIGHUP)
    wait_for(lambda: server.logs().count("reload") > before, message="reload logged")


def test_cluster_reload_routes(make_server, tmp_path):
    peer = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "c1", name="peer")
    server = make_server("-m", "-1", config=BLOCK % "", name="main")
    conf = tmp_path / "main.conf"
    assert routez(server)["num_routes"] == 0
    reload(server, conf, BLOCK % (', routes: ["%s"]' % peer.route_url))
    wait_for(lambda: routez(server)["num_routes"] >= 1, timeout=10, message="route dialled")
    assert "routes_reloaded" in server.logs()

    reload(server, conf, BLOCK.replace("c1", "c2") % (', routes: ["%s"]' % peer.route_url))
    assert "name changed: needs a restart" in server.logs()
    assert routez(server)["num_routes"] >= 1  # all or nothing: still routed

    reload(server, conf, BLOCK % "")
    wait_for(lambda: routez(server)["num_routes"] == 0, timeout=10, message="route closed")
    assert "Route Removed" in server.logs() or "route_disconnected" in server.logs()
