"""The full resolver's ``interval`` sync between servers (nats-server
accounts.go DirAccResolver.Start and dirstore.go PackWalk/Merge/Hash).

Every ``interval`` a server asks the others (``$SYS.REQ.CLAIMS.PACK``, one
responder per queue group, as Go) with the hash of its store: the XOR of the
SHA-256 of every stored JWT. A server whose hash differs answers with its
JWTs, one ``<pubkey>|<jwt>`` message each, then an empty message; an equal
hash gets the empty message alone. The asker merges what it gets: a JWT
replaces the stored one unless it is the same (``jti``) or older (``iat``),
and the account is updated in place, as an update request would.
"""

import hashlib
import os

import gevent
import structlog

from pluggy_nats import jwt as natsjwt

PACK = "$SYS.REQ.CLAIMS.PACK"


def store_hash(resolver):
    """XOR of the SHA-256 of every stored JWT (32 bytes; all zero if none)."""
    out = bytearray(32)
    for pubkey in resolver.list():
        token = resolver.fetch(pubkey)
        if token:
            for i, b in enumerate(hashlib.sha256(token.encode()).digest()):
                out[i] ^= b
    return bytes(out)


class PackSync:
    def __init__(self, server, operator_auth, client, interval):
        self.server = server
        self.auth = operator_auth
        self.resolver = operator_auth.resolver
        self.client = client
        self.interval = interval
        self.inbox = "$SYS._INBOX.%s.pack" % os.urandom(6).hex()
        self.log = structlog.get_logger("pluggy_nats.auth")
        client.subscribe(PACK, self._on_request, queue="responder")
        client.subscribe(self.inbox, self._on_pack)
        server.spawn(self._loop)

    def _loop(self):
        while True:
            gevent.sleep(self.interval)
            self.client.publish(PACK, store_hash(self.resolver), reply=self.inbox)

    def _on_request(self, sub, subject, reply, headers, payload):
        if not reply:
            return
        if bytes(payload) != store_hash(self.resolver):
            for pubkey in self.resolver.list():
                token = self.resolver.fetch(pubkey)
                if token:
                    self.client.publish(reply, ("%s|%s" % (pubkey, token)).encode())
        self.client.publish(reply, b"")  # the end of the answer

    def _on_pack(self, sub, subject, reply, headers, payload):
        for line in bytes(payload).decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            pubkey, sep, token = line.partition("|")
            try:
                if not sep or "|" in token or not pubkey.startswith("A"):
                    raise ValueError("line in package didn't contain 2 entries")
                natsjwt.public_key_bytes(pubkey)
                self._save_if_newer(pubkey, token)
            except (ValueError, OSError) as exc:  # JWTError is a ValueError
                self.log.warning("resolver_pack_merge_failed", error=str(exc))
                return

    def _save_if_newer(self, pubkey, token):
        new = natsjwt.decode_generic(token)
        existing_token = self.resolver.fetch(pubkey)
        if existing_token:
            try:
                existing = natsjwt.decode_generic(existing_token)
            except natsjwt.JWTError:
                existing = None
            if existing is not None:
                if existing.get("jti") == new.get("jti"):
                    return
                if (existing.get("iat") or 0) > (new.get("iat") or 0):
                    return
                if new.get("sub") != pubkey:
                    raise ValueError("jwt subject nkey and provided nkey do not match")
        self.resolver.store(pubkey, token)
        self.log.info("account_jwt_merged", account=pubkey)
        self.auth.update(pubkey, token)
