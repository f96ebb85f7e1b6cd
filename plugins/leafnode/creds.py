"""Credentials a leaf presents: ``.creds`` files (a user JWT and its nkey seed)
and bare nkey seeds, and the signature of the hub's nonce they make.

The nkeys library and the core's nonce codec (:mod:`pluggy_nats.signatures`)
come through :func:`_codec` and :func:`_signatures` only.
"""

import base64
import re

_BLOCK = re.compile(r"-{3,}[^\n]*BEGIN[^\n]*-{3,}\s*\n(.*?)\n\s*-{3,}[^\n]*END[^\n]*-{3,}",
                    re.DOTALL)


class CredentialsError(ValueError):
    pass


def _codec():
    """The nkeys library (seed -> key pair that signs)."""
    import nkeys

    return nkeys


def read_creds(path):
    """(jwt, seed) from a ``.creds`` file: the first block is the JWT, the second
    the seed (nats-server's ``nkeys.ParseDecoratedJWT``/``ParseDecoratedNKey``)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise CredentialsError("error reading credentials file %s: %s" % (path, exc)) from None
    blocks = [b.strip() for b in _BLOCK.findall(text)]
    if len(blocks) < 2:
        raise CredentialsError("credentials file %s: no JWT and seed found" % path)
    return blocks[0], blocks[1]


def sign_nonce(seed, nonce):
    """base64url (no padding) of the ed25519 signature of ``nonce`` by ``seed``
    (as nats-server's leaf CONNECT ``sig``)."""
    kp = _codec().from_seed(bytearray(seed.encode() if isinstance(seed, str) else seed))
    raw = kp.sign(nonce.encode() if isinstance(nonce, str) else nonce)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_key(seed):
    kp = _codec().from_seed(bytearray(seed.encode() if isinstance(seed, str) else seed))
    return kp.public_key.decode()


def connect_credentials(remote, nonce):
    """CONNECT fields (jwt, nkey, sig) for ``remote``'s credentials given the
    hub's ``nonce``; {} when it has none."""
    if remote.credentials:
        jwt, seed = read_creds(remote.credentials)
        return {"jwt": jwt, "sig": sign_nonce(seed, nonce or "")}
    if remote.nkey:
        return {"nkey": public_key(remote.nkey), "sig": sign_nonce(remote.nkey, nonce or "")}
    return {}


def _signatures():
    """The core's nonce and public-key codec."""
    from pluggy_nats import signatures

    return signatures


def new_nonce():
    return _signatures().new_nonce()


def verify_nonce(public, nonce, sig):
    """Whether ``sig`` is the signature of ``nonce`` by user key ``public``."""
    sigs = _signatures()
    try:
        key = sigs.verify_key(public)
    except ValueError:
        return False
    return sigs.verify_nonce(key, nonce, sig)
