"""Write-behind for a file stream: the records stored while one read batch is
handled go to disk in one write, and the PubAcks follow it.

A client's reader parses a whole socket read (often hundreds of PUBs), then
flushes every connection it touched (``server.flush_touched``). The file store
holds the records of that batch (``defer_writes``); this object puts itself on
the server's ``touched`` list like a connection, so the same flush writes the
records (one ``pwrite``) and only then publishes the answers it held, which
flush with the rest. Acked therefore still means written to the OS, as Go
promises (a kill -9 loses nothing acknowledged). Anything that reads the store
meanwhile makes it write first (the store's own rule), and a callback on the
event loop writes what a caller outside a read batch left held.

A write that fails takes its messages back out of the stream; their answers
become the store error Go gives (10077), the rest go as they were.
"""

import gevent

from .errors import ApiError


class WriteBehind:
    __slots__ = ("stream", "answers", "pending", "flush_queued", "_callback")

    def __init__(self, stream):
        self.stream = stream
        self.answers = []  # (reply, body, seq) waiting for the write
        self.pending = False  # records held since the last flush
        self.flush_queued = False  # on the server's touched list (connection protocol)
        self._callback = None

    def hold(self):
        """A record was held: be flushed with this batch's connections."""
        if self.pending:
            return
        self.pending = True
        server = self.stream.server
        if not self.flush_queued:
            self.flush_queued = True
            server.touched.append(self)
        if self._callback is None:  # a caller that never flushes: the next loop turn
            self._callback = gevent.get_hub().loop.run_callback(self._later)

    def _later(self):
        self._callback = None
        if self.pending:
            self.flush()
            self.stream.server.flush_touched()

    def flush(self):
        """Write the held records, then publish the held answers (the touched
        list's caller flushes the connections they reach)."""
        self.flush_queued = False
        if not self.pending:
            return
        self.pending = False
        stream = self.stream
        store = stream.store
        store.flush_writes()
        failed = {}
        for seqs, err in store.take_write_failures():
            stream.jsa.js.log.warning("stream_store_failed", stream=stream.name, error=str(err),
                                      messages=len(seqs))
            for seq in seqs:
                failed[seq] = err
        answers, self.answers = self.answers, []
        if not failed:
            stream.client.publish_many([answer[:2] for answer in answers])
            return
        for reply, body, seq in answers:
            err = failed.get(seq) if seq else None
            if err is None:
                stream._pub(reply, body)
            else:
                stream._pub(reply, stream._error_body(ApiError(
                    10077, err=str(err) or "store failed")))
