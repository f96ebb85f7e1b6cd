"""Pure encoders for server-to-peer frames. The hot path (MSG/HMSG) lives in
connection.py where the shared parts of a frame are built once per message; these
helpers are for everything else and for tests."""

import json

PING = b"PING\r\n"
PONG = b"PONG\r\n"
OK = b"+OK\r\n"
CRLF = b"\r\n"


def info(fields):
    # nats-server ends INFO with a space before CRLF; some tools split on it.
    return b"INFO " + json.dumps(fields, separators=(",", ":")).encode() + b" \r\n"


def connect(fields):
    return b"CONNECT " + json.dumps(fields, separators=(",", ":")).encode() + b"\r\n"


def err(text):
    return b"-ERR '" + text.encode() + b"'\r\n"


def msg(subject, sid, reply, payload):
    """``MSG <subject> <sid> [reply] <#bytes>`` + payload."""
    parts = [b"MSG ", subject, b" ", sid, b" "]
    if reply:
        parts += [reply, b" "]
    parts += [str(len(payload)).encode(), CRLF, payload, CRLF]
    return b"".join(parts)


def hmsg(subject, sid, reply, hdr_len, msg_bytes):
    """``HMSG <subject> <sid> [reply] <#hdr> <#total>`` + headers and payload."""
    parts = [b"HMSG ", subject, b" ", sid, b" "]
    if reply:
        parts += [reply, b" "]
    parts += [b"%d %d" % (hdr_len, len(msg_bytes)), CRLF, msg_bytes, CRLF]
    return b"".join(parts)


def status_headers(code, description=None, extra=()):
    """A header block carrying only a status line (ADR-4), e.g. ``NATS/1.0 503``."""
    line = b"NATS/1.0 %d" % code
    if description:
        line += b" " + description.encode()
    out = [line, CRLF]
    for name, value in extra:
        out += [name, b": ", value, CRLF]
    out.append(CRLF)
    return b"".join(out)
