"""Logging setup: structlog, console by default, JSON on request.

Quiet by default (info: startup, shutdown, problems); ``-D`` adds debug events
(connections opening and closing, protocol errors), ``-V`` trace. Each
connection carries a bound logger with its ``cid``, kind and remote address.
"""

import logging
import sys

import structlog

_logfile = {"path": None, "stream": None}


class _ReopenableFile:
    """The log file behind structlog; SIGUSR1 reopens it (for log rotation)."""

    def write(self, text):
        return _logfile["stream"].write(text)

    def flush(self):
        _logfile["stream"].flush()


def reopen_logfile():
    if _logfile["path"]:
        old = _logfile["stream"]
        _logfile["stream"] = open(_logfile["path"], "a", buffering=1)
        old.close()


def configure_logging(debug=False, trace=False, json_output=False, logfile=None, logtime=True):
    # -V (trace) logs at debug level too; protocol tracing is switched on per connection.
    level = logging.DEBUG if (debug or trace) else logging.INFO
    stream = sys.stderr
    if logfile:
        _logfile["path"] = logfile
        _logfile["stream"] = open(logfile, "a", buffering=1)
        stream = _ReopenableFile()
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if logtime:
        processors.append(structlog.processors.TimeStamper(fmt="iso", utc=False))
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
