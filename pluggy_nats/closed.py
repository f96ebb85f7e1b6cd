"""What the ring of recently closed connections keeps: a compact record of the
fields /connz?state=closed shows, not the connection object (its buffers,
parser, socket, logger and subscription map would stay alive with it; 10,000
of them cost megabytes). Read by the monitor exactly like a connection."""


class ClosedConn:
    """A closed client connection as /connz shows it. Attribute names are the
    connection's, so the same code formats open and closed entries."""

    __slots__ = ("cid", "kind", "host", "port", "start", "last_activity", "stop",
                 "closed_reason", "rtt", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                 "name", "lang", "version", "account", "user")

    closed = True
    pending_bytes = 0
    # last_activity is kept relative to start (see _last_activity in the monitor)
    start_mono = 0.0

    def __init__(self, conn):
        self.cid = conn.cid
        self.kind = conn.kind
        self.host = conn.host
        self.port = conn.port
        self.start = conn.start
        self.last_activity = conn.last_activity - conn.start_mono
        self.stop = conn.stop
        self.closed_reason = conn.closed_reason
        self.rtt = conn.rtt
        self.in_msgs = conn.in_msgs
        self.out_msgs = conn.out_msgs
        self.in_bytes = conn.in_bytes
        self.out_bytes = conn.out_bytes
        # empty strings and None are shared objects: nothing kept per entry
        self.name = getattr(conn, "name", "") or ""
        self.lang = getattr(conn, "lang", "") or ""
        self.version = getattr(conn, "version", "") or ""
        self.account = getattr(conn, "account", None)
        self.user = getattr(conn, "user", None)
