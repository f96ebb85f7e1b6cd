"""The character-level scanner of the nats-server configuration format.

The format is context-sensitive (what ends a key is not what ends a value), so
the parser drives a :class:`Scanner` over the text and asks it for one piece at
a time: a key, an include path, or a scalar value. Scalars are classified as
nats-server's ``conf/lex.go`` classifies them:

* ``'raw'`` and ``"escaped"`` strings (``\\t \\n \\r \\" \\\\ \\xXX``, and also
  ``\\uXXXX`` / ``\\UXXXXXXXX``, which nats-server does not accept), both may
  span lines; a block string ``( ... )`` ends at a ``)`` alone at the start of a
  line and keeps the text between, newline before the ``)`` included;
* unquoted text, up to a space, tab, newline, ``;``, ``,``, ``]`` or ``}``:
  ``true|yes|on`` / ``false|no|off`` (any case) are booleans, ``$NAME`` is a
  variable reference, text starting with a digit or ``-`` is a number where it
  is one (``42``, ``-1``, ``1.5``, ``64MB``, ``2006-01-02T15:04:05Z``), a string
  where nats-server makes it one (``127.0.0.1:4222``, ``10s``, ``4222abc``) and
  an error where nats-server rejects it (``1.5s``, ``12-3``); the rest is a
  string (``nats://host:4222``, ``foo#bar``), with the escapes above.

Errors raise :class:`ConfSyntaxError` (structure is lost: the parser stops that
file) or come back as an ``INVALID`` token (a bad value in a sound structure:
the parser records it and goes on).
"""

import bisect
import datetime as _dt
import re
from typing import NamedTuple

from .model import Position
from .values import INT64_MAX, INT64_MIN, SIZE_SUFFIXES

# token kinds
STRING = "string"
INT = "int"
FLOAT = "float"
BOOL = "bool"
DATETIME = "datetime"
VARIABLE = "variable"
INVALID = "invalid"  # value is the error message

SPACES = " \t"
NEWLINES = "\n\r"
KEY_SEPARATORS = ":="
# what ends an unquoted value
VALUE_END = frozenset(" \t\n\r;,]}")
BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}

_INT_RE = re.compile(r"-?\d+\Z")
_SUFFIXED_RE = re.compile(r"(-?\d+)([kmgtpeKMGTPE][bBiI]*)")
_FLOAT_RE = re.compile(r"-?\d+\.\d+\Z")
_IP_RE = re.compile(r"-?\d+\.\d+\.[\d.:-]*\Z")
_BLOCK_END_RE = re.compile(r"\n\)(?=\r?\n|\Z)")  # ")" alone at the start of a line
_DATETIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


class ConfSyntaxError(Exception):
    """A syntax error at ``pos``: the rest of that file cannot be read."""

    def __init__(self, pos: Position, message: str):
        super().__init__("%s: %s" % (pos, message))
        self.pos = pos
        self.message = message


class Token(NamedTuple):
    """A scalar value: ``kind`` (one of the kinds above), ``value``, ``pos``."""

    kind: str
    value: object
    pos: Position


def _show(char: str) -> str:
    """A character for an error message."""
    if not char:
        return "end of file"
    if char == "\n":
        return "new line"
    return repr(char)


class Scanner:
    """A cursor over one text, with positions and the format's lexical rules."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.i = 0
        self.n = len(text)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    # -- cursor ------------------------------------------------------------

    def position(self, index=None) -> Position:
        """The :class:`Position` of ``index`` (default: the cursor)."""
        index = self.i if index is None else index
        line = bisect.bisect_right(self._line_starts, index)
        return Position(self.filename, line, index - self._line_starts[line - 1] + 1)

    def peek(self, offset: int = 0) -> str:
        """The character ``offset`` ahead of the cursor, ``""`` at end of text."""
        j = self.i + offset
        return self.text[j] if j < self.n else ""

    def at_end(self) -> bool:
        return self.i >= self.n

    def advance(self, count: int = 1):
        self.i = min(self.i + count, self.n)

    def error(self, message: str, index=None):
        """Raise a :class:`ConfSyntaxError` at ``index`` (default: the cursor)."""
        raise ConfSyntaxError(self.position(index), message)

    def unexpected(self, expected: str):
        """Raise "expected X, got <char>" at the cursor."""
        self.error("expected %s, got %s" % (expected, _show(self.peek())))

    # -- blanks and comments -------------------------------------------------

    def skip_spaces(self):
        """Skip spaces and tabs (not new lines)."""
        while self.i < self.n and self.text[self.i] in SPACES:
            self.i += 1

    def skip_whitespace(self):
        """Skip any white space, new lines included."""
        while self.i < self.n and self.text[self.i].isspace():
            self.i += 1

    def at_comment(self) -> bool:
        """True at ``#`` or ``//``."""
        return self.peek() == "#" or (self.peek() == "/" and self.peek(1) == "/")

    def skip_comment(self):
        """Skip a comment up to (not including) the end of its line."""
        while self.i < self.n and self.text[self.i] not in NEWLINES:
            self.i += 1

    def skip_blank(self):
        """Skip white space, new lines and comments."""
        while True:
            self.skip_whitespace()
            if not self.at_comment():
                return
            self.skip_comment()

    # -- keys and include paths --------------------------------------------

    def read_key(self):
        """Read a key: ``(text, Position, quoted)``.

        An unquoted key runs up to white space, ``:``, ``=`` or the end of the
        text; a quoted one (``"..."`` or ``'...'``) is taken as written.
        """
        start = self.i
        pos = self.position()
        quote = self.peek()
        if quote in ("'", '"'):
            end = self.text.find(quote, start + 1)
            if end < 0:
                self.error("unterminated quoted key (no closing %s)" % quote, start)
            self.i = end + 1
            return self.text[start + 1:end], pos, True
        while self.i < self.n:
            char = self.text[self.i]
            if char.isspace() or char in KEY_SEPARATORS:
                break
            self.i += 1
        return self.text[start:self.i], pos, False

    def read_include_path(self):
        """Read the path after ``include``: ``(path, Position)``.

        Quoted (``"..."``, ``'...'``, taken as written) or unquoted (up to white
        space, ``;``, ``}`` or the end of the line).
        """
        self.skip_spaces()
        start = self.i
        pos = self.position()
        char = self.peek()
        if char in ("'", '"'):
            end = self.text.find(char, start + 1)
            if end < 0:
                self.error("unterminated include path (no closing %s)" % char, start)
            self.i = end + 1
            return self.text[start + 1:end], pos
        if not char or char in NEWLINES:
            self.error("expected a file name after 'include'")
        if char in "[{(-\\" or char.isdigit():
            self.error("expected a file name after 'include', got %s (quote it)" % _show(char))
        while self.i < self.n and self.text[self.i] not in " \t\n\r;}'":
            self.i += 1
        return self.text[start:self.i], pos

    # -- scalar values -----------------------------------------------------

    def read_scalar(self) -> Token:
        """Read a value that is not an array or a map."""
        char = self.peek()
        if char == "'":
            return self._single_quoted()
        if char == '"':
            return self._double_quoted()
        if char == "(":
            return self._block()
        if not char or char in VALUE_END:
            self.error("expected a value, got %s" % _show(char))
        return self._unquoted()

    def _single_quoted(self) -> Token:
        start = self.i
        end = self.text.find("'", start + 1)
        if end < 0:
            self.error("unterminated string: no closing ' for the one here", start)
        self.i = end + 1
        return Token(STRING, self.text[start + 1:end], self.position(start))

    def _double_quoted(self) -> Token:
        start = self.i
        self.i += 1
        parts = []
        chunk = self.i
        while True:
            if self.i >= self.n:
                self.error('unterminated string: no closing " for the one here', start)
            char = self.text[self.i]
            if char == '"':
                parts.append(self.text[chunk:self.i].encode("utf-8", "surrogatepass"))
                self.i += 1
                break
            if char == "\\":
                parts.append(self.text[chunk:self.i].encode("utf-8", "surrogatepass"))
                parts.append(self._escape(self.i, self.n))
                chunk = self.i
                continue
            self.i += 1
        text = b"".join(parts).decode("utf-8", "replace")
        return Token(STRING, text, self.position(start))

    def _escape(self, index: int, limit: int) -> bytes:
        """Decode the escape at ``index`` (a backslash) and move past it."""
        code = self.text[index + 1:index + 2] if index + 1 < limit else ""
        simple = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}
        if code in simple:
            self.i = index + 2
            return simple[code].encode()
        widths = {"x": 2, "u": 4, "U": 8}
        if code in widths:
            width = widths[code]
            digits = self.text[index + 2:min(index + 2 + width, limit)]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                self.error("invalid escape: \\%s needs %d hexadecimal digits" % (code, width),
                           index)
            self.i = index + 2 + width
            number = int(digits, 16)
            if code == "x":
                return bytes([number])
            if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
                self.error("invalid escape: U+%X is not a valid code point" % number, index)
            return chr(number).encode("utf-8")
        self.error("invalid escape %s: use \\t \\n \\r \\\" \\\\ \\xXX \\uXXXX or \\UXXXXXXXX"
                   % ("\\" + code if code else "at end of text"), index)

    def _block(self) -> Token:
        """A block string: ``(`` ... a line holding only ``)``."""
        start = self.i
        match = _BLOCK_END_RE.search(self.text, start + 1)
        if not match:
            self.error("unterminated block string: end it with ')' alone at the start of a "
                       "line", start)
        self.i = match.end()
        return Token(STRING, self.text[start + 1:match.start() + 1], self.position(start))

    def _unquoted(self) -> Token:
        start = self.i
        pos = self.position(start)
        escaped = False
        quote_end = False
        while self.i < self.n:
            char = self.text[self.i]
            if char in VALUE_END:
                break
            if char == "'":  # as nats-server: ends the text, and is dropped
                quote_end = True
                break
            if char == "\\":
                escaped = True
                self.i += 1
            self.i += 1
        self.i = min(self.i, self.n)
        raw = self.text[start:self.i]
        if quote_end:
            self.i += 1
            if escaped:
                return Token(STRING, self._unescape(start, start + len(raw)), pos)
            return Token(STRING, raw, pos)
        first = raw[0]
        if first == "-" or first.isdigit():
            token = self._number(raw, pos)
            if token is not None:
                return token
        elif first == ".":
            return Token(INVALID, "invalid value %r: a number must start with a digit" % raw, pos)
        if escaped:
            return Token(STRING, self._unescape(start, self.i), pos)
        lower = raw.lower()
        if lower in BOOLEANS:
            return Token(BOOL, BOOLEANS[lower], pos)
        if first == "$":
            return Token(VARIABLE, raw[1:], pos)
        return Token(STRING, raw, pos)

    def _unescape(self, start: int, end: int) -> str:
        """The text between ``start`` and ``end`` with its escapes decoded."""
        saved = self.i
        parts = []
        self.i = start
        chunk = start
        while self.i < end:
            if self.text[self.i] == "\\":
                parts.append(self.text[chunk:self.i].encode("utf-8", "surrogatepass"))
                parts.append(self._escape(self.i, end))
                chunk = self.i
            else:
                self.i += 1
        parts.append(self.text[chunk:end].encode("utf-8", "surrogatepass"))
        self.i = saved
        return b"".join(parts).decode("utf-8", "replace")

    def _number(self, raw: str, pos: Position):
        """Classify unquoted text that starts with a digit or ``-``.

        Returns a Token, or ``None`` when nats-server reads the text as a plain
        string (a digit followed by text that is not a number: ``10s``).
        """
        if _INT_RE.match(raw):
            return self._integer(raw, int(raw), 1, pos)
        match = _SUFFIXED_RE.match(raw)
        if match:
            rest = raw[match.end():]
            if not rest:
                multiplier = SIZE_SUFFIXES.get(match.group(2).lower())
                if multiplier is None:
                    return Token(INVALID, "invalid integer suffix %r in %r (use k, kb, ki, kib, "
                                 "m, mb, ... e, eb)" % (match.group(2), raw), pos)
                return self._integer(raw, int(match.group(1)), multiplier, pos)
            return None  # "1kx", "500ms", "1k5": a string
        if _FLOAT_RE.match(raw):
            value = float(raw)
            if value in (float("inf"), float("-inf")):
                return Token(INVALID, "float %r is out of range" % raw, pos)
            return Token(FLOAT, value, pos)
        if _IP_RE.match(raw):
            return Token(STRING, raw, pos)
        digits = re.match(r"-?\d*", raw).group(0)
        after = raw[len(digits):len(digits) + 1]
        if digits in ("", "-"):
            return Token(INVALID, "invalid value %r: a digit must follow '-'" % raw, pos)
        if after == ".":
            hint = " (quote durations: \"%s\")" % raw if re.match(r"-?\d+\.\d+[a-z]", raw) else ""
            return Token(INVALID, "invalid number %r%s" % (raw, hint), pos)
        if after == "-" and not raw.startswith("-"):
            if len(digits) == 4 and _DATETIME_RE.match(raw):
                try:
                    value = _dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ")
                except ValueError:
                    return Token(INVALID, "invalid date %r" % raw, pos)
                return Token(DATETIME, value.replace(tzinfo=_dt.timezone.utc), pos)
            return Token(INVALID, "invalid date %r: dates are written in full Zulu form, "
                         "2006-01-02T15:04:05Z (quote other text)" % raw, pos)
        if raw.startswith("-"):
            return Token(INVALID, "invalid number %r (quote text that starts with '-')" % raw,
                         pos)
        return None  # "10s", "4222abc": a string

    @staticmethod
    def _integer(raw: str, number: int, multiplier: int, pos: Position) -> Token:
        value = number * multiplier
        if not INT64_MIN <= number <= INT64_MAX or not INT64_MIN <= value <= INT64_MAX:
            return Token(INVALID, "integer %r is out of range (64 bits)" % raw, pos)
        return Token(INT, value, pos)
