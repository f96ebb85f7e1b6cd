"""The ``jetstream`` configuration: the server block (``jetstream: enabled`` or
``jetstream { store_dir, max_mem, max_file, domain, sync_interval, limits }``),
the ``-js``/``-sd`` flags, and per-account ``accounts { A { jetstream {...} } }``
limits, read as nats-server's opts.go reads them."""

import os
import shutil
import tempfile
from dataclasses import dataclass, field

from pluggy_nats.conf import ConfigError, go_parse_duration, parse_size
from pluggy_nats.conf.values import go_type

DEFAULT_SYNC_INTERVAL = 120.0  # seconds (Go's defaultSyncInterval)


@dataclass
class AccountLimits:
    """An account's JetStream limits (-1 = unlimited), as ``$JS.API.INFO`` shows them."""

    max_memory: int = -1
    max_storage: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    storage_max_stream_bytes: int = -1
    max_bytes_required: bool = False

    def as_dict(self):
        return dict(self.__dict__)


@dataclass
class JetStreamConfig:
    enabled: bool = False
    store_dir: str = ""
    max_memory: int = -1
    max_store: int = -1
    domain: str = ""
    sync_interval: float = DEFAULT_SYNC_INTERVAL
    sync_always: bool = False
    strict: bool = True
    max_ack_pending: int = -1       # limits { max_ack_pending }
    max_request_batch: int = 0      # limits { max_request_batch }, 0 = none
    duplicate_window: float = 0.0   # limits { duplicate_window }, 0 = none
    unique_tag: str = ""            # placement: one replica per value of this tag prefix
    extension_hint: str = ""        # will_extend, no_extend (cluster/extend.py)
    # account name -> AccountLimits for accounts with a jetstream block
    accounts: dict = field(default_factory=dict)

    def effective_max_memory(self):
        """``max_mem``, or Go's dynamic default: 75 % of the machine's memory."""
        if self.max_memory >= 0:
            return self.max_memory
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75)
        except (ValueError, OSError, AttributeError):
            return -1

    def effective_max_store(self):
        """``max_file``, or Go's dynamic default: 75 % of the free disk space."""
        if self.max_store >= 0:
            return self.max_store
        try:
            return int(shutil.disk_usage(self.jetstream_dir()).free * 0.75)
        except OSError:
            return -1

    def jetstream_dir(self):
        """``<store_dir>/jetstream``, where files go (Go's JetStreamStoreDir)."""
        base = self.store_dir or os.path.join(tempfile.gettempdir(), "nats")
        return os.path.join(base, "jetstream")


def _pos(m, key):
    getpos = getattr(m, "position", None)
    return getpos(key) if getpos else None


def _duration(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return go_parse_duration(str(value)) / 1e9


def _bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("enabled", "enable", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("disabled", "disable", "false", "no", "off"):
        return False
    raise ValueError("expected a boolean, got %r" % (value,))


def parse_server_block(value, cfg, errors, where=None):
    """Fill ``cfg`` from the top-level ``jetstream`` value (bool, "enabled" or a map)."""
    if not isinstance(value, dict):
        try:
            cfg.enabled = _bool(value)
        except ValueError as exc:
            errors.append((where, "jetstream: %s" % exc))
        return
    cfg.enabled = True
    for key, v in value.items():
        k = key.lower()
        try:
            if k in ("store_dir", "store", "storedir"):
                cfg.store_dir = str(v)
            elif k in ("max_memory_store", "max_mem_store", "max_mem"):
                cfg.max_memory = parse_size(v)
            elif k in ("max_file_store", "max_file"):
                cfg.max_store = parse_size(v)
            elif k == "domain":
                cfg.domain = str(v)
            elif k in ("sync_interval", "sync"):
                if isinstance(v, str) and v.lower() == "always":
                    cfg.sync_always = True
                    cfg.sync_interval = 0.0
                else:
                    cfg.sync_interval = _duration(v)
            elif k == "strict":
                cfg.strict = _bool(v)
            elif k in ("enable", "enabled"):
                cfg.enabled = _bool(v)
            elif k == "limits":
                _parse_limits(v, cfg, errors)
            elif k == "unique_tag":
                cfg.unique_tag = str(v).strip().lower()  # Go lower-cases it
            elif k == "extension_hint":
                if not isinstance(v, str):  # Go's mv.(string), recovered as a config error
                    errors.append((_pos(value, key), "interface conversion: interface {} is "
                                   "%s, not string" % go_type(v)))
                    continue
                cfg.extension_hint = v  # checked (and lower-cased) when clustered, as Go
            elif k in ("key", "ek", "cipher", "prev_key", "prev_ek",
                       "max_buffered_size", "max_buffered_msgs", "request_queue_limit",
                       "max_outstanding_catchup", "tpm", "compress_ok",
                       "max_catchup"):
                pass  # accepted, without effect on one server (or not supported yet)
            else:
                errors.append((_pos(value, key), "jetstream: unknown field %r" % key))
        except (TypeError, ValueError) as exc:
            errors.append((_pos(value, key), "jetstream %s: %s" % (key, exc)))


def _parse_limits(value, cfg, errors):
    if not isinstance(value, dict):
        errors.append((None, "jetstream limits: expected a map"))
        return
    for key, v in value.items():
        k = key.lower()
        if k == "max_ack_pending":
            cfg.max_ack_pending = int(v)
        elif k == "max_request_batch":
            cfg.max_request_batch = int(v)
        elif k == "duplicate_window":
            cfg.duplicate_window = _duration(v)
        elif k in ("max_ha_assets", "batch"):
            pass
        else:
            errors.append((_pos(value, key), "jetstream limits: unknown field %r" % key))


_ACCOUNT_KEYS = {
    "max_memory": "max_memory", "max_mem": "max_memory", "mem": "max_memory",
    "memory": "max_memory",
    "max_store": "max_storage", "max_file": "max_storage", "max_disk": "max_storage",
    "store": "max_storage", "disk": "max_storage",
    "max_streams": "max_streams", "streams": "max_streams",
    "max_consumers": "max_consumers", "consumers": "max_consumers",
    "mem_max_stream_bytes": "memory_max_stream_bytes",
    "memory_max_stream_bytes": "memory_max_stream_bytes",
    "disk_max_stream_bytes": "storage_max_stream_bytes",
    "store_max_stream_bytes": "storage_max_stream_bytes",
    "max_ack_pending": "max_ack_pending",
}


def parse_account_block(value, errors, where=None):
    """An account's ``jetstream`` value -> AccountLimits, or None for disabled."""
    limits = AccountLimits()
    if not isinstance(value, dict):
        try:
            return limits if _bool(value) else None
        except ValueError as exc:
            errors.append((where, "account jetstream: %s" % exc))
            return None
    for key, v in value.items():
        k = key.lower()
        try:
            if k == "max_bytes_required":
                limits.max_bytes_required = _bool(v)
            elif k in _ACCOUNT_KEYS:
                name = _ACCOUNT_KEYS[k]
                setattr(limits, name, parse_size(v) if isinstance(v, str) else int(v))
            elif k in ("tiers", "cluster_traffic"):
                pass
            else:
                errors.append((_pos(value, key), "account jetstream: unknown field %r" % key))
        except (TypeError, ValueError) as exc:
            errors.append((_pos(value, key), "account jetstream %s: %s" % (key, exc)))
    return limits


# account JWT ``nats.limits`` key -> AccountLimits field (jwt.JetStreamLimits)
_JWT_KEYS = {"mem_storage": "max_memory", "disk_storage": "max_storage",
             "streams": "max_streams", "consumer": "max_consumers",
             "max_ack_pending": "max_ack_pending",
             "mem_max_stream_bytes": "memory_max_stream_bytes",
             "disk_max_stream_bytes": "storage_max_stream_bytes"}


def limits_from_jwt(jwt_limits):
    """AccountLimits from an account JWT's limits, or None when the JWT gives the
    account no JetStream (memory and disk storage both 0 or absent, as Go)."""
    if not jwt_limits:
        return None
    mem = jwt_limits.get("mem_storage", 0)
    disk = jwt_limits.get("disk_storage", 0)
    if not mem and not disk:
        return None
    limits = AccountLimits()
    for theirs, ours in _JWT_KEYS.items():
        value = jwt_limits.get(theirs)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(limits, ours, value)
    limits.max_bytes_required = bool(jwt_limits.get("max_bytes_required"))
    return limits


def build(conf, args):
    """The JetStreamConfig from the config file (``conf``) and flags (``args``);
    returns (config, claimed top-level keys). Raises ConfigError."""
    cfg = JetStreamConfig()
    errors = []
    claimed = []
    for key in conf:
        if key.lower() == "jetstream":
            claimed.append(key)
            parse_server_block(conf[key], cfg, errors, _pos(conf, key))
    if args is not None and getattr(args, "jetstream", None):
        cfg.enabled = True
    if args is not None and getattr(args, "store_dir", None):
        cfg.store_dir = args.store_dir
    accounts = None
    for key in conf:
        if key.lower() == "accounts" and isinstance(conf[key], dict):
            accounts = conf[key]
    if accounts:
        for name, am in accounts.items():
            if not isinstance(am, dict):
                continue
            for key in am:
                if key.lower() == "jetstream":
                    limits = parse_account_block(am[key], errors, _pos(am, key))
                    if limits is not None:
                        cfg.accounts[name] = limits
    if errors:
        raise ConfigError(errors)
    return cfg, claimed, accounts is not None and len(accounts) > 0
