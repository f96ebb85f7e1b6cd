"""Group commit for ``sync_interval: always``: one fsync releases every ack waiting.

The core knows nothing of gevent: it is given ``sync`` (the store's) and ``spawn`` (how
to run the flush later). ``gevent_group_commit`` below wires it to gevent, running the
fsync in gevent's thread pool so the loop keeps serving (and collecting the next batch of
acks) while the disk works.
"""


class GroupCommit:
    """Acks wait here; the first one schedules a flush; one ``sync()`` then answers all.

    ``add(callback)``: ``callback(None)`` once the record written before it is durable,
    ``callback(exc)`` if the sync failed (the caller answers with an error instead of an
    ack). Records written while a sync runs wait for the next one."""

    def __init__(self, sync, spawn):
        self._sync = sync
        self._spawn = spawn
        self._waiting = []
        self._scheduled = False
        self.syncs = 0  # fsyncs done, for tests and monitoring

    def add(self, callback):
        self._waiting.append(callback)
        if not self._scheduled:
            self._scheduled = True
            self._spawn(self.flush)

    def flush(self):
        """Sync once for every callback waiting now; returns how many were released."""
        self._scheduled = False
        batch, self._waiting = self._waiting, []
        if not batch:
            return 0
        error = None
        try:
            self._sync()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, not lost
            error = exc
        self.syncs += 1
        for callback in batch:
            callback(error)
        if self._waiting and not self._scheduled:  # arrived during the sync
            self._scheduled = True
            self._spawn(self.flush)
        return len(batch)


def gevent_group_commit(store):
    """A GroupCommit for ``store`` under gevent: flush in a greenlet, fsync in a thread."""
    import gevent
    from gevent import get_hub

    def sync_in_thread():
        get_hub().threadpool.apply(store.sync)

    return GroupCommit(sync_in_thread, gevent.spawn)
