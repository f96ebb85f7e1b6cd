"""NATS JWTs (nats-io/jwt v2): decode, verify, encode.

A NATS JWT is ``header.claims.signature``, each part base64 raw-URL. The header
is ``{"typ":"JWT","alg":"ed25519-nkey"}`` (v1 tokens say ``"ed25519"``); the
signature is the issuer's ed25519 signature of ``header.claims`` (the ASCII
text), and the issuer is the claims' ``iss``, an encoded public nkey. The
``jti`` is the base32 (no padding) SHA-256 of the claims JSON written with an
empty ``jti``, as the Go library computes it; nobody checks it, but we write it
the same way so our tokens look like ``nsc``'s.

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
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}

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


def decode(token, expect_type=None):
    """The claims of ``token`` after checking its form and its signature by
    ``iss``; ``expect_type`` (``"user"``, ``"account"``, ``"operator"``, ...)
    is checked against ``claims["nats"]["type"]`` (or v1's top-level ``type``).
    Raises :class:`JWTError`."""
    if not isinstance(token, str):
        raise JWTError("JWT is not a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JWTError("JWT must have 3 parts")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise JWTError("JWT header or claims are not JSON")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("JWT header or claims are not objects")
    if header.get("typ", "JWT").upper() != "JWT" or header.get("alg") not in ALGORITHMS:
        raise JWTError("unsupported JWT header %r" % (header,))
    issuer = claims.get("iss")
    if not verify_signature(issuer, ("%s.%s" % (parts[0], parts[1])).encode("ascii"),
                            _b64decode(parts[2])):
        raise JWTError("JWT signature does not verify")
    if expect_type is not None and claim_type(claims) != expect_type:
        raise JWTError("expected a %s JWT, got %r" % (expect_type, claim_type(claims)))
    return claims


def claim_type(claims):
    nats = claims.get("nats")
    if isinstance(nats, dict) and nats.get("type"):
        return nats["type"]
    return claims.get("type")


def is_expired(claims, now=None):
    exp = claims.get("exp")
    return bool(exp) and (now if now is not None else time.time()) >= exp


def not_yet_valid(claims, now=None):
    nbf = claims.get("nbf")
    return bool(nbf) and (now if now is not None else time.time()) < nbf


def encode(claims, keypair):
    """A signed token for ``claims`` (a dict, changed in place: ``iss``, ``iat``
    and ``jti`` are filled in when missing) with the nkeys ``keypair``."""
    claims.setdefault("iss", keypair.public_key.decode())
    claims.setdefault("iat", int(time.time()))
    claims["jti"] = ""
    body = json.dumps(claims, separators=(",", ":")).encode()
    claims["jti"] = base64.b32encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    signing_input = "%s.%s" % (
        _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode()),
        _b64encode(json.dumps(claims, separators=(",", ":")).encode()))
    return "%s.%s" % (signing_input, _b64encode(keypair.sign(signing_input.encode())))


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
