"""JetStream on one server: streams, consumers, and the key-value and object
stores clients build on them, behind nats-server's ``$JS.API.>``.

* enabling: ``-js``/``--jetstream``, ``-sd``/``--store_dir``, the ``jetstream``
  block and per-account ``jetstream`` limits (:mod:`.config`);
* one :class:`~.account.JsAccount` per JetStream account holds its streams
  (:mod:`.stream`) and consumers (:mod:`.consumer`) and answers the API
  (:mod:`.api`) through internal subscriptions; an account without JetStream
  gets Go's 10039 answer;
* storage through the store interface (:mod:`.storage`);
* /jsz, the /varz ``jetstream`` block, ``$JS.EVENT.ADVISORY.>``.
"""

import os

import structlog

from pluggy_nats import hookimpl
from pluggy_nats.internal import InternalClient
from pluggy_nats.server import StartError

from . import config as jsconfig
from .account import JsAccount
from .api import Api
from .config import AccountLimits
from .monitor import healthz, jsz, raftz, varz_block


@hookimpl
def nats_addoption(parser):
    g = parser.add_argument_group("jetstream")
    g.add_argument("-js", "--jetstream", action="store_true", default=None,
                   help="enable JetStream")
    g.add_argument("-sd", "--store_dir", metavar="DIR",
                   help="JetStream storage directory (files go to DIR/jetstream)")


@hookimpl
def nats_configure(config, server):
    cfg, claimed, accounts_configured = jsconfig.build(config.conf, config.args)
    for key in claimed:
        config.claim(key)
    server.pluginmanager.register(JetStream(server, cfg, accounts_configured),
                                  "jetstream-manager")


class JetStream:
    """The server-wide JetStream state, registered as a plugin object."""

    def __init__(self, server, config, accounts_configured):
        self.server = server
        self.config = config
        self.accounts_configured = accounts_configured
        self.accounts = {}  # account name -> JsAccount
        self.api = Api(self)
        self.cluster = None  # cluster/manager.py ClusterManager when clustered
        self.log = structlog.get_logger("pluggy_nats.jetstream")
        self._disabled_clients = []
        self._disabled_accounts = set()
        if config.enabled:
            server.extra_info["jetstream"] = True  # Go's INFO says so, and the domain
            if config.domain:
                server.extra_info["domain"] = config.domain

    @property
    def enabled(self):
        return self.config.enabled

    @hookimpl
    def nats_server_start(self, server):
        if not self.config.enabled:
            return
        if not self.config.store_dir:
            self.log.warning("jetstream_store_dir_not_set",
                             using=self.config.jetstream_dir())
        store_dir = self.config.store_dir
        if store_dir and os.path.exists(store_dir) and not os.path.isdir(store_dir):
            # nats-server: fatal, exit status 1 (launchers match the words)
            raise StartError("Can't start JetStream: storage directory is not a directory")
        try:
            os.makedirs(self.config.jetstream_dir(), exist_ok=True)
        except OSError as exc:
            raise StartError("Can't start JetStream: could not create storage directory - %s"
                             % exc) from exc
        self.log.info("Starting JetStream", store_dir=self.config.jetstream_dir(),
                      sync_interval="always" if self.config.sync_always
                      else self.config.sync_interval)
        from .cluster.manager import ClusterManager, check_clustered

        # Go's refusals first (no name, no routes, a bad extension_hint)
        clustered, route, extend = check_clustered(self)
        system = server.accounts.system_account
        if not self.accounts_configured:
            targets = {server.accounts.global_account.name:
                       self.config.accounts.get("$G", AccountLimits())}
        else:
            targets = dict(self.config.accounts)
        for name, limits in targets.items():
            account = server.accounts.get_or_create(name)
            jsa = self.accounts[name] = JsAccount(self, account, limits)
            jsa.start(self.api)
        for account in server.accounts:
            if account is system or account.name in self.accounts:
                continue
            self._answer_not_enabled(account)
        if clustered:
            self.cluster = ClusterManager(self, route, extend)
            self.cluster.start()
        server.spawn(self._sync_loop)

    def _answer_not_enabled(self, account):
        client = InternalClient(self.server, account, "$JS-disabled")
        client.subscribe("$JS.API.>", self.api.not_enabled_handler(client))
        self._disabled_clients.append(client)
        self._disabled_accounts.add(account.name)

    @hookimpl
    def nats_client_connected(self, conn):
        """Operator mode: an account resolved from its JWT gets JetStream on
        first use when its JWT's limits give it storage (else Go's 10039)."""
        account = getattr(conn, "account", None)
        if (not self.config.enabled or account is None or account.is_system
                or account.name in self.accounts or account.name in self._disabled_accounts):
            return
        jwt_limits = getattr(account, "jwt_limits", None)
        if jwt_limits is None:
            return
        limits = jsconfig.limits_from_jwt(jwt_limits)
        if limits is None:
            self._answer_not_enabled(account)
            return
        jsa = self.accounts[account.name] = JsAccount(self, account, limits)
        jsa.start(self.api)

    def _sync_loop(self):
        """fsync every store each ``sync_interval`` (Go's default 2 min)."""
        import gevent

        interval = self.config.sync_interval
        if self.config.sync_always or interval <= 0:
            return
        while True:
            gevent.sleep(interval)
            for jsa in list(self.accounts.values()):
                for stream in list(jsa.streams.values()):
                    try:
                        stream.store.sync()
                        stream.store.flush_state()  # a reopen then replays only the tail
                    except Exception as exc:  # a failing disk must not stop the others
                        self.log.warning("stream_sync_failed", stream=stream.name,
                                         error=str(exc))

    @hookimpl
    def nats_server_stop(self, server, lame_duck):
        if lame_duck:
            return
        if self.cluster is not None:
            self.cluster.stop()
        for jsa in list(self.accounts.values()):
            jsa.stop()
        self.accounts.clear()
        for client in self._disabled_clients:
            client.close()

    @hookimpl
    def nats_link_up(self, link):
        if self.cluster is not None and self.cluster.extend:
            from .cluster import extend

            extend.link_up(self.cluster, link)  # a leaf extending its hub's JetStream
        # Mirrors and sources fed across links: a quiet consumer is re-created now.
        for jsa in list(self.accounts.values()):
            for stream in list(jsa.streams.values()):
                for feed in stream.source_feeds:
                    if hasattr(feed, "link_up"):
                        feed.link_up()

    @hookimpl
    def nats_leafnode_migrate(self, server, account, away):
        if self.cluster is not None:
            self.cluster.migrate(account, away)

    @hookimpl
    def nats_monitor_endpoints(self, registry):
        registry.add("/jsz", lambda server, query: jsz(self, query))
        registry.add("/raftz", lambda server, query: raftz(self, query))

    @hookimpl
    def nats_healthz(self, server, query, problems):
        healthz(self, query, problems)

    @hookimpl
    def nats_varz(self, server, varz):
        if self.config.enabled:
            varz["jetstream"] = varz_block(self)
