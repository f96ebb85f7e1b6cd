"""Value helpers: integer size suffixes, sizes and Go durations.

* :data:`SIZE_SUFFIXES`: the integer suffixes of the config format (``k`` is
  1000, ``kb``/``ki``/``kib`` are 1024, and so on up to ``e``), as in
  nats-server's ``conf/parse.go``.
* :func:`parse_size`: ``1048576``, ``"1MB"``, ``"64k"`` -> bytes.
* :func:`parse_duration`: Go ``time.ParseDuration`` strings (``"2m"``,
  ``"1h30m"``, ``"500ms"``) -> float seconds; a bare number means seconds, as
  nats-server reads it (with a warning: see :func:`parse_duration_with_warning`).
"""

import re
from typing import Optional, Tuple

from .model import ConfigError, Position

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1


def _suffixes():
    table = {"": 1}
    for power, letter in enumerate("kmgtpe", start=1):
        table[letter] = 1000 ** power
        for binary in ("b", "i", "ib"):
            table[letter + binary] = 1024 ** power
    return table


#: lower-case integer suffix -> multiplier
SIZE_SUFFIXES = _suffixes()

_SIZE_RE = re.compile(r"\s*([-+]?\d+)\s*([A-Za-z]*)\s*\Z")


def parse_size(value) -> int:
    """A size in bytes from an ``int`` or a string like ``"1MB"``, ``"64k"``.

    Strings take the config file's suffixes (powers of 1000 for ``k m g t p e``,
    of 1024 for ``kb``/``ki``/``kib``...), case-insensitive, plus ``b`` for bytes.
    Raises ``TypeError`` for other types and ``ValueError`` for bad text.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("expected a size (an integer or a string like \"1MB\"), got %r"
                        % (value,))
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError("invalid size %r" % (value,))
    suffix = match.group(2).lower()
    multiplier = 1 if suffix == "b" else SIZE_SUFFIXES.get(suffix)
    if multiplier is None:
        raise ValueError("invalid size %r: unknown suffix %r" % (value, match.group(2)))
    return int(match.group(1)) * multiplier


# -- durations ------------------------------------------------------------

_NS = {
    "ns": 1,
    "us": 1000,
    "\u00b5s": 1000,  # micro sign
    "\u03bcs": 1000,  # Greek mu
    "ms": 1000 ** 2,
    "s": 1000 ** 3,
    "m": 60 * 1000 ** 3,
    "h": 3600 * 1000 ** 3,
}


def go_parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: a duration string -> integer nanoseconds.

    A sequence of decimal numbers, each with an optional fraction and a unit
    (``ns us µs ms s m h``), with an optional sign: ``"300ms"``, ``"-1.5h"``,
    ``"2h45m"``. ``"0"`` needs no unit. Raises ``ValueError`` with Go's wording.
    """
    orig, s = text, text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError('time: invalid duration "%s"' % orig)
    total = 0
    while s:
        match = re.match(r"(\d*)(?:\.(\d*))?", s)
        whole, frac = match.group(1), match.group(2)
        if not whole and not frac:
            raise ValueError('time: invalid duration "%s"' % orig)
        s = s[match.end():]
        unit_match = re.match(r"[^0-9.]*", s)
        unit = unit_match.group(0)
        if not unit:
            raise ValueError('time: missing unit in duration "%s"' % orig)
        if unit not in _NS:
            raise ValueError('time: unknown unit "%s" in duration "%s"' % (unit, orig))
        s = s[unit_match.end():]
        scale = _NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        if total > INT64_MAX + (1 if negative else 0):
            raise ValueError('time: invalid duration "%s"' % orig)
    return -total if negative else total


def is_bare_number_duration(value) -> bool:
    """True if a duration was given as a bare number (read as seconds; nats-server
    warns that it should be a duration string such as ``"10s"``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration_with_warning(value, pos: Optional[Position] = None
                                ) -> Tuple[float, Optional[str]]:
    """Like :func:`parse_duration`, returning ``(seconds, warning or None)``.

    The warning is set when ``value`` is a bare number (seconds).
    """
    if is_bare_number_duration(value):
        warning = ("duration given as a bare number %r is read as seconds; write it as a "
                   "duration string such as \"%ss\"" % (value, value))
        return float(value), warning
    if not isinstance(value, str):
        _fail("expected a duration such as \"2m\" or \"500ms\", got %r" % (value,), pos,
              TypeError)
    try:
        return go_parse_duration(value) / 1e9, None
    except ValueError as exc:
        _fail("invalid duration %r: %s" % (value, exc), pos)


def parse_duration(value, pos: Optional[Position] = None) -> float:
    """A duration in float seconds from a Go duration string or a bare number.

    ``"2m"`` -> 120.0, ``"500ms"`` -> 0.5, ``"1h30m"`` -> 5400.0, ``"10us"``,
    ``"3ns"``; ``int``/``float`` values are seconds, returned as they are (a
    caller may warn: see :func:`is_bare_number_duration`). Errors raise
    ``ValueError`` (a :class:`ConfigError` located at ``pos`` when one is given).
    """
    return parse_duration_with_warning(value, pos)[0]


def _fail(message, pos, exc_type=ValueError):
    if pos is not None:
        raise ConfigError([(pos, message)])
    raise exc_type(message)


# -- type checks for plugins' config parsing ----------------------------------------


# Python type of a parsed config value -> the Go type nats-server names
# (bool first: a bool is an int in Python).
_GO_TYPES = ((bool, "bool"), (int, "int64"), (float, "float64"), (str, "string"),
             (dict, "map[string]interface {}"), (list, "[]interface {}"))


def go_type(value) -> str:
    """The Go type nats-server would name for a parsed config value
    (its error messages say ``got int64``, ``got string``...)."""
    for python_type, name in _GO_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def expect(value, kind, what="value"):
    """``value`` if it is a ``kind`` (dict, list, str, int, bool), else a
    ValueError naming the Go type found. An int is never a bool here, and a
    bool never an int, as in nats-server."""
    ok = (value is True or value is False) if kind is bool else (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool)))
    if not ok:
        names = {dict: "map", list: "array", str: "string", int: "integer", bool: "boolean"}
        raise ValueError("expected %s for %s, got %s" % (names.get(kind, kind.__name__), what,
                                                        go_type(value)))
    return value


def expect_strings(value, what="value"):
    """A string or a list of strings (nats-server accepts either) -> list."""
    if isinstance(value, str):
        return [value]
    for item in expect(value, list, what):
        expect(item, str, what + " item")
    return list(value)


def parse_listen(value) -> Tuple[Optional[str], int]:
    """``listen``: a port (integer) or ``"host:port"``, as nats-server's
    parseListen: anything else (a float, ``"127.0."``) is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None, value
    if not isinstance(value, str):
        raise ValueError("expected port or host:port, got %s" % go_type(value))
    host, sep, port = value.strip().rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        raise ValueError("could not parse address string %r" % value)
    if not re.fullmatch(r"-?[0-9]+", port):
        raise ValueError("could not parse port %r" % port)
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or None, int(port)
