"""Activation tokens: the permission to import a ``token_req`` export.

An export with ``token_req: true`` in an account JWT is importable only by an
import that carries ``token``, an activation JWT, which nats-server accepts
when (jwt ``Import.Validate`` and ``Account.checkActivation``):

* it decodes and verifies (signed by its ``iss``), its type is ``activation``,
  it is within ``nbf``/``exp``;
* its ``sub`` is the importing account;
* it was issued by the exporting account itself, or by one of that account's
  signing keys with ``issuer_account`` naming the exporting account;
* the import's subject lies within the activation's ``subject``, and its
  ``kind`` (when given) is the import's type.

A token that is malformed, for another account or another subject makes the
importing account's JWT invalid (:func:`claims_errors`), as in nats-server; one
that is expired or signed by a key the exporter does not trust only leaves
that import out (:func:`activation_error`). Imports are re-checked when either
account's JWT is updated.
"""

import time

from .. import jwt as natsjwt
from ..subjects import subset_match


def remote_subject(entry):
    """The exporter's subject an import entry asks for: ``subject``, except a
    service import without ``local_subject`` whose deprecated ``to`` names it
    (nats-server UpdateAccountClaims; then ``subject`` is the local one)."""
    if entry.get("type") == "service" and not entry.get("local_subject") and entry.get("to"):
        return entry["to"]
    return entry.get("subject")


def claims_errors(account, imports):
    """What makes an account JWT invalid in its imports' activation tokens
    (jwt ``Import.Validate``, blocking errors): a token that does not decode,
    that is for another account, another import type, or a subject not
    covering the import. nats-server then refuses the account's users."""
    errors = []
    for entry in imports:
        if not isinstance(entry, dict) or not entry.get("token"):
            continue
        try:
            act = natsjwt.decode(entry["token"], expect_type="activation")
        except natsjwt.JWTError:
            errors.append("import %r contains an invalid activation token" % entry.get("subject"))
            continue
        nats = act.get("nats") or {}
        exporter = entry.get("account")
        if act.get("iss") != exporter and nats.get("issuer_account") != exporter:
            errors.append("activation token doesn't match account for import %r"
                          % entry.get("subject"))
        if act.get("sub") != account:
            errors.append("activation token doesn't match account it is being included in")
        if nats.get("kind") != entry.get("type"):
            errors.append("mismatch between token import type and type of import")
        subject, granted = remote_subject(entry), nats.get("subject")
        if not (isinstance(subject, str) and isinstance(granted, str)
                and subset_match(subject.encode(), granted.encode())):
            errors.append("activation token import subject %r doesn't match import %r"
                          % (granted, subject))
    return errors


def activation_error(token, exporter, signing_keys, importer, subject, kind):
    """Why ``token`` does not let ``importer`` import ``subject`` (of type
    ``kind``) from ``exporter`` (whose signing keys are ``signing_keys``);
    None when it does (nats-server checkActivation, after :func:`claims_errors`
    found the token well formed)."""
    if not isinstance(token, str) or not token:
        return "no activation token"
    try:
        act = natsjwt.decode(token, expect_type="activation")
    except natsjwt.JWTError as exc:
        return "activation token: %s" % exc
    now = time.time()
    if natsjwt.is_expired(act, now) or natsjwt.not_yet_valid(act, now):
        return "activation token expired or not yet valid"
    if act.get("sub") != importer:
        return "activation token is for %s" % act.get("sub")
    nats = act.get("nats") or {}
    issuer, issuer_account = act.get("iss"), nats.get("issuer_account")
    if issuer_account:
        if issuer_account != exporter or issuer not in signing_keys:
            return "activation token not issued by the exporter's signing key"
    elif issuer != exporter:
        return "activation token not issued by the exporter"
    granted = nats.get("subject")
    if not isinstance(granted, str) or not subset_match(subject.encode(), granted.encode()):
        return "activation token subject %r does not cover %r" % (granted, subject)
    if nats.get("kind") != kind:
        return "activation token is for a %s import" % nats.get("kind")
    return None
