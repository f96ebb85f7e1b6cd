"""The ``pluggy-nats`` command.

``serve`` takes nats-server's flags (and reads nats-server config files) so a
deployment's command line works unchanged; plugins add their own flags through
``nats_addoption`` before parsing, so ``serve --help`` shows them all. Every
flag can also be set from the environment as ``PLUGGY_NATS_<FLAG>``.
"""

import argparse
import sys

import configargparse

from . import __version__
from .plugins import describe_plugins, make_plugin_manager

COMMANDS = ("serve", "plugins", "bench", "version")


def _port(value):
    port = int(value)
    return 0 if port < 0 else port  # -1 = pick a free port, as nats-server


def make_serve_parser(pm):
    parser = configargparse.ArgParser(
        prog="pluggy-nats serve",
        description="Run a NATS server.",
        auto_env_var_prefix="PLUGGY_NATS_",
        default_config_files=[],
        ignore_unknown_config_file_keys=False,
    )
    g = parser.add_argument_group("server")
    g.add_argument("-a", "--addr", "--net", dest="host",
                   help="bind to host address (default 0.0.0.0)")
    g.add_argument("-p", "--port", type=_port,
                   help="client port (default 4222; -1 picks a free one)")
    g.add_argument("-n", "--name", "--server_name", dest="server_name", help="server name")
    g.add_argument("-c", "--config", help="nats-server configuration file")
    g.add_argument("-t", dest="check_config", action="store_true",
                   help="test the configuration and exit")
    g.add_argument("-m", "--http_port", type=int,
                   help="HTTP monitoring port (-1 picks a free one)")
    g.add_argument("-P", "--pid", dest="pidfile", help="file to write the process id to")
    g.add_argument("--ports_file_dir", help="directory for the ports file")
    g.add_argument("--max_payload", type=int, help="maximum message payload in bytes")
    g.add_argument("--max_pending", type=int, help="maximum pending bytes per connection")
    g.add_argument("--max_connections", type=int, help="maximum client connections")
    g.add_argument("--max_control_line", type=int, help="maximum control line length")
    g.add_argument("--ping_interval", type=float, help="seconds between server PINGs")
    g.add_argument("--ping_max", type=int, help="unanswered PINGs before a connection is stale")
    g.add_argument("--write_deadline", type=float, help="seconds a blocked write may take")
    g.add_argument("--version", action="store_true", help="print the version and exit")
    g.add_argument("--disable-plugin", dest="disable_plugins", action="append", default=[],
                   metavar="NAME", help="do not load this plugin (repeatable)")
    g.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE",
                   help="also load the plugin in this importable module (repeatable)")
    lg = parser.add_argument_group("logging")
    lg.add_argument("-D", "--debug", action="store_true", default=None, help="debug output")
    lg.add_argument("-V", "--trace", action="store_true", default=None, help="trace output")
    lg.add_argument("-DV", dest="debug_trace", action="store_true", help="debug and trace output")
    lg.add_argument("-l", "--log", "--log_file", dest="logfile", help="log to this file")
    lg.add_argument("--log-json", action="store_true", help="log as JSON lines")
    pm.hook.nats_addoption.call_historic(kwargs=dict(parser=parser))
    return parser


def _pre_scan(argv, flag):
    """Values of a repeatable ``flag`` found before parsing: --plugin and
    --disable-plugin must act before plugins are loaded (and add their flags)."""
    values = []
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def plugin_manager_for(argv):
    import importlib

    plugins = [importlib.import_module(name) for name in _pre_scan(argv, "--plugin")]
    return make_plugin_manager(plugins, disable=_pre_scan(argv, "--disable-plugin"))


def build_options(args):
    """Options from a parsed command line: config file first, flags override."""
    from .options import Options

    conf = None
    if args.config:
        from .conf import load

        conf = load(args.config)
    overrides = {}
    for name in ("host", "port", "server_name", "http_port", "pidfile", "ports_file_dir",
                 "max_payload", "max_pending", "max_connections", "max_control_line",
                 "ping_interval", "ping_max", "write_deadline", "logfile"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if args.debug or args.debug_trace:
        overrides["debug"] = True
    if args.trace or args.debug_trace:
        overrides["trace"] = True
    return Options(conf=conf, args=args, **overrides)


def serve(argv):
    from .log import configure_logging
    from .options import ConfigError

    pm = plugin_manager_for(argv)
    parser = make_serve_parser(pm)
    args = parser.parse_args(argv)
    if args.version:
        from .server import NATS_COMPAT_VERSION

        print("pluggy-nats: v%s (follows nats-server v%s)" % (__version__, NATS_COMPAT_VERSION))
        return 0
    try:
        options = build_options(args)
        configure_logging(debug=options.debug, trace=options.trace, json_output=args.log_json,
                          logfile=options.logfile, logtime=options.logtime)
        from .server import Server

        server = Server(options, pluginmanager=pm)
    except ConfigError as exc:
        print("pluggy-nats: configuration errors:\n%s" % exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print("pluggy-nats: %s" % exc, file=sys.stderr)
        return 1
    if args.check_config:
        print("pluggy-nats: configuration file %s is valid" % (args.config or "(none)"))
        return 0
    try:
        server.serve_forever()
    except OSError as exc:  # bind failures and the like
        server.log.error("Error listening", error=str(exc))
        return 1
    return 0


def list_plugins(argv):
    pm = plugin_manager_for(argv)
    for name, version, hooks in describe_plugins(pm):
        print("%-28s %-10s %s" % (name, version, ", ".join(hooks)))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="pluggy-nats",
        description="A NATS server in Python. Commands: serve, plugins, bench, version.")
    top.add_argument("command", choices=COMMANDS)
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv[:1] or ["--help"])
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return serve(rest)
    if command == "plugins":
        return list_plugins(rest)
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    print("pluggy-nats %s" % __version__)
    return 0
