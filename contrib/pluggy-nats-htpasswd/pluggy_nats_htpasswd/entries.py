"""Reading an htpasswd file and checking a password against one entry."""

import base64
import hashlib
import hmac

import bcrypt

BCRYPT_PREFIXES = ("$2y$", "$2a$", "$2b$")
SHA_PREFIX = "{SHA}"


class HtpasswdError(ValueError):
    """The file has a line or a hash scheme we cannot use."""


def load(path):
    """``{user: hash}`` from the htpasswd file at ``path``. Blank lines and
    ``#`` comments are skipped; unsupported schemes raise HtpasswdError (a user
    who could never log in is better reported at start)."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user or not hashed:
                raise HtpasswdError("%s:%d: expected user:hash" % (path, lineno))
            if not hashed.startswith(BCRYPT_PREFIXES + (SHA_PREFIX,)):
                raise HtpasswdError("%s:%d: unsupported hash for user %r (use bcrypt, "
                                    "htpasswd -B)" % (path, lineno, user))
            entries[user] = hashed
    return entries


def check(hashed, password):
    """Whether ``password`` (str) matches the entry ``hashed``. Slow for bcrypt:
    run it off the event loop."""
    given = password.encode()
    if hashed.startswith(SHA_PREFIX):
        digest = base64.b64encode(hashlib.sha1(given).digest()).decode()
        return hmac.compare_digest(hashed[len(SHA_PREFIX):].encode(), digest.encode())
    try:
        return bcrypt.checkpw(given, hashed.encode())
    except ValueError:  # a malformed hash, or a password over bcrypt's 72 bytes
        return False
