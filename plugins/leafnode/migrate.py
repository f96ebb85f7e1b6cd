"""``jetstream_cluster_migrate`` on a leaf remote (nats-server leafnode.go
``connectToRemoteLeafNode``, ``checkJetStreamMigrate``,
``clearObserverState``).

While a remote with the option cannot be dialled, this server's replicated
streams of the remote's account hand their leadership to members that still
reach the hub, and do not take it back until the remote is dialled again:
a leaf cluster whose servers lose the hub one at a time keeps its streams
led from the servers that can still be used from the hub.

* No ``leader_migrate_delay``: after each failed dial (once the reconnect
  wait that follows it has passed, as Go's reconnect timer).
* With a delay: once, that long after the first failed dial of an outage.
* A dial that succeeds, or the remote removed by a reload, clears it.

The leafnode plugin only says when; JetStream does it (the
``nats_leafnode_migrate`` hook), so this knows nothing of RAFT.
"""

import gevent


class Migration:
    """The migrate state of one remote."""

    def __init__(self, server, remote, log):
        self.server = server
        self.remote = remote
        self.log = log
        self.away = False
        self._timer = None

    @property
    def enabled(self):
        return self.remote.jetstream_cluster_migrate

    def dial_failed(self, failures):
        if not self.enabled:
            return
        delay = self.remote.jetstream_cluster_migrate_delay
        if not delay:
            self._migrate()
        elif self._timer is None:
            self._timer = self.server.spawn(self._migrate, delay)

    def dialled(self):
        self._cancel()
        self._tell(False)

    def removed(self):
        self._cancel()
        if self.enabled:
            self._tell(False)

    def _migrate(self, delay=0.0):
        if delay:
            gevent.sleep(delay)
            self._timer = None
        self._tell(True)

    def _cancel(self):
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None

    def _tell(self, away):
        if away == self.away and not away:
            return  # nothing to clear
        if away != self.away:
            self.log.info("leafnode_jetstream_migrate" if away else
                          "leafnode_jetstream_migrate_cleared", account=self.remote.account)
        self.away = away
        self.server.hook.nats_leafnode_migrate(server=self.server, account=self.remote.account,
                                               away=away)
