"""Auth callout (nats-server 2.10+ ``auth_callout.go``): an external service
decides who gets in.

For a CONNECT from anyone but the ``auth_users`` (the service's own users),
the server mints a throwaway user nkey, signs an *authorization request* JWT
with its own server key (``aud: nats-authorization-request``, ``sub``: the
issuer, ``nats``: server_id, user_nkey, client_info, connect_opts,
client_tls) and publishes it to ``$SYS.REQ.USER.AUTH`` in the callout account
with a ``$SYS._INBOX.<hash>.<token>`` reply. The service answers with an
*authorization response* JWT (``sub``: that user nkey, ``aud``: the server id)
carrying either an ``error`` or a user JWT issued by ``issuer`` for the same
nkey; its ``aud`` names the account to join and its ``pub``/``sub``/``resp``
become the connection's permissions.

The CONNECT waits in its own reader greenlet (other connections carry on) for
at most the auth timeout. Every failure is ``-ERR 'Authorization Violation'``
for the client; the reason goes to the log, as nats-server's warning does.

With ``xkey`` (the service's public curve key) the request is sealed to it
(:mod:`.xkeys`) from a curve key of the server's, named in the request's
``server_id.xkey`` and the ``Nats-Server-Xkey`` header; the response may come
back sealed the other way.

One wildcard subscription on the inbox prefix receives every response; a
response is handed to its waiting greenlet untouched, so the publisher's
greenlet never verifies signatures on a waiter's behalf.
"""

import base64
import hashlib
import secrets
import ssl
import time

import gevent
import gevent.event
import structlog

from pluggy_nats import Allow, Deny, hookimpl, jwt, xkeys
from pluggy_nats.connection import CLIENT
from pluggy_nats.internal import InternalClient
from pluggy_nats.permissions import (
    DEFAULT_RESPONSE_EXPIRES,
    DEFAULT_RESPONSE_MAX,
    PermissionSpec,
    ResponsePermission,
    SubjectPermission,
)
from pluggy_nats.server import NATS_COMPAT_VERSION

AUTH_CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
AUTH_REQUEST_AUDIENCE = "nats-authorization-request"
XKEY_HEADER = "Nats-Server-Xkey"
JWT_PREFIX = b"eyJ"
_USER_KEY = "U"
_SERVER_KEY = "N"


class CalloutError(Exception):
    """Why a callout answer was refused (for the log only)."""


def _is_key(text, kind):
    if not isinstance(text, str) or not text.startswith(kind):
        return False
    try:
        jwt.public_key_bytes(text)
    except jwt.JWTError:
        return False
    return True


class AuthCallout:
    """The ``auth-callout`` plugin object: asks the service, judges its answer."""

    def __init__(self, server, cfg):
        self.server = server
        self.cfg = cfg
        self.client = None
        self.pending = {}  # reply token -> AsyncResult of the response payload
        # With the service's xkey configured, requests are sealed to it with a
        # curve key of this server's (nats-server makes one at start).
        self.xkey = xkeys.CurveKey() if cfg.xkey else None
        short = base64.b32encode(hashlib.sha256(server.server_id.encode()).digest())
        self.inbox = "$SYS._INBOX.%s." % short[:8].decode()
        self.log = structlog.get_logger("pluggy_nats.auth.callout")

    # -- start / stop -------------------------------------------------------------

    @hookimpl
    def nats_server_start(self, server):
        account = server.accounts.get(self.cfg.account)
        if account is None:
            # nats-server starts anyway and refuses every callout user.
            self.log.warning("auth_callout_account_missing", account=self.cfg.account)
            return
        self.client = InternalClient(server, account, "auth-callout")
        self.client.subscribe(self.inbox + "*", self._on_response)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if not lame_duck and self.client is not None:
            self.client.close()
            self.client = None

    # -- the decision ------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def nats_authenticate(self, conn, connect):
        # tryfirst although it waits: everyone but auth_users must go through
        # the callout, before the users list could refuse them.
        if conn.kind != CLIENT:
            return None
        users = self.cfg.auth_users
        if connect.get("user") in users or connect.get("nkey") in users:
            return None
        try:
            return self._ask(conn, connect)
        except CalloutError as exc:
            self.log.warning("auth_callout_refused", cid=conn.cid, reason=str(exc))
            return Deny("auth callout: %s" % exc)

    def _ask(self, conn, connect):
        if self.client is None:
            raise CalloutError("no valid account %r for auth callout request"
                               % self.cfg.account)
        user_kp = jwt.new_keypair(_USER_KEY)
        user_nkey = user_kp.public_key.decode()
        timeout = self.server.options.auth_timeout
        token = secrets.token_hex(11)
        waiter = self.pending[token] = gevent.event.AsyncResult()
        try:
            request = jwt.encode(self._request_claims(conn, connect, user_nkey, timeout),
                                 self.server.keypair).encode()
            headers = None
            if self.xkey is not None:
                request = self.xkey.seal(request, self.cfg.xkey)
                headers = ("NATS/1.0\r\n%s: %s\r\n\r\n"
                           % (XKEY_HEADER, self.xkey.public_key)).encode()
            self.client.publish(AUTH_CALLOUT_SUBJECT, request, reply=self.inbox + token,
                                headers=headers)
            try:
                payload = waiter.get(timeout=timeout)
            except gevent.Timeout:
                raise CalloutError("authorization callout response not received in time "
                                   "on account %r" % self.cfg.account)
        finally:
            self.pending.pop(token, None)
        if conn.closed:
            raise CalloutError("client closed while waiting for the callout")
        return self._judge(conn, payload, user_nkey)

    def _on_response(self, sub, subject, reply, headers, payload):
        token = subject.rsplit(b".", 1)[-1].decode("ascii", "replace")
        waiter = self.pending.get(token)
        if waiter is not None and not waiter.ready():
            waiter.set(bytes(payload))

    # -- the request -------------------------------------------------------------

    def _request_claims(self, conn, connect, user_nkey, timeout):
        server = self.server
        server_id = {"name": server.server_name, "host": server.options.host,
                     "id": server.server_id,
                     "version": NATS_COMPAT_VERSION}  # as INFO says it
        cluster = getattr(server, "cluster_name", None)
        if cluster:
            server_id["cluster"] = cluster
        if self.xkey is not None:
            server_id["xkey"] = self.xkey.public_key
        client_info = _drop_empty({
            "host": conn.host, "id": conn.cid, "user": _text(connect.get("user")),
            "name": _text(connect.get("name")), "kind": "Client", "type": "nats"})
        connect_opts = _drop_empty({
            key: _text(connect.get(key)) for key in (
                "jwt", "nkey", "sig", "auth_token", "user", "pass", "name", "lang",
                "version")})
        protocol = connect.get("protocol", 0)
        connect_opts["protocol"] = protocol if isinstance(protocol, int) else 0
        if connect_opts.get("sig"):
            client_info["nonce"] = getattr(conn, "nonce", "") or ""
        nats = {"server_id": server_id, "user_nkey": user_nkey, "client_info": client_info,
                "connect_opts": connect_opts, "type": "authorization_request", "version": 2}
        tls = _client_tls(conn)
        if tls:
            nats["client_tls"] = tls
        return {"aud": AUTH_REQUEST_AUDIENCE, "sub": self.cfg.issuer,
                "exp": int(time.time() + timeout), "nats": nats}

    # -- the response ------------------------------------------------------------

    def _judge(self, conn, payload, user_nkey):
        """Check the service's answer as nats-server's processReply does; an
        Allow for the user it carries, or CalloutError."""
        account_name = self.cfg.account
        if not payload:
            raise CalloutError("auth callout violation: \"no reason supplied\" on account %r"
                               % account_name)
        if self.xkey is not None and not payload.startswith(JWT_PREFIX):
            # the service may answer sealed or in the clear, as with nats-server
            try:
                payload = self.xkey.open(payload, self.cfg.xkey)
            except xkeys.XKeyError as exc:
                raise CalloutError("error decrypting auth callout response on account %r: %s"
                                   % (account_name, exc))
        try:
            response = jwt.decode(payload.decode("ascii", "replace"),
                                  expect_type="authorization_response")
        except jwt.JWTError as exc:
            raise CalloutError(str(exc))
        _validate_response(response)
        if response.get("sub") != user_nkey:
            raise CalloutError("auth callout violation: auth callout response is not for "
                               "expected user")
        if response.get("aud") != self.server.server_id:
            raise CalloutError("auth callout violation: auth callout response is not for "
                               "server")
        nats = response["nats"]
        if nats.get("error"):
            raise CalloutError("auth callout service returned an error: %s" % nats["error"])
        try:
            user = jwt.decode(nats["jwt"], expect_type="user")
        except jwt.JWTError as exc:
            raise CalloutError("error validating user JWT: %s" % exc)
        if jwt.is_expired(user) or jwt.not_yet_valid(user):
            raise CalloutError("error validating user JWT: expired or not yet valid")
        if user.get("sub") != user_nkey:
            raise CalloutError("expected authorized user of %r but got %r on account %r"
                               % (user_nkey, user.get("sub"), account_name))
        unats = user.get("nats") if isinstance(user.get("nats"), dict) else {}
        types = unats.get("allowed_connection_types")
        if types and "STANDARD" not in types:
            raise CalloutError("authorized user on account %r using invalid connection type"
                               % account_name)
        if unats.get("issuer_account"):
            raise CalloutError("error non operator mode account %r: attempted to use "
                               "issuer_account" % account_name)
        if user.get("iss") != self.cfg.issuer:
            raise CalloutError("wrong issuer for auth callout response on account %r, "
                               "expected %r got %r"
                               % (account_name, self.cfg.issuer, user.get("iss")))
        # Outside operator mode the user JWT's audience places the user.
        target = self.server.accounts.get(user.get("aud") or "")
        if target is None:
            raise CalloutError("no valid account %r for auth callout response on account %r"
                               % (user.get("aud"), account_name))
        try:
            perms = user_permissions(unats)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CalloutError("user JWT generated invalid permissions: %s" % exc)
        return Allow(account=target, permissions=perms, user=user.get("name") or user_nkey)


def _validate_response(claims):
    """jwt.AuthorizationResponseClaims.Validate."""
    nats = claims.get("nats")
    if not isinstance(nats, dict):
        raise CalloutError("authorization response had validation errors: no nats claims")
    issues = []
    if not _is_key(claims.get("sub"), _USER_KEY):
        issues.append("Subject must be a user public key")
    if not _is_key(claims.get("aud"), _SERVER_KEY):
        issues.append("Audience must be a server public key")
    if not nats.get("error") and not nats.get("jwt"):
        issues.append("Error or Jwt is required")
    if nats.get("error") and nats.get("jwt"):
        issues.append("Only Error or Jwt can be set")
    if jwt.is_expired(claims):
        issues.append("claim is expired")
    if jwt.not_yet_valid(claims):
        issues.append("claim is not yet valid")
    if not _is_key(claims.get("iss"), "A"):
        issues.append("issuer must be an account public key")
    if issues:
        raise CalloutError("authorization response had validation errors: %s" % issues[0])


def user_permissions(unats):
    """A user JWT's ``pub``/``sub``/``resp`` as per-connection permissions, or
    None when it restricts nothing (nats-server buildInternalNkeyUser: an empty
    allow and deny list is no restriction)."""
    spec = PermissionSpec()
    for key, attr in (("pub", "publish"), ("sub", "subscribe")):
        block = unats.get(key) or {}
        allow, deny = block.get("allow") or [], block.get("deny") or []
        if allow or deny:
            setattr(spec, attr, SubjectPermission(allow=list(allow) or None,
                                                  deny=list(deny) or None))
    resp = unats.get("resp")
    if isinstance(resp, dict):
        max_msgs = resp.get("max") or DEFAULT_RESPONSE_MAX
        ttl = resp.get("ttl") or 0  # nanoseconds
        spec.response = ResponsePermission(max=max_msgs,
                                           expires=ttl / 1e9 if ttl else DEFAULT_RESPONSE_EXPIRES)
    if spec.publish is None and spec.subscribe is None and spec.response is None:
        return None
    return spec.compile().for_connection()


def _client_tls(conn):
    """The request's ``client_tls``: version, cipher and the client's
    certificates (PEM): the verified chain when the server verifies clients
    (the leaf alone before Python 3.13, which added get_verified_chain), else
    the certificate as presented."""
    if not getattr(conn, "tls", False):
        return None
    tls = _drop_empty({"version": conn.tls_version, "cipher": conn.tls_cipher})
    sock = conn.sock
    try:
        der = sock.getpeercert(binary_form=True)
    except (ValueError, OSError, AttributeError):
        der = None
    if not der:
        return tls
    pems = [ssl.DER_cert_to_PEM_cert(der)]
    chain = getattr(sock, "get_verified_chain", None)
    if chain is not None:
        try:  # a list of DER-encoded certificates, leaf first
            pems = [ssl.DER_cert_to_PEM_cert(bytes(c)) for c in chain()] or pems
        except (ValueError, OSError, TypeError):
            pass
    if getattr(conn.tls_config, "verify", False):
        tls["verified_chains"] = [pems]
    else:
        tls["certs"] = pems[:1]
    return tls


def _text(value):
    return value if isinstance(value, str) else ""


def _drop_empty(d):
    return {k: v for k, v in d.items() if v not in ("", None, 0)}
