"""The ``gateway {}`` block as nats-server reads it (``opts.go`` parseGateway,
parseGateways; ``gateway.go`` validateGatewayOptions; ``server.go``
validateCluster), with its error texts.

Every problem is collected as ``(Position or None, message)`` and raised
together. Go reports the validation errors (no port, no name, a remote without
URL, the cluster name conflict) without a position; we add the position of the
key they are about, which is where an operator has to look anyway.
"""

from urllib.parse import urlsplit

from pluggy_nats.conf import ConfigError, parse_duration
from pluggy_nats.options import parse_write_timeout
from pluggy_nats.tls import parse_tls

from .wire import goq

DEFAULT_AUTH_TIMEOUT = 2.0  # seconds (nats-server AUTH_TIMEOUT)


class RemoteGateway:
    """One entry of ``gateways: [...]``: a remote cluster and its URLs."""

    def __init__(self, name=None, urls=None, tls=None, implicit=False):
        self.name = name
        self.urls = list(urls or [])  # "nats://[user:pass@]host:port" strings
        self.tls = tls
        self.implicit = implicit  # learnt by gossip, not configured

    def __eq__(self, other):
        return isinstance(other, RemoteGateway) and (self.name, self.urls, self.tls) == \
            (other.name, other.urls, other.tls)

    def __repr__(self):
        return "RemoteGateway(%r, %r)" % (self.name, self.urls)


class GatewayConfig:
    """The parsed block. ``port`` 0 means "not set" (an error once a name is
    given), -1 a random port."""

    def __init__(self):
        self.name = None
        self.host = "0.0.0.0"
        self.port = 0
        self.advertise = None  # "host:port"
        self.gateways = []  # RemoteGateway, our own name left out
        self.own_urls = []  # URLs of the entry carrying our own name (ignored for dialling)
        self.user = None
        self.password = None
        self.auth_timeout = DEFAULT_AUTH_TIMEOUT
        self.tls = None
        self.connect_retries = 0
        self.connect_backoff = False
        self.reject_unknown = False
        self.write_deadline = None
        self.write_timeout = None
        self.position = None  # of the ``gateway`` key, for validation errors

    @property
    def enabled(self):
        return bool(self.name) and self.port != 0

    def remote(self, name):
        for gw in self.gateways:
            if gw.name == name:
                return gw
        return None


def _str(value, what):
    if not isinstance(value, str):
        raise ValueError("%s: expected a string, got %r" % (what, value))
    return value


def _int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("%s: expected an integer, got %r" % (what, value))
    return value


def _bool(value, what):
    if not isinstance(value, bool):
        raise ValueError("%s: expected a boolean, got %r" % (what, value))
    return value


def parse_listen(value):
    """``listen``: a port, or ``host:port`` (Go's parseListen and its texts)."""
    if isinstance(value, bool):
        raise ValueError("expected port or host:port, got bool")
    if isinstance(value, int):
        return None, value
    if not isinstance(value, str):
        raise ValueError("expected port or host:port, got %s" % type(value).__name__)
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError("could not parse address string %s" % goq(value))
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ValueError("could not parse port %s" % goq(port)) from None


def parse_url(value):
    """A remote's URL (``nats://[user:pass@]host:port``); Go's parseURL text."""
    text = _str(value, "url").strip()
    try:
        parts = urlsplit(text if "://" in text else "nats://" + text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("error parsing gateway url [%s]" % goq(text)) from None
    if not parts.hostname:
        raise ValueError("error parsing gateway url [%s]" % goq(text))
    return text


def _tls(value, where, pos, errors):
    """A gateway ``tls {}`` block (nats-server always verifies gateway peers,
    and dials with it too); its errors join ``errors``."""
    try:
        return parse_tls(value, where, force_verify=True, block_pos=pos, client_side=True)
    except ConfigError as exc:
        errors.extend(exc.errors)
        return None


def _parse_authorization(value, pos, cfg, errors):
    """One user only (Go: users, token and callout are errors; permissions
    are accepted and ignored)."""
    if not isinstance(value, dict):
        errors.append((pos, "authorization: expected a map"))
        return
    if "users" in value or "nkeys" in value:
        errors.append((pos, "Gateway authorization does not allow multiple users"))
        return
    if "token" in value:
        errors.append((pos, "Gateway authorization does not support tokens"))
        return
    if "auth_callout" in value or "callout" in value:
        errors.append((pos, "Gateway authorization does not support callouts"))
        return
    getpos = getattr(value, "position", lambda key: None)
    for key, item in value.items():
        k = key.lower()
        try:
            if k in ("user", "username"):
                cfg.user = _str(item, "user")
            elif k in ("pass", "password"):
                cfg.password = _str(item, "password")
            elif k == "timeout":
                cfg.auth_timeout = parse_duration(item) if isinstance(item, str) else float(item)
            elif k == "permissions":
                pass  # parsed by Go, never used for gateways
            else:
                errors.append((getpos(key) or pos, "unknown field %s" % goq(key)))
        except (TypeError, ValueError) as exc:
            errors.append((getpos(key) or pos, str(exc)))


def _parse_remotes(value, pos, errors):
    """``gateways: [{name, url | urls, tls}]``: ``url`` appends, ``urls`` replaces."""
    if not isinstance(value, list):
        errors.append((pos, "Expected gateways field to be an array, got %s"
                       % type(value).__name__))
        return []
    remotes = []
    for entry in value:
        if not isinstance(entry, dict):
            errors.append((pos, "Expected gateway entry to be a map/struct, got %r" % (entry,)))
            continue
        getpos = getattr(entry, "position", lambda key: None)
        gw = RemoteGateway()
        for key, item in entry.items():
            k = key.lower()
            kpos = getpos(key) or pos
            try:
                if k == "name":
                    gw.name = _str(item, "name")
                elif k == "url":
                    gw.urls.append(parse_url(item))
                elif k == "urls":
                    items = item if isinstance(item, list) else [item]
                    urls = []
                    for u in items:
                        url = parse_url(u)
                        if url not in urls:  # Go warns about duplicates and skips them
                            urls.append(url)
                    gw.urls = urls
                elif k == "tls":
                    gw.tls = _tls(item, "gateways.tls", kpos, errors)
                elif not getattr(entry, "is_used_variable", lambda key: False)(key):
                    errors.append((kpos, "unknown field %s" % goq(key)))
            except (TypeError, ValueError) as exc:
                errors.append((kpos, str(exc)))
        gw.position = getpos("name") or pos
        remotes.append(gw)
    return remotes


def parse_gateway(block, block_pos=None):
    """A GatewayConfig from the ``gateway {}`` block; ConfigError lists every
    parse problem (validation is :func:`validate`)."""
    cfg = GatewayConfig()
    cfg.position = block_pos
    if not isinstance(block, dict):
        raise ConfigError([(block_pos, "Expected gateway to be a map, got %s"
                            % type(block).__name__)])
    errors = []
    getpos = getattr(block, "position", lambda key: None)
    is_variable = getattr(block, "is_used_variable", lambda key: False)
    for key, value in block.items():
        k = key.lower()
        pos = getpos(key) or block_pos
        try:
            if k == "name":
                name = _str(value, "name")
                if " " in name:
                    errors.append((pos, "gateway name cannot contain spaces"))
                    continue
                cfg.name = name
                cfg.name_position = pos
            elif k == "listen":
                host, port = parse_listen(value)
                if host is not None:
                    cfg.host = host or "0.0.0.0"
                cfg.port = port
            elif k == "port":
                cfg.port = _int(value, "port")
            elif k in ("host", "net"):
                cfg.host = _str(value, k)
            elif k == "authorization":
                _parse_authorization(value, pos, cfg, errors)
            elif k == "tls":
                cfg.tls = _tls(value, "gateway.tls", pos, errors)
            elif k == "advertise":
                cfg.advertise = _str(value, "advertise")
            elif k == "connect_retries":
                cfg.connect_retries = _int(value, "connect_retries")
            elif k == "connect_backoff":
                cfg.connect_backoff = _bool(value, "connect_backoff")
            elif k == "gateways":
                cfg.gateways = _parse_remotes(value, pos, errors)
            elif k in ("reject_unknown", "reject_unknown_cluster"):
                cfg.reject_unknown = _bool(value, k)
            elif k == "write_deadline":
                cfg.write_deadline = parse_duration(value, pos)
            elif k == "write_timeout":
                cfg.write_timeout = parse_write_timeout(value)
            elif not is_variable(key):
                errors.append((pos, "unknown field %s" % goq(key)))
        except ConfigError as exc:
            errors.extend(exc.errors)
        except (TypeError, ValueError) as exc:
            errors.append((pos, str(exc)))
    if errors:
        raise ConfigError(errors)
    return cfg


def validate(cfg, cluster_name=None):
    """nats-server's checks once the block is read (validateGatewayOptions,
    validateCluster). Returns the cluster name to use (the gateway's name when
    the cluster has none: Go sets it so it is not considered dynamic), and
    moves the entry carrying our own name out of the remotes."""
    errors = []
    pos = getattr(cfg, "name_position", None) or cfg.position
    if not cfg.name and cfg.port == 0:
        return cluster_name
    if not cfg.name:
        errors.append((cfg.position, "gateway has no name"))
    elif cfg.port == 0:
        errors.append((cfg.position, "gateway %s has no port specified (select -1 for random "
                       "port)" % goq(cfg.name)))
    for i, gw in enumerate(cfg.gateways):
        gpos = getattr(gw, "position", None) or cfg.position
        if not gw.name:
            errors.append((gpos, "gateway in the list %d has no name" % i))
        elif not gw.urls:
            errors.append((gpos, "gateway %s has no URL" % goq(gw.name)))
    if cfg.name and cluster_name and cluster_name != cfg.name:
        errors.append((pos, "cluster name conflicts between cluster and gateway definitions"))
    if errors:
        raise ConfigError(errors)
    own = [gw for gw in cfg.gateways if gw.name == cfg.name]
    for gw in own:
        cfg.own_urls.extend(gw.urls)
    cfg.gateways = [gw for gw in cfg.gateways if gw.name != cfg.name]
    return cluster_name or cfg.name


# What a running server may take from a reloaded ``gateway {}`` block: nats-server
# reloads TLS material only (reload.go: gatewayOption), everything else is a
# restart.
def reload_changes(old, new):
    """``(tls_changed, refused)`` between two parsed configs: whether the TLS
    material changed (applied on the next handshake), and the texts of the
    changes that need a restart."""
    refused = []
    # (our own entry was moved out of the remotes by validate on both sides)
    attrs = ("name", "host", "port", "advertise", "user", "password", "auth_timeout",
             "connect_retries", "connect_backoff", "reject_unknown", "write_deadline",
             "write_timeout")
    changed = [a for a in attrs if getattr(old, a) != getattr(new, a)]
    # Go compares the remotes sorted by name, TLS left out
    if sorted((g.name, g.urls) for g in old.gateways) != \
            sorted((g.name, g.urls) for g in new.gateways):
        changed.append("gateways")
    if changed:
        refused.append("config reload not supported for Gateway (%s changed)"
                       % ", ".join(changed))
    tls_changed = old.tls != new.tls or sorted(
        (g.name, repr(g.tls and g.tls._key())) for g in old.gateways) != sorted(
        (g.name, repr(g.tls and g.tls._key())) for g in new.gateways)
    return tls_changed, refused
