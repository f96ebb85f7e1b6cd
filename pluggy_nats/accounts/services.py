"""Service exports/imports between accounts: request/reply across accounts.

For each service import of account B from account A (``imports: [{service:
{account: A, subject: S}, to: T}]``), an internal subscription in B on ``T``
takes every request published there and publishes it in A on ``S``, as
nats-server's processServiceImport:

* the reply subject is replaced by ``_R_.<prefix>.<random>`` in A, and A's
  :class:`ResponseRoutes` remembers where it leads (B and the original reply);
  one internal subscription per exporting account on ``_R_.<prefix>.>`` hands
  each response back to B on the original reply subject, headers and all;
* a ``Singleton`` export's route is removed after one response; a
  ``Streamed``/``Chunked`` one lives until the export's response threshold
  (default 2 minutes); every route dies at that threshold;
* the request carries a ``Nats-Request-Info`` header naming the requesting
  account (``{"acc":"B","rtt":...}``, plus ``"svc"`` on a chained hop);
* a request nobody in A receives gets the 503 no-responders status when the
  requesting client asked for it (on the reply subject, through the route back);
* chains (C imports from B, which imports from A) work hop by hop; a cycle stops
  at the first account already on the delivery path (shared with stream imports);
* in a cluster each server serves the requests published on it: a request that
  came over a route is ignored (nats-server's processServiceImport), while
  responses cross routes like any message (the ``_R_`` interest is advertised).

Nothing here touches the publish path of an account without imports: the cost
of an import is one internal subscription, found by the ordinary match.
"""

import collections
import json
import secrets
import string
import time

from ..delivery import deliver
from ..internal import InternalClient
from ..mappings import Transform
from ..protocol import encode
from ..subjects import is_literal
from .exports import SINGLETON
from .streams import delivery_path

REQUEST_INFO = b"Nats-Request-Info"
_ALPHABET = string.ascii_letters + string.digits


def _token(n):
    return "".join(secrets.choice(_ALPHABET) for _ in range(n)).encode()


class Route:
    __slots__ = ("account", "reply", "singleton", "expires")

    def __init__(self, account, reply, singleton, expires):
        self.account = account  # where the response goes (the importing account)
        self.reply = reply  # the requester's own reply subject there
        self.singleton = singleton
        self.expires = expires  # time.monotonic() deadline


class ResponseRoutes:
    """The response routes of one exporting account: ``_R_.<prefix>.<id>`` ->
    :class:`Route`. Expired routes are pruned as new ones are added (oldest
    first), so the table never outgrows the traffic of one threshold."""

    def __init__(self, server, account):
        self.account = account
        self.prefix = b"_R_." + _token(6) + b"."
        self.routes = {}
        self._order = collections.deque()  # (expires, reply) in creation order
        self.client = InternalClient(server, account, "service-responses:%s" % account.name)
        # one publisher per importing account, so delivery there counts as internal
        self._publishers = {}
        self.server = server
        self.sub = None

    def add(self, account, reply, singleton, threshold):
        """A new reply subject in this account leading to ``reply`` in ``account``."""
        if self.sub is None:
            self.sub = self.client.subscribe(self.prefix + b">", self.on_response)
        now = time.monotonic()
        order = self._order
        while order and order[0][0] <= now:
            _, old = order.popleft()
            route = self.routes.get(old)
            if route is not None and route.expires <= now:
                del self.routes[old]
        new_reply = self.prefix + _token(6)
        expires = now + threshold
        self.routes[new_reply] = Route(account, reply, singleton, expires)
        order.append((expires, new_reply))
        return new_reply

    def discard(self, reply):
        self.routes.pop(reply, None)

    def on_response(self, sub, subject, reply, headers, payload):
        route = self.routes.get(subject)
        if route is None:
            return
        expired = route.expires <= time.monotonic()
        if route.singleton or expired:
            del self.routes[subject]
            if expired:
                return
        dst = route.account
        result = dst.sublist.match(route.reply)
        if not (result.psubs or result.qsubs):
            return
        pub = self._publishers.get(dst)
        if pub is None:
            pub = self._publishers[dst] = InternalClient(
                self.server, dst, "service-responses:%s>%s" % (self.account.name, dst.name))
        hdr = len(headers) if headers else 0
        deliver(result, route.reply, reply, hdr, headers + payload if hdr else payload, pub)

    def stop(self):
        self.client.close()
        for pub in self._publishers.values():
            pub.close()


class ServiceImporter:
    """One service import: requests in ``dst`` (the importer) on ``imp.to``
    go to ``src`` (the exporter) on ``imp.subject``."""

    def __init__(self, server, src_account, dst_account, imp, responses):
        self.src = src_account
        self.dst = dst_account
        self.local = imp.to.encode()
        self.remote = imp.subject.encode()
        self.transform = _import_transform(imp.to, imp.subject)
        self.singleton = imp.export.response_type == SINGLETON
        self.threshold = imp.export.threshold
        self.responses = responses
        self.sub_client = InternalClient(server, dst_account, "service-import:%s<%s" % (
            dst_account.name, src_account.name))
        # The publisher into the exporting account. ``origin`` is the client
        # whose request is being carried (read by the next hop of a chain).
        self.pub_client = InternalClient(server, src_account, "service-export:%s>%s" % (
            src_account.name, dst_account.name))
        self.pub_client.requester = None  # who made the request being forwarded
        self.sub = None

    def start(self):
        self.sub = self.sub_client.subscribe(self.local, self.on_request)

    def stop(self):
        self.sub_client.close()
        self.pub_client.close()

    def on_request(self, sub, subject, reply, headers, payload):
        publisher = sub.conn.publisher
        src = self.src
        if src in delivery_path or getattr(publisher, "is_link", False):
            # A request from a route was already served where it was published
            # (every server has this import), as nats-server ignores it.
            return
        chained = hasattr(publisher, "requester")
        origin = publisher.requester if chained else publisher
        target = self.remote if self.transform is None else self.transform.apply(
            subject.split(b"."))
        if self.transform is None and not is_literal(self.remote):
            target = subject  # the same wildcard subject on both sides
        if src.mappings is not None:
            target = src.mappings.map(target)
        result = src.sublist.match(target)
        if not (result.psubs or result.qsubs):
            self._no_responders(origin, subject, reply)
            return
        new_reply = None
        if reply:
            new_reply = self.responses.add(self.dst, reply, self.singleton, self.threshold)
        headers = _with_request_info(headers, self.dst.name, origin, chained)
        msg = headers + payload
        pub = self.pub_client
        pub.requester = origin
        delivery_path.append(self.dst)
        delivery_path.append(src)
        try:
            n = deliver(result, target, new_reply, len(headers), msg, pub)
        finally:
            del delivery_path[-2:]
            pub.requester = None
        if not n and reply:
            self.responses.discard(new_reply)
            self._no_responders(origin, subject, reply)

    def _no_responders(self, origin, subject, reply):
        """The 503 status, as a response on ``reply`` in the importing account,
        when the requesting client asked for no-responders notices."""
        if not reply or not getattr(origin, "no_responders", False):
            return
        hdrs = encode.status_headers(503, extra=((b"Nats-Subject", subject),))
        result = self.dst.sublist.match(reply)
        if result.psubs or result.qsubs:
            deliver(result, reply, None, len(hdrs), hdrs, self.sub_client)


def _import_transform(local, remote):
    """How a subject requested here becomes the exporter's subject: None when
    it stays the same or is one literal subject; a Transform between wildcard
    subjects (the local wildcards fill the remote ones in order)."""
    if local == remote or is_literal(remote.encode()):
        return None
    n = iter(range(1, 1000))
    dest = ".".join("$%d" % next(n) if t == "*" else t for t in remote.split("."))
    return Transform(local, dest)


def _with_request_info(headers, account, origin, chained):
    """The header block with ``Nats-Request-Info`` set: the requesting account
    and its RTT (nats-server's ClientInfo without sharing); on a chained hop the
    first hop's info is kept and ``svc`` names this account."""
    info = None
    if chained and headers:
        existing = _get_header(headers, REQUEST_INFO)
        if existing is not None:
            try:
                old = json.loads(existing)
                info = {"acc": old.get("acc"), "svc": account, "rtt": old.get("rtt", 0)}
            except ValueError:
                info = None
    if info is None:
        rtt = getattr(origin, "rtt", 0.0) or 0.0
        info = {"acc": account, "rtt": int(rtt * 1e9)}
    value = json.dumps(info, separators=(",", ":")).encode()
    line = REQUEST_INFO + b": " + value + b"\r\n"
    if not headers:
        return b"NATS/1.0\r\n" + line + b"\r\n"
    lines = headers[:-2].split(b"\r\n")  # status line, headers..., "" before the end
    kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(b"nats-request-info:")]
    return b"\r\n".join([lines[0]] + kept) + b"\r\n" + line + b"\r\n"


def _get_header(headers, name):
    lname = name.lower() + b":"
    for ln in headers.split(b"\r\n")[1:]:
        if ln.lower().startswith(lname):
            return ln[len(lname):].strip()
    return None


def wire_service_imports(server, cfg, accounts):
    """Create and start an importer for every service import (one response
    table per exporting account); returns them, each with ``stop()``."""
    importers = []
    routes = {}
    for name, spec in cfg.accounts.items():
        for imp in spec.service_imports:
            src = accounts[imp.account]
            table = routes.get(src)
            if table is None:
                table = routes[src] = ResponseRoutes(server, src)
            imp_obj = ServiceImporter(server, src, accounts[name], imp, table)
            imp_obj.start()
            importers.append(imp_obj)
    return importers + list(routes.values())
