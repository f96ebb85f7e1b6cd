"""The auth plugin's state and its per-connection hooks.

:class:`AuthManager` decides CONNECTs (``nats_authenticate``) in nats-server's
order (``auth.go`` processClientOrLeafAuthentication): an nkey when nkey users
exist and the client sent one; else a users-list user (a CONNECT with no user,
password or token is bound to ``no_auth_user``); else the single token or
user/password. The client only ever learns "Authorization Violation"; the
reason of a refusal goes to the log.

bcrypt comparisons run in gevent's thread pool: a hash takes tens of
milliseconds of CPU, which would otherwise stall every connection of the server.
"""

import hmac

import bcrypt
import gevent
import structlog

from pluggy_nats import Allow, Deny, hookimpl
from pluggy_nats.accounts.services import wire_service_imports
from pluggy_nats.accounts.streams import wire_stream_imports
from pluggy_nats.connection import CLIENT, LEAF
from pluggy_nats.mappings import AccountMappings
from pluggy_nats.signatures import new_nonce, verify_nonce

from . import tlsmap
from .claims import ClaimsService
from .config import is_bcrypt
from .operator_auth import OperatorAuth
from .resolver import make_resolver

STANDARD = "STANDARD"


def _bcrypt_check(hashed, given):
    try:
        return bcrypt.checkpw(given.encode(), hashed.encode())
    except ValueError:  # malformed hash, or a password over bcrypt's 72 bytes
        return False


def check_secret(expected, given):
    """Compare a configured password or token with the client's: bcrypt for
    hashes, constant time otherwise."""
    if not isinstance(given, str):
        return False
    if is_bcrypt(expected):
        return gevent.get_hub().threadpool.apply(_bcrypt_check, (expected, given))
    return hmac.compare_digest(expected.encode(), given.encode())


def _opt(connect, key):
    value = connect.get(key)
    if value is None:
        return ""
    return value if isinstance(value, str) else None  # None: not a string, never matches


class AuthManager:
    def __init__(self, server, cfg, no_auth_user):
        self.server = server
        self.cfg = cfg
        self.no_auth_user = no_auth_user
        self.nonce_required = bool(cfg.nkeys) or cfg.operator_mode
        self.log = structlog.get_logger("pluggy_nats.auth")
        self.accounts = {name: server.accounts.get_or_create(name) for name in cfg.accounts}
        for name, spec in cfg.accounts.items():
            account = self.accounts[name]
            account.conf = spec.conf  # the raw block, for other plugins
            account.limits.update(spec.limits)
            if spec.mappings:
                account.mappings = AccountMappings(spec.mappings)
        self.importers = []
        self.operator = None  # OperatorAuth in operator mode
        self.claims = None
        if cfg.operator_mode:
            self.operator = OperatorAuth(server, cfg.operator, make_resolver(cfg.operator))
            if cfg.operator.resolver == "FULL":
                self.claims = ClaimsService(server, self.operator)

    # -- start / stop -------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        self.importers = (wire_stream_imports(server, self.cfg, self.accounts)
                          + wire_service_imports(server, self.cfg, self.accounts))
        if self.operator is not None and server.accounts.system_account is not None:
            self.operator.account(server.accounts.system_account.name)
            if self.claims is not None:
                self.claims.start(server.accounts.system_account)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if not lame_duck:
            for imp in self.importers:
                imp.stop()
            self.importers = []
            if self.claims is not None:
                self.claims.stop()
            if self.operator is not None:
                self.operator.stop()

    # -- connections ---------------------------------------------------------------

    @hookimpl
    def nats_info(self, conn, info):
        if conn.kind != CLIENT:
            return
        if self.no_auth_user:
            # nats-server does not announce auth_required when a CONNECT without
            # credentials is welcome (as no_auth_user); clients then send none.
            info.pop("auth_required", None)
        if self.nonce_required:
            nonce = getattr(conn, "nonce", None)
            if not nonce:
                nonce = conn.nonce = new_nonce()
            info["nonce"] = nonce

    @hookimpl(trylast=True)
    def nats_authenticate(self, conn, connect):
        # Leaf links dialling in authenticate as users too (the leafnode
        # plugin asks when its own leafnodes.authorization is empty).
        if conn.kind not in (CLIENT, LEAF) or not self.server.auth_required:
            return None
        if self.operator is not None:
            return self.operator.authenticate(conn, connect)
        cfg = self.cfg
        user_name = _opt(connect, "user")
        password = _opt(connect, "pass")
        token = _opt(connect, "auth_token")
        nkey = _opt(connect, "nkey")
        if user_name is None or password is None or token is None or nkey is None:
            return Deny("non-string credentials in CONNECT")
        if cfg.nkeys and nkey:
            user = cfg.nkeys.get(nkey)
            if user is None:
                return Deny("unknown nkey")
            if not verify_nonce(user.verify_key, getattr(conn, "nonce", None),
                                connect.get("sig")):
                return Deny("nkey signature missing or not verified")
            return self._allow(conn, user)
        if cfg.users:
            if tlsmap.enabled(self.server):
                # verify_and_map: the certificate names the user, whatever
                # CONNECT says; a password, if configured, must still match.
                user = tlsmap.mapped_user(conn, cfg.users)
                if user is None:
                    return Deny("no user for the client certificate")
                if not check_secret(user.password, password):
                    return Deny("password mismatch")
                return self._allow(conn, user)
            # A listener may name its own (websocket { no_auth_user }).
            no_auth_user = getattr(conn, "no_auth_user", None) or self.no_auth_user
            if no_auth_user and not user_name and not password and not token:
                user = cfg.users.get(no_auth_user)
                if user is not None:
                    return self._allow(conn, user)
            if user_name:
                user = cfg.users.get(user_name)
                if user is None:
                    return Deny("unknown user")
                if not check_secret(user.password, password):
                    return Deny("password mismatch")
                return self._allow(conn, user)
        if cfg.token:
            if check_secret(cfg.token, token):
                return Allow()
            return Deny("token mismatch")
        if cfg.user:
            if user_name == cfg.user and check_secret(cfg.password, password):
                return Allow(user=cfg.user)
            return Deny("user/password mismatch")
        return Deny("no credentials")

    @hookimpl
    def nats_client_closed(self, conn, reason):
        timer = getattr(conn, "jwt_expiry", None)
        if timer is not None and timer is not gevent.getcurrent():
            timer.kill(block=False)

    def _allow(self, conn, user):
        types = user.connection_types
        if types is not None and getattr(conn, "client_type", STANDARD) not in types:
            return Deny("connection type not allowed for %s" % user.ident)
        if user.proxy_required:
            return Deny("user %s requires a trusted proxy (not supported)" % user.ident)
        account = self.accounts[user.account] if user.account else None
        perms = user.permissions.for_connection() if user.permissions is not None else None
        return Allow(account=account, permissions=perms, user=user.ident)
