"""WebSocket plugin: nats-server's ``websocket {}`` block.

Browsers and edge networks reach NATS over WebSocket. After the HTTP upgrade
(:mod:`.upgrade`, checked in nats-server's order) a WebSocket connection is an
ordinary client connection (:mod:`.connection`): the same parser, delivery and
authentication, with bytes carried in binary frames. Framing and
permessage-deflate come from wsproto, a well-kept sans-IO library.
"""

from pluggy_nats import hookimpl

from .config import parse_websocket, validate_websocket
from .manager import WebsocketManager
from .transport import dial_link


@hookimpl
def nats_configure(config, server):
    # Links may dial ws:// and wss:// (leaf remotes), listener or not.
    server.links.register_transport("ws", dial_link)
    server.links.register_transport("wss", dial_link)
    block = None
    position = None
    for key in list(config.conf):
        if key.lower() == "websocket":
            block = config.conf[key]
            position = getattr(config.conf, "position", lambda k: None)(key)
            config.claim(key)
    if block is None:
        return
    cfg = parse_websocket(block, position)
    validate_websocket(cfg, config, users_configured=_users_configured(config),
                       operator_mode=_operator_mode(config), position=position)
    if cfg.port:
        server.pluginmanager.register(WebsocketManager(server, cfg), "websocket-manager")


def _users_configured(config):
    for key, value in config.conf.items():
        if key.lower() in ("authorization", "authentication") and isinstance(value, dict):
            if value.get("users") or value.get("nkeys"):
                return True
    return False


def _operator_mode(config):
    return any(key.lower() in ("operator", "operators", "trusted", "trusted_keys")
               for key in config.conf)
