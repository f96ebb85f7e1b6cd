"""Server options: defaults, the config file's top-level keys the core owns, and
command-line overrides, in that order of precedence (as nats-server).

Plugins own their blocks (``cluster``, ``authorization``...): they read them from
``options.conf`` in ``nats_configure`` and call ``options.claim(key)``; whatever
no one claims is reported as an unknown key.
"""

import difflib

from .conf import ConfigError, parse_duration, parse_size
from .conf.values import parse_listen

__all__ = ["Options", "ConfigError", "CORE_OPTIONS"]

KB = 1024
MB = 1024 * KB


def _bool(value):
    if isinstance(value, bool):
        return value
    raise ValueError("expected a boolean, got %r" % (value,))


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer, got %r" % (value,))
    return value


def _str(value):
    if not isinstance(value, str):
        raise ValueError("expected a string, got %r" % (value,))
    return value


def _tags(value):
    """``server_tags``: a string or a list of strings, lower-cased, trimmed and
    without duplicates (nats-io/jwt ``TagList.Add``)."""
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError("error parsing tags: expected a string or a list of strings, got %r"
                         % (value,))
    tags = []
    for tag in value:
        tag = tag.strip().lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _str_map(value):
    """A map of strings to strings (``server_metadata``)."""
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    raise ValueError("expected a map of strings, got %r" % (value,))


def _flags(value):
    """``feature_flags``: a map of booleans."""
    if isinstance(value, dict):
        for name, flag in value.items():
            if not isinstance(flag, bool):
                raise ValueError("error parsing feature flag %r: expected bool, got %r"
                                 % (name, flag))
        return dict(value)
    raise ValueError("error parsing feature flags: expected a map, got %r" % (value,))


def _sub_tokens(value):
    """``max_sub_tokens``: 1..255, nats-server's wording when out of range."""
    n = _int(value)
    if n > 255:
        raise ValueError("value is too big")
    if n <= 0:
        raise ValueError("value can not be negative")
    return n


def _grace_period(value):
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError("invalid lame_duck_grace_period, needs to be positive")
    return seconds


def parse_write_timeout(value):
    """A ``write_timeout`` policy (top level, gateway, leafnodes), nats-server's
    parseWriteDeadlinePolicy: case-sensitive, its error text."""
    if value not in ("default", "close", "retry"):
        raise ValueError("write_timeout must be 'default', 'close' or 'retry'")
    return value


# name -> (default, converter for a config-file value)
CORE_OPTIONS = {
    "host": ("0.0.0.0", _str),
    "port": (4222, _int),
    "server_name": (None, _str),
    "max_payload": (1 * MB, parse_size),
    "max_pending": (64 * MB, parse_size),
    "max_control_line": (4096, parse_size),
    "max_connections": (64 * 1024, _int),
    "max_subscriptions": (0, _int),
    "ping_interval": (120.0, parse_duration),
    "ping_max": (2, _int),
    "write_deadline": (10.0, parse_duration),
    "auth_timeout": (2.0, parse_duration),
    # nats-server refuses less than 30s here; we allow it (tests drain in seconds)
    "lame_duck_duration": (120.0, parse_duration),
    "lame_duck_grace_period": (10.0, _grace_period),
    "http_host": (None, _str),  # None: the client host, as nats-server
    "http_port": (0, _int),
    "debug": (False, _bool),
    "trace": (False, _bool),
    "logtime": (True, _bool),
    "logfile": (None, _str),
    "pidfile": (None, _str),
    "ports_file_dir": (None, _str),
    "no_auth_user": (None, _str),
    # -- nats-server's other top-level keys (server/opts.go processConfigFileLine)
    "client_advertise": (None, _str),  # host[:port] sent in INFO instead of the listen address
    "no_sublist_cache": (False, _bool),
    "max_traced_msg_len": (0, _int),
    "no_system_account": (False, _bool),
    "no_header_support": (False, _bool),
    "trace_verbose": (False, _bool),
    "trace_headers": (False, _bool),
    "logtime_utc": (False, _bool),
    "logfile_size_limit": (0, parse_size),  # rotate the log file past this size
    "logfile_max_num": (0, _int),  # rotated files kept (0: all)
    "syslog": (False, _bool),
    "remote_syslog": (None, _str),  # udp://host:port, tcp://host:port, unix:///path
    "https_port": (0, _int),  # the monitor over TLS (the tls {} block's certificate)
    "http_base_path": ("", _str),
    "max_sub_tokens": (0, _sub_tokens),
    "connect_error_reports": (3600, _int),
    "reconnect_error_reports": (1, _int),
    "server_tags": ([], _tags),
    "server_metadata": ({}, _str_map),
    "feature_flags": ({}, _flags),
    "max_closed_clients": (10000, _int),
    "no_fast_producer_stall": (False, _bool),
    "write_timeout": ("default", parse_write_timeout),
    # accepted only with the value that asks for nothing (see UNSUPPORTED_VALUES)
    "ocsp": (None, lambda v: v),
    "ocsp_cache": (None, lambda v: v),
    "proxy_protocol": (False, _bool),
    "allow_non_tls": (False, _bool),
    "prof_port": (0, _int),
    "prof_block_rate": (0, _int),
    # JetStream's directory: nats-server reads it only when JetStream is on
    # (jetstream {} is not built yet, so it is kept and unused, as Go does then)
    "store_dir": (None, _str),
}

# Settings whose value asks for something not built yet: key -> predicate on the
# converted value; check-config then says "<key> is not supported yet".
UNSUPPORTED_VALUES = {
    "write_timeout": lambda v: v == "retry",  # clients are closed past write_deadline
    "ocsp": lambda v: v is not None and v is not False,
    "ocsp_cache": lambda v: v is not None and v is not False,
    "proxy_protocol": bool,
    "prof_port": bool,
    "prof_block_rate": bool,
}

# Top-level blocks and keys of nats-server that no plugin of ours handles yet:
# while no loaded plugin claims them they are refused as "not supported yet"
# (never silently ignored); a plugin that implements one claims it.
NOT_BUILT = frozenset({
    "gateway", "leaf", "leafnodes", "jetstream",
    "default_js_domain", "websocket", "ws", "mqtt", "proxies",
    "resolver_tls", "trusted", "trusted_keys",
})

# config-file spellings nats-server accepts for the same option
ALIASES = {
    "net": "host",
    "log_file": "logfile",
    "pid_file": "pidfile",
    "monitor_port": "http_port",
    "http_port": "http_port",
    "max_conn": "max_connections",
    "max_subs": "max_subscriptions",
    "disable_sublist_cache": "no_sublist_cache",
    "no_system": "no_system_account",
    "no_sys_acc": "no_system_account",
    "log_size_limit": "logfile_size_limit",
    "log_max_num": "logfile_max_num",
    "max_subscription_tokens": "max_sub_tokens",
    "storedir": "store_dir",
}

# keys that expand into several options (``tls``: the client TLS block, a
# pluggy_nats.tls.TLSConfig in ``options.tls``, None without TLS; ``mappings``:
# the global account's subject mappings, pluggy_nats.mappings.Mapping objects
# in ``options.mappings``)
SPECIAL_KEYS = ("listen", "http", "https", "tls", "mappings")
# address keys -> the (host, port) options they set
_ADDRESS_KEYS = {"listen": ("host", "port"), "http": ("http_host", "http_port"),
                 "https": ("http_host", "https_port")}


class Options:
    """Every core setting as an attribute, plus:

    * ``conf``: the parsed config file (a dict; empty without one)
    * ``args``: the argparse namespace (plugins read their flags there)
    * ``sources``: option name -> where its value came from ("default",
      "file:line:col", "flag -p", "env PLUGGY_NATS_PORT", "argument"), for
      ``--explain-config`` (see :meth:`explain`); ``override_sources`` names the
      source of each keyword override (default "argument")
    """

    def __init__(self, conf=None, args=None, override_sources=None, **overrides):
        self.conf = conf if conf is not None else {}
        self.args = args
        self.sources = {}
        self.errors = []  # (Position or None, message)
        self.warnings = []
        self._claimed = set()
        self._positions = {}  # option name -> Position of the file key that set it
        for name, (default, _convert) in CORE_OPTIONS.items():
            setattr(self, name, default.copy() if isinstance(default, (list, dict)) else default)
            self.sources[name] = "default"
        self.tls = None
        self.mappings = []  # pluggy_nats.mappings.Mapping for the global account
        self._apply_file()
        self._apply_tls_flags(overrides.pop("tls", None))
        override_sources = override_sources or {}
        for name, value in overrides.items():
            if name not in CORE_OPTIONS:
                raise TypeError("unknown option %r" % name)
            if value is not None:
                setattr(self, name, value)
                self.sources[name] = override_sources.get(name, "argument")
        if self.sources["http_host"] == "default":
            # nats-server: an unset http_host follows the client host, so
            # ``-a 127.0.0.1 -m P`` does not expose the monitor on every address
            self.http_host = self.host
            self.sources["http_host"] = "follows host"

    def explain(self):
        """``(name, value, source)`` for every core option, in CORE_OPTIONS order.

        ``source`` is "default", "file:line:col" (where the config file set it),
        "env PLUGGY_NATS_X", "flag --x" (the CLI says which) or "argument" (a
        keyword given to Options/Server by an embedding program).
        """
        return [(name, getattr(self, name), self.sources.get(name, "default"))
                for name in CORE_OPTIONS]

    # -- config file ------------------------------------------------------

    def _position(self, key):
        getpos = getattr(self.conf, "position", None)
        return getpos(key) if getpos else None

    def _set_from_file(self, name, value, key):
        try:
            setattr(self, name, CORE_OPTIONS[name][1](value))
        except (ValueError, TypeError) as exc:
            self.errors.append((self._position(key), "%s: %s" % (key, exc)))
            return
        pos = self._position(key)
        self.sources[name] = str(pos) if pos else "file"
        self._positions[name] = pos
        unsupported = UNSUPPORTED_VALUES.get(name)
        if unsupported is not None and unsupported(getattr(self, name)):
            self.errors.append((pos, "%s is not supported yet" % key))
        if name in ("trace_verbose", "trace_headers") and getattr(self, name):
            self.trace = True  # as nats-server: either implies trace

    def _apply_file(self):
        for key, value in self.conf.items():
            before = len(self.errors)
            self._apply_key(key, value)
            # an error about a value as a whole (not a map, say) is at its key
            self.errors[before:] = [(pos or self._position(key), msg)
                                    for pos, msg in self.errors[before:]]

    def _apply_key(self, key, value):
        """One top-level key of the config file: a core option or special key."""
        lkey = key.lower()
        if lkey in _ADDRESS_KEYS:  # listen / http: a port or host:port
            self._claimed.add(key)
            try:
                host, port = parse_listen(value)
            except ValueError as exc:
                self.errors.append((self._position(key), "%s: %s" % (lkey, exc)))
                return
            host_option, port_option = _ADDRESS_KEYS[lkey]
            if host:
                self._set_from_file(host_option, host, key)
            if port is not None:
                self._set_from_file(port_option, port, key)
        elif lkey == "tls":
            self._claimed.add(key)
            from .tls import parse_tls

            try:
                self.tls = parse_tls(value, "tls", block_pos=self._position(key))
            except ConfigError as exc:
                self.errors.extend(exc.errors)
        elif lkey in ("mappings", "maps"):
            self._claimed.add(key)
            from .mappings import parse_mappings

            getpos = getattr(value, "position", None)
            self.mappings = parse_mappings(value, self.errors, getpos)
        else:
            name = ALIASES.get(lkey, lkey)
            if name in CORE_OPTIONS:
                self._claimed.add(key)
                self._set_from_file(name, value, key)

    def _apply_tls_flags(self, override):
        """Client TLS: the ``--tls*`` flags over the file's ``tls {}`` block; a
        ``tls=TLSConfig(...)`` keyword (embedding) over both."""
        from .tls import apply_tls_flags

        try:
            self.tls = apply_tls_flags(self.tls, self.args)
        except ConfigError as exc:
            self.errors.extend(exc.errors)
        if override is not None:
            self.tls = override

    def claim(self, key):
        """Mark a top-level config key as understood (plugins call this)."""
        self._claimed.add(key)

    def unclaimed_keys(self):
        """Top-level keys nobody understood (a key used as a ``$variable`` is fine)."""
        is_variable = getattr(self.conf, "is_used_variable", lambda key: False)
        return [k for k in self.conf if k not in self._claimed and not is_variable(k)]

    def check(self):
        """Raise ConfigError listing every error (bad values, unknown keys)."""
        errors = list(self.errors)
        known = list(CORE_OPTIONS) + list(ALIASES) + list(SPECIAL_KEYS) + sorted(self._claimed)
        for key in self.unclaimed_keys():
            if key.lower() in NOT_BUILT:
                errors.append((self._position(key), "%s is not supported yet" % key))
                continue
            hint = difflib.get_close_matches(key, known, n=1)
            msg = 'unknown field "%s"' % key  # nats-server's quotes
            if hint:
                msg += " (did you mean %r?)" % hint[0]
            errors.append((self._position(key), msg))
        if self.max_payload > self.max_pending:
            pos = None
            for name in ("max_payload", "max_pending"):
                filepos = self._positions.get(name)
                if filepos and self.sources.get(name) == str(filepos):  # not overridden
                    pos = filepos
                    break
            errors.append((pos, "max_payload (%d) cannot exceed max_pending (%d)"
                           % (self.max_payload, self.max_pending)))
        if errors:
            raise ConfigError(errors)
