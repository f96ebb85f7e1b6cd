"""The monitoring listener: a gevent WSGI server answering JSON (or JSONP).

* ``GET /<endpoint>?params``: the endpoint's dict as indented JSON;
  ``?callback=fn`` wraps it as JSONP (``application/javascript``).
* A bad parameter is a 400 with ``{"error": "..."}``; an unknown path a 404; a
  failing handler a 500 with a generic message (the traceback goes to the log,
  never to the client). A callback that is not a JavaScript name is a 400.
* ``/`` is an HTML index of every registered endpoint.
"""

import html
import json
import re
from urllib.parse import parse_qs

import structlog
from gevent.pywsgi import WSGIServer

from pluggy_nats import hookimpl


class BadRequest(Exception):
    """A query parameter out of range: answered with 400 and the message."""


class Unavailable(Exception):
    """Answered with 503 and the JSON payload in ``args[0]`` (healthz)."""


# A JSONP callback is a JavaScript name (a.b.c), never arbitrary script.
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")

# Titles for the index page (nats-server's wording); others show their path.
TITLES = {
    "/varz": "General", "/jsz": "JetStream", "/connz": "Connections",
    "/accountz": "Accounts", "/accstatz": "Account Stats", "/subsz": "Subscriptions",
    "/routez": "Routes", "/leafz": "LeafNodes", "/gatewayz": "Gateways",
    "/raftz": "Raft Groups", "/healthz": "Health Probe",
}


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
        self.log = structlog.get_logger("pluggy_nats.monitor")

    @hookimpl
    def nats_server_start(self, server):
        server.hook.nats_monitor_endpoints(registry=self.registry)
        opts = server.options
        self.http = server.listen(
            opts.http_host, opts.http_port, self.wsgi, "monitor",
            factory=lambda address, app, spawn: WSGIServer(address, app, log=None,
                                                           error_log=None, spawn=spawn))
        self.port = self.http.address[1]
        server.http_port = self.port
        self.log.info("Starting http monitor on %s:%d" % (opts.http_host, self.port))

    @hookimpl
    def nats_client_closed(self, conn, reason):
        self.counters.connection_closed(conn, reason)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if self.http is not None and not lame_duck:
            self.http.stop(timeout=1)

    def wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
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
        else:
            requests[path] = requests.get(path, 0) + 1
            try:
                payload = handler(self.server, query)
            except BadRequest as exc:
                payload, status = {"error": str(exc)}, "400 Bad Request"
            except Unavailable as exc:
                payload, status = exc.args[0], "503 Service Unavailable"
            except Exception:
                self.log.exception("monitor_endpoint_failed", path=path)
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
