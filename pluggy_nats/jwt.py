"""NATS JWTs (nats-io/jwt v2): decode, verify, encode.

A NATS JWT is ``header.claims.signature``, each part base64 raw-URL. The header
is ``{"typ":"JWT","alg":"ed25519-nkey"}`` (v1 tokens say ``"ed25519"``); the
signature is the issuer's ed25519 signature of ``header.claims`` (the ASCII
text), and the issuer is the claims' ``iss``, an encoded public nkey. The
``jti`` is the base32 (no padding) SHA-256 of the claims JSON written with an
empty ``jti``, as the Go library computes it; nobody checks it, but we write it
the same way so our tokens look like ``nsc``'s.

**Version 1 tokens** (older ``nsc``; header ``"alg": "ed25519"``, usually
``"typ": "jwt"``) keep the claim type, tags and ``issuer_account`` at the top
level and are signed over the claims part alone. As nats-io/jwt v2 does,
:func:`decode` tells the version by the claims (a top-level ``type`` is v1;
otherwise ``nats.version`` must be 2), verifies the signature the way that
version was made, and returns v1 claims upgraded to the v2 layout
(:func:`upgrade_v1`), so the rest of the server reads one shape.
:func:`decode_generic` (claims delete requests) goes by the header's ``alg``
instead, as ``jwt.DecodeGeneric``.

Used by operator mode (operator, account and user JWTs) and by auth callout
(authorization requests and responses). The parts that mint keys and tokens
(:func:`encode`, :func:`new_keypair`) serve tests and the callout responder.
"""

import base64
import binascii
import hashlib
import json
import time

import nacl.exceptions
import nacl.signing
import nkeys

from .signatures import decode_public_key

ALGORITHMS = ("ed25519-nkey", "ed25519")
ALG_V1 = "ed25519"
LIB_VERSION = 2  # the newest claims version nats-io/jwt (and so nats-server) reads
MAX_TOKEN_SIZE = 1024 * 1024
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_HEADER_V1 = {"typ": "jwt", "alg": ALG_V1}
# claim types nats-io/jwt decodes into typed claims; others are generic
TYPED_CLAIMS = ("operator", "account", "user", "activation", "authorization_request",
                "authorization_response")

# The first character of an encoded public key says what it is.
PREFIXES = {
    "O": nkeys.PREFIX_BYTE_OPERATOR,
    "A": nkeys.PREFIX_BYTE_ACCOUNT,
    "U": nkeys.PREFIX_BYTE_USER,
    "N": nkeys.PREFIX_BYTE_SERVER,
    "C": nkeys.PREFIX_BYTE_CLUSTER,
}


class JWTError(ValueError):
    """The token is malformed, badly signed, or not what was expected."""


def _b64decode(part):
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise JWTError("bad base64 in JWT")


def _b64encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_key_bytes(encoded):
    """The raw ed25519 key of any encoded public nkey (O, A, U, N, C)."""
    prefix = PREFIXES.get(encoded[:1]) if isinstance(encoded, str) else None
    if prefix is None:
        raise JWTError("not a public nkey: %r" % (encoded,))
    try:
        return decode_public_key(encoded, prefix)
    except ValueError as exc:
        raise JWTError(str(exc))


def verify_signature(public_key, data, sig):
    """Whether ``sig`` (raw bytes) is ``public_key``'s signature of ``data``."""
    try:
        nacl.signing.VerifyKey(public_key_bytes(public_key)).verify(data, sig)
    except (nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def _split(token):
    """``(parts, header, claims)`` of a token whose form and header are right
    (nats-io/jwt ``Header.Valid``: ``typ`` JWT in any case, ``alg`` ed25519 or
    ed25519-nkey in any case)."""
    if not isinstance(token, str):
        raise JWTError("JWT is not a string")
    token = token.strip()
    if len(token) > MAX_TOKEN_SIZE:
        raise JWTError("token size %d exceeds maximum of %d bytes"
                       % (len(token), MAX_TOKEN_SIZE))
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("JWT must have 3 parts")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise JWTError("JWT header or claims are not JSON")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("JWT header or claims are not objects")
    typ, alg = header.get("typ"), header.get("alg")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise JWTError("not supported type %r" % (typ,))
    if not isinstance(alg, str) or alg.lower() not in ALGORITHMS:
        raise JWTError("unexpected %r algorithm" % (alg,))
    return parts, header, claims


def _verify(parts, claims, v1):
    """v1 tokens sign the claims part; v2 tokens ``header.claims``."""
    signed = parts[1] if v1 else "%s.%s" % (parts[0], parts[1])
    if not verify_signature(claims.get("iss"), signed.encode("ascii"), _b64decode(parts[2])):
        raise JWTError("claim failed V%d signature verification" % (1 if v1 else 2))


def claims_version(claims):
    """1 for v1 claims (a top-level ``type``), else ``nats.version`` (0 if
    absent): nats-io/jwt ``identifier.Version``."""
    if claims.get("type"):
        return 1
    nats = claims.get("nats")
    version = nats.get("version") if isinstance(nats, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def decode(token, expect_type=None):
    """The claims of ``token`` after checking its form and its signature by
    ``iss``, v1 claims upgraded to the v2 layout; ``expect_type`` (``"user"``,
    ``"account"``, ``"operator"``, ...) is checked against the claim type.
    Without ``expect_type`` a token of an unknown type is read as generic
    claims. Raises :class:`JWTError` for what nats-io/jwt ``Decode`` refuses."""
    parts, _header, claims = _split(token)
    kind = claim_type(claims)
    version = claims_version(claims)
    if version > LIB_VERSION:
        raise JWTError("JWT was generated by a newer version")
    if kind in ("cluster", "server"):
        raise JWTError("%s claims are not supported" % kind)
    if kind not in TYPED_CLAIMS:
        version = -1  # generic claims: verified as v1 (jwt.loadClaims)
    elif version not in (1, 2):
        raise JWTError("library supports version %d or less - received %d"
                       % (LIB_VERSION, version))
    _verify(parts, claims, v1=version <= 1)
    if version == 1:
        claims = upgrade_v1(claims)
    if expect_type is not None and claim_type(claims) != expect_type:
        raise JWTError("expected a %s JWT, got %r" % (expect_type, claim_type(claims)))
    return claims


def decode_generic(token):
    """Generic claims, as nats-io/jwt ``DecodeGeneric`` (claims delete
    requests): a header ``alg`` of exactly ``ed25519`` means a v1 signature
    (the v1 top-level ``type`` and ``tags`` are copied under ``nats``)."""
    parts, header, claims = _split(token)
    v1 = header.get("alg") == ALG_V1
    _verify(parts, claims, v1=v1)
    if v1:
        nats = claims.setdefault("nats", {})
        if isinstance(nats, dict):
            for key in ("type", "tags"):
                if claims.get(key):
                    nats[key] = claims[key]
    return claims


def upgrade_v1(claims):
    """v1 claims in the v2 layout (nats-io/jwt ``migrateV1``): ``type``,
    ``tags`` and ``issuer_account`` move under ``nats`` with ``version: 1``;
    a v1 activation's ``nats.type`` (stream/service) becomes ``kind``; a v1
    user's absent ``subs``/``data``/``payload`` mean no limit (-1)."""
    out = dict(claims)
    nats = dict(out.get("nats") or {})
    kind = out.pop("type")
    tags = out.pop("tags", None)
    issuer_account = out.pop("issuer_account", None)
    if kind == "activation":
        nats["kind"] = nats.pop("type", None) or ""
    if kind in ("user", "activation") and issuer_account:
        nats["issuer_account"] = issuer_account
    if kind == "user":
        for key in ("subs", "data", "payload"):
            nats.setdefault(key, -1)
    nats["type"] = kind
    if tags:
        nats["tags"] = tags
    nats["version"] = 1
    out["nats"] = nats
    return out


def claim_type(claims):
    """The claim type: v1's top-level ``type``, else ``nats.type``."""
    if claims.get("type"):
        return claims["type"]
    nats = claims.get("nats")
    if isinstance(nats, dict) and nats.get("type"):
        return nats["type"]
    return None


def is_expired(claims, now=None):
    exp = claims.get("exp")
    return bool(exp) and (now if now is not None else time.time()) >= exp


def not_yet_valid(claims, now=None):
    nbf = claims.get("nbf")
    return bool(nbf) and (now if now is not None else time.time()) < nbf


def encode(claims, keypair, v1=False):
    """A signed token for ``claims`` (a dict, changed in place: ``iss``, ``iat``
    and ``jti`` are filled in when missing) with the nkeys ``keypair``.
    ``v1``: the way older ``nsc`` signed (header ``{"typ":"jwt","alg":"ed25519"}``,
    the signature over the claims part only); the claims must then be in the
    v1 layout (a top-level ``type``)."""
    claims.setdefault("iss", keypair.public_key.decode())
    claims.setdefault("iat", int(time.time()))
    claims["jti"] = ""
    body = json.dumps(claims, separators=(",", ":")).encode()
    claims["jti"] = base64.b32encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    header = _b64encode(json.dumps(_HEADER_V1 if v1 else _HEADER,
                                   separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = "%s.%s" % (header, payload)
    signed = payload if v1 else signing_input
    return "%s.%s" % (signing_input, _b64encode(keypair.sign(signed.encode())))


def new_keypair(kind="U"):
    """A fresh nkeys KeyPair of ``kind`` (``"O"``, ``"A"``, ``"U"``, ...)."""
    seed = nacl.signing.SigningKey.generate().encode()
    return nkeys.from_seed(bytearray(nkeys.encode_seed(seed, PREFIXES[kind])))


def creds(user_jwt, user_seed):
    """The text of a ``.creds`` file, as ``nsc`` writes it."""
    if isinstance(user_seed, (bytes, bytearray)):
        user_seed = bytes(user_seed).decode()
    return ("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
            "*************************************************************\n"
            % (user_jwt, user_seed))
