"""Gateway plugin: super-clusters, clusters joined by gateways (GATEWAY.md).

Configured with nats-server's ``gateway {}`` block (there are no command-line
flags for it in nats-server either). Built on the shared link layer in
:mod:`pluggy_nats.links`; this package only adds the gateway's config block,
its handshake and verbs (:mod:`.wire`), its interest modes (:mod:`.interest`)
and its forwarding rule.
"""

from pluggy_nats import hookimpl
from pluggy_nats.options import ConfigError

from .config import parse_gateway, validate


def _cluster_name(config):
    """``cluster.name`` from the file, or ``--cluster_name``: the gateway's name
    must equal it (nats-server validateCluster)."""
    name = None
    for key, value in config.conf.items():
        if key.lower() == "cluster" and isinstance(value, dict):
            for k, v in value.items():
                if k.lower() == "name" and isinstance(v, str):
                    name = v
    args = config.args
    if args is not None and getattr(args, "cluster_name", None):
        name = args.cluster_name
    return name


def read_config(config):
    """The GatewayConfig of ``config`` (an Options), validated; None when the
    file has no enabled ``gateway {}`` block."""
    block = key = None
    for k in list(config.conf):
        if k.lower() == "gateway":
            key, block = k, config.conf[k]
            config.claim(k)
    if key is None:
        return None
    getpos = getattr(config.conf, "position", lambda k: None)
    cfg = parse_gateway(block, getpos(key))
    cluster_name = validate(cfg, _cluster_name(config))
    cfg.cluster_name = cluster_name
    return cfg if cfg.enabled else None


@hookimpl
def nats_configure(config, server):
    cfg = read_config(config)
    if cfg is None:
        return
    from .manager import GatewayManager

    server.pluginmanager.register(GatewayManager(server, cfg), "gateway-manager")


__all__ = ["ConfigError", "read_config"]
