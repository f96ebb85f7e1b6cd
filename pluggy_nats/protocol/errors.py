"""Protocol errors and the exact ``-ERR`` texts nats-server sends.

The texts were read off nats-server 2.15.1 on the wire (see tests/interop): some are
capitalised, some are not, and clients match on them, so they are copied verbatim.
"""

UNKNOWN_OP = "Unknown Protocol Operation"
MAX_PAYLOAD = "Maximum Payload Violation"
MAX_CONTROL_LINE = "maximum control line exceeded"
INVALID_SUBJECT = "Invalid Subject"
INVALID_PUB_SUBJECT = "Invalid Publish Subject"
STALE_CONNECTION = "Stale Connection"
SLOW_CONSUMER = "Slow Consumer"
MAX_CONNECTIONS = "maximum connections exceeded"
AUTH_VIOLATION = "Authorization Violation"
AUTH_TIMEOUT = "Authentication Timeout"
INVALID_CLIENT_PROTOCOL = "invalid client protocol"
NO_RESPONDERS_NEEDS_HEADERS = "no responders requires headers support"
ROUTE_PORT = "Attempted To Connect To Route Port"
MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"
MAX_ACCOUNT_CONNECTIONS = "maximum account active connections exceeded"


class ProtocolError(Exception):
    """A frame the peer must not send; the connection is closed.

    ``err`` is the ``-ERR`` text to send first, or None where nats-server closes
    without a word (malformed arguments of a known verb, for example).
    """

    def __init__(self, err, detail=""):
        super().__init__(detail or err or "protocol violation")
        self.err = err
        self.detail = detail or err or ""
