"""The configuration digest that ``nats-server -t`` prints.

``nats-server -t -c FILE`` says ``configuration file FILE is valid
(sha256:...)``: the SHA-256 of the parsed map encoded by Go's ``encoding/json``
(keys sorted, compact, HTML-safe escapes, a final new line). :func:`digest`
computes the same from a :class:`ConfMap`, so equal digests mean both parsers
read the same values. (nats-server's source drops used variables first, but
v2.15.1's digests show them kept, so they are kept here too.)
"""

import datetime as _dt
import decimal
import hashlib

from .model import ConfMap

_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\b": "\\b", "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char < " ":
            out.append("\\u%04x" % ord(char))
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _go_float(value: float) -> str:
    """Go's encoding/json float64: shortest digits, 'f' form in [1e-6, 1e21)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("unsupported float %r" % value)
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        text = format(decimal.Decimal(repr(value)), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    text = repr(value)  # shortest digits with an exponent: "1e+21", "1e-07"
    if text[-4:-2] == "e-" and text[-2] == "0":
        text = text[:-2] + text[-1]  # Go writes e-07 as e-7
    return text


def go_json(value) -> str:
    """``value`` encoded as Go's ``json.Encoder`` does (without the new line)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0])
        return "{%s}" % ",".join("%s:%s" % (_go_string(k), go_json(v)) for k, v in items)
    if isinstance(value, list):
        return "[%s]" % ",".join(go_json(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, _dt.datetime):
        return '"%s"' % value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None:
        return "null"
    raise TypeError("cannot encode %r" % (value,))


def digest(conf: ConfMap) -> str:
    """``"sha256:<hex>"`` as ``nats-server -t`` prints it for the same file."""
    return "sha256:" + hashlib.sha256((go_json(conf) + "\n").encode("utf-8")).hexdigest()
