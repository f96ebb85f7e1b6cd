"""One composed system for every topology test (package scope: started once,
stopped by PID at the end):

    cluster A: A0 ours, A1 Go  <== gateways ==>  cluster B: B0 ours
    LA  our leaf -> A0 (account APP on both sides, deny_imports "noimp.>")
    J0  our JetStream server -> A0 by two leaf links: SYS (so it answers $SYS
        requests itself) and APP; streams ORDERS and ORDERS_COPY (its mirror)
    LG  Go leaf  -> A1 (account APP)
    TB  our leaf -> B0, bound to account T on the hub (the tenant)

Accounts on the cluster: APP (the default user ``app`` via no_auth_user, a
``limited`` user who may not subscribe to ``secret.>``, the mapping
``old.*`` -> ``new.*``, an import of FEED's stream ``feed.>``), FEED (exports
``feed.>``), T (the tenant), SYS (user ``sys``, the system account).
"""

import nats
import pytest
from nats.js.api import StreamSource

from pluggy_nats.testing.launch import Launcher, pluggy_nats_command
from pluggy_nats.testing.leaf import hub_config, leaf_config, wait_leafs
from pluggy_nats.testing.plugin import require_go_nats_server, run
from pluggy_nats.testing.supercluster import build_supercluster

ACCOUNTS = """
accounts {
  APP: {
    users: [
      {user: app, password: app}
      {user: limited, password: limited, permissions: {subscribe: {deny: ["secret.>"]}}}
    ]
    mappings: { "old.*": "new.$1" }
    imports: [ {stream: {account: FEED, subject: "feed.>"}} ]
  }
  FEED: { users: [{user: feed, password: feed}], exports: [{stream: "feed.>"}] }
  T: { users: [{user: t, password: t}] }
  SYS: { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: app
"""

LEAF_AUTH = ("authorization { users: [ {user: leaf, password: pleaf, account: APP}, "
             "{user: tenant, password: ptenant, account: T}, "
             "{user: sysleaf, password: psysleaf, account: SYS} ] }")

# J0: a JetStream server hanging off A0 by two leaf remotes, one binding the
# system account (so $SYS reaches it: it answers for itself), one APP.
J0_CONFIG = """
server_name: J0
accounts {
  APP: { users: [{user: app, password: app}], jetstream: enabled }
  SYS: { users: [{user: sys, password: sys}] }
}
system_account: SYS
no_auth_user: app
jetstream { store_dir: "%s" }
leafnodes { remotes: [
  { urls: ["nats-leaf://sysleaf:psysleaf@127.0.0.1:%d"], account: SYS }
  { urls: ["nats-leaf://leaf:pleaf@127.0.0.1:%d"], account: APP }
] }
"""

LEAF_ACCOUNTS = "accounts { APP: {users: [{user: app, password: app}]} }\nno_auth_user: app\n"


async def _streams(url):
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="ORDERS", subjects=["orders.>"])
    await js.add_stream(name="ORDERS_COPY", mirror=StreamSource(name="ORDERS"))
    await nc.close()


class System:
    """``servers``: name -> ServerProcess (A0 A1 B0 LA LG TB)."""

    def __init__(self, servers):
        self.servers = servers

    def __getitem__(self, name):
        return self.servers[name]

    def url(self, name, user="app", password="app"):
        return "nats://%s:%s@127.0.0.1:%d" % (user, password, self.servers[name].port)


@pytest.fixture(scope="package")
def system(tmp_path_factory):
    go = require_go_nats_server()
    launcher = Launcher(str(tmp_path_factory.mktemp("topology")))
    try:
        sc = build_supercluster(launcher, {"A": 2, "B": 1}, go={"A": (1,)},
                                args=("-m", "-1"),
                                config=hub_config(ACCOUNTS, leafnodes=LEAF_AUTH),
                                go_command=go, our_command=pluggy_nats_command())
        a0, a1 = sc["A"]
        b0 = sc["B"][0]
        ours = pluggy_nats_command()
        leafs = {
            "LA": (ours, a0, "leaf", 'deny_imports: ["noimp.>"]'),
            "LG": (go, a1, "leaf", ""),
            "TB": (ours, b0, "tenant", ""),
        }
        servers = {"A0": a0, "A1": a1, "B0": b0}
        for name, (command, hub, user, remote) in leafs.items():
            text = leaf_config(hub, account="APP", user=user, password="p" + user,
                               remote=remote, name=name, extra=LEAF_ACCOUNTS)
            servers[name] = launcher.start(command, ["-m", "-1"], config=text, name=name)
        store = tmp_path_factory.mktemp("j0-store")
        servers["J0"] = launcher.start(ours, ["-m", "-1"], config=J0_CONFIG % (
            store, a0.leaf_port, a0.leaf_port), name="J0")
        for name in leafs:
            wait_leafs(servers[name], 1)
        wait_leafs(servers["J0"], 2)
        run(_streams("nats://127.0.0.1:%d" % servers["J0"].port))
        yield System(servers)
    finally:
        launcher.close()
