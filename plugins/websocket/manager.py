"""WebsocketManager: the WebSocket listener, the INFO a WebSocket client sees,
the block's own authorization (nats-server's "auth override"), and the
/varz websocket block."""

import socket

import structlog
from pluggy_nats_plugins.auth.manager import check_secret  # bcrypt or plain, as the auth plugin

from pluggy_nats import Allow, Deny, hookimpl

from .connection import WebSocketClientConnection

DEFAULT_HANDSHAKE_TIMEOUT = 2.0  # nats-server waits forever when unset; we do not


class WebsocketManager:
    def __init__(self, server, config):
        self.server = server
        self.config = config
        self.log = structlog.get_logger("pluggy_nats.websocket")
        self.listener = None
        self.port = None
        self.peer_urls = {}  # route peer's server_id -> its WebSocket URLs

    @property
    def scheme(self):
        return "wss" if self.config.tls is not None else "ws"

    def handshake_timeout(self):
        cfg = self.config
        if cfg.handshake_timeout:
            return cfg.handshake_timeout
        if cfg.tls is not None:
            return cfg.tls.timeout + DEFAULT_HANDSHAKE_TIMEOUT
        return DEFAULT_HANDSHAKE_TIMEOUT

    # -- hooks -------------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        cfg = self.config
        self.listener = server.listen(cfg.host, cfg.port, self._accept, name="websocket")
        self.port = self.listener.address[1]
        self.log.info("Listening for websocket clients on %s://%s:%d"
                      % (self.scheme, cfg.host, self.port))
        if cfg.tls is None:
            self.log.warning("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!")

    @hookimpl
    def nats_info(self, conn, info):
        if not getattr(conn, "is_websocket", False):
            return
        info["host"], info["port"] = self.config.host, self.port
        tls = self.config.tls is not None
        info["tls_required"] = info["tls_available"] = tls
        if not tls:
            info.pop("tls_required", None)
            info.pop("tls_available", None)
            info.pop("tls_verify", None)
        if self.config.auth_override:
            info["auth_required"] = True
        urls = self.connect_urls()
        if urls:
            info["connect_urls"] = urls
        else:
            info.pop("connect_urls", None)

    @hookimpl(tryfirst=True)
    def nats_authenticate(self, conn, connect):
        """The block's user/password or token replace the server's own
        authorization for WebSocket clients (nats-server's auth override)."""
        if not getattr(conn, "is_websocket", False):
            return None
        cfg = self.config
        if cfg.token:
            if check_secret(cfg.token, connect.get("auth_token") or ""):
                return Allow()
            return Deny("websocket token mismatch")
        if cfg.user:
            if connect.get("user") == cfg.user and check_secret(cfg.password or "",
                                                                connect.get("pass") or ""):
                return Allow(user=cfg.user)
            return Deny("websocket user/password mismatch")
        return None

    @hookimpl
    def nats_varz(self, server, varz):
        """nats-server's WebsocketOptsVarz (omitempty fields left out)."""
        cfg = self.config
        block = {"host": cfg.host, "port": self.port or 0, "advertise": cfg.advertise,
                 "no_auth_user": cfg.no_auth_user, "jwt_cookie": cfg.jwt_cookie,
                 "handshake_timeout": int(cfg.handshake_timeout * 1e9),
                 "auth_timeout": cfg.auth_timeout, "no_tls": cfg.no_tls,
                 "tls_map": bool(cfg.tls is not None and cfg.tls.verify_and_map),
                 "same_origin": cfg.same_origin, "allowed_origins": list(cfg.allowed_origins),
                 "compression": cfg.compression}
        varz["websocket"] = {k: v for k, v in block.items() if v}
        urls = self.connect_urls()
        if urls:
            varz["ws_connect_urls"] = urls

    @hookimpl
    def nats_link_info(self, link, info):
        """Routes carry each server's WebSocket URL (nats-server ``ws_connect_urls``)."""
        if link.link_kind.name == "route":
            info["ws_connect_urls"] = self.own_urls()

    @hookimpl
    def nats_link_info_received(self, link, info):
        if link.link_kind.name == "route" and link.remote_id:
            urls = info.get("ws_connect_urls")
            if isinstance(urls, list) and all(isinstance(u, str) for u in urls):
                self.peer_urls[link.remote_id] = urls

    @hookimpl
    def nats_client_closed(self, conn, reason):
        if getattr(conn, "link_kind", None) is not None and conn.remote_id:
            self.peer_urls.pop(conn.remote_id, None)

    # -- connections ----------------------------------------------------------------

    def own_urls(self):
        """Where WebSocket clients reach this server: ``advertise``, else the
        listener's address when it names one (not 0.0.0.0)."""
        cfg = self.config
        if cfg.advertise:
            return [cfg.advertise]
        if self.port and cfg.host not in ("0.0.0.0", "::", ""):
            return ["%s:%d" % (cfg.host, self.port)]
        return []

    def connect_urls(self):
        """What WebSocket clients may fail over to: ours and the cluster's."""
        urls = list(self.own_urls())
        for peer in self.peer_urls.values():
            urls.extend(u for u in peer if u not in urls)
        return urls

    def _accept(self, sock, addr):
        server = self.server
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = WebSocketClientConnection(server, sock, addr, self)
        if self.config.tls is not None:
            conn.tls_config = self.config.tls
            conn.tls_first = True  # TLS, then the HTTP upgrade
        conn.run()  # registered as a client once the upgrade is done
