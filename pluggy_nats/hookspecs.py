"""Every hook pluggy-nats calls, grouped by the phase in which it is called.

Plugins shape the *control plane*: configuration, listeners, authentication,
interest propagation, monitoring. The *data plane* (parse, match, deliver, flush)
makes no hook call per message unless a plugin implements the one opt-in data
hook, :func:`nats_message_published`.

Conventions (docs/architecture.md, "Hooks and who implements them"):

* ``nats_addoption`` is ``historic`` so a plugin registered late still adds its options.
* Decision hooks are ``firstresult``: return a decision or ``None`` for "not mine".
* Contribution hooks take a registry and call ``registry.add_...()``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("pluggy_nats")

# --------------------------------------------------------------------------- config


@hookspec(historic=True)
def nats_addhooks(pluginmanager):
    """Add a plugin's own hookspecs: ``pluginmanager.add_hookspecs(module)``.

    Called once per plugin manager for every plugin, including plugins
    registered later (historic), before ``nats_configure``; as pytest's
    ``pytest_addhooks``. Other plugins then implement the new hooks with the
    ordinary ``hookimpl`` marker (misspelt ones are caught by ``check_pending``
    once the specs are added).
    """


@hookspec(historic=True)
def nats_addoption(parser):
    """Add command-line options to ``pluggy-nats serve``.

    Called once per plugin manager, before the command line is parsed, so every
    plugin's options appear in ``--help``. ``parser`` is a configargparse parser;
    use ``parser.add_argument_group(<plugin name>)`` to keep them together.
    Options default to ``None`` where a config-file value may supply them.
    """


@hookspec
def nats_configure(config, server):
    """Validate this plugin's configuration and register its state.

    Called once per plugin when a :class:`~pluggy_nats.Server` is created (by the
    server itself, one implementation at a time, so a plugin that raises does
    not stop the others and every error is reported together). ``config`` is the
    server's :class:`~pluggy_nats.options.Options`: core values as attributes,
    the parsed config file as ``config.conf`` (a dict, empty without ``-c``), and
    the command line as ``config.args``. A plugin takes its own block from
    ``config.conf``, marks the keys it consumed with ``config.claim(key)`` (keys
    nobody claims are errors), raises :class:`~pluggy_nats.options.ConfigError` on
    bad values, and registers a manager object holding its state with
    ``server.pluginmanager.register(obj, name)``.

    Called through pluggy (tracing with PLUGGY_NATS_TRACE_HOOKS shows it), one
    plugin at a time so that every plugin's errors are collected; a
    ``wrapper=True`` implementation wraps each plugin's call.
    """


@hookspec(firstresult=True)
def nats_reload_block(server, key, old, new):
    """A top-level config block ``key`` changed in a reload (SIGHUP):
    ``old`` and ``new`` are its values (None when absent).

    The plugin that owns the block says what may change while running: return
    ``None`` for "not my block", a list of reasons (strings) to refuse the
    reload, or a callable ``apply()`` that takes the new block on. A reload is
    all or nothing: ``apply`` is only called once every changed block and
    option was accepted, and a block nobody answers for refuses the reload.
    """


@hookspec
def nats_add_commands(registry):
    """Add ``pluggy-nats`` subcommands: ``registry.add(name, main, help)``, where
    ``main(argv)`` gets the arguments after the name and returns the exit
    status. Called once per run of the command line (tox's subcommands); the
    bench plugin adds ``bench``. Core command names cannot be taken.
    """


# --------------------------------------------------------------------------- start / stop


@hookspec
def nats_server_start(server):
    """Called when the server starts, after the client listener is bound and
    before it accepts. Bind extra listeners here with ``server.listen`` and
    start solicitors with ``server.links.solicit`` (or greenlets with
    ``server.spawn``), so shutdown finds them."""


@hookspec
def nats_server_ready(server):
    """Called once the server accepts clients (after "Server is ready" is logged)."""


@hookspec
def nats_server_stop(server, lame_duck):
    """Called at the start of shutdown, before connections are closed (the
    link layer then closes listeners, solicitors and links itself, and in lame
    duck mode tells every link's peer). ``lame_duck`` is True when entering
    lame duck mode rather than stopping now."""


# --------------------------------------------------------------------------- connections


@hookspec
def nats_info(conn, info):
    """Add keys to the INFO dict ``info`` that ``conn`` is about to be sent.

    Called once per accepted connection (and for async INFO updates). Mutate
    ``info`` in place; the return value is ignored.
    """


@hookspec(firstresult=True)
def nats_authenticate(conn, connect):
    """Decide whether ``conn`` may connect with the CONNECT options ``connect``.

    Called once per connection when its CONNECT arrives (or on its first
    operation when the server has a ``no_auth_user``). Return
    :class:`~pluggy_nats.Allow` (optionally with an account and permissions),
    :class:`~pluggy_nats.Deny` with a reason for the log, or ``None`` when this
    implementation has no opinion. The first non-None answer wins. When nobody
    decides: the connection is allowed into the global account if the server
    does not require auth (``server.auth_required`` is False), else denied.
    Implementations that do I/O should be ``trylast``.
    """


@hookspec
def nats_client_connected(conn):
    """Called after a client's CONNECT was accepted and it joined its account,
    and when a leaf link registered, bound to its account (``conn.kind`` is
    LEAF): nats-server sends both the account connect event."""


@hookspec
def nats_client_closed(conn, reason, kind):
    """Called once when any connection closes; ``reason`` is a ClosedReason and
    ``kind`` says what closed: ``"client"``, or a link kind's name (``"route"``,
    ``"gateway"``, ``"leaf"``, a third party's). Implementations that only care
    about clients test ``kind == "client"`` (and may leave the argument out).
    """


# --------------------------------------------------------------------------- accounts


@hookspec
def nats_account_created(account):
    """An :class:`~pluggy_nats.accounts.Account` was created (config, a JWT
    resolved, a link naming a new account). Called once per account."""


@hookspec
def nats_account_updated(account):
    """An account's claims, limits, imports or exports were replaced (a JWT
    update, a reload). Called after the change is in place."""


@hookspec
def nats_account_removed(account):
    """An account was removed (its JWT deleted): its clients have been cut
    off. The object stays registered (as nats-server keeps an expired account),
    so links naming it still find it and a new JWT revives it."""


# --------------------------------------------------------------------------- links


@hookspec
def nats_link_info(link, info):
    """Add keys to the INFO dict ``info`` that ``link`` (a
    :class:`~pluggy_nats.links.Link` of any kind; ``link.link_kind.name`` says
    which) is about to send, in the handshake or later (lame duck,
    ``server.links.resend_info(kind)``). A gateway adds ``gateway_url`` to
    route INFOs, a leaf hub ``leafnode_urls``. Mutate ``info``; the return
    value is ignored.
    """


@hookspec
def nats_link_info_received(link, info):
    """Called with each INFO a registered ``link`` receives from its peer: the
    one that completed the handshake (after the link was registered) and every
    later one (gossip, updates, lame duck). Read-only for plugins that learn
    from a kind's INFO (a gateway reads ``gateway_url`` from route INFOs).
    """


@hookspec
def nats_link_up(link):
    """``link`` (any kind) passed its handshake and is registered: interest
    flows both ways from now on. JetStream re-creates the consumers of its
    remote mirrors and sources that went quiet (Go
    ``checkInternalSyncConsumers`` on a leaf connect). Called once per link,
    never per message.
    """


@hookspec
def nats_leafnode_migrate(server, account, away):
    """A leaf remote configured with ``jetstream_cluster_migrate`` for the
    account named ``account`` could not be dialled (``away`` True: after
    each failed dial, or once its ``leader_migrate_delay`` has passed), or
    was dialled again or removed (``away`` False). JetStream makes this
    server's replicated streams of that account hand their leadership to
    other members and not take it while away (nats-server
    ``checkJetStreamMigrate`` / ``clearObserverState``). Called from the
    remote's dialler, never per message; the return value is ignored.
    """


@hookspec(firstresult=True)
def nats_link_accept(server, kind, sock, addr):
    """A listener that is not the kind's own accepted a connection for link
    kind ``kind`` (``"leaf"``: a leaf node that dialled the WebSocket port's
    ``/leafnode`` path). ``sock`` is socket-like (a WebSocket stream). The
    plugin of that kind runs the connection in this greenlet, as its own
    listener would, and returns True; ``None`` means "not mine" (the caller
    then closes the connection).
    """


# --------------------------------------------------------------------------- interest


@hookspec
def nats_interest_changed(account, sub, delta, origin):
    """Called on every subscription change in ``account``.

    ``delta`` is +1 when ``sub`` was added and -1 when removed. ``origin`` is the
    connection that owns ``sub`` (a client, a link, or an internal client;
    ``origin.origin`` is its origin class). Link kinds do not need it: the link
    layer propagates interest per its table, without a hook call. Not called at
    all when no plugin implements it.
    """


# --------------------------------------------------------------------------- data plane (opt-in)


@hookspec
def nats_message_published(conn, subject, reply, headers, payload):
    """Observe a message published by ``conn`` (after permission checks,
    before delivery). Return value ignored; must not block.

    This is the only per-message hook. The server only wires it into the
    publish path when at least one plugin implements it, so it costs nothing
    otherwise; an implementation costs about a microsecond per message.
    """


# --------------------------------------------------------------------------- monitoring


@hookspec
def nats_monitor_endpoints(registry):
    """Add HTTP monitoring endpoints: ``registry.add(path, handler)`` where
    ``handler(server, query) -> dict`` (``query`` maps names to values). Called
    once when the monitoring listener starts."""


@hookspec
def nats_healthz(server, query, problems):
    """Add what keeps this server from being healthy to the list ``problems``:
    dicts as nats-server's HealthzError (``type``: JETSTREAM, ACCOUNT, STREAM
    or CONSUMER; ``error``; optionally ``account``, ``stream``, ``consumer``),
    the first one being what ``/healthz`` answers without ``details``; a
    ``status_code`` key (taken out of the answer) sets the HTTP status, as
    Go's 404 for a missing account, stream or consumer (503 otherwise).
    ``query`` has the request's options (``js-enabled-only``,
    ``js-server-only``, ``js-meta-only``, ``account``, ``stream``,
    ``consumer``, ...). Called per request, only when the server itself is
    ready."""


@hookspec
def nats_varz(server, varz):
    """Add or fill keys of the ``/varz`` dict ``varz`` (cluster, gateway, leaf,
    jetstream blocks). Mutate in place; called per request."""


@hookspec
def nats_statsz(server, statsz):
    """Add keys to the ``statsz`` dict of ``$SYS`` STATSZ events and PING
    answers (nats-server ServerStats): ``routes`` (RouteStat per route
    connection), ``gateways`` (GatewayStat per outbound). Mutate in place."""
