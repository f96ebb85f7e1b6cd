"""The HTTP upgrade of a WebSocket connection, sans-IO: bytes of the request
in, the response bytes (101 or an HTTP error) and what the client asked for
out. Checks run in nats-server's order (websocket.go ``wsUpgrade``), so a bad
request gets the status Go gives it. HTTP parsing is h11's (wsproto's own
dependency); the checks and the response are ours, because Go's wording and
headers are what clients and tests see."""

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

import h11

from .config import host_and_port

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LEAF_PATH = "/leafnode"
MQTT_PATH = "/mqtt"
PMC_EXTENSION = "permessage-deflate"
PMC_RESPONSE = (b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                b"client_no_context_takeover\r\n")
NO_MASKING_RESPONSE = b"Nats-No-Masking: true\r\n"
# net/http's limit on the request head (DefaultMaxHeaderBytes 1 MiB, plus the
# 4 KiB slack it allows): past it Go answers 431.
MAX_REQUEST_HEAD = (1 << 20) + 4096


class UpgradeError(Exception):
    """The request is refused: ``response`` goes to the client, then close."""

    def __init__(self, status, reason, response):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.response = response


@dataclass
class Upgrade:
    """An accepted upgrade."""

    response: bytes
    kind: str = "client"  # "client", "leaf" or "mqtt"
    compress: bool = False
    no_masking: bool = False
    client_ip: str = ""
    browser: bool = False
    cookies: dict = field(default_factory=dict)
    extensions_offer: str = ""
    rest: bytes = b""  # bytes the client sent after the request (Go refuses them)


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()


def http_error(status, reason="", version="1.1"):
    """An error answer as Go's http.Error writes it (text body, nosniff), in
    the request's HTTP version."""
    status = HTTPStatus(status)
    body = ("%s\n" % status.phrase).encode()
    head = ("HTTP/%s %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n"
            "Date: %s\r\nContent-Length: %d\r\n\r\n"
            % (version, status.value, status.phrase, formatdate(usegmt=True), len(body)))
    return UpgradeError(status.value, reason, head.encode() + body)


def bad_request_plain(status=400):
    """What net/http itself answers to a request it cannot parse (no handler ran)."""
    phrase = HTTPStatus(status).phrase
    body = ("%d %s" % (status, phrase)).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Connection: close\r\n\r\n" % (status, phrase))
    return UpgradeError(status, "malformed HTTP request", head.encode() + body)


class UpgradeReader:
    """Feed bytes until :meth:`result` returns an :class:`Upgrade` (or raises
    :class:`UpgradeError`); ``None`` means more bytes are needed."""

    def __init__(self, config, tls=False):
        self.config = config
        self.tls = tls
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)

    def feed(self, data):
        self._h11.receive_data(data)

    def result(self):
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise bad_request_plain(431 if status == 431 else 400) from None
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, h11.ConnectionClosed):
            raise UpgradeError(0, "connection closed during the handshake", b"")
        if not isinstance(event, h11.Request):
            raise bad_request_plain()
        rest = self._h11.trailing_data[0]
        return check_request(self.config, event, rest, self.tls)


def _headers(request):
    """Header name (lower-case) -> list of values, in order."""
    table = {}
    for name, value in request.headers:
        table.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return table


def _contains(values, token):
    return any(t.strip(" \t").lower() == token.lower() for v in values for t in v.split(","))


def _first(headers, name):
    values = headers.get(name)
    return values[0] if values else ""


def check_request(config, request, rest=b"", tls=False):
    """Go's checks, in Go's order; the 101 answer on success."""
    version = request.http_version.decode("latin-1")

    def refuse(status, reason):
        return http_error(status, reason, version)

    target = request.target.decode("latin-1")
    path = urlsplit(target).path
    kind = "leaf" if path.endswith(LEAF_PATH) else "mqtt" if path.endswith(MQTT_PATH) \
        else "client"
    headers = _headers(request)
    if kind == "mqtt":
        raise refuse(404, "mqtt websocket endpoint not enabled")
    if request.method != b"GET":
        raise refuse(405, "request method must be GET")
    if not _first(headers, "host"):
        raise refuse(400, "'Host' missing in request")
    if not _contains(headers.get("upgrade", ()), "websocket"):
        raise refuse(400, "invalid value for header 'Upgrade'")
    if not _contains(headers.get("connection", ()), "Upgrade"):
        raise refuse(400, "invalid value for header 'Connection'")
    key = _first(headers, "sec-websocket-key")
    if not key:
        raise refuse(400, "key missing")
    try:
        decoded = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 16:
        raise refuse(400, "invalid websocket key")
    if not _contains(headers.get("sec-websocket-version", ()), "13"):
        raise refuse(400, "invalid version")
    problem = origin_problem(config, headers, tls)
    if problem:
        raise refuse(403, "origin not allowed: %s" % problem)
    offer = ", ".join(headers.get("sec-websocket-extensions", ()))
    compress = config.compression and any(
        p.strip(" \t").lower() == PMC_EXTENSION
        for ext in offer.split(",") for p in ext.split(";"))
    no_masking = _first(headers, "nats-no-masking") == "true"
    if rest:
        # Go has hijacked the connection by then: it closes without an answer.
        raise UpgradeError(400, "client sent data before handshake is complete", b"")
    response = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                accept_key(key).encode(), b"\r\n"]
    if compress:
        response.append(PMC_RESPONSE)
    if no_masking:
        response.append(NO_MASKING_RESPONSE)
    for name, value in config.headers.items():
        response.append(("%s: %s\r\n" % (name, value)).encode("latin-1"))
    response.append(b"\r\n")
    upgrade = Upgrade(response=b"".join(response), kind=kind, compress=compress,
                      no_masking=no_masking, extensions_offer=offer)
    forwarded = _first(headers, "x-forwarded-for")
    if forwarded and _is_ip(forwarded):
        upgrade.client_ip = forwarded
    user_agent = _first(headers, "user-agent")
    upgrade.browser = user_agent.startswith("Mozilla/")
    if kind == "client":
        upgrade.cookies = _cookies(headers.get("cookie", ()))
    return upgrade


def _is_ip(text):
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _cookies(values):
    jar = {}
    for value in values:
        for part in value.split(";"):
            name, sep, val = part.strip().partition("=")
            if sep and name:
                jar[name] = val.strip('"')
    return jar


def origin_problem(config, headers, tls):
    """Why the request's origin is refused (Go's checkOrigin), or None."""
    if not config.same_origin and not config.allowed_origins:
        return None
    origin = _first(headers, "origin") or _first(headers, "sec-websocket-origin")
    if not origin:
        return None  # non-browser clients send none: accepted (RFC 6455 1.6)
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return 'parse "%s": invalid URI for request' % origin
    host, port = host_and_port(parts.scheme == "https", parts.netloc)
    if config.same_origin:
        req_host, req_port = host_and_port(tls, _first(headers, "host"))
        scheme = "https" if tls else "http"
        if host != req_host or port != req_port or parts.scheme.lower() != scheme:
            return "not same origin"
    if config.allowed_origins:
        allowed = config.origin_table().get(host, ())
        if not any(parts.scheme == s and port == p for s, p in allowed):
            return "not in the allowed list"
    return None
