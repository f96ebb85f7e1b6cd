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


def explanation(gather_with, origin_part, account, subject, timeout):
    """Raises :class:`~.explain.BadInput` for input that cannot be explained."""
    explain.check_input(account, subject)
    first = origin_part(subject)
    if not first.get("known"):
        raise explain.BadInput("account: %r is not known to %s (the publishing server of "
                               "the explanation)" % (account, first["server"]["name"]))
    mapping = first.get("mapping")
    delivered = subject
    if mapping:  # explained for the destination most messages take
        delivered = max(mapping["destinations"], key=lambda d: d["weight"])["to"]
        mapping["explained"] = delivered
    gathering = gather.Gathering(gather.explain_asks(account, delivered),
                                 required=gather.EXPLAIN_REQUIRED)
    errors = gather_with(gathering, timeout) + gathering.errors
    parts = gather.explain_parts(gathering.answers, account, delivered)
    origin = first["server"]["id"]
    parts[origin] = first if delivered == subject else origin_part(delivered)
    out = explain.assemble(parts, origin, account, subject, mapping)
    gaps = view.missing(gathering.answers, gather.EXPLAIN_REQUIRED)
    out.update(partial=bool(gaps or errors),
               missing=[{"server_id": s, "endpoint": ep} for s, ep in gaps],
               errors=errors, elapsed_ms=gathering.elapsed_ms, timeout_ms=int(timeout * 1000))
    return out
