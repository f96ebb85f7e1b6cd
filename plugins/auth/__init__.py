"""Auth plugin: nats-server's configuration-file authentication and authorization.

* ``authorization { user, password | token, timeout, users: [...],
  default_permissions }`` and the flags ``--user``, ``--pass``, ``--auth``;
* passwords and tokens as bcrypt hashes (``$2a$...``) or plain text (compared in
  constant time);
* nkey users (``users: [{nkey: U...}]``): INFO carries a per-connection
  ``nonce`` that the client signs;
* ``no_auth_user``: a CONNECT without credentials is that user;
* ``permissions { publish, subscribe, allow_responses }`` per user (and
  ``default_permissions``), checked by the core through the per-connection
  object :class:`~.permissions.ConnPermissions` (``can_publish``,
  ``can_subscribe``, ``deny_delivery``);
* ``accounts { A: { users, exports, imports, default_permissions, mappings,
  limits } }``: users bound to their account; stream exports/imports
  (:mod:`.streams`) and service exports/imports (:mod:`.services`: request/reply
  across accounts, ``_R_.`` reply mapping, response types and thresholds)
  between accounts, exports restricted to named ``accounts``; per-account subject
  mappings (:mod:`pluggy_nats.mappings`) and ``limits { max_connections,
  max_subscriptions, max_payload }``, handed to the core (``account.mappings``,
  ``account.limits``), which applies them; ``system_account``.
* operator mode (:mod:`.operator`, :mod:`.operator_auth`, :mod:`.resolver`,
  :mod:`.claims`): ``operator`` (file, inline JWT or list), ``system_account``
  (else the operator JWT's), ``resolver: MEMORY`` with ``resolver_preload``, and
  the full directory resolver ``resolver { type: full, dir, ... }`` whose
  accounts are updated over ``$SYS.REQ.CLAIMS.UPDATE`` /
  ``$SYS.REQ.ACCOUNT.<pubkey>.CLAIMS.UPDATE``, read with ``.CLAIMS.LOOKUP`` and
  ``$SYS.REQ.CLAIMS.LIST``, deleted (``allow_delete``) with
  ``$SYS.REQ.CLAIMS.DELETE``.
  Users connect with a user JWT and the nonce signature (or a bearer JWT);
  account and operator signing keys (user scopes apply their template),
  expiry, revocations, ``pub``/``sub``/``resp`` permissions,
  ``allowed_connection_types``, ``src``, ``times`` and the account's
  ``disallow_bearer`` are checked as nats-server does; a connected user is cut
  off when its JWT or its account's expires, or when an account update
  revokes it (or its signing key, or bearer tokens).
  Accounts (named by public key) are created on first use; their JWT limits
  go into ``account.limits``, their stream and service imports are wired
  through :mod:`.streams` and :mod:`.services` (``response_type``,
  ``response_threshold``, ``local_subject``/``to``) and re-wired when either
  side's JWT is updated; ``token_req`` exports need an activation token
  (:mod:`.activation`). A user JWT's ``subs``/``payload`` limit its
  connection (``Allow.limits``; the smallest of user, account and server
  applies). URL and cache resolvers are refused as "not supported".

``allow_responses`` needs to see the reply subjects delivered to a connection,
which it does through ``nats_message_published`` (a second object,
``auth-responses``, registered only when some user has allow_responses, because
that hook takes every publish off the core's fast path).

Not done here: service latency
tracking and ``share`` (parsed, ignored; JWT exports' ``latency`` too), the
user JWT ``data`` limit (not enforced), export ``revocations`` of activations
and activation tokens given as URLs. Auth
callout lives in :mod:`.callout` (registered as ``auth-callout`` when
configured), TLS ``verify_and_map`` in :mod:`.tlsmap`. The state lives in
:class:`~.manager.AuthManager`, registered by ``nats_configure`` as
``auth-manager``.
"""

import structlog

from pluggy_nats import hookimpl
from pluggy_nats.options import ConfigError

from .callout import AuthCallout
from .config import build
from .manager import AuthManager


@hookimpl
def nats_addoption(parser):
    g = parser.add_argument_group("auth")
    g.add_argument("--user", dest="auth_user", metavar="USER",
                   help="user required for connections")
    g.add_argument("--pass", dest="auth_pass", metavar="PASSWORD",
                   help="password required for connections")
    g.add_argument("--auth", dest="auth_token", metavar="TOKEN",
                   help="authorization token required for connections")


def _locate(errors, conf):
    """Errors found across a block (duplicates, imports of unknown accounts,
    a block that is not a map) carry no position of their own: they get the
    file:line of the top-level key they are about."""
    getpos = getattr(conf, "position", None)
    keys = {key.lower(): key for key in conf} if getpos else {}

    def where(msg):
        text = msg.lower()
        for name, hint in (("no_auth_user", "no_auth_user"), ("system_account", "system account"),
                           ("accounts", "account"), ("authorization", "")):
            if name in keys and hint in text:
                return getpos(keys[name])
        for name in ("authorization", "accounts"):
            if name in keys:
                return getpos(keys[name])
        return None

    return [(pos or where(msg), msg) for pos, msg in errors]


@hookimpl
def nats_configure(config, server):
    errors = []
    warnings = []
    cfg, claimed = build(config.conf, config.args, errors, warnings)
    for key in claimed:
        config.claim(key)
    no_auth_user = config.no_auth_user
    if no_auth_user:
        if not (cfg.users or cfg.nkeys):
            errors.append((None, "no_auth_user: %r present, but users/nkeys are not defined"
                           % no_auth_user))
        elif no_auth_user not in cfg.users and no_auth_user not in cfg.nkeys:
            errors.append((None, "no_auth_user: %r not present as user or nkey in "
                                 "authorization block or account configuration"
                           % no_auth_user))
    if errors:
        raise ConfigError(_locate(errors, config.conf))
    log = structlog.get_logger("pluggy_nats.auth")
    if cfg.plaintext:
        warnings.append("Plaintext passwords detected, use nkeys or bcrypt")
    for text in warnings:
        log.warning(text)
        config.warnings.append(text)
    if cfg.timeout:
        config.auth_timeout = cfg.timeout
        config.sources["auth_timeout"] = "authorization.timeout"
    if cfg.system_account:
        server.accounts.system_account = server.accounts.get_or_create(cfg.system_account)
    manager = AuthManager(server, cfg, no_auth_user)
    server.auth_required = cfg.auth_required
    server.pluginmanager.register(manager, "auth-manager")
    if cfg.auth_callout is not None:
        server.pluginmanager.register(AuthCallout(server, cfg.auth_callout), "auth-callout")
