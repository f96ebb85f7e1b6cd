"""Operator mode: accounts made from account JWTs, users admitted by user JWTs.

nats-server's order (``auth.go`` processClientOrLeafAuthentication, JWT part):

1. the CONNECT carries a user JWT (``jwt``) that decodes and verifies (its
   signature by its ``iss``), is a user JWT, and is within ``nbf``/``exp``;
2. unless it is a bearer token, ``sig`` is the user key's signature of the
   INFO nonce;
3. its account (``issuer_account``, else ``iss``) resolves to an account JWT
   issued by a trusted operator key (the operator or one of its signing keys),
   for that account, not expired;
4. the user's issuer is the account itself or one of the account's
   ``signing_keys``; a scoped key (``{kind: user_scope, key, template}``)
   imposes its template and the user JWT may not carry permissions of its own;
5. the user is not revoked (``revocations`` {user key or "*": time}: JWTs issued
   at or before that time), its ``allowed_connection_types`` and ``src`` CIDRs
   admit the connection.

The client learns only "Authorization Violation"; the reason goes to the log.

Accounts are created lazily on first use (named by their public key) and keep
what their JWT says: ``limits`` into ``account.limits``, ``revocations``,
signing keys, stream imports (wired through :mod:`.streams`) and service
imports (through :mod:`.services`, one :class:`~.services.ResponseRoutes` per
exporting account), each only when the exporter exports it to this account
(``token_req`` exports with a valid activation, :mod:`.activation`). A user
JWT's ``subs``/``payload`` go to the core as the connection's own limits. An
update (:meth:`OperatorAuth.update`, from the claims service) re-applies all of
it, re-wires the imports of accounts importing from it, and closes connections
of users it revokes with ``-ERR 'User Authentication Revoked'``, as
nats-server does.
"""

import datetime
import ipaddress
import time
import zoneinfo

import gevent
import structlog

from pluggy_nats import Allow, Deny
from pluggy_nats import jwt as natsjwt
from pluggy_nats.accounts.activation import activation_error, claims_errors, remote_subject
from pluggy_nats.accounts.services import ResponseRoutes, ServiceImporter
from pluggy_nats.accounts.streams import StreamImporter
from pluggy_nats.connection import ClosedReason
from pluggy_nats.permissions import PermissionSpec, ResponsePermission, SubjectPermission
from pluggy_nats.signatures import verify_key, verify_nonce
from pluggy_nats.subjects import is_literal, subset_match

from .config import (
    DEFAULT_RESPONSE_THRESHOLD,
    SINGLETON,
    STREAMED,
    ServiceExport,
    ServiceImport,
    StreamImport,
)
from .operator import has_own_permissions

STANDARD = "STANDARD"
_PERM_CACHE_MAX = 1024
_LIMITS = (("conn", "max_connections"), ("subs", "max_subscriptions"),
           ("payload", "max_payload"), ("leaf", "max_leafnodes"))
_USER_LIMITS = (("subs", "max_subscriptions"), ("payload", "max_payload"))


class JWTAccount:
    """One account known from its JWT."""

    def __init__(self, pubkey, account):
        self.pubkey = pubkey
        self.account = account  # the core's Account (name = pubkey)
        self.token = None
        self.claims = {}
        self.signing_keys = {}  # key -> scope template (dict) or None for an unscoped key
        self.revocations = {}
        self.default_spec = None
        self.importers = []
        self.responses = None  # ResponseRoutes, made when a service import uses this account
        self.expiry = None  # timer cutting users off when the account JWT expires
        self.activation_timers = []  # timers stopping imports whose activation expires

    def is_revoked(self, user, issued_at):
        for key in (user, "*"):
            t = self.revocations.get(key)
            if t is not None and t >= (issued_at or 0):
                return True
        return False


class JWTUser:
    """What an account update needs to know about a connected user."""

    __slots__ = ("key", "issued_at", "bearer", "signer")

    def __init__(self, key, issued_at, bearer, signer):
        self.key = key
        self.issued_at = issued_at
        self.bearer = bearer
        self.signer = signer  # the account signing key that issued it, or None


def _subject_permission(block):
    if not isinstance(block, dict):
        return None
    allow = [s for s in block.get("allow") or () if isinstance(s, str)]
    deny = [s for s in block.get("deny") or () if isinstance(s, str)]
    if not allow and not deny:
        return None
    return SubjectPermission(allow=allow or None, deny=deny or None)


def permission_spec(limits):
    """A PermissionSpec from a JWT's ``pub``/``sub``/``resp`` (user claims or a
    scope template), None when it restricts nothing (nats-server
    buildPermissionsFromJwt)."""
    pub = _subject_permission(limits.get("pub"))
    sub = _subject_permission(limits.get("sub"))
    resp = limits.get("resp")
    response = None
    if isinstance(resp, dict):
        # JWT ttl is in nanoseconds; 0 means the server default, as in config files
        max_msgs = resp.get("max") or 0
        ttl = resp.get("ttl") or 0
        response = ResponsePermission()
        if max_msgs:
            response.max = max_msgs
        if ttl:
            response.expires = ttl / 1e9
    if pub is None and sub is None and response is None:
        return None
    return PermissionSpec(publish=pub, subscribe=sub, response=response)


def _src_allows(src, host):
    if not src:
        return True
    cidrs = src.split(",") if isinstance(src, str) else src
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            if ip in ipaddress.ip_network(cidr.strip(), strict=False):
                return True
        except ValueError:
            return False
    return False


def _times_allow(times, location):
    """nats-server validateTimes: within one of the ``{start, end}`` daily
    ranges ("HH:MM:SS", in ``times_location`` or local time; a range may
    cross midnight). Anything unreadable refuses."""
    if not times:
        return True
    tz = None
    if location:
        try:
            tz = zoneinfo.ZoneInfo(location)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return False
    now = datetime.datetime.now(tz).time()
    for r in times:
        try:
            start = datetime.time.fromisoformat(r["start"])
            end = datetime.time.fromisoformat(r["end"])
        except (KeyError, TypeError, ValueError):
            return False
        if (start <= now <= end) if start <= end else (now >= start or now <= end):
            return True
    return False


class OperatorAuth:
    def __init__(self, server, op, resolver, on_response_permission=None):
        self.server = server
        self.on_response_permission = on_response_permission  # first allow_responses user
        self.op = op
        self.resolver = resolver
        self.accounts = {}  # pubkey -> JWTAccount
        self._loading = set()
        self._perms = {}  # (user JWT, account jti) -> CompiledPermissions or None
        self.log = structlog.get_logger("pluggy_nats.auth")

    # -- accounts ----------------------------------------------------------------------

    def validate_account(self, pubkey, token):
        """The claims of an account JWT for ``pubkey`` issued by a trusted key."""
        claims = natsjwt.decode(token, expect_type="account")
        if claims.get("sub") != pubkey:
            raise natsjwt.JWTError("account JWT subject %r is not %s"
                                   % (claims.get("sub"), pubkey))
        if claims.get("iss") not in self.op.trusted_keys:
            raise natsjwt.JWTError("account JWT issuer %s is not trusted" % claims.get("iss"))
        errors = claims_errors(pubkey, (claims.get("nats") or {}).get("imports") or ())
        if errors:
            raise natsjwt.JWTError("; ".join(errors))
        return claims

    def account(self, pubkey):
        """The JWTAccount of ``pubkey``, resolved and applied on first use; None
        when the resolver has no valid JWT for it."""
        acc = self.accounts.get(pubkey)
        if acc is not None:
            return acc
        if pubkey in self._loading or not isinstance(pubkey, str):
            return None
        token = self.resolver.fetch(pubkey)
        if token is None:
            return None
        try:
            claims = self.validate_account(pubkey, token)
        except natsjwt.JWTError as exc:
            self.log.warning("account_jwt_invalid", account=pubkey, error=str(exc))
            return None
        acc = JWTAccount(pubkey, self.server.accounts.get_or_create(pubkey))
        self.accounts[pubkey] = acc
        self._loading.add(pubkey)
        try:
            self._apply(acc, token, claims)
        finally:
            self._loading.discard(pubkey)
        return acc

    def _apply(self, acc, token, claims):
        nats = claims.get("nats") or {}
        acc.token = token
        acc.claims = claims
        acc.signing_keys = {}
        for entry in nats.get("signing_keys") or ():
            if isinstance(entry, str):
                acc.signing_keys[entry] = None
            elif isinstance(entry, dict) and isinstance(entry.get("key"), str):
                acc.signing_keys[entry["key"]] = entry.get("template") or {}
        acc.revocations = {k: v for k, v in (nats.get("revocations") or {}).items()
                           if isinstance(v, (int, float))}
        acc.default_spec = permission_spec(nats.get("default_permissions") or {})
        limits = nats.get("limits") or {}
        # Negative means unlimited in a JWT; an absent key is unlimited for the core.
        acc.account.limits = {ours: limits[theirs] for theirs, ours in _LIMITS
                              if isinstance(limits.get(theirs), int) and limits[theirs] >= 0}
        # the JWT's limits as written: JetStream reads its own (mem_storage, ...)
        acc.account.jwt_limits = dict(limits)
        self._wire_imports(acc, nats.get("imports") or ())
        self._perms.clear()
        if acc.expiry is not None:
            acc.expiry.kill(block=False)
            acc.expiry = None
        exp = claims.get("exp")
        if exp:
            acc.expiry = gevent.spawn_later(max(0.0, exp - time.time()), self._expired, acc)

    def _expired(self, acc):
        """nats-server expiredTimeout: the account's users are cut off; new
        ones are refused by the expiry check in :meth:`authenticate`."""
        acc.expiry = None
        for conn in list(acc.account.clients):
            conn.close(ClosedReason.AUTHENTICATION_EXPIRED, "Account Authentication Expired")

    def _wire_imports(self, acc, imports):
        """(Re)create the importers of ``acc``'s stream and service imports,
        each one only when the exporter exports it to ``acc``."""
        for imp in acc.importers:
            imp.stop()
        acc.importers = []
        _kill_activation_timers(acc)
        for entry in imports:
            if not isinstance(entry, dict) or entry.get("type") not in ("stream", "service"):
                continue
            kind = entry["type"]
            subject, src_key = remote_subject(entry), entry.get("account")
            src = self.account(src_key) if src_key != acc.pubkey else None
            why = None
            if src is None or not isinstance(subject, str):
                why = "source unknown"
            else:
                export, why = self._export_for(src, acc.pubkey, entry)
            if why is None:
                importer, why = (self._stream_importer if kind == "stream"
                                 else self._service_importer)(src, acc, entry, export)
            if why is not None:
                self.log.warning("jwt_import_skipped", kind=kind, account=acc.pubkey,
                                 source=src_key, subject=subject, why=why)
                continue
            importer.start()
            acc.importers.append(importer)
            self._expire_with_activation(acc, importer, entry.get("token"))

    def _expire_with_activation(self, acc, importer, token):
        """An import granted by an activation token with ``exp`` stops at that
        time (nats-server activationExpired): a timer per such import, killed
        when the account's imports are wired again or the account goes."""
        if not token:
            return
        try:
            exp = natsjwt.decode(token, expect_type="activation").get("exp")
        except natsjwt.JWTError:
            return
        if isinstance(exp, (int, float)) and exp > 0:
            acc.activation_timers.append(gevent.spawn_later(
                max(0.0, exp - time.time()), self._activation_expired, acc, importer))

    def _activation_expired(self, acc, importer):
        if importer in acc.importers:
            importer.stop()
            acc.importers.remove(importer)
            self.log.info("jwt_import_activation_expired", account=acc.pubkey)

    def _stream_importer(self, src, acc, entry, export):
        local, to = entry.get("local_subject"), entry.get("to")
        if local and not is_literal(local.encode()):
            return None, "wildcard local_subject mappings are not supported"
        spec = StreamImport(src.pubkey, entry["subject"], prefix=None if local else to or None,
                            to=local or None)
        return StreamImporter(self.server, src.account, acc.account, spec), None

    def _service_importer(self, src, acc, entry, export):
        """A :class:`.services.ServiceImporter`: requests on ``local_subject``
        (else ``subject``) in ``acc`` go to the remote subject in ``src``
        (``subject``, or the deprecated ``to`` without ``local_subject``),
        answered through ``src``'s response routes."""
        rtype = SINGLETON if export.get("response_type", SINGLETON) == SINGLETON else STREAMED
        threshold = export.get("response_threshold")
        threshold = (threshold / 1e9 if isinstance(threshold, (int, float)) and threshold > 0
                     else DEFAULT_RESPONSE_THRESHOLD)  # nanoseconds in a JWT
        spec = ServiceImport(src.pubkey, remote_subject(entry),
                             entry.get("local_subject") or entry["subject"])
        spec.export = ServiceExport(export["subject"], None, rtype, threshold)
        if src.responses is None:
            src.responses = ResponseRoutes(self.server, src.account)
        return ServiceImporter(self.server, src.account, acc.account, spec, src.responses), None

    @staticmethod
    def _export_for(src, importer, entry):
        """(the export of ``src`` that lets ``importer`` import ``entry``, None)
        or (None, why not). A ``token_req`` export needs a valid activation
        token in the import (:mod:`.activation`)."""
        kind, subject = entry["type"], remote_subject(entry)
        why = "not exported"
        for exp in (src.claims.get("nats") or {}).get("exports") or ():
            if not isinstance(exp, dict) or exp.get("type") != kind:
                continue
            if not (isinstance(exp.get("subject"), str)
                    and subset_match(subject.encode(), exp["subject"].encode())):
                continue
            if exp.get("token_req"):
                why = activation_error(entry.get("token"), src.pubkey, src.signing_keys,
                                       importer, subject, kind)
                if why is not None:
                    continue
            return exp, None
        return None, why

    def update(self, pubkey, token):
        """A new JWT for ``pubkey`` was stored: re-apply it when that account is
        in use, and cut off the users it no longer admits (nats-server
        updateAccountClaimsWithRefresh): bearer users when bearer tokens become
        disallowed (Authorization Violation), revoked users (User
        Authentication Revoked), and users of a signing key that was removed
        or whose scope changed (closed without an -ERR)."""
        acc = self.accounts.get(pubkey)
        if acc is None:
            return
        try:
            claims = self.validate_account(pubkey, token)
        except natsjwt.JWTError as exc:
            self.log.warning("account_jwt_update_ignored", account=pubkey, error=str(exc))
            return
        old_keys = acc.signing_keys
        self._apply(acc, token, claims)
        # its exports may have changed: importers re-check what they may import
        for other in list(self.accounts.values()):
            imports = (other.claims.get("nats") or {}).get("imports") or ()
            if other is not acc and any(isinstance(e, dict) and e.get("account") == pubkey
                                        for e in imports):
                self._wire_imports(other, imports)
        no_bearer = ((claims.get("nats") or {}).get("limits") or {}).get("disallow_bearer")
        for conn in list(acc.account.clients):
            user = getattr(conn, "jwt_user", None)
            if user is None:
                continue
            if user.bearer and no_bearer:
                conn.close(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
            elif acc.is_revoked(user.key, user.issued_at):
                conn.close(ClosedReason.REVOCATION, "User Authentication Revoked")
            elif user.signer is not None and (
                    user.signer not in acc.signing_keys
                    or acc.signing_keys[user.signer] != old_keys.get(user.signer)):
                conn.close(ClosedReason.AUTHENTICATION_VIOLATION)
        self.server.accounts.updated(acc.account)

    def remove(self, pubkey):
        """The account's JWT was deleted: its users are cut off (nats-server
        removeCb: the account expires) and new ones cannot resolve it."""
        acc = self.accounts.pop(pubkey, None)
        if acc is None:
            return
        _stop_importers(acc)
        if acc.expiry is not None:
            acc.expiry.kill(block=False)
        self._expired(acc)
        self.server.accounts.removed(acc.account)

    def stop(self):
        for acc in self.accounts.values():
            if acc.expiry is not None:
                acc.expiry.kill(block=False)
            _stop_importers(acc)

    # -- users -------------------------------------------------------------------------

    def authenticate(self, conn, connect):
        token = connect.get("jwt") or self.op.default_sentinel  # for those who bring none
        if not token:
            return Deny("no user JWT in operator mode")
        try:
            claims = natsjwt.decode(token, expect_type="user")
        except natsjwt.JWTError as exc:
            return Deny("user JWT: %s" % exc)
        now = time.time()
        if natsjwt.is_expired(claims, now) or natsjwt.not_yet_valid(claims, now):
            return Deny("user JWT expired or not yet valid")
        nats = claims.get("nats") or {}
        user_key = claims.get("sub")
        issuer = claims.get("iss")
        acc_key = nats.get("issuer_account") or issuer
        pinned = self.op.pinned_accounts
        if pinned is not None and acc_key not in pinned:
            return Deny("account %s not listed as operator pinned account" % acc_key)
        acc = self.account(acc_key)
        if acc is None:
            return Deny("account %s not resolved" % acc_key)
        if natsjwt.is_expired(acc.claims, now):
            return Deny("account JWT expired")
        if issuer != acc.pubkey and issuer not in acc.signing_keys:
            return Deny("user issuer is not the account or one of its signing keys")
        if issuer == acc.pubkey and self.op.strict:
            return Deny("strict signing key usage: user signed by the account identity key")
        scope = acc.signing_keys.get(issuer) if issuer != acc.pubkey else None
        limits = nats
        if scope is not None:
            if has_own_permissions(nats):
                return Deny("scoped signing key user carries its own permissions")
            limits = scope
        bearer = bool(limits.get("bearer_token"))
        if bearer and (acc.claims.get("nats") or {}).get("limits", {}).get("disallow_bearer"):
            return Deny("bearer tokens are disallowed by the account")
        if not bearer:
            try:
                key = verify_key(user_key)
            except ValueError:
                return Deny("user JWT subject is not a user key")
            if not verify_nonce(key, getattr(conn, "nonce", None), connect.get("sig")):
                return Deny("nonce signature missing or not verified")
        if acc.is_revoked(user_key, claims.get("iat")):
            return Deny("user JWT revoked")
        types = limits.get("allowed_connection_types")
        if types and getattr(conn, "client_type", STANDARD) not in types:
            return Deny("connection type not allowed")
        if not _src_allows(limits.get("src"), getattr(conn, "host", "")):
            return Deny("source address not allowed")
        if not _times_allow(limits.get("times"), limits.get("times_location")):
            return Deny("outside the user's connect times")
        try:
            perms = self._permissions(token, acc, limits)
        except ValueError as exc:
            return Deny("user JWT permissions: %s" % exc)
        conn.jwt_user = JWTUser(user_key, claims.get("iat"), bearer,
                                issuer if issuer != acc.pubkey else None)
        exp = claims.get("exp")
        if exp:  # killed by the auth manager when the connection closes first
            conn.jwt_expiry = gevent.spawn_later(max(0.0, exp - now), _expire, conn)
        return Allow(account=acc.account, user=user_key,
                     permissions=perms.for_connection() if perms is not None else None,
                     limits=_user_limits(limits, absent=-1 if scope is not None else 0))

    def _permissions(self, token, acc, limits):
        """Compiled once per (user JWT, account JWT): reconnects reuse them."""
        key = (token, acc.claims.get("jti"))
        if key in self._perms:
            return self._perms[key]
        spec = permission_spec(limits) or acc.default_spec
        compiled = spec.compile() if spec is not None else None
        if spec is not None and spec.response is not None and self.on_response_permission:
            self.on_response_permission()
        if len(self._perms) >= _PERM_CACHE_MAX:
            self._perms.clear()
        self._perms[key] = compiled
        return compiled


def _user_limits(limits, absent):
    """The connection's own limits from a user JWT (or its scope template):
    ``subs`` and ``payload``, negative = unlimited (the core keeps the smallest
    of these, the account's and the server's, as nats-server applyAccountLimits).
    ``data`` is not enforced. An absent key is ``absent``, as nats-io/jwt reads
    it: 0 in a v2 user JWT (nsc writes -1 for unlimited; so a user without
    ``subs`` is refused every subscription), -1 in a scope template
    (``NewUserScope``); a v1 user's were already made -1 by
    :func:`pluggy_nats.jwt.upgrade_v1`."""
    out = {}
    for theirs, ours in _USER_LIMITS:
        value = limits.get(theirs, absent)
        out[ours] = value if isinstance(value, int) and not isinstance(value, bool) else absent
    return out


def _kill_activation_timers(acc):
    for timer in acc.activation_timers:
        timer.kill(block=False)
    acc.activation_timers = []


def _stop_importers(acc):
    for imp in acc.importers:
        imp.stop()
    acc.importers = []
    _kill_activation_timers(acc)
    if acc.responses is not None:
        acc.responses.stop()
        acc.responses = None


def _expire(conn):
    if not conn.closed:
        conn.close(ClosedReason.AUTHENTICATION_EXPIRED, "User Authentication Expired")
