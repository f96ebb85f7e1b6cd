"""Where log lines go besides stderr: a log file rotated by size, and syslog.

* :class:`RotatingLogFile`: nats-server's ``logfile_size_limit`` and
  ``logfile_max_num`` (``logger/log.go``): past the limit the file is renamed
  ``<name>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn``, a new one is opened and starts with
  "Rotated log, backup saved as ...", and with a maximum only the newest
  ``max_files - 1`` backups are kept.
* :class:`SyslogStream`: ``syslog: true`` (the local syslog socket) or
  ``remote_syslog: udp://host:port`` / ``tcp://host:port`` / ``unix:///path``.
"""

import datetime
import logging
import logging.handlers
import os
import re
import socket
from urllib.parse import urlsplit

# the suffix nats-server gives a rotated file
_BACKUP_SUFFIX = re.compile(r"^\.\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{9}$")


class RotatingLogFile:
    """A line-buffered log file that rotates itself past ``size_limit`` bytes
    (0: never) and keeps at most ``max_files`` files (0: all)."""

    def __init__(self, path, size_limit=0, max_files=0):
        self.path = path
        self.size_limit = size_limit
        self.max_files = max_files
        self._open()

    def _open(self):
        self._file = open(self.path, "a", buffering=1)
        self._size = self._file.tell()

    def write(self, text):
        n = self._file.write(text)
        self._size += len(text.encode()) if not text.isascii() else len(text)
        if self.size_limit and self._size > self.size_limit:
            self._rotate()
        return n

    def flush(self):
        self._file.flush()

    def reopen(self):
        """SIGUSR1: an outside tool moved the file away; write to a new one."""
        self._file.close()
        self._open()

    def close(self):
        self._file.close()

    def _rotate(self):
        self._file.close()
        now = datetime.datetime.now()
        backup = "%s.%s.%09d" % (self.path, now.strftime("%Y.%m.%d.%H.%M.%S"),
                                 now.microsecond * 1000)
        try:
            os.rename(self.path, backup)
        except OSError:
            pass
        self._open()
        self._file.write("[INF] Rotated log, backup saved as %r\n" % backup)
        self._size = self._file.tell()
        if self.max_files > 0:
            self._purge()

    def backups(self):
        """Rotated files of this log, oldest first (the suffix sorts by time)."""
        folder = os.path.dirname(os.path.abspath(self.path))
        base = os.path.basename(self.path)
        return sorted(name for name in os.listdir(folder)
                      if name.startswith(base) and _BACKUP_SUFFIX.match(name[len(base):]))

    def _purge(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        backups = self.backups()
        for name in backups[:max(len(backups) - (self.max_files - 1), 0)]:
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                return  # tried again at the next rotation, as nats-server
            self._file.write("[INF] Purged log file %r\n" % name)


def syslog_address(url):
    """``(address, socktype)`` for ``SysLogHandler`` from a ``remote_syslog``
    URL (nats-server ``getNetworkAndAddr``); None: the local syslog socket."""
    if not url:
        for path in ("/dev/log", "/var/run/syslog"):
            if os.path.exists(path):
                return path, None
        return ("localhost", 514), socket.SOCK_DGRAM
    parts = urlsplit(url)
    if parts.scheme in ("udp", "tcp"):
        address = (parts.hostname or "localhost", parts.port or 514)
        return address, socket.SOCK_DGRAM if parts.scheme == "udp" else socket.SOCK_STREAM
    if parts.scheme == "unix":
        return parts.path, None
    raise ValueError("error invalid network type: %r" % parts.scheme)


class SyslogStream:
    """A file-like sink (for structlog's PrintLogger) that sends each line to
    syslog, at the priority its level names."""

    _LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR, "critical": logging.CRITICAL}

    def __init__(self, url=None, ident="pluggy-nats"):
        address, socktype = syslog_address(url)
        kwargs = {"socktype": socktype} if socktype is not None else {}
        self.handler = logging.handlers.SysLogHandler(address=address, **kwargs)
        self.handler.ident = ident + ": "
        self._level = re.compile(r"\[(debug|info|warning|error|critical)\s*\]|"
                                 r'"level": "(\w+)"')

    def write(self, text):
        line = text.rstrip("\n")
        if not line:
            return len(text)
        match = self._level.search(line)
        name = (match.group(1) or match.group(2)) if match else "info"
        record = logging.LogRecord("pluggy_nats", self._LEVELS.get(name, logging.INFO),
                                   "", 0, line, None, None)
        self.handler.emit(record)
        return len(text)

    def flush(self):
        pass

    def close(self):
        self.handler.close()
