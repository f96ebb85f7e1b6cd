"""Operator mode configuration: ``operator``, ``resolver``, ``resolver_preload``
and the operator side of ``system_account``, read into an :class:`OperatorConfig`
with nats-server's checks and texts (``opts.go`` parseResolver, ``server.go``
validateTrustedOperators).

``operator`` is a path to an operator JWT file (plain or decorated the way
``nsc`` writes it), an inline JWT (``eyJ...``), or a list of those. The account
resolver is ``MEMORY`` (accounts only from ``resolver_preload``) or the full
directory resolver ``resolver { type: full, dir, allow_delete, interval,
timeout }``. The URL and cache resolvers are refused with a config error:
they would otherwise be silently ignored.
"""

import os
import re

from pluggy_nats import jwt as natsjwt
from pluggy_nats.conf import parse_duration

OPERATOR_KEYS = ("operator", "operators", "root", "roots", "root_operator", "root_operators")
_JWT = re.compile(r"eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+")
_RESOLVER_KEYS = frozenset(("type", "dir", "allow_delete", "interval", "timeout", "limit",
                            "sync", "ttl", "hard_delete"))


class OperatorConfig:
    """What operator mode needs: the trusted operator keys, the resolver, the
    preloaded account JWTs."""

    def __init__(self):
        self.operators = []  # operator claims (dicts)
        self.trusted_keys = set()  # operator public keys and their signing keys
        self.resolver = None  # "MEMORY" or "FULL"
        self.dir = None  # the full resolver's directory
        self.allow_delete = False
        self.hard_delete = False  # delete files instead of renaming them to .deleted
        self.strict = False  # strict_signing_key_usage: identity keys sign nothing
        self.interval = 120.0
        self.timeout = 1.9
        self.preload = {}  # account public key -> JWT
        self.system_account = None  # from the first operator JWT when not configured


def parse_decorated_jwt(text):
    """The first JWT in ``text`` (a bare token or an ``nsc`` decorated file)."""
    m = _JWT.search(text)
    return m.group(0) if m else text.strip()


def read_operator_jwt(value):
    """Claims of the operator JWT in file ``value`` or inline ``value``
    (nats-server readOperatorJWT: an unreadable path is taken as the token
    itself only when it starts like one)."""
    try:
        with open(value) as f:
            contents = f.read()
    except OSError as exc:
        if not value.startswith("eyJ"):
            raise natsjwt.JWTError("%s" % exc)
        contents = value
    return natsjwt.decode(parse_decorated_jwt(contents), expect_type="operator")


def parse(conf, errors):
    """The OperatorConfig of ``conf`` (None when no operator is configured) and
    the top-level keys it claimed."""
    op = OperatorConfig()
    claimed = []
    resolver_seen = False
    for key in conf:
        lk = key.lower()
        v = conf[key]
        if lk in OPERATOR_KEYS:
            claimed.append(key)
            for item in ([v] if isinstance(v, str) else v if isinstance(v, list) else [None]):
                if not isinstance(item, str):
                    errors.append((_pos(conf, key), "error parsing operator JWT: expected a "
                                                    "path or a JWT string, got %r" % (item,)))
                    continue
                try:
                    claims = read_operator_jwt(item)
                except natsjwt.JWTError as exc:
                    errors.append((_pos(conf, key), "error parsing operator JWT: %s" % exc))
                    continue
                op.operators.append(claims)
        elif lk in ("resolver", "account_resolver", "accounts_resolver"):
            claimed.append(key)
            resolver_seen = True
            _resolver(conf, key, op, errors)
        elif lk == "resolver_preload":
            claimed.append(key)
            if not isinstance(v, dict):
                errors.append((_pos(conf, key), "preload should be a map of account_public_key"
                                                ":account_jwt"))
                continue
            for acc, token in v.items():
                if not isinstance(token, str):
                    errors.append((_pos(v, acc), "preload map value should be a string JWT"))
                    continue
                try:  # a config error in nats-server too; trust is checked on use
                    natsjwt.decode(token, expect_type="account")
                except natsjwt.JWTError:
                    errors.append((_pos(v, acc), "invalid account JWT"))
                    continue
                op.preload[acc] = token.strip()
    for claims in op.operators:
        nats = claims.get("nats") or {}
        # strict_signing_key_usage: the operator's identity key signs nothing
        # trusted, only its signing keys do (nats-server isTrustedIssuer)
        if not nats.get("strict_signing_key_usage"):
            op.trusted_keys.add(claims.get("iss"))
        else:
            op.strict = True  # and users must come from account signing keys
        op.trusted_keys.update(k for k in nats.get("signing_keys") or () if isinstance(k, str))
    if op.operators:
        op.system_account = (op.operators[0].get("nats") or {}).get("system_account")
        if not resolver_seen:
            errors.append((None, "operators require an account resolver to be configured"))
        return op, claimed
    if resolver_seen or op.preload:
        return op, claimed  # a resolver without operator: accepted and unused, as nats-server
    return None, claimed


def _resolver(conf, key, op, errors):
    v = conf[key]
    pos = _pos(conf, key)
    if isinstance(v, str):
        text = v.strip()
        if text.upper() == "MEMORY":
            op.resolver = "MEMORY"
        elif text.upper().startswith("URL("):
            errors.append((pos, "resolver: URL resolver is not supported by pluggy-nats "
                                "(use MEMORY or the full directory resolver)"))
        else:
            errors.append((pos, "error parsing operator resolver, unknown resolver type %r"
                           % text))
        return
    if not isinstance(v, dict):
        errors.append((pos, "error parsing operator resolver, expected a string or a map"))
        return
    kind = "full"
    for k in v:
        lk = k.lower()
        val = v[k]
        if lk == "type":
            kind = str(val).lower()
        elif lk == "dir":
            if not isinstance(val, str):
                errors.append((_pos(v, k), "error parsing operator resolver, dir must be a "
                                           "string"))
                continue
            op.dir = val
        elif lk in ("allow_delete", "hard_delete"):
            setattr(op, lk, bool(val))
        elif lk in ("interval", "timeout"):
            try:
                setattr(op, lk, parse_duration(val))
            except (TypeError, ValueError) as exc:
                errors.append((_pos(v, k), "error parsing operator resolver, %s: %s" % (lk, exc)))
        elif lk not in _RESOLVER_KEYS:
            errors.append((_pos(v, k), "unknown field %r" % k))
    if kind == "full":
        op.resolver = "FULL"
        op.dir = os.path.abspath(op.dir or ".")
    elif kind == "cache":
        errors.append((pos, "resolver: cache resolver is not supported by pluggy-nats "
                            "(use MEMORY or type: full)"))
    else:
        errors.append((pos, "error parsing operator resolver, unknown type %r" % kind))


def validate(op, cfg, errors):
    """nats-server validateTrustedOperators, for the auth config ``cfg``."""
    if op is None or not op.operators:
        return
    if cfg.accounts:
        errors.append((None, "operators do not allow Accounts to be configured directly"))
    if cfg.users or cfg.nkeys:
        errors.append((None, "operators do not allow users to be configured directly"))
    if cfg.system_account:
        found = [c for c in op.operators if (c.get("nats") or {}).get("system_account")]
        if found and not any((c.get("nats") or {}).get("system_account") == cfg.system_account
                             for c in found):
            errors.append((None, "system_account in config and operator JWT must be identical"))
    elif op.system_account:
        cfg.system_account = op.system_account
    elif op.resolver == "FULL":
        errors.append((None, "using nats based account resolver - the system account needs "
                             "to be specified in configuration or the operator jwt"))


def _pos(m, key):
    getpos = getattr(m, "position", None)
    return getpos(key) if getpos else None
