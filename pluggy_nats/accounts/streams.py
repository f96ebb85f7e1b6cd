"""Stream exports/imports between accounts.

For each stream import of account B from account A, an internal subscription
in A on the imported subject hands every matching message to B: the message is
delivered to B's subscribers under ``prefix.subject`` (or ``to``, or the same
subject). The delivery runs in the publisher's greenlet, as every delivery does;
whoever published flushes the touched connections afterwards.

In a cluster every server imports for its own subscribers only: the exported
message crosses routes in the exporting account, and each server with interest
imports it there (nats-server's shadow subscriptions do the same).

A chain A -> B -> C works (each hop is one more internal subscription); a
cycle stops at the first account already on the current delivery path, so a
message never comes back into an account it passed through.
"""

from ..delivery import deliver
from ..internal import InternalClient
from ..sublist import EMPTY_RESULT, SublistResult

# Accounts on the current (synchronous) delivery path, shared with service
# imports (.services) so that a chain mixing both cannot loop either.
delivery_path = []


class StreamImporter:
    def __init__(self, server, src_account, dst_account, imp):
        self.dst = dst_account
        self.prefix = imp.prefix.encode() + b"." if imp.prefix else b""
        self.to = imp.to.encode() if imp.to else None
        self.sub_client = InternalClient(server, src_account, "stream-export:%s>%s" % (
            src_account.name, dst_account.name))
        # The publisher into the importing account: a distinct object, so echo
        # suppression of real clients is not affected.
        self.pub_client = InternalClient(server, dst_account, "stream-import:%s<%s" % (
            dst_account.name, src_account.name))
        self.subject = imp.subject
        self.sub = None

    def start(self):
        self.sub = self.sub_client.subscribe(self.subject, self.on_message)

    def stop(self):
        self.sub_client.close()
        self.pub_client.close()

    def on_message(self, sub, subject, reply, headers, payload):
        dst = self.dst
        if dst in delivery_path:
            return
        subject = self.to or self.prefix + subject
        result = _local(dst.sublist.match(subject))
        if result is None:
            return
        hdr = len(headers) if headers else 0
        msg = headers + payload if headers else payload
        delivery_path.append(sub.conn.account)
        delivery_path.append(dst)
        try:
            deliver(result, subject, reply, hdr, msg, self.pub_client)
        finally:
            del delivery_path[-2:]


def _local(result):
    """The subscriptions of this server in a match (None if there are none).
    Every server of a cluster has the same imports and the exported message
    reaches each one that has interest, so each imports it for its own
    subscribers only (as nats-server's shadow subscriptions); handing it to
    the importing account's remote interest too would deliver it twice."""
    if result is EMPTY_RESULT:
        return None
    psubs, qsubs = result
    if any(s.conn.is_link for s in psubs) or any(s.conn.is_link for g in qsubs for s in g):
        psubs = tuple(s for s in psubs if not s.conn.is_link)
        qsubs = tuple(g for g in (tuple(s for s in grp if not s.conn.is_link)
                                  for grp in qsubs) if g)
        result = SublistResult(psubs, qsubs)
    return result if (result.psubs or result.qsubs) else None


def wire_stream_imports(server, cfg, accounts):
    """Create and start an importer for every stream import; returns them."""
    importers = []
    for name, spec in cfg.accounts.items():
        for imp in spec.stream_imports:
            imp_obj = StreamImporter(server, accounts[imp.account], accounts[name], imp)
            imp_obj.start()
            importers.append(imp_obj)
    return importers
