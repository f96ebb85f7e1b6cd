"""The monitoring listener: a gevent WSGI server answering JSON (or JSONP).

* ``GET /<endpoint>?params``: the endpoint's dict as indented JSON;
  ``?callback=fn`` wraps it as JSONP (``application/javascript``).
* A bad parameter is a 400 with ``{"error": "..."}``; an unknown path a 404; a
  failing handler a 500 with a generic message (the traceback goes to the log,
  never to the client). A callback that is not a JavaScript name is a 400.
* ``/`` is an HTML index of every registered endpoint.
"""

import html
import http.client
import json
import posixpath
import re
from urllib.parse import parse_qs

import structlog
from gevent.pywsgi import WSGIHandler, WSGIServer

from pluggy_nats import hookimpl
from pluggy_nats.connection import log_crash
from pluggy_nats.server import StartError, go_listen_error


class BadRequest(Exception):
    """A query parameter out of range: answered with 400 and the message."""


class Unavailable(Exception):
    """Answered with the JSON payload in ``args[0]`` and the status code in
    ``args[1]`` (503 when absent): /healthz's failures (Go's 400, 404, 503)."""


# A JSONP callback is a JavaScript name (a.b.c), never arbitrary script.
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")

# Titles for the index page (nats-server's wording); others show their path.
TITLES = {
    "/varz": "General", "/jsz": "JetStream", "/connz": "Connections",
    "/accountz": "Accounts", "/accstatz": "Account Stats", "/subsz": "Subscriptions",
    "/routez": "Routes", "/leafz": "LeafNodes", "/gatewayz": "Gateways",
    "/raftz": "Raft Groups", "/healthz": "Health Probe",
}


_TOO_MANY_HEADERS = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                     b"Content-Length: 0\r\n\r\n")


class QuietHandler(WSGIHandler):
    """gevent's handler, but a malformed request is answered without a word
    in the log (gevent prints a traceback for anything but a ValueError, e.g.
    http.client's "got more than 100 headers"), and too many headers is a 431
    (nats-server's net/http answers 431 when the header is too large)."""

    def _handle_client_error(self, ex):
        if isinstance(ex, http.client.HTTPException) and "headers" in str(ex):
            return ("431", _TOO_MANY_HEADERS)
        return ("400", b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                       b"Content-Length: 0\r\n\r\n")
class MonitorStartError(StartError):
    """The monitor cannot start (nats-server: "Can't start monitoring: ...")."""


def normalize_base_path(path):
    """``http_base_path`` as nats-server reads it: a leading slash, cleaned."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    return posixpath.normpath(path).replace("//", "/")


class Page:
    """A page served as it is (not JSON): ``registry.add(path, Page(body))``
    on the HTTP registry only (``$SYS`` serves JSON endpoints)."""

    def __init__(self, body, content_type="text/html; charset=utf-8"):
        self.body = body if isinstance(body, bytes) else body.encode()
        self.content_type = content_type


class EndpointRegistry:
    def __init__(self):
        self.endpoints = {}

    def add(self, path, handler):
        """``handler(server, query) -> dict``; ``query`` maps names to strings."""
        self.endpoints[path.rstrip("/") or "/"] = handler


class MonitorServer:
    """Registered by the monitor plugin when ``-m``/``http_port`` is set."""

    def __init__(self, server):
        from .endpoints import Counters

        self.server = server
        self.registry = EndpointRegistry()
        self.counters = Counters()
        self.http = None
        self.port = None
        self.base = ""  # http_base_path without its trailing slash
        self.log = structlog.get_logger("pluggy_nats.monitor")

    @hookimpl
    def nats_server_start(self, server):
        server.hook.nats_monitor_endpoints(registry=self.registry)
        opts = server.options
        # nats-server StartMonitoring: one of http/https; https serves the
        # client tls {} certificate and asks for no client certificate.
        if opts.http_port and opts.https_port:
            raise MonitorStartError("Can't start monitoring: can't specify both HTTP (%d) and "
                                    "HTTPs (%d) ports" % (opts.http_port, opts.https_port))
        ssl_context = None
        port = opts.http_port
        if opts.https_port:
            if opts.tls is None:
                raise MonitorStartError("Can't start monitoring: TLS cert and key required "
                                        "for HTTPS")
            ssl_context = opts.tls.monitor_context()
            port = opts.https_port
        self.base = normalize_base_path(opts.http_base_path).rstrip("/")
        kwargs = {"ssl_context": ssl_context} if ssl_context is not None else {}
        host = opts.http_host or opts.host  # nats-server: the client host by default
        try:
            self.http = server.listen(
                host, port, self.wsgi, "monitor",
                factory=lambda address, app, spawn: WSGIServer(
                    address, app, log=None, error_log=None, spawn=spawn,
                    handler_class=QuietHandler, **kwargs))
        except OSError as exc:
            raise MonitorStartError("Can't start monitoring: can't listen to the monitor "
                                    "port: %s" % go_listen_error(host, max(port, 0),
                                                                 exc)) from exc
        self.port = self.http.address[1]
        if ssl_context is not None:
            server.https_port = self.port
        else:
            server.http_port = self.port
        self.log.info("Starting %s monitor on %s:%d"
                      % ("https" if ssl_context is not None else "http", host, self.port))

    @hookimpl
    def nats_client_closed(self, conn, reason):
        self.counters.connection_closed(conn, reason)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if self.http is not None and not lame_duck:
            self.http.stop(timeout=1)

    def wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        if self.base:  # http_base_path: endpoints live under it, nothing outside
            if path != self.base and not path.startswith(self.base + "/"):
                return self._respond(start_response, "404 Not Found",
                                     {"error": "not found: %s" % path}, None)
            path = path[len(self.base):] or "/"
        try:
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                                    keep_blank_values=True).items()}
        except ValueError:
            query = {}
        callback = query.pop("callback", None)
        if callback is not None and not _CALLBACK.match(callback):
            return self._respond(start_response, "400 Bad Request",
                                 {"error": "callback: not a JavaScript function name"}, None)
        status = "200 OK"
        requests = self.counters.http_requests
        if path == "/":
            requests["/"] = requests.get("/", 0) + 1
            body = self._index().encode()
            start_response(status, [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        handler = self.registry.endpoints.get(path)
        if handler is None:
            payload = {"error": "not found: %s" % path}
            status = "404 Not Found"
        elif isinstance(handler, Page):
            requests[path] = requests.get(path, 0) + 1
            start_response(status, [("Content-Type", handler.content_type)])
            return [handler.body]
        else:
            requests[path] = requests.get(path, 0) + 1
            try:
                payload = handler(self.server, query)
            except BadRequest as exc:
                payload, status = {"error": str(exc)}, "400 Bad Request"
            except Unavailable as exc:
                code = exc.args[1] if len(exc.args) > 1 else 503
                payload, status = exc.args[0], "%d %s" % (code, http.client.responses[code])
            except Exception as exc:
                log_crash(self.log.bind(path=path[:128]), exc, "monitor_endpoint_failed")
                payload, status = {"error": "internal error"}, "500 Internal Server Error"
        return self._respond(start_response, status, payload, callback)

    @staticmethod
    def _respond(start_response, status, payload, callback):
        body = json.dumps(payload, indent=2, default=str, ensure_ascii=False)
        ctype = "application/json"
        if callback:
            body = "%s(%s)" % (callback, body)
            ctype = "application/javascript"
        start_response(status, [("Content-Type", ctype), ("Access-Control-Allow-Origin", "*")])
        return [body.encode()]

    def _index(self):
        server = self.server
        links = "".join(
            '<li><a href=".%s">%s</a> <code>%s</code></li>'
            % (html.escape(p), html.escape(TITLES.get(p, p.lstrip("/"))), html.escape(p))
            for p in sorted(self.registry.endpoints))
        from pluggy_nats import __version__
        from pluggy_nats.server import NATS_COMPAT_VERSION

        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<title>pluggy-nats monitoring</title></head><body>"
                "<h1>pluggy-nats %s</h1><p>follows nats-server v%s; server %s</p>"
                "<ul>%s</ul></body></html>"
                % (html.escape(__version__), html.escape(NATS_COMPAT_VERSION),
                   html.escape(server.server_name or ""), links))
