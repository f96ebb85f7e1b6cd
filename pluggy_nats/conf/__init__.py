"""The nats-server configuration file format.

>>> cfg = loads("port: 4222\\ncluster { name: c1, listen: 0.0.0.0:6222 }")
>>> cfg["cluster"]["listen"], cfg.position("port")
('0.0.0.0:6222', Position(file='<string>', line=1, col=1))

* :func:`load` / :func:`loads` parse a file / a text into a :class:`ConfMap`
  (a ``dict``) of ``str``, ``int``, ``float``, ``bool``, ``datetime``, ``list``
  and nested ``ConfMap``; ``cfg.position(key)`` says where a key was defined.
* Every problem found is raised at once as one :class:`ConfigError`.
* :func:`parse_duration` and :func:`parse_size` read duration and size values
  as nats-server does; :func:`digest` gives the digest ``nats-server -t``
  prints for the same file.

The format: ``key = value``, ``key: value`` or ``key value``, optionally ended
by ``;`` or ``,``; maps ``{}``; arrays ``[]``; ``#`` and ``//`` comments;
``include file``; ``$NAME`` variables from enclosing maps or the environment;
integer suffixes (``1k`` = 1000, ``1kb`` = 1024); booleans ``true/yes/on``,
``false/no/off``; Zulu datetimes; block strings ``( ... )``. See
:mod:`pluggy_nats.conf.lexer` and :mod:`pluggy_nats.conf.parser`.

This package only reads files (the configuration and its includes); it knows
nothing of what the keys mean.
"""

import os
from typing import Mapping, Optional

from .digest import digest, go_json
from .model import ConfigError, ConfMap, Position
from .parser import parse_text, read_text
from .values import (
    SIZE_SUFFIXES,
    go_parse_duration,
    is_bare_number_duration,
    parse_duration,
    parse_duration_with_warning,
    parse_size,
)

__all__ = [
    "ConfMap", "ConfigError", "Position", "SIZE_SUFFIXES", "digest", "go_json",
    "go_parse_duration", "is_bare_number_duration", "load", "loads", "parse_duration",
    "parse_duration_with_warning", "parse_size",
]


def loads(text: str, filename: str = "<string>", env: Optional[Mapping[str, str]] = None,
          *, base_dir: Optional[str] = None) -> ConfMap:
    """Parse configuration ``text`` into a :class:`ConfMap`.

    ``filename`` names the text in positions and errors, and its directory is
    where ``include`` looks (``base_dir`` overrides that; default: the current
    directory for ``"<string>"``). ``env`` is the mapping that ``$NAME`` falls
    back to (default ``os.environ``). Raises :class:`ConfigError` listing every
    error found.
    """
    if base_dir is None:
        base_dir = os.path.dirname(filename) if not filename.startswith("<") else ""
    root, errors = parse_text(text, filename, os.environ if env is None else env, base_dir)
    if errors:
        raise ConfigError(errors)
    return root


def load(path: str, env: Optional[Mapping[str, str]] = None) -> ConfMap:
    """Parse the configuration file at ``path`` (and its includes).

    Positions name files as ``path`` and the include paths joined to it. Raises
    :class:`ConfigError` for errors in the configuration, ``OSError`` if
    ``path`` itself cannot be read.
    """
    text = read_text(path)
    root, errors = parse_text(text, path, os.environ if env is None else env,
                              os.path.dirname(path), real_path=os.path.realpath(path))
    if errors:
        raise ConfigError(errors)
    return root
