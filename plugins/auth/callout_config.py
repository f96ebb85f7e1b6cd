"""Reading ``authorization { auth_callout {...} }`` with nats-server's checks and
error texts (``opts.go`` parseAuthCallout).

The block names the account key that signs the answers (``issuer``), the
users who skip the callout because they *are* the callout service
(``auth_users``), the account the requests go to (``account``, default
``$G``) and optionally the service's curve key (``xkey``) to encrypt the
exchange.
"""

from pluggy_nats import xkeys
from pluggy_nats.jwt import JWTError, public_key_bytes

GLOBAL_ACCOUNT = "$G"


class CalloutConfig:
    def __init__(self):
        self.issuer = ""  # the account public key that signs responses and users
        self.account = GLOBAL_ACCOUNT  # where requests are published
        self.auth_users = frozenset()  # user names or nkeys that authenticate normally
        self.xkey = ""  # the service's public curve key: encrypt requests to it

    def __repr__(self):
        return "CalloutConfig(issuer=%r, account=%r, auth_users=%r, xkey=%r)" % (
            self.issuer, self.account, sorted(self.auth_users), self.xkey)


def is_account_key(text):
    if not isinstance(text, str) or not text.startswith("A"):
        return False
    try:
        public_key_bytes(text)
    except JWTError:
        return False
    return True


def parse_callout(p, m, key):
    """The CalloutConfig of ``m[key]``; ``p`` is the auth config Parser whose
    ``err``/``unknown`` collect the problems. None when the block is unusable."""
    block = m[key]
    if not isinstance(block, dict):
        p.err(m, key, "Expected authorization callout to be a map/struct, got %r" % (block,))
        return None
    cfg = CalloutConfig()
    for k in block:
        lk = k.lower()
        v = block[k]
        if lk == "issuer":
            if not is_account_key(v):
                p.err(block, k, "Expected callout user to be a valid public account nkey, "
                                "got %s" % _quote(v))
                return None
            cfg.issuer = v
        elif lk in ("account", "acc"):
            cfg.account = p.string(block, k) or GLOBAL_ACCOUNT
        elif lk in ("auth_users", "users"):
            if not isinstance(v, list) or not all(isinstance(u, str) for u in v):
                p.err(block, k, "Expected auth_users field to be an array, got %s"
                      % type(v).__name__)
                return None
            cfg.auth_users = frozenset(v)
        elif lk in ("xkey", "key"):
            if not xkeys.is_public(v):
                p.err(block, k, "Expected callout xkey to be a valid public xkey, got %s"
                      % _quote(v))
                return None
            cfg.xkey = v
        else:
            p.unknown(block, k, "Unknown field %s parsing authorization callout" % _quote(k))
    if not cfg.issuer:
        p.err(m, key, "Authorization callouts require an issuer to be specified")
        return None
    if not cfg.auth_users:
        p.err(m, key, "Authorization callouts require authorized users to be specified")
        return None
    return cfg


def _quote(v):
    return '"%s"' % v if isinstance(v, str) else repr(v)
