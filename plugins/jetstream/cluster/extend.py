"""A leaf server extending its hub's JetStream (same domain, or none, and
the system account shared over a leaf remote), as nats-server does it
(JETSTREAM-CLUSTER.md section 6; Go: jetstream.go ``canExtendOtherDomain``,
jetstream_cluster.go ``enableJetStreamClustering``/``setupMetaGroup``,
leafnode.go ``addLeafNodeConnection``).

* :func:`can_extend`: a remote whose local account is the system account and
  whose ``deny_imports`` hold nothing within ``$NRG.>``.
* :func:`mode`: whether JetStream runs clustered here. A server with such a
  remote runs clustered even without routes or a cluster name (its cluster
  is then its server name, as Go's ``leafNoCluster``); a standalone server
  (no cluster, no gateway) only with ``extension_hint: will_extend``.
* The meta node is an *observer* (never campaigns: leadership stays on the
  hub side) unless ``extension_hint: no_extend``; a restart remembers what
  the link showed (:class:`ExtensionState`, Go's peer state ``domainExt``).
* When the solicited system-account link comes up (:func:`link_up`): same
  domain, observer on (a meta log this server built on its own is dropped:
  the hub's is the group's, Go's ``Reset``); domains differ, observer off
  (this server's own meta group elects).

Our meta group ``_pn_meta_`` then spans the link: hellos and RAFT are
system-account subscriptions, which the shared link carries (no denies
for the system account with equal domains, plugins/leafnode/jsdomain.py).
"""

import json
import os

from pluggy_nats.server import StartError
from pluggy_nats.subjects import subset_match

WILL_EXTEND, NO_EXTEND = "will_extend", "no_extend"
EXTENDED, NOT_EXTENDED, UNDETERMINED = "extended", "not_extended", "undetermined"
STATE_FILE = "extension.json"


def _leaf(server):
    return server.pluginmanager.get_plugin("leafnode-manager")


def can_extend(server):
    """Go's ``canExtendOtherDomain``: the first remote bound to the system
    account decides; a deny_imports entry within ``$NRG.>`` rules it out."""
    leaf, system = _leaf(server), server.accounts.system_account
    if leaf is None or system is None:
        return False
    for remote in leaf.config.remotes:
        if remote.account == system.name:
            return not any(subset_match(d.encode(), b"$NRG.>") for d in remote.deny_imports)
    return False


def mode(js, log):
    """``(clustered, route manager or None, extend)`` for this server, with
    Go's refusals (no cluster name, no routes and nothing to extend, a bad
    ``extension_hint``)."""
    server = js.server
    route = server.pluginmanager.get_plugin("route-manager")
    gateway = server.pluginmanager.get_plugin("gateway-manager")
    extend = can_extend(server)
    cfg = js.config
    if route is not None:
        # Go's validateJetStreamOptions, for a server with a cluster port
        hint = cfg.extension_hint.lower()
        if hint not in (WILL_EXTEND, NO_EXTEND, ""):
            raise StartError("expected 'no_extend' for string value, got '%s'" % hint)
        cfg.extension_hint = hint
        if not route.config.name:
            raise StartError("jetstream cluster requires `cluster.name` to be set")
        if not route.config.routes and not extend:
            raise StartError("Can't start JetStream: JetStream cluster requires configured "
                             "routes or solicited leafnode for the system account")
        return True, route, extend
    if not extend:
        return False, None, False
    if gateway is None and cfg.extension_hint != WILL_EXTEND:
        log.info("Standalone server started in clustered mode do not support extending "
                 "domains")
        log.info('Manually disable standalone mode by setting the JetStream Option '
                 '"extension_hint: %s"' % WILL_EXTEND)
        return False, None, False
    return True, None, True


class ExtensionState:
    """Go's peer state ``domainExt``: whether the system-account link showed
    an extension (``extended``), a different domain (``not_extended``) or
    nothing yet; kept beside the meta log so a restart starts the meta node
    in the mode the link last showed."""

    def __init__(self, directory):
        self.path = os.path.join(directory, STATE_FILE)

    def read(self):
        try:
            with open(self.path) as f:
                value = json.load(f).get("domain_ext")
        except (OSError, ValueError, AttributeError):
            return UNDETERMINED
        return value if value in (EXTENDED, NOT_EXTENDED) else UNDETERMINED

    def write(self, value):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"domain_ext": value}, f)
        os.replace(tmp, self.path)


def initial_observer(m, recovering):
    """Go's setupMetaGroup: observer when extending unless ``no_extend``;
    on a restart the state the link last showed decides."""
    cfg = m.js.config
    observer = m.extend and cfg.extension_hint != NO_EXTEND
    state = m.ext_state
    if not recovering:
        if observer:
            m.log.info("Turning JetStream metadata controller Observer Mode on")
            _hint_notice(m)
        return observer
    if observer:
        seen = state.read()
        if seen == EXTENDED:
            m.log.info("Keeping JetStream metadata controller Observer Mode on - due to "
                       "previous contact")
        elif seen == NOT_EXTENDED:
            m.log.info("Turning JetStream metadata controller Observer Mode off - due to "
                       "previous contact")
            observer = False
        else:
            m.log.info("Turning JetStream metadata controller Observer Mode on - no "
                       "previous contact")
            _hint_notice(m)
    else:
        state.write(UNDETERMINED)
    return observer


def _hint_notice(m):
    m.log.info("In cases where the JetStream domain is not intended to be extended through "
               "a SYS account leaf node connection and waiting for leader election until "
               'first contact is not acceptable, manually disable Observer Mode by setting '
               'the JetStream Option "extension_hint: %s"' % NO_EXTEND)


def link_up(m, link):
    """A leaf link came up (Go's addLeafNodeConnection, system account,
    solicited side): same domain turns the meta observer on, a different
    one turns it off."""
    server = m.server
    if link.link_kind.name != "leaf" or not link.solicited:
        return
    system = server.accounts.system_account
    if system is None or getattr(link, "bound_account", None) is not system:
        return
    remote_domain = (getattr(link, "remote_info", None) or {}).get("domain") or ""
    if not isinstance(remote_domain, str):
        remote_domain = ""
    if remote_domain != (m.js.config.domain or ""):
        m.link_not_extended()
    else:
        m.link_extended(link.remote_name)
