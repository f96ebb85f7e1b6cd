"""Curve ("x") keys and their sealed boxes, as the Go nkeys library makes them
(``xkeys.go``), for encrypted auth callout exchanges.

A public xkey is base32 (no padding) of the prefix byte ``X`` (23 << 3), the
32-byte X25519 public key and a CRC-16 (little endian). A sealed message is
``b"xkv1"`` + a random 24-byte nonce + NaCl ``box`` (Curve25519, XSalsa20,
Poly1305) of the plaintext from the sender's private key to the recipient's
public key, which is exactly what PyNaCl's :class:`nacl.public.Box` computes.
The Python ``nkeys`` package has no curve keys, hence this module.
"""

import base64

import nacl.exceptions
import nacl.public
import nacl.utils
import nkeys

from .signatures import decode_public_key

PREFIX_BYTE_CURVE = 23 << 3  # "X"
VERSION = b"xkv1"
NONCE_LEN = nacl.public.Box.NONCE_SIZE  # 24


class XKeyError(ValueError):
    """Not a public xkey, or a message that does not open."""


def encode_public(raw):
    body = bytes([PREFIX_BYTE_CURVE]) + bytes(raw)
    crc = nkeys.crc16(bytearray(body)).to_bytes(2, "little")
    return base64.b32encode(body + crc).decode().rstrip("=")


def decode_public(text):
    """The raw 32-byte X25519 key of a public xkey; XKeyError if it is not one."""
    try:
        return decode_public_key(text, PREFIX_BYTE_CURVE)
    except ValueError as exc:
        raise XKeyError(str(exc).replace("nkey", "xkey"))


def is_public(text):
    try:
        decode_public(text)
    except XKeyError:
        return False
    return True


class CurveKey:
    """A curve key pair (a fresh one unless ``private`` raw bytes are given)."""

    def __init__(self, private=None):
        self.private = (nacl.public.PrivateKey(private) if private is not None
                        else nacl.public.PrivateKey.generate())
        self.public_key = encode_public(bytes(self.private.public_key))

    def _box(self, peer):
        return nacl.public.Box(self.private, nacl.public.PublicKey(decode_public(peer)))

    def seal(self, plaintext, recipient):
        """``plaintext`` (bytes) sealed for the public xkey ``recipient``."""
        nonce = nacl.utils.random(NONCE_LEN)
        return VERSION + nonce + self._box(recipient).encrypt(plaintext, nonce).ciphertext

    def open(self, sealed, sender):
        """The plaintext of ``sealed`` from the public xkey ``sender``."""
        if len(sealed) <= len(VERSION) + NONCE_LEN or not sealed.startswith(VERSION):
            raise XKeyError("not an xkv1 sealed message")
        nonce = sealed[len(VERSION):len(VERSION) + NONCE_LEN]
        try:
            return self._box(sender).decrypt(sealed[len(VERSION) + NONCE_LEN:], nonce)
        except nacl.exceptions.CryptoError:
            raise XKeyError("could not decrypt")
