"""Leaf node topologies for tests: hubs and leafs, ours or the Go nats-server.

* ``hub_config(extra="", port=-1, leafnodes="")``: config text for a hub (a
  ``leafnodes`` listener on loopback, a free port unless ``port``, and more
  ``leafnodes`` fields) with ``extra`` appended.
* ``leaf_config(hubs, account=None, credentials=None, ...)``: config text for
  a leaf with one remote to ``hubs`` (one ServerProcess or several: a hub
  cluster, the leaf fails over between them).
* ``wait_leafs(server, count)``: poll ``server``'s ``/leafz`` until ``count``
  leaf connections are registered there (a leaf is only listed once its
  handshake finished, in nats-server and here).
"""

import json
import urllib.request

from .raw import wait_for


def hub_config(extra="", port=-1, leafnodes=""):
    """A hub's config: a leafnode listener on ``port`` (-1: a free one), with
    ``leafnodes`` fields added to the block and ``extra`` config after it."""
    return 'leafnodes { listen: "127.0.0.1:%d", %s }\n' % (port, leafnodes) + extra


def _quote(text):
    return json.dumps(str(text))


def leaf_config(hubs, account=None, credentials=None, user=None, password=None,
                remote="", extra="", name=None, leafnodes=""):
    """A ``leafnodes { remotes: [...] }`` block (``leafnodes``: more fields of
    the block, e.g. a listener for a leaf that is a hub too), and the local
    account it binds when ``account`` is given and ``extra`` defines none."""
    if not isinstance(hubs, (list, tuple)):
        hubs = [hubs]
    userinfo = ""
    if user:
        userinfo = user + (":" + password if password is not None else "") + "@"
    urls = ["nats-leaf://%s127.0.0.1:%d" % (userinfo, hub.leaf_port) for hub in hubs]
    fields = ["urls: [%s]" % ", ".join(_quote(u) for u in urls)]
    if account:
        fields.append("account: %s" % _quote(account))
    if credentials:
        fields.append("credentials: %s" % _quote(credentials))
    if remote:
        fields.append(remote)
    text = ""
    if name:
        text += "server_name: %s\n" % _quote(name)
    if account and account not in ("$G", "$SYS") and "accounts" not in extra:
        text += "accounts { %s: {} }\n" % _quote(account)
    text += "leafnodes { %s remotes: [ { %s } ] }\n" % (leafnodes, ", ".join(fields))
    return text + extra


def leafz(server, query=""):
    url = "http://127.0.0.1:%d/leafz%s" % (server.http_port, query)
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_leafs(server, count=1, timeout=15.0):
    """Wait until ``server`` (started with ``-m``) lists ``count`` leaf links."""
    return wait_for(lambda: leafz(server)["leafnodes"] >= count, timeout=timeout,
                    message="%d leaf connection(s) on %s" % (count, server.name))


def leaf_interest(server, subject):
    """Whether a leaf link of ``server`` carries the peer's interest in ``subject``
    (``/leafz?subs=1``: the subscriptions the peer registered on the link)."""
    data = leafz(server, "?subs=1")
    return any(subject in (leaf.get("subscriptions_list") or []) for leaf in data["leafs"])
