"""Logging setup: structlog, console by default, JSON on request.

Quiet by default (info: startup, shutdown, problems); ``-D`` adds debug events
(connections opening and closing, protocol errors), ``-V`` trace. Each
connection carries a bound logger with its ``cid``, kind and remote address.
"""

import logging
import os
import sys

import structlog

from .logsinks import RotatingLogFile, SyslogStream

_logfile = {"path": None, "stream": None}


class _ReopenableFile:
    """The log file behind structlog; SIGUSR1 reopens it (for log rotation)."""

    def write(self, text):
        return _logfile["stream"].write(text)

    def flush(self):
        _logfile["stream"].flush()


def reopen_logfile():
    if _logfile["path"]:
        _logfile["stream"].reopen()


def configure_logging(debug=False, trace=False, json_output=False, logfile=None, logtime=True,
                      logtime_utc=False, size_limit=0, max_files=0, syslog=False,
                      remote_syslog=None):
    """Where and how the server logs, as nats-server ``ConfigureLogger``: a log
    file (rotated past ``size_limit`` bytes, keeping ``max_files`` files with
    the live one), else remote syslog (``udp://``, ``tcp://``, ``unix://``),
    else the local syslog, else stderr."""
    # -V (trace) logs at debug level too; protocol tracing is switched on per connection.
    level = logging.DEBUG if (debug or trace) else logging.INFO
    stream = sys.stderr
    if logfile:
        old = _logfile["stream"]
        _logfile["path"] = logfile
        _logfile["stream"] = RotatingLogFile(logfile, size_limit, max_files)
        if old is not None:
            old.close()
        stream = _ReopenableFile()
    elif remote_syslog or syslog:
        stream = SyslogStream(remote_syslog, ident="pluggy-nats[%d]" % os.getpid())
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if logtime:
        processors.append(structlog.processors.TimeStamper(fmt="iso", utc=logtime_utc))
    if json_output:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def configure_from_options(options, json_output=False, check_only=False):
    """:func:`configure_logging` with the logging settings of ``options``
    (start and reload). Checking a configuration opens no file and no syslog:
    only a running server writes logs."""
    configure_logging(debug=options.debug, trace=options.trace, json_output=json_output,
                      logfile=None if check_only else options.logfile,
                      logtime=options.logtime, logtime_utc=options.logtime_utc,
                      size_limit=options.logfile_size_limit,
                      max_files=options.logfile_max_num,
                      syslog=options.syslog and not check_only,
                      remote_syslog=None if check_only else options.remote_syslog)
