"""The plugin manager: one per Server (never a module global), loading first-party
and third-party plugins alike through the ``pluggy_nats`` entry-point group."""

import os

import pluggy

from . import hookspecs

PROJECT = "pluggy_nats"
hookimpl = pluggy.HookimplMarker(PROJECT)

ENV_DISABLE = "PLUGGY_NATS_DISABLE_PLUGINS"
ENV_NO_AUTOLOAD = "PLUGGY_NATS_DISABLE_PLUGIN_AUTOLOAD"
ENV_TRACE = "PLUGGY_NATS_TRACE_HOOKS"


def _env_list(name):
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def make_plugin_manager(plugins=(), autoload=None, disable=()):
    """Create a plugin manager with the hookspecs added.

    ``plugins`` are registered explicitly (modules or objects; tests use this
    with ``autoload=False``). With ``autoload`` (default: unless
    PLUGGY_NATS_DISABLE_PLUGIN_AUTOLOAD is set) every ``pluggy_nats`` entry point
    is loaded. Names in ``disable`` or PLUGGY_NATS_DISABLE_PLUGINS are blocked.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in list(disable) + _env_list(ENV_DISABLE):
        pm.set_blocked(name)
    if autoload is None:
        autoload = not os.environ.get(ENV_NO_AUTOLOAD)
    # An explicit plugin that is also installed (``--plugin mod`` with mod's
    # entry point present) takes its entry-point name, so autoloading skips it
    # instead of failing on a second registration of the same module.
    names = _entry_point_names() if autoload and plugins else {}
    for plugin in plugins:
        pm.register(plugin, name=names.get(getattr(plugin, "__name__", None)))
    if autoload:
        pm.load_setuptools_entrypoints(PROJECT)
    # Plugins' own hookspecs, before anything calls or checks hooks (pytest_addhooks).
    pm.hook.nats_addhooks.call_historic(kwargs={"pluginmanager": pm})
    if os.environ.get(ENV_TRACE):
        import structlog

        log = structlog.get_logger("pluggy_nats.hooks")
        pm.trace.root.setwriter(lambda msg: log.debug("hook_trace", msg=msg.rstrip()))
        pm.enable_tracing()
    pm.check_pending()
    return pm


def _entry_point_names():
    """module name -> entry-point name, for the group's plain-module entry points."""
    from importlib.metadata import entry_points

    return {ep.value: ep.name for ep in entry_points(group=PROJECT) if ":" not in ep.value}


def describe_plugins(pm):
    """(name, version, hooks) for every registered plugin, for `pluggy-nats plugins`."""
    versions = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            rows.append((name, "-", ["(blocked)"]))
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        rows.append((name, versions.get(id(plugin), "-"), hooks))
    return rows
