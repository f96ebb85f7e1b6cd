"""Operator-mode credentials for tests, minted like ``nsc`` does (no ``nsc``).

:class:`Trust` holds an operator, its system account and any number of
accounts; it writes the operator JWT, the server config (memory or full
resolver) and ``.creds`` files for users::

    trust = Trust(tmp_path)
    acc = trust.account("A", limits={"conn": 5})
    svc = trust.account("S", exports=[Trust.service_export("q", token_req=True)])
    trust.account_jwt(acc, imports=[Trust.service_import(
        svc, "q", token=trust.activation(svc, acc, "q"))])
    creds = trust.user_creds(acc, "alice", pub={"allow": ["a.>"]})
    server = make_server(config=trust.config())
"""

import base64
import os
import time

from pluggy_nats import jwt as natsjwt

UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
             "wildcards": True, "conn": -1, "leaf": -1}


class Account:
    def __init__(self, name, kp):
        self.name = name
        self.kp = kp
        self.pubkey = kp.public_key.decode()
        self.jwt = None


class Trust:
    def __init__(self, directory, operator_signing_key=False, strict=False):
        self.dir = str(directory)
        self.operator = natsjwt.new_keypair("O")
        self.op_signing = natsjwt.new_keypair("O") if operator_signing_key else None
        self.accounts = {}
        self.n = 0
        self.system = self.account("SYS")
        claims = {"sub": self.operator.public_key.decode(), "name": "OP",
                  "nats": {"type": "operator", "version": 2,
                           "system_account": self.system.pubkey}}
        if self.op_signing is not None:
            claims["nats"]["signing_keys"] = [self.op_signing.public_key.decode()]
        if strict:
            claims["nats"]["strict_signing_key_usage"] = True
        self.operator_jwt = natsjwt.encode(claims, self.operator)

    def account_jwt(self, acc, signer=None, **nats):
        """(Re)issue ``acc``'s JWT; ``nats`` fields (limits, revocations,
        signing_keys, exports, imports, ...) go under ``nats``; ``exp`` on top."""
        exp = nats.pop("exp", None)
        iat = nats.pop("iat", None)
        body = {"limits": dict(UNLIMITED, **nats.pop("limits", {})),
                "default_permissions": {"pub": {}, "sub": {}}, "type": "account",
                "version": 2}
        body.update(nats)
        claims = {"sub": acc.pubkey, "name": acc.name, "nats": body}
        if exp is not None:
            claims["exp"] = exp
        if iat is not None:
            claims["iat"] = iat
        acc.jwt = natsjwt.encode(claims, signer or self.op_signing or self.operator)
        return acc.jwt

    def account(self, name, **nats):
        acc = Account(name, natsjwt.new_keypair("A"))
        self.accounts[name] = acc
        self.account_jwt(acc, **nats)
        return acc

    def activation(self, exporter, importer, subject, kind="service", signer=None,
                   exp=None):
        """An activation JWT letting ``importer`` import ``subject`` (a
        ``token_req`` export of ``exporter``), as ``nsc generate activation``
        makes it; ``signer`` is one of the exporter's signing keys."""
        body = {"subject": subject, "kind": kind, "type": "activation", "version": 2}
        if signer is not None:
            body["issuer_account"] = exporter.pubkey
        claims = {"sub": importer.pubkey, "name": subject, "nats": body}
        if exp is not None:
            claims["exp"] = exp
        return natsjwt.encode(claims, signer or exporter.kp)

    @staticmethod
    def service_export(subject, **kw):
        """An account JWT ``exports`` entry of type service (``response_type``,
        ``response_threshold`` in nanoseconds, ``token_req``, ...)."""
        return dict({"name": subject, "subject": subject, "type": "service"}, **kw)

    @staticmethod
    def service_import(exporter, subject, **kw):
        """An account JWT ``imports`` entry of type service from ``exporter``
        (``local_subject``, ``token``, ...)."""
        return dict({"name": subject, "subject": subject, "account": exporter.pubkey,
                     "type": "service"}, **kw)

    def user_jwt(self, acc, name, signer=None, issued_at=None, exp=None, nbf=None,
                 kp=None, bare=False, **nats):
        """A user JWT and its keypair. ``bare``: no permissions or limits at all,
        as a user of a scoped signing key must be (nsc writes none then)."""
        kp = kp or natsjwt.new_keypair("U")
        body = {"type": "user", "version": 2}
        if not bare:
            body.update({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
        body.update(nats)
        if signer is not None and signer.public_key != acc.kp.public_key:
            body["issuer_account"] = acc.pubkey
        claims = {"sub": kp.public_key.decode(), "name": name, "nats": body}
        for key, value in (("iat", issued_at), ("exp", exp), ("nbf", nbf)):
            if value is not None:
                claims[key] = value
        return natsjwt.encode(claims, signer or acc.kp), kp

    def user_creds(self, acc, name, **kw):
        """Path of a ``.creds`` file for a new user of ``acc``."""
        token, kp = self.user_jwt(acc, name, **kw)
        self.n += 1
        path = os.path.join(self.dir, "%s-%d.creds" % (name, self.n))
        with open(path, "w") as f:
            f.write(natsjwt.creds(token, kp.seed))
        return path

    def write_operator(self):
        path = os.path.join(self.dir, "op.jwt")
        with open(path, "w") as f:
            f.write(self.operator_jwt)
        return path

    def delete_request(self, *accounts, signer=None):
        """The generic JWT a ``$SYS.REQ.CLAIMS.DELETE`` carries (as ``nsc
        delete account`` makes it): self-signed by the operator."""
        kp = signer or self.operator
        return natsjwt.encode({"sub": kp.public_key.decode(),
                               "nats": {"accounts": list(accounts)}}, kp)

    def config(self, resolver="MEMORY", preload=None, extra="", allow_delete=False):
        """Server config text: the operator file, the system account and a
        ``MEMORY`` resolver preloaded with ``preload`` (default every account),
        or ``resolver="full"`` with a directory (preloaded the same way)."""
        accounts = preload if preload is not None else list(self.accounts.values())
        lines = ["operator: %s" % _q(self.write_operator()),
                 "system_account: %s" % self.system.pubkey]
        if resolver == "MEMORY":
            lines.append("resolver: MEMORY")
        else:
            jwt_dir = os.path.join(self.dir, "jwt")
            lines.append("resolver { type: full, dir: %s, allow_delete: %s, "
                         "interval: \"2m\", timeout: \"1.9s\" }"
                         % (_q(jwt_dir), "true" if allow_delete else "false"))
        lines.append("resolver_preload: {")
        lines.extend("  %s: %s" % (a.pubkey, a.jwt) for a in accounts)
        lines.append("}")
        return "\n".join(lines) + "\n" + extra


def connect_fields(token, kp, info):
    """The CONNECT fields of a user JWT login: ``jwt`` and ``sig``, the user
    key's signature of the INFO ``nonce`` (raw-URL base64, as nats.go)."""
    sig = base64.urlsafe_b64encode(kp.sign(info["nonce"].encode())).rstrip(b"=").decode()
    return {"jwt": token, "sig": sig}


def _q(text):
    return '"%s"' % text


def now():
    return int(time.time())
