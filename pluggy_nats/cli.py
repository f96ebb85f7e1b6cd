"""The ``pluggy-nats`` command.

``serve`` takes nats-server's flags (and reads nats-server config files) so a
deployment's command line works unchanged; plugins add their own flags through
``nats_addoption`` before parsing, so ``serve --help`` shows them all. Every
flag can also be set from the environment as ``PLUGGY_NATS_<FLAG>`` (the first
long spelling: ``PLUGGY_NATS_PORT``, ``PLUGGY_NATS_ADDR``...).

``serve -t -c FILE`` and ``check-config FILE`` check a configuration without
starting anything: the file is parsed, Options are built and every plugin's
``nats_configure`` runs (the Server object is made, never started); every error
is printed as ``file:line:col: message`` and the exit status is 1.
``serve --explain-config`` prints each core option's effective value and its
source: ``default``, ``file:line:col``, ``env PLUGGY_NATS_X`` or ``flag --x``.
"""

import argparse
import os
import sys

import configargparse

from . import __version__
from .plugins import describe_plugins, make_plugin_manager

COMMANDS = ("serve", "check-config", "plugins", "version")


class CommandRegistry:
    """What ``nats_add_commands`` implementations add to: ``add(name, main,
    help)`` with ``main(argv) -> exit status``."""

    def __init__(self):
        self.commands = {}

    def add(self, name, main, help=""):
        if name in COMMANDS or name in self.commands:
            raise ValueError("command %r is already taken" % name)
        self.commands[name] = (main, help)


def plugin_commands(argv):
    """The commands plugins add (``bench`` comes from the bench plugin)."""
    registry = CommandRegistry()
    plugin_manager_for(argv).hook.nats_add_commands(registry=registry)
    return registry.commands


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
    g.add_argument("-sl", "--signal", metavar="CMD[=PID]",
                   help="send a running server a signal: ldm, reload, reopen, quit, term, stop"
                        " (pid from =PID or the -P pid file)")
    g.add_argument("-t", dest="check_config", action="store_true",
                   help="test the configuration and exit")
    g.add_argument("--explain-config", action="store_true",
                   help="print every core option's effective value and where it came from "
                        "(default, file:line:col, env, flag), then exit")
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
    tg = parser.add_argument_group("tls (client connections)")
    tg.add_argument("--tls", action="store_true", default=None,
                    help="enable TLS, do not verify clients (default false)")
    tg.add_argument("--tlscert", metavar="FILE", help="server certificate file")
    tg.add_argument("--tlskey", metavar="FILE", help="private key for the server certificate")
    tg.add_argument("--tlsverify", action="store_true", default=None,
                    help="enable TLS, verify client certificates")
    tg.add_argument("--tlscacert", metavar="FILE", help="client certificate CA for verification")
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


# Core options a flag can set (the argparse dest is the Options name).
OVERRIDES = ("host", "port", "server_name", "http_port", "pidfile", "ports_file_dir",
             "max_payload", "max_pending", "max_connections", "max_control_line",
             "ping_interval", "ping_max", "write_deadline", "logfile")


def arg_sources(parser, argv):
    """argparse dest -> "flag -p" or "env PLUGGY_NATS_PORT" for every argument
    the user set. configargparse turns ``PLUGGY_NATS_<LONG OPTION>`` variables
    into arguments only when the flag is not on the command line, so a flag
    seen in ``argv`` wins and otherwise a set variable is the source. Handles
    ``--opt=value``, ``-pVALUE`` and argparse's abbreviated long options."""
    by_option = {opt: action for action in parser._actions for opt in action.option_strings}
    long_options = [opt for opt in by_option if opt.startswith("--")]

    def resolve(arg):  # -> (option string, value attached?) or (None, False)
        if arg in by_option:
            return arg, False
        if arg.startswith("--"):
            name, eq, _ = arg.partition("=")
            if name in by_option:
                return name, bool(eq)
            matches = [opt for opt in long_options if opt.startswith(name)]
            if len(matches) == 1:
                return matches[0], bool(eq)
            return None, False
        short = arg[:2]
        if short in by_option and by_option[short].nargs != 0:
            return short, True
        return None, False

    sources = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or len(arg) < 2:
            continue
        opt, attached = resolve(arg)
        if opt is None:
            continue
        action = by_option[opt]
        sources.setdefault(action.dest, "flag %s" % opt)
        if action.nargs != 0 and not attached:
            i += 1  # its value, even one that starts with "-" (-p -1)
    for action in parser._actions:
        env_var = _env_var(parser, action)
        if action.dest not in sources and env_var and env_var in os.environ:
            sources[action.dest] = "env %s" % env_var
    return sources


def _env_var(parser, action):
    """The variable configargparse reads for ``action``: PLUGGY_NATS_ + its first
    long option (configargparse sets ``action.env_var`` itself while parsing)."""
    env_var = getattr(action, "env_var", None)
    if env_var:
        return env_var
    prefix = getattr(parser, "_auto_env_var_prefix", None)
    longs = [opt for opt in action.option_strings if opt.startswith("--")]
    if prefix is None or not longs or isinstance(action, argparse._HelpAction):
        return None
    return (prefix + longs[0][2:]).replace("-", "_").upper()


def build_options(args, sources=None):
    """Options from a parsed command line: config file first, flags override.
    ``sources`` (from :func:`arg_sources`) says where each flag value came from."""
    from .options import Options

    sources = sources or {}
    conf = None
    if args.config:
        from .conf import ConfigError, load

        try:
            conf = load(args.config)
        except ConfigError as exc:
            exc.syntax = True  # the file does not parse (error_head words it as Go)
            raise
    overrides = {}
    origin = {}
    for name in OVERRIDES:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
            origin[name] = sources.get(name, "argument")
    for name, dests in (("debug", ("debug", "debug_trace")), ("trace", ("trace", "debug_trace"))):
        for dest in dests:
            if getattr(args, dest, None):
                overrides[name] = True
                origin[name] = sources.get(dest, "argument")
                break
    return Options(conf=conf, args=args, override_sources=origin, **overrides)


def format_errors(exc, config=None):
    """One ``file:line:col: message`` line per error (position-less errors name
    the config file when there is one)."""
    lines = []
    # In file order; errors without a position last, in the order found.
    errors = sorted(exc.errors, key=lambda e: (0, e[0].file, e[0].line, e[0].col)
                    if e[0] else (1, "", 0, 0))
    for pos, msg in errors:
        if pos:
            lines.append("%s: %s" % (pos, msg))
        elif config:
            lines.append("%s: %s" % (config, msg))
        else:
            lines.append(msg)
    return "\n".join(lines)


def error_head(exc):
    """The first line of a configuration failure, in nats-server's words
    where scripts look for them: "Parse error on line N: '...'" for a file
    that does not parse, else "configuration errors:" (the located list follows)."""
    if getattr(exc, "syntax", False) and exc.errors:
        pos, msg = exc.errors[0]
        return "Parse error on line %d: '%s'" % (pos.line if pos else 0, msg)
    return "configuration errors:"


def go_os_error(exc):
    """An OSError as Go words it: ``open FILE: no such file or directory``."""
    if exc.filename is not None and exc.strerror:
        return "open %s: %s" % (exc.filename, exc.strerror.lower())
    return str(exc)


def _explain(options):
    import json

    rows = [(name, json.dumps(value), source) for name, value, source in options.explain()]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, source in rows:
        print("%-*s  %-*s  %s" % (width, name, vwidth, value, source))


def serve(argv):
    from .log import configure_from_options
    from .options import ConfigError

    pm = plugin_manager_for(argv)
    parser = make_serve_parser(pm)
    args = parser.parse_args(argv)
    if args.version:
        from .server import NATS_COMPAT_VERSION

        print("pluggy-nats: v%s (follows nats-server v%s)" % (__version__, NATS_COMPAT_VERSION))
        return 0
    if args.signal:
        from .signals import SignalError, send_signal

        try:
            pid = send_signal(args.signal, args.pidfile)
        except SignalError as exc:
            print("pluggy-nats: %s" % exc, file=sys.stderr)
            return 1
        print("pluggy-nats: signal %s sent to process %d" % (args.signal.split("=")[0], pid))
        return 0
    check_only = args.check_config or args.explain_config
    try:
        options = build_options(args, arg_sources(parser, argv))
        # Checking opens no log file: only a running server writes one.
        configure_from_options(options, json_output=args.log_json, check_only=check_only)
        from .server import Server

        server = Server(options, pluginmanager=pm)
    except ConfigError as exc:
        print("pluggy-nats: %s\n%s" % (error_head(exc), format_errors(exc, args.config)),
              file=sys.stderr)
        return 1
    except OSError as exc:
        print("pluggy-nats: %s" % go_os_error(exc), file=sys.stderr)
        return 1
    if args.explain_config:
        _explain(options)
        return 0
    if args.check_config:
        if args.config:
            from .conf import digest

            print("pluggy-nats: configuration file %s is valid (%s)"
                  % (args.config, digest(options.conf)))
        else:
            print("pluggy-nats: configuration is valid (no configuration file)")
        return 0
    from .server import StartError, tune_gc, tune_malloc

    tune_gc()
    tune_malloc()
    try:
        server.serve_forever()
    except StartError as exc:  # nats-server: Fatalf, the last line, exit status 1
        server.log.critical(str(exc))
        return 1
    except OSError as exc:
        server.log.critical("Error starting server: %s" % go_os_error(exc))
        return 1
    return 0


def check_config(argv):
    """``pluggy-nats check-config FILE [serve flags]``: the checks of ``serve -t -c FILE``."""
    if not argv or argv[0].startswith("-"):
        print("usage: pluggy-nats check-config FILE [serve options]\n\n"
              "Check a nats-server configuration file (the checks of `serve -t -c FILE`):\n"
              "exit 0 if it is valid, 1 listing every error as file:line:col: message.",
              file=sys.stderr if not argv or argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return serve(["-t", "-c", argv[0]] + list(argv[1:]))


def list_plugins(argv):
    pm = plugin_manager_for(argv)
    for name, version, hooks in describe_plugins(pm):
        print("%-28s %-10s %s" % (name, version, ", ".join(hooks)))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = {} if argv and argv[0] in COMMANDS else plugin_commands(argv[1:])
    names = list(COMMANDS[:-1]) + sorted(extra) + [COMMANDS[-1]]
    top = argparse.ArgumentParser(
        prog="pluggy-nats",
        description="A NATS server in Python. Commands: %s." % ", ".join(names),
        epilog="\n".join("%s: %s" % (name, extra[name][1]) for name in sorted(extra)))
    top.add_argument("command", choices=names)
    if not argv or argv[0] not in names:
        top.parse_args(argv[:1] or ["--help"])
        return 2
    command, rest = argv[0], argv[1:]
    if command in extra:
        return extra[command][0](rest)
    if command == "serve":
        return serve(rest)
    if command == "check-config":
        return check_config(rest)
    if command == "plugins":
        return list_plugins(rest)
    print("pluggy-nats %s" % __version__)
    return 0
