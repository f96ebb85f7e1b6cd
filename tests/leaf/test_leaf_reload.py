"""SIGHUP with a changed leafnodes block: the hub's authorization may change
(new leafs are checked against it, the link already up stays), the listener
may not (all or nothing: the running configuration is kept)."""

import signal

from pluggy_nats.testing.leaf import leafz, wait_leafs
from pluggy_nats.testing.raw import wait_for

BLOCK = ('leafnodes { listen: "127.0.0.1:%d", authorization { users: [ '
         '{user: a, password: "%s"} ] } }\n')


def reload(server, path, text):
    path.write_text(text)
    before = server.logs().count("reload")
    server.signal(signal.SIGHUP)
    wait_for(lambda: server.logs().count("reload") > before, message="reload logged")


def test_leaf_reload_authorization_not_listener(make_server, make_leaf, tmp_path):
    from leaf_helpers import free_port

    port = free_port()
    hub = make_server("-m", "-1", config=BLOCK % (port, "one"), name="hub")
    conf = tmp_path / "hub.conf"
    first = make_leaf(hub, user="a", password="one", name="first")
    reload(hub, conf, BLOCK % (port, "two"))
    assert "config_reloaded" in hub.logs()
    second = make_leaf(hub, user="a", password="two", name="second")
    wait_leafs(second, 1)
    late = make_leaf(hub, user="a", password="one", name="late", wait=False)
    wait_for(lambda: "Authorization Violation" in late.logs(), message="old password refused")
    assert leafz(first)["leafnodes"] == 1  # the link made before the reload stays
    reload(hub, conf, BLOCK % (port + 1, "two"))
    assert "leafnodes listen changed: needs a restart" in hub.logs()
    assert leafz(hub)["leafnodes"] == 2
