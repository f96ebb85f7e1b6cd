"""NKey public keys and nonce signatures (ed25519), as nats-server checks them.

A user public key is base32 (no padding) of: prefix byte (``U``), the 32-byte
ed25519 key, and a CRC-16 of both (little endian), 56 characters in all. The
client signs the INFO ``nonce`` (its ASCII bytes) and sends the signature in
CONNECT ``sig``, base64 raw-URL (or standard base64, which nats-server also takes).
"""

import base64
import binascii
import re
import secrets

import nacl.exceptions
import nacl.signing
import nkeys

_RAW_URL = re.compile(r"[A-Za-z0-9_-]*")
NONCE_BYTES = 11  # nats-server nonceRawLen: 15 characters of raw-URL base64


def new_nonce():
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()


def decode_public_key(text, prefix=nkeys.PREFIX_BYTE_USER):
    """The raw 32-byte ed25519 key of an encoded public nkey with ``prefix``;
    ValueError if it is not one."""
    if not isinstance(text, str) or len(text) != 56:
        raise ValueError("not a public nkey")
    try:
        raw = base64.b32decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not a public nkey (bad base32)")
    if len(raw) != 35 or raw[0] != prefix:
        raise ValueError("not a public nkey of the expected kind")
    body, crc = raw[:-2], raw[-2:]
    if nkeys.crc16(bytearray(body)) != int.from_bytes(crc, "little"):
        raise ValueError("not a public nkey (bad checksum)")
    return bytes(body[1:])


def is_valid_user_key(text):
    try:
        decode_public_key(text)
    except ValueError:
        return False
    return True


def verify_key(text):
    """A ``nacl.signing.VerifyKey`` for an encoded user public key."""
    return nacl.signing.VerifyKey(decode_public_key(text))


def decode_signature(sig):
    """The raw signature bytes of a raw-URL or standard base64 string, or None."""
    if not isinstance(sig, str) or not sig:
        return None
    try:
        if _RAW_URL.fullmatch(sig):
            return base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        return base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_nonce(key, nonce, sig):
    """Whether ``sig`` (the CONNECT string) is ``key``'s signature of ``nonce``."""
    raw = decode_signature(sig)
    if raw is None or len(raw) != 64 or not nonce:
        return False
    try:
        key.verify(nonce.encode(), raw)
    except (nacl.exceptions.CryptoError, ValueError):
        return False
    return True
