"""The ``websocket {}`` block, read as nats-server's ``parseWebsocket`` and
checked as its ``validateWebsocketOptions`` (server/opts.go, websocket.go)."""

from urllib.parse import urlsplit

from pluggy_nats.conf.values import expect, expect_strings, go_type, parse_duration, parse_listen
from pluggy_nats.options import ConfigError
from pluggy_nats.tls import parse_tls

# Response headers a user may not set (they belong to the upgrade itself).
_RESERVED_HEADERS = ("host", "content-length", "connection", "upgrade", "nats-no-masking")


class WebsocketConfig:
    """What the block configures; defaults are nats-server's."""

    def __init__(self):
        self.host = "0.0.0.0"
        self.port = 0
        self.advertise = None
        self.no_tls = False
        self.tls = None  # pluggy_nats.tls.TLSConfig
        self.same_origin = False
        self.allowed_origins = []  # as configured (strings)
        self.handshake_timeout = 0.0  # seconds; 0 = the TLS timeout, or none
        self.compression = False
        self.user = self.password = self.token = None
        self.auth_timeout = None
        self.jwt_cookie = self.user_cookie = self.pass_cookie = self.token_cookie = None
        self.no_auth_user = None
        self.headers = {}  # extra response headers of the upgrade
        self.ping_interval = None

    @property
    def auth_override(self):
        """nats-server's wsConfigAuth: these replace the server's authorization
        for WebSocket clients."""
        return bool(self.user or self.token or self.no_auth_user)

    def origin_table(self):
        """host -> [(scheme, port)] of the allowed origins (wsSetOriginOptions)."""
        table = {}
        for origin in self.allowed_origins:
            parts = urlsplit(origin)
            host, port = host_and_port(parts.scheme == "https", parts.netloc)
            table.setdefault(host, []).append((parts.scheme, port))
        return table


def host_and_port(tls, hostport):
    """(lower-case host, port) with the scheme's default port (wsGetHostAndPort)."""
    host, sep, port = hostport.rpartition(":")
    if not sep or "]" in port:
        host, port = hostport, "443" if tls else "80"
    return host.strip("[]").lower(), port


def parse_websocket(block, position_of=None):
    """A :class:`WebsocketConfig` from the block; ConfigError lists every problem."""
    if not isinstance(block, dict):
        raise ConfigError([(position_of, "Expected websocket to be a map, got %s"
                            % go_type(block))])
    cfg = WebsocketConfig()
    errors = []
    position = getattr(block, "position", lambda key: None)
    for key, value in block.items():
        k = key.lower()
        pos = position(key) or position_of
        try:
            if k == "listen":
                host, cfg.port = parse_listen(value)
                cfg.host = host or cfg.host
            elif k == "port":
                cfg.port = expect(value, int, k)
            elif k in ("host", "net"):
                cfg.host = expect(value, str, k)
            elif k == "advertise":
                cfg.advertise = expect(value, str, k)
            elif k == "no_tls":
                cfg.no_tls = expect(value, bool, k)
            elif k == "tls":
                try:
                    cfg.tls = parse_tls(value, "websocket.tls", block_pos=pos)
                except ConfigError as exc:
                    errors.extend(exc.errors)
            elif k == "same_origin":
                cfg.same_origin = expect(value, bool, k)
            elif k in ("allowed_origins", "allowed_origin", "allow_origins", "allow_origin",
                       "origins", "origin"):
                cfg.allowed_origins = expect_strings(value, "allowed origins")
            elif k == "handshake_timeout":
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    raise ValueError("error parsing handshake timeout: unsupported type %s"
                                     % go_type(value))
                cfg.handshake_timeout = float(value) if isinstance(value, int) \
                    else parse_duration(value, pos)
            elif k in ("compress", "compression"):
                cfg.compression = expect(value, bool, k)
            elif k in ("authorization", "authentication"):
                _parse_auth(cfg, value)
            elif k in ("jwt_cookie", "user_cookie", "pass_cookie", "token_cookie",
                       "no_auth_user"):
                setattr(cfg, k, expect(value, str, k))
            elif k == "headers":
                if not isinstance(value, dict):
                    raise ValueError("error parsing headers: unsupported type %s"
                                     % go_type(value))
                for name, val in value.items():
                    if not isinstance(val, str):
                        errors.append((pos, "error parsing header key %s: unsupported type %s"
                                       % (name, go_type(val))))
                        continue
                    cfg.headers[name] = val
            elif k == "ping_interval":
                cfg.ping_interval = float(value) if isinstance(value, (int, float)) \
                    and not isinstance(value, bool) else parse_duration(value, pos)
            else:
                errors.append((pos, "unknown field %r" % key))
        except ConfigError as exc:
            errors.extend(exc.errors)
        except (TypeError, ValueError) as exc:
            errors.append((pos, str(exc)))
    if errors:
        raise ConfigError(errors)
    return cfg


def _parse_auth(cfg, value):
    if not isinstance(value, dict):
        raise ValueError("Expected authorization to be a map, got %s" % go_type(value))
    for key, val in value.items():
        k = key.lower()
        if k in ("user", "username"):
            cfg.user = str(val)
        elif k in ("pass", "password"):
            cfg.password = str(val)
        elif k == "token":
            cfg.token = str(val)
        elif k == "timeout":
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise ValueError("authorization.timeout: expected a number of seconds")
            cfg.auth_timeout = float(val)
        else:
            raise ValueError("unknown field %r in websocket authorization" % key)


def validate_websocket(cfg, server_options, users_configured, operator_mode, position=None):
    """nats-server's validateWebsocketOptions: the first failure, as Go words it."""
    if not cfg.port:
        return
    message = None
    if cfg.tls is None and not cfg.no_tls:
        message = "websocket requires TLS configuration"
    for origin in cfg.allowed_origins:
        if message:
            break
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https"):
            message = ("unable to parse allowed origin %r: allowed origins must be absolute "
                       "URLs with http or https scheme" % origin).replace("'", '"')
        elif not parts.netloc:
            message = 'unable to parse allowed origin "%s": host is required' % origin
    if not message and users_configured and cfg.user:
        message = "websocket authentication username not compatible with presence of users/nkeys"
    if not message and users_configured and cfg.token:
        message = "websocket authentication token not compatible with presence of users/nkeys"
    if not message and cfg.jwt_cookie and not operator_mode:
        message = ("trusted operators or trusted keys configuration is required for JWT "
                   'authentication via cookie "%s"' % cfg.jwt_cookie)
    if not message:
        for name in cfg.headers:
            lower = name.lower()
            if lower in _RESERVED_HEADERS:
                message = 'websocket: invalid header "%s" not allowed' % name
            elif lower.startswith("sec-websocket-"):
                message = ('websocket: invalid header "%s", "Sec-WebSocket-" prefix not allowed'
                           % name)
            if message:
                break
    if message:
        raise ConfigError([(position, message)])
