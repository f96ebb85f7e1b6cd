"""The full resolver's system-account services (nats-server ``accounts.go``
DirAccResolver.Start):

* ``$SYS.REQ.CLAIMS.UPDATE`` (payload: an account JWT) and
  ``$SYS.REQ.ACCOUNT.<pubkey>.CLAIMS.UPDATE`` store the JWT in the resolver
  directory and re-apply it to the account if in use; the reply is
  ``{"server": {...}, "data": {"account", "code": 200, "message": "jwt updated"}}``
  or ``{"server": {...}, "error": {"account", "code": 500, "description"}}``;
* ``$SYS.REQ.CLAIMS.DELETE`` (with ``allow_delete``; payload: a generic JWT
  self-signed by a trusted operator key, ``nats: {accounts: [...]}``) removes
  account JWTs (never the system account's) and cuts their users off;
* ``$SYS.REQ.CLAIMS.LIST`` answers ``{"server": {...}, "data": [account keys]}``;
* ``$SYS.REQ.ACCOUNT.<pubkey>.CLAIMS.LOOKUP`` answers with the stored JWT
  itself, and not at all when there is none (so another server may answer).

Only users of the system account can publish there: the subscriptions live in
the system account, which is isolated like every other.
"""

import datetime
import json

import structlog

from pluggy_nats import __version__
from pluggy_nats import jwt as natsjwt
from pluggy_nats.internal import InternalClient

UPDATE = "$SYS.REQ.CLAIMS.UPDATE"
ACCOUNT_UPDATE = "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE"
ACCOUNT_LOOKUP = "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP"
LIST = "$SYS.REQ.CLAIMS.LIST"
DELETE = "$SYS.REQ.CLAIMS.DELETE"


class ClaimsService:
    def __init__(self, server, operator_auth):
        self.server = server
        self.auth = operator_auth
        self.resolver = operator_auth.resolver
        self.client = None
        self.log = structlog.get_logger("pluggy_nats.auth")

    def start(self, system_account):
        self.client = InternalClient(self.server, system_account, "$SYS-claims")
        self.client.subscribe(UPDATE, self._on_update)
        self.client.subscribe(ACCOUNT_UPDATE, self._on_update)
        self.client.subscribe(ACCOUNT_LOOKUP, self._on_lookup)
        self.client.subscribe(LIST, self._on_list)
        self.client.subscribe(DELETE, self._on_delete)

    def stop(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def _on_update(self, sub, subject, reply, headers, payload):
        tokens = bytes(subject).split(b".")
        pubkey = tokens[3].decode() if len(tokens) == 6 else None
        token = bytes(payload).decode("utf-8", "replace").strip()
        try:
            claims = natsjwt.decode(token, expect_type="account")
        except natsjwt.JWTError as exc:
            return self._respond(reply, "n/a", "jwt update resulted in error", exc)
        if natsjwt.is_expired(claims) or natsjwt.not_yet_valid(claims):
            return self._respond(reply, claims.get("sub"), "jwt validation failed",
                                 "claim is expired or not yet valid")
        if pubkey is not None and claims.get("sub") != pubkey:
            return self._respond(reply, pubkey, "jwt update resulted in error",
                                 "subject does not match jwt content")
        pubkey = claims.get("sub")
        try:
            self.resolver.store(pubkey, token)
        except (OSError, ValueError) as exc:
            return self._respond(reply, pubkey, "jwt update resulted in error", exc)
        self.log.info("account_jwt_updated", account=pubkey)
        self.auth.update(pubkey, token)
        self._respond(reply, pubkey, "jwt updated")

    def _on_lookup(self, sub, subject, reply, headers, payload):
        pubkey = bytes(subject).split(b".")[3].decode()
        token = self.resolver.fetch(pubkey)
        if token is not None and reply:
            self.client.publish(reply, token.encode())

    def _on_delete(self, sub, subject, reply, headers, payload):
        subj = ""
        try:
            claims = natsjwt.decode(bytes(payload).decode("utf-8", "replace").strip())
            subj = claims.get("sub") or ""
            accounts = self._delete_targets(claims)
        except (natsjwt.JWTError, ValueError) as exc:
            return self._respond(reply, "", "delete accounts request by %s failed" % subj, exc)
        failed = []
        for pubkey in accounts:
            try:
                self.resolver.delete(pubkey)
            except (OSError, ValueError) as exc:
                failed.append(str(exc))
                continue
            self.auth.remove(pubkey)
        done = len(accounts) - len(failed)
        if failed:
            return self._respond(reply, "", "deleted %d accounts, failed for %d"
                                 % (done, len(failed)), "\n".join(failed))
        self.log.info("account_jwts_deleted", accounts=accounts)
        self._respond(reply, "", "deleted %d accounts" % done)

    def _delete_targets(self, claims):
        """nats-server handleDeleteRequest's checks, in its order."""
        if not self.resolver.allow_delete:
            raise ValueError("delete must be enabled in server config")
        if claims.get("sub") != claims.get("iss"):
            raise ValueError("not self signed")
        if claims.get("iss") not in self.auth.op.trusted_keys:
            raise ValueError("not trusted")
        accounts = (claims.get("nats") or {}).get("accounts")
        if not isinstance(accounts, list):
            raise ValueError("malformed request")
        system = self.server.accounts.system_account
        for acc in accounts:
            if not isinstance(acc, str) or not acc.startswith("A"):
                raise ValueError("malformed request")
            try:
                natsjwt.public_key_bytes(acc)
            except natsjwt.JWTError:
                raise ValueError("malformed request")
            if system is not None and acc == system.name:
                raise ValueError("not allowed to delete system account")
        return accounts

    def _on_list(self, sub, subject, reply, headers, payload):
        if reply:
            body = {"server": self._server_info(), "data": self.resolver.list()}
            self.client.publish(reply, json.dumps(body).encode())

    def _respond(self, reply, account, message, err=None):
        if not reply:
            return
        if err is None:
            body = {"data": {"code": 200, "message": message}}
        else:
            body = {"error": {"code": 500, "description": "%s - %s" % (message, err)}}
        if account:  # omitted when empty, as nats-server's omitempty
            (body.get("data") or body["error"])["account"] = account
        body["server"] = self._server_info()
        self.client.publish(reply, json.dumps(body).encode())

    def _server_info(self):
        server = self.server
        now = datetime.datetime.now(datetime.timezone.utc)
        return {"name": server.server_name, "host": server.options.host,
                "id": server.server_id, "ver": __version__, "jetstream": False,
                "time": now.isoformat().replace("+00:00", "Z")}
