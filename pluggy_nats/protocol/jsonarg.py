"""JSON arguments of control lines (CONNECT, INFO), decoded as nats-server's
``encoding/json`` decodes them, at a bounded cost.

* Bytes that are not UTF-8 become U+FFFD (Go replaces them; Python's
  ``json.loads(bytes)`` would refuse the whole line), and so do lone surrogate
  escapes (``"\\ud800"``), which Python would keep and later fail to encode.
* ``NaN``/``Infinity`` are not JSON (Python accepts them, Go does not).
* ``null`` decodes to an empty object (Go leaves the struct as it was);
  any other non-object is an error.
* Nesting is bounded by the control line (max_control_line bytes), and a
  nesting deep enough to exhaust Python's recursion limit is a ValueError like
  any other bad JSON, never a RecursionError.

:func:`check_fields` type-checks the fields a struct declares, as Go's decoder
does (a bool is not an int, ``1.0`` is not an int, keys match case-insensitively).
"""

import json

_INT64_MAX = (1 << 63) - 1


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


_decode = json.JSONDecoder(parse_constant=_no_constant).decode


def _clean_str(text):
    """``text`` with lone surrogates replaced by U+FFFD (pairs recombined)."""
    if text.isascii():
        return text
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def loads_object(raw):
    """The JSON object in ``raw`` (bytes) as a dict; ValueError if it is not one."""
    text = raw.decode("utf-8", "replace")
    try:
        value = _decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    if "\\u" in text:  # only escapes can make lone surrogates
        value = _clean(value)
    return value


def _clean(value):
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {_clean_str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# Field kinds of Go structs decoded from JSON.
BOOL, STRING, INT, STRINGS, PERMISSION = range(5)


def check_fields(obj, fields):
    """Type-check ``obj`` against ``fields`` (lower-case name -> kind) as Go's
    decoder would; return a dict with the known fields under their lower-case
    names (Go matches keys case-insensitively; the last one wins). ``null``
    leaves a field unset. Unknown fields are ignored. ValueError on a mismatch."""
    out = {}
    for key, value in obj.items():
        name = key if key in fields else key.lower()
        kind = fields.get(name)
        if kind is None or value is None:
            continue
        if not _kind_ok(kind, value):
            raise ValueError("field %r has the wrong type" % name[:32])
        out[name] = value
    return out


def _kind_ok(kind, value):
    if kind == BOOL:
        return value is True or value is False
    if kind == STRING:
        return isinstance(value, str)
    if kind == INT:
        return type(value) is int and -_INT64_MAX - 1 <= value <= _INT64_MAX
    if kind == STRINGS:
        return isinstance(value, list) and all(isinstance(v, str) or v is None for v in value)
    if kind == PERMISSION:  # nats-server's SubjectPermission {allow, deny}
        return isinstance(value, dict) and all(
            v is None or _kind_ok(STRINGS, v) for k, v in value.items()
            if k.lower() in ("allow", "deny"))
    return False


# nats-server's Info (server.go): what any peer's INFO is decoded into. A
# field of another JSON type is a decoding error there, so the connection closes.
INFO_FIELDS = {
    **dict.fromkeys((
        "server_id", "server_name", "version", "go", "git_commit", "host", "ip", "nonce",
        "client_ip", "cluster", "domain", "xkey", "route_account", "gateway", "gateway_url",
        "gateway_cmd_payload", "remote_account", "compression"), STRING),
    **dict.fromkeys(("proto", "port", "max_payload", "client_id", "route_pool_size",
                     "route_pool_idx", "gossip_mode", "gateway_cmd", "api_lvl"), INT),
    **dict.fromkeys((
        "headers", "auth_required", "tls_required", "tls_verify", "tls_available", "jetstream",
        "ldm", "cluster_dynamic", "lnoc", "lnocu", "info_on_connect", "connect_info",
        "route_acc_add_reqid", "gateway_nrp", "gateway_iom", "acc_is_sys"), BOOL),
    **dict.fromkeys(("connect_urls", "ws_connect_urls", "gateway_urls", "leafnode_urls"),
                    STRINGS),
    "import": PERMISSION,
    "export": PERMISSION,
}
