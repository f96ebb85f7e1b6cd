"""The parser of the nats-server configuration format: text -> :class:`ConfMap`.

Grammar (as nats-server's ``conf/parse.go`` reads it)::

    document := { entry | comment | "{" document "}" }   # top-level braces are optional
    entry    := key [":" | "="] value [";" | ","]  |  "include" path
    value    := scalar | "[" values "]" | "{" entries "}" | "$" NAME

* Entries end at a new line, ``;`` or ``,``; array items at a new line or ``,``.
* ``include`` reads another file, relative to the including file's directory,
  parsed on its own (it does not see the includer's variables), and merges its
  keys into the current map.
* ``$NAME`` is resolved when it is read: in the maps being built, innermost
  first, then in the environment, whose value is parsed as a config value. A
  variable must be defined before it is used, so a cycle within a file reads as
  a missing variable; a cycle through the environment is reported as a cycle.

Errors are collected: a syntax error stops its file (includers go on), a bad
value, a missing variable or a bad include is recorded and parsing goes on.
"""

import os
from typing import List, Mapping, Optional, Tuple

from . import lexer
from .lexer import ConfSyntaxError, Scanner
from .model import ConfMap, Position, copy_value

BCRYPT_PREFIX = "2a$"  # "$2a$..." is a bcrypt hash, not a variable (as nats-server)


class _Load:
    """State shared by every file and environment value of one load."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.errors: List[Tuple[Optional[Position], str]] = []
        self.includes: List[str] = []  # real paths being parsed (include cycles)
        self.env_chain: List[str] = []  # environment variables being parsed (cycles)

    def error(self, pos, message):
        self.errors.append((pos, message))


def parse_text(text: str, filename: str, env: Mapping[str, str], base_dir: str,
               real_path: Optional[str] = None):
    """Parse ``text``: ``(ConfMap, errors)``; includes are read from ``base_dir``.

    ``real_path`` is the file's real path when it is one (to catch an include
    of itself).
    """
    load = _Load(env)
    if real_path:
        load.includes.append(real_path)
    root = _FileParser(load, text, filename, base_dir).document()
    return root, load.errors


def read_text(path: str) -> str:
    """The text of a config file (UTF-8; a leading byte order mark is dropped)."""
    with open(path, "rb") as handle:
        data = handle.read()
    text = data.decode("utf-8", "surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


class _FileParser:
    """Recursive descent over one text (a file, or an environment value)."""

    def __init__(self, load: _Load, text: str, filename: str, base_dir: str):
        self.load = load
        self.sc = Scanner(text, filename)
        self.base_dir = base_dir
        self.scopes: List[ConfMap] = []  # maps being built, for $NAME lookups
        self.missing = []  # (error index, name, pos, scopes): to say if defined later

    # -- documents ---------------------------------------------------------

    def document(self) -> ConfMap:
        """Parse a whole file into a new ConfMap."""
        root = ConfMap()
        self.scopes.append(root)
        try:
            self._top_entries(root)
        except ConfSyntaxError as exc:
            self.load.error(exc.pos, exc.message)
        self._explain_missing()
        return root

    def _explain_missing(self):
        """Say so when a missing variable is defined after its use (in scope)."""
        for index, name, pos, scopes in self.missing:
            for scope in reversed(scopes):
                defined = scope.position(name) or scope._failed.get(name)
                if defined is not None:
                    self.load.errors[index] = (pos, (
                        "variable '$%s' is used before it is defined (at %s): a variable must "
                        "be defined before it is used, so variables cannot refer to each "
                        "other in a cycle" % (name, defined)))
                    break

    def _top_entries(self, root: ConfMap):
        sc = self.sc
        opened = []  # positions of top-level "{" still open
        while True:
            sc.skip_blank()
            char = sc.peek()
            if not char:
                if opened:
                    raise ConfSyntaxError(opened[-1], "unterminated map: this '{' is never "
                                                      "closed")
                return
            if char == "{":
                opened.append(sc.position())
                sc.advance()
                continue
            if char == "}":
                if not opened:
                    sc.error("unexpected '}' (no map is open)")
                opened.pop()
                sc.advance()
                continue
            self._entry(root, in_map=False)
            self._top_value_end(opened)

    def _top_value_end(self, opened: list):
        """After a top-level entry: a new line, ``;``, ``,``, a comment, the end,
        or the ``}`` of an open top-level ``{``."""
        sc = self.sc
        sc.skip_spaces()
        char = sc.peek()
        if sc.at_comment():
            sc.skip_comment()
        elif char in ("\n", "\r", ";", ","):
            sc.advance()
        elif char == "}" and opened:
            opened.pop()
            sc.advance()
        elif char:
            sc.unexpected("a new line, ';' or ',' after the value")

    # -- entries -----------------------------------------------------------

    def _entry(self, target: ConfMap, in_map: bool):
        sc = self.sc
        char = sc.peek()
        if char in lexer.KEY_SEPARATORS:
            sc.error("expected a key before %r" % char)
        if in_map and char == "]":
            sc.error("unexpected ']' in a map")
        key, key_pos, quoted = sc.read_key()
        if not quoted and key.lower() == "include" and sc.peek().isspace():
            path, path_pos = sc.read_include_path()
            self._include(target, path, path_pos)
            return
        sc.skip_whitespace()
        separated = sc.peek() in lexer.KEY_SEPARATORS
        if separated:
            sc.advance()
            # a value may start on a later line in a map, not at the top level; "#"
            # or "//" where the value starts is text, not a comment (as nats-server)
            if in_map:
                sc.skip_whitespace()
            else:
                sc.skip_spaces()
        char = sc.peek()
        if not char or char in "\n\r;," or (in_map and char == "}"):
            sc.error("key %r has no value" % key)
        value, ok = self._value()
        if ok:
            target._set(key, value, key_pos)
        else:
            target._failed[key] = key_pos

    def _value(self):
        """Parse one value: ``(value, ok)``; errors in it are recorded."""
        char = self.sc.peek()
        if char == "[":
            return self._array(), True
        if char == "{":
            return self._map(), True
        token = self.sc.read_scalar()
        if token.kind == lexer.VARIABLE:
            return self._variable(token.value, token.pos)
        if token.kind == lexer.INVALID:
            self.load.error(token.pos, token.value)
            return None, False
        return token.value, True

    def _array(self) -> list:
        sc = self.sc
        opened = sc.position()
        unterminated = ConfSyntaxError(opened, "unterminated array: this '[' is never closed")
        sc.advance()  # "["
        items = []
        while True:
            sc.skip_blank()
            char = sc.peek()
            if not char:
                raise unterminated
            if char == "]":
                sc.advance()
                return items
            if char == ",":
                sc.error("unexpected ',' in an array (a value is missing)")
            value, ok = self._value()
            if ok:
                items.append(value)
            # between items: spaces, a comment, then "," or a new line, or "]"
            sc.skip_spaces()
            if sc.at_comment():
                sc.skip_comment()
            char = sc.peek()
            if char in (",", "\n", "\r"):
                sc.advance()
            elif char == "]":
                continue
            elif not char:
                raise unterminated
            else:
                sc.unexpected("',' or ']' after an array item")

    def _map(self) -> ConfMap:
        sc = self.sc
        opened = sc.position()
        unterminated = ConfSyntaxError(opened, "unterminated map: this '{' is never closed")
        sc.advance()  # "{"
        result = ConfMap()
        self.scopes.append(result)
        try:
            while True:
                sc.skip_blank()
                char = sc.peek()
                if not char:
                    raise unterminated
                if char == "}":
                    sc.advance()
                    return result
                self._entry(result, in_map=True)
                # between entries: spaces, a comment, then ";", "," or a new line, or "}"
                sc.skip_spaces()
                if sc.at_comment():
                    sc.skip_comment()
                char = sc.peek()
                if char in (";", ",", "\n", "\r"):
                    sc.advance()
                elif char == "}":
                    continue
                elif not char:
                    raise unterminated
                else:
                    sc.unexpected("a new line, ';', ',' or '}' after the value")
        finally:
            self.scopes.pop()

    # -- variables ---------------------------------------------------------

    def _variable(self, name: str, pos: Position):
        if name.startswith(BCRYPT_PREFIX):
            return "$" + name, True
        for scope in reversed(self.scopes):
            if name in scope:
                scope._used.add(name)
                return copy_value(scope[name]), True
            if name in scope._failed:
                return None, False  # its own error is already reported
        return self._environment(name, pos)

    def _environment(self, name: str, pos: Position):
        load = self.load
        raw = load.env.get(name)
        if raw is None:
            if not name:
                load.error(pos, "'$' must be followed by a variable name")
                return None, False
            hint = ""
            if name[:1] == "2" and name[2:3] == "$":
                hint = " (quote a bcrypt hash other than $2a$: \"$%s\")" % name
            load.error(pos, "variable '$%s' is not defined (in this file before this point, "
                            "nor in the environment)%s" % (name, hint))
            self.missing.append((len(load.errors) - 1, name, pos, list(self.scopes)))
            return None, False
        if name in load.env_chain:
            chain = " -> ".join("$" + n for n in load.env_chain[load.env_chain.index(name):])
            load.error(pos, "variable reference cycle through the environment: %s -> $%s"
                       % (chain, name))
            return None, False
        if raw.strip(" \t") == "":
            return "", True  # as nats-server: an empty value is an empty string
        load.env_chain.append(name)
        outer_errors = load.errors
        load.errors = []
        try:
            value, ok = _FileParser(load, raw, "$" + name, self.base_dir).standalone_value()
            inner = load.errors
        finally:
            load.errors = outer_errors
            load.env_chain.pop()
        if inner:
            first_pos, first = inner[0]
            if first.startswith("variable reference cycle"):
                load.error(pos, first)
            else:
                load.error(pos, "environment variable %s=%r is not a valid value: %s%s"
                           % (name, raw, "%s: " % (first_pos,) if first_pos else "", first))
            return None, False
        return value, ok

    def standalone_value(self):
        """Parse the whole text as one value (an environment variable's)."""
        sc = self.sc
        self.scopes.append(ConfMap())
        try:
            sc.skip_spaces()
            value, ok = self._value()
            sc.skip_spaces()
            if sc.at_comment():
                sc.skip_comment()
            sc.skip_blank()
            if not sc.at_end():
                sc.unexpected("the end of the value")
            return value, ok
        except ConfSyntaxError as exc:
            self.load.error(exc.pos, exc.message)
            return None, False

    # -- includes ----------------------------------------------------------

    def _include(self, target: ConfMap, path: str, pos: Position):
        load = self.load
        full = os.path.join(self.base_dir, path)
        real = os.path.realpath(full)
        if real in load.includes:
            load.error(pos, "include cycle: %r includes itself (through %s)"
                       % (path, " -> ".join(load.includes[load.includes.index(real):])))
            return
        try:
            text = read_text(full)
        except OSError as exc:
            load.error(pos, "cannot read include file %r: %s" % (path, exc.strerror or exc))
            return
        load.includes.append(real)
        try:
            included = _FileParser(load, text, full, os.path.dirname(full)).document()
        finally:
            load.includes.pop()
        for key, value in included.items():
            target._set(key, value, included.position(key), used=key in included._used)
        target._failed.update((k, v) for k, v in included._failed.items() if k not in target)
