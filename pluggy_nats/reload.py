"""Configuration reload (SIGHUP, PROTOCOL.md 5.3): re-read the config file,
diff it option by option against the running configuration, and apply the
changes only if every changed option is reloadable.

As in nats-server, a reload is all or nothing: a file with errors, or one that
changes an option that cannot change while running (the listen address, the
server name, what a plugin's ``nats_reload_block`` refuses in its block),
leaves the running configuration exactly as it was and says why. Flags and
environment values given at start still win over the file, as they did then.
"""

from .conf import load
from .options import CORE_OPTIONS, ConfigError, Options

# Core options a running server can take on: new connections (and the sweep)
# read them from server.options, so setting them is enough.
RELOADABLE = frozenset({
    "debug", "trace", "logtime", "logfile", "max_payload", "max_pending",
    "max_control_line", "max_connections", "max_subscriptions", "ping_interval",
    "ping_max", "write_deadline", "auth_timeout", "lame_duck_duration",
    "lame_duck_grace_period",
})


class ReloadRefused(Exception):
    """The new file changes options that need a restart; ``reasons`` lists them."""

    def __init__(self, reasons):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def reload_config(server):
    """Apply the config file's current contents to ``server``. Returns
    ``{option: (old, new)}`` for what changed. Raises ConfigError (the file is
    bad) or ReloadRefused (it changes what cannot change); nothing is applied then."""
    running = server.options
    path = getattr(running.args, "config", None) if running.args is not None else None
    if not path:
        raise ConfigError([(None, "no configuration file to reload (start with -c FILE)")])
    conf = load(path)
    # Values given by flag, env or the embedding program keep precedence.
    kept = {name: getattr(running, name) for name, source in running.sources.items()
            if source != "default" and not _from_file(source)}
    fresh = Options(conf=conf, args=running.args,
                    override_sources={name: running.sources[name] for name in kept}, **kept)
    core_keys = set(CORE_OPTIONS) | {"listen", "http", "net", "log_file", "pid_file",
                                     "monitor_port", "mappings", "maps"}
    refused = []
    appliers = []  # plugins' apply() for the blocks they accepted
    old_conf = running.conf or {}
    for key in sorted(set(conf) | set(old_conf)):
        if key.lower() in core_keys:
            continue
        if key in old_conf and key in conf:
            fresh.claim(key)  # a plugin's block: the plugin understood it at start
        if old_conf.get(key) != conf.get(key):
            answer = server.hook.nats_reload_block(server=server, key=key,
                                                   old=old_conf.get(key), new=conf.get(key))
            if answer is None:
                refused.append("%r changed: no plugin can reload it" % key)
            elif callable(answer):
                appliers.append((key, answer))
                if key in conf:
                    fresh.claim(key)
            else:
                refused.extend("%s: %s" % (key, reason) for reason in answer)
    fresh.check()  # raises ConfigError with every error (unknown keys included)
    changes = {}
    for name in CORE_OPTIONS:
        old, new = getattr(running, name), getattr(fresh, name)
        if old != new:
            if name in RELOADABLE:
                changes[name] = (old, new)
            else:
                refused.append("%s changed (%r -> %r): needs a restart" % (name, old, new))
    if refused:
        raise ReloadRefused(refused)
    for name, (_old, new) in changes.items():
        setattr(running, name, new)
        running.sources[name] = fresh.sources[name]
    running.conf = conf
    for key, apply in appliers:
        apply()
        changes[key] = ("block", "reloaded")
    if _mapping_sources(running.mappings) != _mapping_sources(fresh.mappings):
        changes["mappings"] = (len(running.mappings), len(fresh.mappings))
        running.mappings = fresh.mappings
        server.set_global_mappings(fresh.mappings)
    if changes.keys() & {"debug", "trace", "logtime", "logfile"}:
        from .log import configure_logging

        configure_logging(debug=running.debug, trace=running.trace,
                          json_output=bool(getattr(running.args, "log_json", False)),
                          logfile=running.logfile, logtime=running.logtime)
    return changes


def _from_file(source):
    """Sources look like "default", "file:line:col" (or "file"), "env X", "flag -x",
    "argument"; a position means the config file set it."""
    return source == "file" or source.count(":") >= 2


def _mapping_sources(mappings):
    """What a list of mappings says (for comparing two configurations)."""
    return [(m.src, [(cum, tr.dest) for cum, tr in m.dests]) for m in mappings]
