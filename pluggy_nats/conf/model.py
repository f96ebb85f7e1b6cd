"""The data model of a parsed configuration: positions, errors and ConfMap.

* :class:`Position` says where something is: ``file:line:col`` (line and column
  count from 1; the column counts characters, not bytes).
* :class:`ConfigError` carries every error found, each with its position.
* :class:`ConfMap` is a ``dict`` that also remembers where each key was defined
  and which keys were referenced as ``$variables``.
"""

from typing import Iterable, List, NamedTuple, Optional, Tuple


class Position(NamedTuple):
    """Where a key, value or error is: ``str(pos) == "file:line:col"``."""

    file: str
    line: int
    col: int

    def __str__(self):
        return "%s:%d:%d" % (self.file, self.line, self.col)


class ConfigError(ValueError):
    """A configuration that cannot be used.

    ``errors`` is a list of ``(Position or None, message)``; ``str()`` gives one
    ``file:line:col: message`` line per error. It is a ``ValueError``, so code that
    converts values and catches ``ValueError`` also catches it.
    """

    def __init__(self, errors: Iterable[Tuple[Optional[Position], str]]):
        self.errors: List[Tuple[Optional[Position], str]] = list(errors)
        super().__init__("\n".join(
            "%s: %s" % (pos, msg) if pos else msg for pos, msg in self.errors))

    def __reduce__(self):
        return (type(self), (self.errors,))


class ConfMap(dict):
    """A configuration map: a plain ``dict`` plus where each key came from.

    Values are ``str``, ``int``, ``float``, ``bool``, ``datetime``, ``list`` or
    ``ConfMap``. Equality ignores positions, so ``ConfMap(a=1) == {"a": 1}``.

    nats-server has no separate syntax to define a variable: any key is one, and
    ``$NAME`` refers to it. A key whose value was referenced that way is a *used
    variable* (nats-server does not report it as an unknown field).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._positions = {}
        self._used = set()
        self._failed = {}  # key -> Position of definitions whose value had an error

    # -- positions ---------------------------------------------------------

    def position(self, key) -> Optional[Position]:
        """Where ``key`` was (last) defined; ``None`` if absent or built by hand."""
        if key not in self:
            return None
        return self._positions.get(key)

    def _set(self, key, value, pos, used=False):
        """Define ``key`` (a later definition replaces an earlier one, as in Go)."""
        self[key] = value
        self._positions[key] = pos
        self._failed.pop(key, None)
        if used:
            self._used.add(key)
        else:
            self._used.discard(key)

    # -- variables ---------------------------------------------------------

    @property
    def used_variables(self) -> frozenset:
        """Keys of this map whose current value was referenced as ``$NAME``."""
        return frozenset(k for k in self._used if k in self)

    def is_used_variable(self, key) -> bool:
        """True if ``key``'s value was referenced as ``$key`` (nats-server's
        ``IsUsedVariable``: such a key is a variable, not an unknown setting)."""
        return key in self._used and key in self

    @property
    def unused_variables(self) -> List[Tuple[str, Optional[Position]]]:
        """``(name, Position)`` of the keys of this map that no ``$NAME`` used.

        The format cannot tell a variable definition from a setting, so this is
        every key that was not referenced, in definition order. A caller removes
        the keys it recognises as settings: what remains is a variable defined
        but never used, which nats-server reports as an unknown field.
        """
        return [(k, self.position(k)) for k in self if k not in self._used]

    def __repr__(self):
        return "ConfMap(%s)" % dict.__repr__(self)

    def __reduce__(self):
        state = {"_positions": self._positions, "_used": self._used, "_failed": self._failed}
        return (type(self), (), state, None, iter(self.items()))


def copy_value(value):
    """A deep copy of a parsed value (lists and ConfMaps; scalars are immutable)."""
    if isinstance(value, ConfMap):
        out = ConfMap()
        for k, v in value.items():
            out._set(k, copy_value(v), value._positions.get(k))
        return out
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value
