"""Route plugin: clusters of servers joined in a full mesh (PROTOCOL.md 1.2).

Configured with nats-server's ``cluster {}`` block or its flags ``--cluster``,
``--routes``, ``--cluster_name``, ``--no_advertise``. Built on the shared link
mechanism in :mod:`pluggy_nats.links`.
"""

from pluggy_nats import hookimpl
from pluggy_nats.conf.values import expect, expect_strings, go_type, parse_duration, parse_listen
from pluggy_nats.options import ConfigError, parse_write_timeout
from pluggy_nats.permissions import PermissionSpec, SubjectPermission
from pluggy_nats.subjects import is_valid_subject
from pluggy_nats.tls import parse_tls

from .manager import RouteManager

DEFAULT_POOL_SIZE = 3
# Accepted for config compatibility; routes are never compressed (we answer
# "off", which every nats-server mode falls back to).
COMPRESSION_MODES = ("off", "accept", "s2_fast", "s2_better", "s2_best", "s2_auto",
                     "s2_uncompressed")


class ClusterConfig:
    """The ``cluster {}`` block, flags applied on top."""

    def __init__(self):
        self.name = None
        self.host = "0.0.0.0"
        self.port = 6222
        self.routes = []
        self.advertise_host = None
        self.advertise_port = None
        self.no_advertise = False
        self.connect_retries = 0
        self.pool_size = DEFAULT_POOL_SIZE
        self.accounts = []
        self.compression = "accept"
        self.permissions = None  # PermissionSpec: import -> publish, export -> subscribe
        self.user = None  # credentials we present when soliciting
        self.password = None
        self.auth_user = None  # credentials we require from peers
        self.auth_password = None
        self.tls = None  # pluggy_nats.tls.TLSConfig: TLS on every route, both sides
        self.write_deadline = None  # None: the server's (links/link.py)
        self.write_timeout = None

    def pinned_accounts(self, server):
        """Accounts with a dedicated route: the configured ones and the system account."""
        names = list(self.accounts)
        system = server.accounts.system_account
        if system is not None and system.name not in names:
            names.append(system.name)
        return names


def _listen(value):
    """(host, port, userinfo) from ``nats://user:pass@host:port`` or ``host:port``;
    port -1 picks a free one (urlsplit refuses negative ports, hence by hand)."""
    text = str(value)
    user = password = None
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.rstrip("/")
    if "@" in text:
        userinfo, text = text.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port) if port else 6222, (user, password)


def _subject_permission(value):
    """``"subj"`` | ``[subjs]`` | ``{allow: .., deny: ..}`` -> SubjectPermission."""
    def subjects(v):
        if v is None:
            return None
        items = [v] if isinstance(v, str) else list(v)
        for item in items:
            if not isinstance(item, str) or not is_valid_subject(item.encode()):
                raise ValueError("invalid subject %r" % (item,))
        return items

    if isinstance(value, dict):
        unknown = set(value) - {"allow", "deny"}
        if unknown:
            raise ValueError("unknown field(s) %s" % ", ".join(sorted(unknown)))
        return SubjectPermission(allow=subjects(value.get("allow")),
                                 deny=subjects(value.get("deny")))
    return SubjectPermission(allow=subjects(value))


def parse_route_permissions(value):
    """``permissions { import, export }``: import is what we will take from
    peers (we only advertise that interest), export what we will send them
    (we only accept their interest in that)."""
    if not isinstance(value, dict):
        raise ValueError("permissions must be a map with import/export")
    unknown = set(value) - {"import", "export"}
    if unknown:
        raise ValueError("unknown field(s) %s" % ", ".join(sorted(unknown)))
    imp = _subject_permission(value["import"]) if "import" in value else None
    exp = _subject_permission(value["export"]) if "export" in value else None
    return PermissionSpec(publish=imp, subscribe=exp)


def _authorization(cfg, value):
    """``cluster { authorization { user, password, timeout } }``."""
    for key, item in expect(value, dict, "authorization").items():
        k = key.lower()
        if k == "user":
            cfg.auth_user = expect(item, str, "authorization.user")
        elif k in ("password", "pass"):
            cfg.auth_password = expect(item, str, "authorization.password")
        elif k == "timeout":
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise ValueError("expected a duration for authorization.timeout, got %s"
                                 % go_type(item))
        else:
            raise ValueError("unknown field %r in authorization" % key)


def parse_cluster(block, args):
    """A ClusterConfig from the config block (dict or None) and the flags.
    Every value is type-checked; errors carry the key's file:line."""
    cfg = ClusterConfig()
    errors = []
    position = getattr(block, "position", lambda key: None)
    if block is not None and not isinstance(block, dict):
        raise ConfigError([(None, "Expected map to define cluster, got %s" % go_type(block))])
    for key, value in (block or {}).items():
        k = key.lower()
        try:
            if k == "name":
                cfg.name = expect(value, str, "name")
            elif k == "listen":
                host, cfg.port = parse_listen(value)
                cfg.host = host or cfg.host
            elif k in ("host", "net"):
                cfg.host = expect(value, str, key)
            elif k == "port":
                cfg.port = expect(value, int, "port")
            elif k == "routes":
                cfg.routes = expect_strings(value, "routes")
            elif k in ("advertise", "cluster_advertise"):
                host, port, _ = _listen(expect(value, str, key))
                cfg.advertise_host, cfg.advertise_port = host, port
            elif k == "no_advertise":
                cfg.no_advertise = expect(value, bool, "no_advertise")
            elif k == "connect_retries":
                cfg.connect_retries = expect(value, int, "connect_retries")
            elif k == "pool_size":
                cfg.pool_size = max(expect(value, int, "pool_size"), 1)
            elif k == "accounts":
                cfg.accounts = expect_strings(value, "accounts")
            elif k == "authorization":
                _authorization(cfg, value)
            elif k == "compression":
                mode = value.get("mode") if isinstance(value, dict) else value
                mode = "accept" if mode is True else "off" if mode is False else mode
                if mode not in COMPRESSION_MODES:
                    raise ValueError("unknown mode %r (one of %s)"
                                     % (mode, ", ".join(COMPRESSION_MODES)))
                cfg.compression = mode
            elif k == "permissions":
                cfg.permissions = parse_route_permissions(value)
            elif k == "write_deadline":
                cfg.write_deadline = parse_duration(value)
            elif k == "write_timeout":
                cfg.write_timeout = parse_write_timeout(value)
            elif k == "tls":
                # nats-server always verifies route peers (both sides present
                # and check certificates), so verify is implied.
                try:
                    cfg.tls = parse_tls(value, "cluster.tls", force_verify=True,
                                        block_pos=position(key), client_side=True)
                except ConfigError as exc:
                    errors.extend(exc.errors)
            else:
                errors.append((position(key), "cluster: unknown field %r" % key))
        except (TypeError, ValueError, AttributeError) as exc:
            errors.append((position(key), "cluster.%s: %s" % (key, exc)))
    if args is not None:
        if getattr(args, "cluster", None):
            cfg.host, cfg.port, (user, password) = _listen(args.cluster)
            if user:
                cfg.auth_user, cfg.auth_password = user, password
        if getattr(args, "routes", None):
            cfg.routes = [r.strip() for r in args.routes.split(",") if r.strip()]
        if getattr(args, "cluster_name", None):
            cfg.name = args.cluster_name
        if getattr(args, "no_advertise", None):
            cfg.no_advertise = True
    if errors:
        raise ConfigError(errors)
    return cfg


@hookimpl
def nats_addoption(parser):
    group = parser.add_argument_group("cluster (route plugin)")
    group.add_argument("--cluster", "--cluster_listen", dest="cluster", metavar="URL",
                       help="cluster URL to listen on for routes, e.g. nats://0.0.0.0:6222")
    group.add_argument("--routes", metavar="URLS", help="comma-separated routes to solicit")
    group.add_argument("--cluster_name", metavar="NAME", help="cluster name")
    group.add_argument("--no_advertise", action="store_true", default=None,
                       help="do not advertise known cluster URLs to clients")


@hookimpl
def nats_configure(config, server):
    block = block_key = None
    for key in list(config.conf):
        if key.lower() == "cluster":
            block, block_key = config.conf[key], key
            config.claim(key)
    args = config.args
    if block is None and not (args is not None and getattr(args, "cluster", None)):
        return
    try:
        cfg = parse_cluster(block, args)
    except ConfigError as exc:
        # the block itself is not a map: report where its key is
        getpos = getattr(config.conf, "position", None)
        pos = getpos(block_key) if getpos and block_key else None
        raise ConfigError([(p or pos, m) for p, m in exc.errors]) from None
    server.pluginmanager.register(RouteManager(server, cfg), "route-manager")
