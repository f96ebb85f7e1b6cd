"""NATS header blocks (``NATS/1.0[ code text]\\r\\nKey: value\\r\\n...\\r\\n\\r\\n``):
read the few keys JetStream looks at, build status and server-stamped blocks."""

import datetime

HDR_LINE = b"NATS/1.0\r\n"

# status replies (consumer.go / stream.go texts)
NO_MESSAGES = b"NATS/1.0 404 No Messages\r\n\r\n"
IDLE_HEARTBEAT = b"NATS/1.0 100 Idle Heartbeat\r\n\r\n"


def parse(hdr):
    """Raw header block -> {key: value} (first value wins; keys as sent)."""
    out = {}
    if not hdr:
        return out
    if isinstance(hdr, memoryview):
        hdr = bytes(hdr)
    text = hdr.decode("utf-8", "replace")
    for line in text.split("\r\n")[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and key not in out:
            out[key.strip()] = value.strip()
    return out


def status(code, text, extra=()):
    """A status-only header block, e.g. ``status(408, "Request Timeout")``."""
    lines = ["NATS/1.0 %d %s" % (code, text)] if text else ["NATS/1.0 %d" % code]
    lines.extend("%s: %s" % kv for kv in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def build(pairs, base=b""):
    """A header block: the lines of ``base`` (a raw block or b"") then ``pairs``."""
    if base:
        head = bytes(base)
        if head.endswith(b"\r\n\r\n"):
            head = head[:-2]
    else:
        head = HDR_LINE
    return head + "".join("%s: %s\r\n" % kv for kv in pairs).encode() + b"\r\n"


def remove(hdr, keys, prefixes=()):
    """``hdr`` without the lines whose key is in ``keys`` or starts with one of
    ``prefixes`` (b"" if nothing is left)."""
    if not hdr:
        return b""
    lines = bytes(hdr).split(b"\r\n")
    kept = [lines[0]]
    for ln in lines[1:]:
        if ln:
            key = ln.split(b":", 1)[0].strip().decode("utf-8", "replace")
            if key not in keys and not key.startswith(prefixes):
                kept.append(ln)
    if len(kept) == 1 and lines[0] == b"NATS/1.0":
        return b""
    return b"\r\n".join(kept) + b"\r\n\r\n"


def rfc3339(ns):
    """Go's RFC3339Nano in UTC for a nanosecond timestamp (0 = Go's zero time)."""
    if not ns:
        return "0001-01-01T00:00:00Z"
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if frac:
        base += ("." + "%09d" % frac).rstrip("0")
    return base + "Z"


def parse_rfc3339(text):
    """RFC3339 (nano) text -> ns since the epoch; ValueError when malformed."""
    if not isinstance(text, str):
        raise ValueError("not a time")
    t = text.strip()
    frac_ns = 0
    if t.endswith("Z") or t.endswith("z"):
        t, tz = t[:-1], "+00:00"
    else:
        t, tz = t[:-6], t[-6:]
    if "." in t:
        t, frac = t.split(".", 1)
        frac_ns = int((frac + "000000000")[:9])
    dt = datetime.datetime.fromisoformat(t + tz)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns
