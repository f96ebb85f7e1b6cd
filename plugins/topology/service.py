"""The topology plugin inside a server: ``/topz`` (and ``/explainz``) on the
monitoring port, gathering the whole system over ``$SYS`` with an internal
client in the system account.

Over ``$SYS`` itself (``$SYS.REQ.SERVER.PING.TOPZ``) a server answers with
its own view only: the system plugin calls handlers in the publisher's
greenlet, which must never wait for other servers.
"""

import itertools
import json
from importlib.resources import files

import gevent
import gevent.queue
import structlog
from pluggy_nats_plugins.monitor.endpoints import bool_param
from pluggy_nats_plugins.monitor.http import BadRequest, EndpointRegistry, Page

from pluggy_nats import hookimpl
from pluggy_nats.internal import InternalClient

from . import gather, render, system
from .explain import BadInput, check_input
from .local import explain_local
from .view import local_view, query_strings


class TopologyService:
    def __init__(self, server):
        self.server = server
        self.client = None
        self.prefix = ""
        self.pending = {}  # request number -> queue of (endpoint, payload)
        self.seq = itertools.count(1)
        self.registries = []  # every registry our endpoints were added to
        self.log = structlog.get_logger("pluggy_nats.topology")

    # -- hooks ---------------------------------------------------------------------

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        self.registries.append(registry)
        over_http = isinstance(registry, EndpointRegistry)
        registry.add("/topz", self.topz if over_http else self.topz_local)
        registry.add("/explainz", self.explainz if over_http else self.explainz_local)
        if over_http:
            registry.add("/topology", Page(files("pluggy_nats_plugins.topology").joinpath(
                "static/topology.html").read_bytes()))

    @hookimpl
    def nats_server_ready(self, server):
        account = server.accounts.system_account
        if account is None:
            return
        self.client = InternalClient(server, account, "topology")
        # One long-lived inbox: its interest has crossed every route and
        # gateway long before anyone asks, so no answer races its RS+.
        self.prefix = "_INBOX.topz.%s" % server.server_id
        self.client.subscribe(self.prefix + ".*.*", self._on_answer)

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if self.client is not None and not lame_duck:
            self.client.close()
            self.client = None

    # -- endpoints -------------------------------------------------------------------

    def endpoints(self):
        """path -> handler of the monitoring endpoints, each answering for this
        server only (ours included: never a gathering inside a gathering)."""
        out = {"/topz": self.topz_local, "/explainz": self.explainz_local}
        for registry in self.registries:
            for path, handler in registry.endpoints.items():
                key = "/" + path.strip("/").lower()
                out.setdefault(key, handler)
        return out

    def topz_local(self, server, query):
        return {"server": local_view(server, self.endpoints())}

    def topz(self, server, query):
        if not bool_param(query, "system"):
            return self.topz_local(server, query)
        out = system.topology(self.gather, gather.timeout_param(query))
        out["server_id"] = server.server_id
        if bool_param(query, "layout"):  # node positions for the /topology page
            out["layout"] = render.layout(out)
        return out

    def explainz_local(self, server, query):
        account, subject = query.get("acc") or query.get("account", ""), query.get("subject", "")
        check_input(account, subject)
        return explain_local(server, account, subject.encode())

    def explainz(self, server, query):
        timeout = gather.timeout_param(query)
        try:
            return system.explanation(
                self.gather, lambda subject: explain_local(server, query.get("account", ""),
                                                           subject.encode()),
                query.get("account", ""), query.get("subject", ""), timeout,
                publisher=query.get("from", ""))
        except BadInput as exc:
            raise BadRequest(str(exc)) from None

    # -- gathering --------------------------------------------------------------------

    def gather(self, gathering, timeout):
        """Run ``gathering`` over ``$SYS`` (an internal client, this greenlet
        waits); returns errors that make the result partial."""
        if self.client is None:
            self._answer_locally(gathering)
            return ["no system account on this server: only its own view"]
        number = next(self.seq)
        queue = self.pending[number] = gevent.queue.Queue()

        def send(subject, reply, payload):
            self.client.publish(subject, payload, reply=reply)

        def receive(seconds):
            try:
                return queue.get(timeout=max(seconds, 0))
            except gevent.queue.Empty:
                return None

        try:
            gather.run(gathering, send, receive, timeout,
                       reply_prefix="%s.%d" % (self.prefix, number))
        finally:
            del self.pending[number]
        return []

    def _answer_locally(self, gathering):
        """This server's own answers, as ``$SYS`` would have carried them."""
        handlers = self.endpoints()
        me = {"id": self.server.server_id, "name": self.server.server_name}
        for endpoint, body in gathering.asks.items():
            handler = handlers.get("/" + endpoint.lower())
            if handler is not None:
                data = handler(self.server, query_strings(body))
                gathering.add(endpoint, json.dumps({"server": me, "data": data},
                                                   default=str).encode())

    def _on_answer(self, sub, subject, reply, headers, payload):
        parts = subject.decode(errors="replace").rsplit(".", 2)
        try:
            queue = self.pending.get(int(parts[-2]))
        except (ValueError, IndexError):
            return
        if queue is not None:
            queue.put((parts[-1], bytes(payload)))
