"""The monitoring listener: a gevent WSGI server answering JSON (or JSONP)."""

import json
from urllib.parse import parse_qs

import structlog
from gevent.pywsgi import WSGIServer

from pluggy_nats import hookimpl


class BadRequest(Exception):
    """A query parameter out of range: answered with 400 and the message."""


class Unavailable(Exception):
    """Answered with 503 and the JSON payload in ``args[0]`` (healthz)."""


class EndpointRegistry:
    def __init__(self):
        self.endpoints = {}

    def add(self, path, handler):
        """``handler(server, query) -> dict``; ``query`` maps names to strings."""
        self.endpoints[path.rstrip("/") or "/"] = handler


class MonitorServer:
    """Registered by the monitor plugin when ``-m``/``http_port`` is set."""

    def __init__(self, server):
        self.server = server
        self.registry = EndpointRegistry()
        self.http = None
        self.port = None
        self.log = structlog.get_logger("pluggy_nats.monitor")

    @hookimpl
    def nats_server_start(self, server):
        server.hook.nats_monitor_endpoints(registry=self.registry)
        opts = server.options
        self.http = WSGIServer((opts.http_host, max(opts.http_port, 0)), self.wsgi, log=None,
                               error_log=None, spawn=server._client_pool)
        self.http.init_socket()
        self.port = self.http.address[1]
        server.http_port = self.port
        self.http.start()
        self.log.info("Starting http monitor on %s:%d" % (opts.http_host, self.port))

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if self.http is not None and not lame_duck:
            self.http.stop(timeout=1)

    def wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        callback = query.pop("callback", None)
        status = "200 OK"
        if path == "/":
            body = self._index().encode()
            start_response(status, [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        handler = self.registry.endpoints.get(path)
        if handler is None:
            payload = {"error": "not found: %s" % path}
            status = "404 Not Found"
        else:
            try:
                payload = handler(self.server, query)
            except BadRequest as exc:
                payload, status = {"error": str(exc)}, "400 Bad Request"
            except Unavailable as exc:
                payload, status = exc.args[0], "503 Service Unavailable"
            except Exception:
                self.log.exception("monitor_endpoint_failed", path=path)
                payload, status = {"error": "internal error"}, "500 Internal Server Error"
        body = json.dumps(payload, indent=2, default=str)
        ctype = "application/json"
        if callback:
            body = "%s(%s)" % (callback, body)
            ctype = "application/javascript"
        start_response(status, [("Content-Type", ctype), ("Access-Control-Allow-Origin", "*")])
        return [body.encode()]

    def _index(self):
        links = "".join('<li><a href="%s">%s</a></li>' % (p, p)
                        for p in sorted(self.registry.endpoints))
        return "<html><body><h1>pluggy-nats</h1><ul>%s</ul></body></html>" % links
