"""Decoding API request JSON as Go's encoding/json does for the fields we know:
a wrong JSON type is an ``invalid JSON`` (10025) error with Go's wording, an
unknown enum string too; unknown keys are ignored (Go ignores them)."""

import json

from .errors import ApiError

_GO_KIND = {str: "string", bool: "bool", list: "array", dict: "object", type(None): "null"}


def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return _GO_KIND.get(type(value), "value")


def loads(payload):
    """Request body -> dict ({} for empty); 10025 for malformed JSON."""
    if payload is None:
        return {}
    if isinstance(payload, memoryview):
        payload = bytes(payload)
    text = payload.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except RecursionError:
        # nested past Python's recursion limit (Go's decoder allows 10,000
        # levels): never a traceback; unclosed, it is Go's end-of-input error
        opened = text.count(b"[" if isinstance(text, bytes) else "[") + \
            text.count(b"{" if isinstance(text, bytes) else "{")
        closed = text.count(b"]" if isinstance(text, bytes) else "]") + \
            text.count(b"}" if isinstance(text, bytes) else "}")
        raise ApiError(10025, err="unexpected end of JSON input" if opened > closed
                       else "exceeded max depth") from None
    except ValueError as exc:
        raise ApiError(10025, err="%s at offset %d" % (go_syntax_text(exc, text),
                                                       getattr(exc, "pos", 0) + 1)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(10025, err="json: cannot unmarshal %s into Go value of type struct"
                       % _kind(value))
    return value


_GO_SYNTAX = (
    ("Expecting property name enclosed in double quotes",
     "looking for beginning of object key string"),
    ("Expecting value", "looking for beginning of value"),
    ("Expecting ',' delimiter", "after object key:value pair"),
    ("Expecting ':' delimiter", "after object key"),
    ("Extra data", "after top-level value"),
)


def go_syntax_text(exc, text):
    """Python's JSONDecodeError in the words of Go's encoding/json."""
    pos = getattr(exc, "pos", 0)
    msg = getattr(exc, "msg", "")
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if pos >= len(text) or msg.startswith("Unterminated"):
        return "unexpected end of JSON input"
    for python, go in _GO_SYNTAX:
        if msg.startswith(python):
            return "invalid character %s %s" % (_go_char(text[pos]), go)
    return "invalid character %s" % _go_char(text[pos])


def _go_char(ch):
    return "'%s'" % ch if ch != "'" else "'\\''"


class Fields:
    """Typed access to one decoded object (``where`` names the Go struct)."""

    def __init__(self, obj, where):
        self.obj = obj if isinstance(obj, dict) else {}
        self.where = where

    def _bad(self, key, value, want):
        raise ApiError(10025, err="json: cannot unmarshal %s into Go struct field %s.%s of "
                       "type %s" % (_kind(value), self.where, key, want))

    def has(self, key):
        return self.obj.get(key) is not None

    def int(self, key, default=0):
        v = self.obj.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (
                isinstance(v, float) and not v.is_integer()):
            self._bad(key, v, "int64")
        return int(v)

    def bool(self, key, default=False):
        v = self.obj.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            self._bad(key, v, "bool")
        return v

    def str(self, key, default=""):
        v = self.obj.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            self._bad(key, v, "string")
        return v

    def strs(self, key):
        v = self.obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self._bad(key, v, "[]string")
        return list(v)

    def ints(self, key):
        v = self.obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in v):
            self._bad(key, v, "[]time.Duration")
        return list(v)

    def map(self, key):
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            self._bad(key, v, "struct")
        return v

    def strmap(self, key):
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            self._bad(key, v, "map[string]string")
        return dict(v)

    def enum(self, key, choices, default):
        """An enum string; Go's UnmarshalJSON rejects unknown text as invalid JSON."""
        v = self.obj.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            self._bad(key, v, "string")
        if v.lower() not in choices:
            # Go: fmt %q of the raw JSON text, quotes included
            raise ApiError(10025, err="can not unmarshal %s" % json.dumps(json.dumps(v)))
        return v.lower()


def dumps(obj):
    """Compact JSON bytes, as Go's encoder writes them."""
    return json.dumps(obj, separators=(",", ":")).encode()
