"""The ``leafnodes {}`` block as nats-server reads it (opts.go ``parseLeafNodes``,
``parseLeafAuthorization``, ``parseLeafUsers``, ``parseRemoteLeafNodes``; the
start-time checks of leafnode.go ``validateLeafNode``), with nats-server's error
texts, each at the ``file:line:col`` of the key it is about.
"""

from urllib.parse import urlsplit

from pluggy_nats.conf import parse_duration
from pluggy_nats.conf.values import go_type
from pluggy_nats.options import ConfigError, parse_write_timeout
from pluggy_nats.subjects import is_valid_subject
from pluggy_nats.tls import parse_tls

DEFAULT_PORT = 7422
DEFAULT_RECONNECT = 1.0  # seconds (DEFAULT_LEAF_NODE_RECONNECT)
DEFAULT_FIRST_INFO_TIMEOUT = 1.0
MIN_VERSION = (2, 8, 0)
# nats-server's compression modes; every one is accepted and negotiated down
# to "off" on the wire (leafnode.md, Compression): we never frame with S2.
COMPRESSION_MODES = ("off", "disabled", "accept", "s2_fast", "s2_better", "s2_best",
                     "s2_auto", "s2_uncompressed", "not supported")
URL_SCHEMES = ("nats-leaf", "nats", "tls", "ws", "wss")


class LeafUser:
    __slots__ = ("user", "password", "account")

    def __init__(self, user, password, account=None):
        self.user = user
        self.password = password
        self.account = account


class LeafAuth:
    """``leafnodes.authorization``: what the hub requires of dialling leafs.
    Empty (no user, nkey or users) means the normal client auth decides."""

    def __init__(self):
        self.user = None
        self.password = None
        self.nkey = None
        self.account = None
        self.timeout = None
        self.users = []

    @property
    def configured(self):
        return bool(self.user or self.nkey or self.users)


class RemoteConfig:
    """One entry of ``leafnodes.remotes``."""

    def __init__(self):
        self.urls = []
        self.account = "$G"
        self.credentials = None
        self.nkey = None  # user seed
        self.tls = None
        self.hub = False
        self.deny_imports = []
        self.deny_exports = []
        self.no_randomize = False
        self.first_info_timeout = DEFAULT_FIRST_INFO_TIMEOUT
        self.dial_timeout = None
        self.compression = "s2_auto"
        self.isolate = False
        self.request_isolation = False
        self.disabled = False
        self.ignore_discovered_servers = False
        self.ws_compression = False
        self.ws_no_masking = False
        self.jetstream_cluster_migrate = False
        self.jetstream_cluster_migrate_delay = 0.0  # leader_migrate_delay (s), 0: at once
        self.position = None

    @property
    def is_websocket(self):
        return any(u.split("://", 1)[0].lower() in ("ws", "wss") for u in self.urls)

    def key(self):
        """What makes two remotes the same (``duplicate remote``)."""
        return (tuple(sorted(self.urls)), self.account)

    def deny_filters(self):
        return list(self.deny_imports), list(self.deny_exports)


class LeafConfig:
    def __init__(self):
        self.host = "0.0.0.0"
        self.port = None  # None: no listener (a leaf with remotes only)
        self.advertise = None
        self.no_advertise = False
        self.auth = LeafAuth()
        self.tls = None
        self.min_version = None
        self.reconnect = DEFAULT_RECONNECT
        self.dial_timeout = None
        self.compression = "s2_auto"
        self.isolate = False
        self.write_deadline = None
        self.write_timeout = None
        self.remotes = []

    def reloadable_view(self):
        """What reload may change (nats-server's leafnode reload options:
        remotes' deny lists and disabled flags, min_version, auth users,
        isolation, compression); everything else needs a restart."""
        return {
            "listen": (self.host, self.port), "advertise": self.advertise,
            "no_advertise": self.no_advertise, "tls": self.tls is not None,
            "remotes": [(r.key(), r.credentials, r.nkey, r.hub) for r in self.remotes],
        }


def _str(value):
    if not isinstance(value, str):
        raise ValueError("expected a string, got %r" % (value,))
    return value


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        # nats-server's own (type assertion) text for a non-integer port.
        raise ValueError("interface conversion: interface {} is %s, not int64"
                         % type(value).__name__.replace("str", "string"))
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise ValueError("expected a boolean, got %r" % (value,))
    return value


def _listen(text):
    text = str(text)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_PORT
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_version(text):
    parts = str(text).lstrip("v").split("-")[0].split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError("invalid leafnode's minimum version: %s" % text)
    return tuple(int(p) for p in parts)


def _subjects(value):
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str) or not is_valid_subject(item.encode()):
            raise ValueError("subject %s is not a valid subject" % _quoted(item))
    return items


def _quoted(value):
    return '"%s"' % value if isinstance(value, str) else repr(value)


def _compression(value):
    mode = value.get("mode") if isinstance(value, dict) else value
    if mode is True:
        return "s2_auto"
    if mode is False:
        return "off"
    mode = str(mode).lower()
    if mode not in COMPRESSION_MODES:
        raise ValueError("unsupported compression mode %s" % _quoted(mode))
    return mode


def hostport(url):
    """``host:port`` of a leaf URL (default port 7422)."""
    parts = urlsplit(url if "://" in url else "nats-leaf://" + url)
    return "%s:%d" % (parts.hostname, parts.port or DEFAULT_PORT)


def _check_url(text):
    parts = urlsplit(text if "://" in text else "nats-leaf://" + text)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise ValueError("unsupported url scheme %s" % _quoted(parts.scheme))
    parts.port  # noqa: B018 - raises ValueError on a bad port
    return text


class _Errors:
    """Errors collected at a block's key positions."""

    def __init__(self):
        self.items = []

    def add(self, pos, msg):
        self.items.append((pos, msg))


def _position_of(block):
    return getattr(block, "position", lambda key: None)


def parse_leafnodes(block, known_accounts=None, operator_mode=False, block_pos=None):
    """A :class:`LeafConfig` from the ``leafnodes`` block; ConfigError listing
    every problem. ``known_accounts`` (names, None = do not check) is what the
    remotes' ``account`` and the users' ``account`` may name."""
    cfg = LeafConfig()
    errors = _Errors()
    if not isinstance(block, dict):
        raise ConfigError([(block_pos, "leafnodes must be a map")])
    position = _position_of(block)
    for key, value in block.items():
        k = key.lower()
        pos = position(key)
        try:
            if k == "listen":
                cfg.host, cfg.port = _listen(value)
            elif k in ("host", "net"):
                cfg.host = _str(value)
            elif k == "port":
                cfg.port = _int(value)
                if cfg.port == -1:
                    cfg.port = 0
            elif k == "advertise":
                cfg.advertise = _str(value)
            elif k == "no_advertise":
                cfg.no_advertise = _bool(value)
            elif k == "authorization":
                _parse_auth(value, cfg.auth, errors, pos)
            elif k == "remotes":
                if not isinstance(value, list):
                    raise ValueError("Expected remotes field to be an array, got %s"
                                     % type(value).__name__.replace("str", "string"))
                for entry in value:
                    remote = _parse_remote(entry, errors, pos)
                    if remote is not None:
                        cfg.remotes.append(remote)
            elif k == "reconnect":
                cfg.reconnect = float(value) if isinstance(value, int) else parse_duration(value)
            elif k == "dial_timeout":
                cfg.dial_timeout = parse_duration(value)
            elif k == "tls":
                try:
                    cfg.tls = parse_tls(value, "leafnodes.tls", block_pos=pos)
                except ConfigError as exc:
                    errors.items.extend(exc.errors)
            elif k == "compression":
                cfg.compression = _compression(value)
            elif k in ("isolate_leafnode_interest", "isolate"):
                cfg.isolate = _bool(value)
            elif k == "min_version":
                version = parse_version(value)
                if version < MIN_VERSION:
                    raise ValueError("the minimum version should be at least 2.8.0")
                cfg.min_version = ".".join(map(str, version))
            elif k == "write_deadline":
                cfg.write_deadline = parse_duration(value)
            elif k == "write_timeout":
                cfg.write_timeout = parse_write_timeout(value)
            else:
                errors.add(pos, 'unknown field "%s"' % key)
        except (TypeError, ValueError, AttributeError) as exc:
            errors.add(pos, str(exc))
    _validate(cfg, errors, known_accounts, operator_mode, block_pos)
    if errors.items:
        raise ConfigError(errors.items)
    return cfg


def _parse_auth(value, auth, errors, block_pos):
    if not isinstance(value, dict):
        raise ValueError("Expected authorization to be a map")
    position = _position_of(value)
    for key, item in value.items():
        k = key.lower()
        pos = position(key)
        try:
            if k in ("user", "username"):
                auth.user = _str(item)
            elif k in ("pass", "password"):
                auth.password = str(item)
            elif k == "nkey":
                auth.nkey = _str(item)
            elif k == "account":
                auth.account = _str(item)
            elif k == "timeout":
                auth.timeout = float(item)
            elif k == "users":
                if not isinstance(item, list):
                    raise ValueError("Expected users field to be an array")
                for entry in item:
                    auth.users.append(_parse_user(entry, errors))
            else:
                errors.add(pos, 'unknown field "%s"' % key)
        except (TypeError, ValueError) as exc:
            errors.add(pos, str(exc))
    if auth.users and auth.user:
        errors.add(block_pos, "can not have a single user/pass and a users array")


def _parse_user(entry, errors):
    if not isinstance(entry, dict):
        raise ValueError("Expected user entry to be a map/struct, got %r" % (entry,))
    position = _position_of(entry)
    user = LeafUser(None, None)
    for key, item in entry.items():
        k = key.lower()
        if k in ("user", "username"):
            user.user = str(item)
        elif k in ("pass", "password"):
            user.password = str(item)
        elif k == "account":
            user.account = str(item)
        else:
            errors.add(position(key), 'unknown field "%s"' % key)
    return user


def _parse_remote(entry, errors, block_pos):
    if not isinstance(entry, dict):
        errors.add(block_pos, "Expected remote leafnode entry to be a map/struct, got %r"
                   % (entry,))
        return None
    position = _position_of(entry)
    remote = RemoteConfig()
    remote.position = block_pos
    for key, value in entry.items():
        k = key.lower()
        pos = position(key)
        if remote.position is block_pos and pos is not None:
            remote.position = pos
        try:
            if k == "url":
                remote.urls.append(_check_url(_str(value)))
            elif k == "urls":
                for url in (value if isinstance(value, list) else [value]):
                    remote.urls.append(_check_url(_str(url)))
            elif k in ("account", "local"):
                remote.account = _str(value)
            elif k in ("credentials", "creds"):
                remote.credentials = _str(value)
            elif k == "nkey":
                seed = _str(value)
                if not (seed.startswith("SU") and len(seed) == 58):
                    raise ValueError('Remote leafnode nkey is not a valid seed: "%s"' % seed)
                remote.nkey = seed
            elif k == "tls":
                try:
                    remote.tls = parse_tls(value, "leafnodes.remotes.tls", block_pos=pos,
                                           client_side=True, dial_only=True)
                except ConfigError as exc:
                    errors.items.extend(exc.errors)
            elif k in ("jetstream_cluster_migrate", "js_cluster_migrate"):
                _parse_migrate(remote, value, errors, pos)
            elif k in _REMOTE_FIELDS:
                attr, convert = _REMOTE_FIELDS[k]
                setattr(remote, attr, convert(value))
            elif k == "proxy":  # an HTTP proxy for WebSocket remotes
                errors.add(pos, "leafnodes.remotes.proxy is not supported yet "
                                "(an HTTP proxy for WebSocket remotes)")
            else:
                errors.add(pos, 'unknown field "%s"' % key)
        except (TypeError, ValueError) as exc:
            errors.add(pos, str(exc))
    if remote.credentials and remote.nkey:
        errors.add(remote.position, "Remoteleafnode can not have both a nkey and credentials")
    return remote


# remote key -> (RemoteConfig attribute, converter): the fields that are one value
_REMOTE_FIELDS = {
    "hub": ("hub", _bool),
    "deny_imports": ("deny_imports", _subjects),
    "deny_exports": ("deny_exports", _subjects),
    "no_randomize": ("no_randomize", _bool),
    "first_info_timeout": ("first_info_timeout", parse_duration),
    "dial_timeout": ("dial_timeout", parse_duration),
    "compression": ("compression", _compression),
    "isolate_leafnode_interest": ("isolate", _bool),
    "isolate": ("isolate", _bool),
    "request_isolation": ("request_isolation", _bool),
    "disabled": ("disabled", _bool),
    "ignore_discovered_servers": ("ignore_discovered_servers", _bool),
    "ws_compression": ("ws_compression", _bool),
    "ws_no_masking": ("ws_no_masking", _bool),
}


def _parse_migrate(remote, value, errors, pos):
    """``jetstream_cluster_migrate``: a bool, or a map (``true`` with an
    optional ``leader_migrate_delay``), with Go's errors (opts.go)."""
    if isinstance(value, bool):
        remote.jetstream_cluster_migrate = value
        return
    if not isinstance(value, dict):
        # Go reports this one without a position
        errors.add(None, "Expected boolean or map for jetstream_cluster_migrate, got %s"
                   % go_type(value))
        return
    remote.jetstream_cluster_migrate = True
    for key, delay in value.items():
        if key != "leader_migrate_delay":
            continue  # Go reads only this key
        try:
            remote.jetstream_cluster_migrate_delay = float(delay) if isinstance(
                delay, (int, float)) and not isinstance(delay, bool) else parse_duration(delay)
        except (TypeError, ValueError):
            errors.add(_position_of(value)(key) or pos,
                       'error parsing leader_migrate_delay: time: invalid duration "%s"'
                       % delay)


def _validate(cfg, errors, known_accounts, operator_mode, block_pos):
    """leafnode.go ``validateLeafNode``: duplicates, accounts, URL kinds."""
    seen = set()
    for remote in cfg.remotes:
        key = remote.key()
        if key in seen and remote.urls:
            errors.add(remote.position, "duplicate remote urls=[%s], account=\"%s\""
                       % (" ".join('"%s"' % u for u in remote.urls), remote.account))
        seen.add(key)
        if remote.urls and remote.is_websocket and \
                not all(u.split("://", 1)[0].lower() in ("ws", "wss") for u in remote.urls):
            errors.add(remote.position,
                       "remote leaf node configuration cannot have a mix of websocket and "
                       "non-websocket urls: [%s]" % " ".join('"%s"' % u for u in remote.urls))
        if known_accounts is not None and not operator_mode and \
                remote.account not in known_accounts:
            errors.add(remote.position, 'cannot find local account "%s" specified in '
                       "leafnode remote" % remote.account)
    if known_accounts is not None and not operator_mode:
        for user in cfg.auth.users:
            if user.account and user.account not in known_accounts:
                errors.add(block_pos, 'cannot find local account "%s" specified in '
                           "leafnode authorization" % user.account)
        if cfg.auth.account and cfg.auth.account not in known_accounts:
            errors.add(block_pos, 'cannot find local account "%s" specified in '
                       "leafnode authorization" % cfg.auth.account)
    if operator_mode and cfg.auth.users:
        errors.add(block_pos, "operator mode does not allow specifying users in leafnode config")
