"""SIGHUP with a changed leafnodes block, as nats-server reloads it
(reload.go getLeafNodeOptionsChanges), each test run beside Go:

* remotes may be added (dialled at once) and removed (the link closes and is
  not dialled again); a remote that stayed may not change anything but its
  TLS, compression and ``disabled`` (a changed ``deny_imports`` is refused);
* the hub's ``authorization`` users may not change, nor the listener: the
  running configuration is kept whole (new leafs still need the old password).
"""

import pytest

from pluggy_nats.testing.launch import free_port, pluggy_nats_command
from pluggy_nats.testing.leaf import hub_config, leafz, wait_leafs
from pluggy_nats.testing.plugin import require_go_nats_server
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop

# server_name in the file: Go refuses a reload when -n named it on the command line
ACCOUNTS = "server_name: leaf\naccounts { A: {}, B: {} }\n"


def remotes(*entries):
    """A leafnodes block dialling ``(hub, account, extra)`` entries."""
    fields = ", ".join('{ url: "nats-leaf://127.0.0.1:%d", account: "%s" %s }'
                       % (hub.leaf_port, account, extra) for hub, account, extra in entries)
    return ACCOUNTS + "leafnodes { remotes: [ %s ] }\n" % fields


def refusals(server):
    logs = server.logs()
    return logs.count("Failed to reload") + logs.count("config_reload_failed")


@pytest.mark.parametrize("leaf_go", [False, True], ids=["py-leaf", "go-leaf"])
def test_leaf_reload_adds_and_removes_remotes(launcher, make_hub, leaf_go):
    one, two = make_hub(name="one"), make_hub(name="two")
    leaf = launcher.start(require_go_nats_server() if leaf_go else pluggy_nats_command(),
                          ["-m", "-1"], config=remotes((one, "A", "")),
                          name="leaf")
    wait_leafs(one, 1)

    leaf.reload(remotes((one, "A", ""), (two, "B", "")))  # added: dialled now
    wait_leafs(two, 1)
    assert leafz(one)["leafnodes"] == 1  # the one that stayed was not touched

    leaf.reload(remotes((two, "B", "")))  # removed: closed, never dialled again
    wait_for(lambda: leafz(one)["leafnodes"] == 0, timeout=10, message="remote one removed")
    wait_for(lambda: leafz(leaf)["leafnodes"] == 1, timeout=10)
    assert refusals(leaf) == 0

    leaf.reload(remotes((two, "B", ', deny_imports: ["x"]')))  # a remote that stayed
    assert refusals(leaf) == 1, leaf.logs()[-2000:]
    assert leafz(two)["leafnodes"] == 1 and leafz(one)["leafnodes"] == 0  # nothing applied


@pytest.mark.parametrize("hub_go", [False, True], ids=["py-hub", "go-hub"])
def test_leaf_reload_refuses_users_and_listener(make_hub, make_leaf, hub_go):
    port = free_port()
    users = 'authorization { users: [ {user: a, password: "%s"} ] }'
    hub = make_hub(go=hub_go, leaf_port=port, leafnodes=users % "one", name="hub")
    first = make_leaf(hub, user="a", password="one", name="first")
    hub.reload(hub_config("", port, users % "two"))
    assert refusals(hub) == 1  # nats-server: field "Users"
    # the running users stay: the old password still works, the new one does not
    second = make_leaf(hub, user="a", password="one", name="second")
    wait_leafs(second, 1)
    late = make_leaf(hub, user="a", password="two", name="late", wait=False)
    wait_for(lambda: "Authorization Violation" in late.logs(), message="new password refused")
    assert leafz(first)["leafnodes"] == 1

    hub.reload(hub_config("", port + 1, users % "one"))  # the listener: needs a restart
    assert refusals(hub) == 2
    assert leafz(hub)["leafnodes"] == 2
