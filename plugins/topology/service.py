"""The topology plugin inside a server: ``/topz`` (and ``/explainz``) on the
monitoring port, gathering the whole system over ``$SYS`` with an internal
client in the system account.

Over ``$SYS`` itself (``$SYS.REQ.SERVER.PING.TOPZ``) a server answers with
its own view only: the system plugin calls handlers in the publisher's
greenlet, which must never wait for other servers.
"""

import itertools

import gevent
import gevent.queue
import structlog

from pluggy_nats import hookimpl
from pluggy_nats.internal import InternalClient

from . import gather
from .view import assemble, local_view


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
        from pluggy_nats_plugins.monitor.http import EndpointRegistry

        self.registries.append(registry)
        over_http = isinstance(registry, EndpointRegistry)
        registry.add("/topz", self.topz if over_http else self.topz_local)

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
        """path -> handler of the monitoring endpoints (for the local view)."""
        out = {}
        for registry in self.registries:
            for path, handler in registry.endpoints.items():
                key = "/" + path.strip("/").lower()
                out.setdefault(key, handler)
        return out

    def topz_local(self, server, query):
        return {"server": local_view(server, self.endpoints())}

    def topz(self, server, query):
        from pluggy_nats_plugins.monitor.endpoints import bool_param

        if not bool_param(query, "system"):
            return self.topz_local(server, query)
        timeout = gather.timeout_param(query)
        gathering = gather.Gathering()
        errors = self.gather(gathering, timeout)
        out = assemble(gathering.answers, errors + gathering.errors,
                       elapsed_ms=gathering.elapsed_ms)
        out["server_id"] = server.server_id
        out["timeout_ms"] = int(timeout * 1000)
        return out

    # -- gathering --------------------------------------------------------------------

    def gather(self, gathering, timeout):
        """Run ``gathering`` over ``$SYS``; returns errors that make it partial."""
        gathering.elapsed_ms = 0.0
        if self.client is None:
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
            gathering.elapsed_ms = gather.run(gathering, send, receive, timeout,
                                              reply_prefix="%s.%d" % (self.prefix, number))
        finally:
            del self.pending[number]
        return []

    def _on_answer(self, sub, subject, reply, headers, payload):
        parts = subject.decode(errors="replace").rsplit(".", 2)
        try:
            queue = self.pending.get(int(parts[-2]))
        except (ValueError, IndexError):
            return
        if queue is not None:
            queue.put((parts[-1], bytes(payload)))
