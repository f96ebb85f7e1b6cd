"""The two whole-system answers, for any transport: ``/topz?system=1`` and
``/explainz`` inside a server, ``pluggy-nats topology`` and ``explain`` from
the command line. ``gather_with(gathering, timeout)`` runs a
:class:`~.gather.Gathering` over ``$SYS`` and returns errors that make the
result partial; ``origin_part(subject)`` is the publishing server's own part
of an explanation (with the mapping the subject takes there).
"""

from . import explain, gather, view


def topology(gather_with, timeout):
    gathering = gather.Gathering()
    errors = gather_with(gathering, timeout)
    out = view.assemble(gathering.answers, errors + gathering.errors,
                        elapsed_ms=gathering.elapsed_ms)
    out["timeout_ms"] = int(timeout * 1000)
    return out


def _gather_parts(gather_with, account, subject, timeout):
    gathering = gather.Gathering(gather.explain_asks(account, subject),
                                 required=gather.EXPLAIN_REQUIRED)
    errors = gather_with(gathering, timeout) + gathering.errors
    return gather.explain_parts(gathering.answers, account, subject), errors, gathering


def _publisher(parts, name):
    """The part of the server called ``name`` (or with that id) that can
    publish: one of ours (a Go server's part is read from its monitoring)."""
    for sid, part in parts.items():
        if name in (sid, part["server"].get("name")) and part["server"].get(
                "impl") == "pluggy-nats":
            return part
    raise explain.BadInput("from: %r did not answer as a pluggy-nats server with the topology "
                           "plugin (explain publishes from one of those)" % name)


def explanation(gather_with, origin_part, account, subject, timeout, publisher=None):
    """Raises :class:`~.explain.BadInput` for input that cannot be explained.
    ``publisher``: the name (or id) of another server to publish from; its part
    comes from a first gathering instead of ``origin_part``."""
    explain.check_input(account, subject)
    gathered = None
    if publisher:
        gathered = _gather_parts(gather_with, account, subject, timeout)
        first = _publisher(gathered[0], publisher)
    else:
        first = origin_part(subject)
    if not first.get("known"):
        raise explain.BadInput("account: %r is not known to %s (the publishing server of "
                               "the explanation)" % (account, first["server"]["name"]))
    mapping = first.get("mapping")
    delivered = subject
    if mapping:  # explained for the destination most messages take
        delivered = max(mapping["destinations"], key=lambda d: d["weight"])["to"]
        mapping["explained"] = delivered
    if gathered is None or delivered != subject:
        gathered = _gather_parts(gather_with, account, delivered, timeout)
    parts, errors, gathering = gathered
    origin = first["server"]["id"]
    if delivered == subject:
        parts[origin] = first
    elif not publisher:
        parts[origin] = origin_part(delivered)
    _publisher(parts, origin)  # a mapped subject's second gathering reached it too
    out = explain.assemble(parts, origin, account, subject, mapping)
    gaps = view.missing(gathering.answers, gather.EXPLAIN_REQUIRED)
    silent = view.missing_leafs(gathering.answers)
    out.update(partial=bool(gaps or errors or silent),
               missing=[{"server_id": s, "endpoint": ep} for s, ep in gaps]
               + [{"server_name": n, "endpoint": "*"} for n in silent],
               errors=errors, elapsed_ms=gathering.elapsed_ms, timeout_ms=int(timeout * 1000))
    return out
