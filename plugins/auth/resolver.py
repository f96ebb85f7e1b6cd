"""Account resolvers: where operator mode finds an account's JWT by public key.

* :class:`MemoryResolver` (``resolver: MEMORY``): only ``resolver_preload``;
  nothing can be added at run time.
* :class:`DirResolver` (``resolver { type: full, dir }``): one file per account,
  ``<dir>/<pubkey>.jwt``, as nats-server's DirJWTStore (unsharded) writes them;
  updates pushed over ``$SYS.REQ.CLAIMS.UPDATE`` are stored there, and with
  ``allow_delete`` ``$SYS.REQ.CLAIMS.DELETE`` removes them. The preload
  is written into the directory at start unless a file is already there.
"""

import os


class MemoryResolver:
    writable = False

    def __init__(self, preload):
        self.jwts = dict(preload)

    def fetch(self, pubkey):
        return self.jwts.get(pubkey)

    def store(self, pubkey, token):
        raise ValueError("the memory resolver does not take updates")

    def list(self):
        return sorted(self.jwts)


class DirResolver:
    writable = True

    def __init__(self, directory, preload=None, allow_delete=False, hard_delete=False):
        self.dir = directory
        self.allow_delete = allow_delete
        self.hard_delete = hard_delete
        os.makedirs(directory, exist_ok=True)
        for pubkey, token in (preload or {}).items():
            if not os.path.exists(self._path(pubkey)):
                self.store(pubkey, token)

    def _path(self, pubkey):
        if not pubkey.isalnum():  # never a path outside dir
            raise ValueError("not an account public key: %r" % pubkey)
        return os.path.join(self.dir, pubkey + ".jwt")

    def fetch(self, pubkey):
        try:
            with open(self._path(pubkey)) as f:
                return f.read().strip()
        except (OSError, ValueError):
            return None

    def list(self):
        """The account keys stored, as ``$SYS.REQ.CLAIMS.LIST`` reports them."""
        return sorted(name[:-4] for name in os.listdir(self.dir) if name.endswith(".jwt"))

    def delete(self, pubkey):
        """Remove an account's JWT: renamed to ``<pubkey>.jwt.deleted`` (kept
        for the record, as nats-server's default) or removed (hard_delete)."""
        path = self._path(pubkey)
        if self.hard_delete:
            os.remove(path)
        else:
            os.replace(path, path + ".deleted")

    def store(self, pubkey, token):
        """Write atomically (a reader never sees half a token)."""
        path = self._path(pubkey)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(token)
        os.replace(tmp, path)


def make_resolver(op):
    if op.resolver == "FULL":
        return DirResolver(op.dir, op.preload, op.allow_delete, op.hard_delete)
    return MemoryResolver(op.preload)
