"""The decision: the ``nats_authenticate`` hook for the users of one file."""

import gevent
import structlog

from pluggy_nats import Allow, Deny, hookimpl

from .entries import check


class Htpasswd:
    """Registered by ``nats_configure``; holds the file's entries."""

    def __init__(self, entries):
        self.entries = entries
        self.log = structlog.get_logger("pluggy_nats.htpasswd")

    @hookimpl
    def nats_authenticate(self, conn, connect):
        user = connect.get("user")
        if not isinstance(user, str) or user not in self.entries:
            return None  # not ours: other authenticators may know this client
        password = connect.get("pass")
        if not isinstance(password, str):
            return Deny("htpasswd: no password")
        # bcrypt costs tens of milliseconds: gevent's thread pool keeps the
        # other connections running meanwhile.
        ok = gevent.get_hub().threadpool.apply(check, (self.entries[user], password))
        if not ok:
            return Deny("htpasswd: password mismatch for %s" % user)
        return Allow(user=user)
