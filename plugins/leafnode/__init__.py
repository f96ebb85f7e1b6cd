"""Leafnode plugin: edge servers that dial out to a hub and bridge subject
interest between the two, wire-compatible with nats-server's leaf nodes.

Configured with nats-server's ``leafnodes {}`` block (:mod:`.config`): a
listener for leafs to dial (this server is then their *hub*) and ``remotes``
this server dials (it is then a *spoke*). Each link binds one account on each
side, which is what keeps tenants apart. The wire protocol lives, sans-IO, in
:mod:`.protocol`; credentials in :mod:`.creds`. Built on the shared link layer.
"""

from pluggy_nats import hookimpl
from pluggy_nats.options import ConfigError

from .config import parse_leafnodes


def _known_accounts(conf):
    """Account names a remote or a leaf user may name: the config's
    ``accounts`` block, the global account and the system account."""
    names = {"$G", "$SYS"}
    for key, value in conf.items():
        if key.lower() == "accounts" and isinstance(value, dict):
            names.update(value)
        elif key.lower() == "system_account" and isinstance(value, str):
            names.add(value)
    return names


def _operator_mode(conf):
    return any(k.lower() in ("operator", "operators", "trusted", "trusted_keys") for k in conf)


@hookimpl
def nats_configure(config, server):
    block = key = None
    for name in list(config.conf):
        if name.lower() == "leafnodes":
            key, block = name, config.conf[name]
            config.claim(name)
    if block is None:
        return
    getpos = getattr(config.conf, "position", None)
    block_pos = getpos(key) if getpos else None
    cfg = parse_leafnodes(block, _known_accounts(config.conf), _operator_mode(config.conf),
                          block_pos)
    if cfg.port is None and not cfg.remotes:
        return
    from .manager import LeafManager

    try:
        server.pluginmanager.register(LeafManager(server, cfg), "leafnode-manager")
    except ValueError as exc:
        raise ConfigError([(block_pos, str(exc))]) from None
