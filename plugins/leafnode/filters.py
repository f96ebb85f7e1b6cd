"""Subject filters of a leaf link, from deny rules and a user's permissions.

A link has three: what we never send (``out_denied``), what we never take
(``in_denied``) and the peer's ``LS+`` we refuse (``ls_denied``). This module
turns allow/deny lists (config, a user's permissions, a hub's INFO
``import``/``export``) into those callables.
"""

from pluggy_nats.permissions import PermissionSpec, SubjectPermission
from pluggy_nats.subjects import is_literal

from . import protocol as P


def subject_filters(allow=None, deny=()):
    """(message filter, interest filter) for an allow/deny pair of subject
    lists: ``msg(subject)`` is True when a message on that literal subject is
    refused, ``interest(subject)`` when a subscription (wildcards allowed) is.
    (None, None) when nothing is restricted. ``$LDS.``, ``$GR.``, ``_GR_.``
    always pass."""
    deny = [d for d in deny if d]
    if allow is None and not deny:
        return None, None
    rule = SubjectPermission(allow=list(allow) if allow is not None else None,
                             deny=deny or None)
    pub = PermissionSpec(publish=rule).compile()
    sub = PermissionSpec(subscribe=rule).compile()

    # Deny-only lists whose patterns all start with a literal character (the
    # JetStream denies: "$JS.API.>", "$KV.>"...): a subject starting with any
    # other byte passes without a lookup (every link has those denies).
    firsts = None
    if allow is None and all(d[:1] not in ("", "*", ">") for d in deny):
        firsts = frozenset(d.encode()[:1] if isinstance(d, str) else d[:1] for d in deny)

    def msg(subject):
        if firsts is not None and subject[:1] not in firsts:
            return False
        return not P.is_unchecked(subject) and not pub.publish_allowed(subject)

    def interest(subject):
        return not P.is_unchecked(subject) and not sub.subscribe_allowed(subject)

    return msg, interest


def literal_only(denied):
    """The LS+ check: a literal subject we may not send (wildcard interest is
    kept, its denied messages are filtered when sent)."""
    if denied is None:
        return None
    return lambda subject: is_literal(subject) and denied(subject)


def user_lists(perms):
    """(publish, subscribe) SubjectPermissions of a connection's permissions
    (``Allow.permissions``), unrestricted ones when it has none."""
    spec = getattr(getattr(perms, "compiled", None), "spec", None)
    publish = getattr(spec, "publish", None) or SubjectPermission()
    subscribe = getattr(spec, "subscribe", None) or SubjectPermission()
    return publish, subscribe


def perm_dict(rule):
    """A SubjectPermission as INFO ``import``/``export`` carry it (None: no rule)."""
    out = {k: v for k, v in (("allow", rule.allow), ("deny", rule.deny)) if v is not None}
    return out or None


def info_lists(block):
    """(allow or None, deny list) of an INFO ``import``/``export`` block."""
    if not isinstance(block, dict):
        return None, []

    def strings(value):
        if isinstance(value, str):
            return [value]
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None

    allow = strings(block.get("allow")) if "allow" in block else None
    return allow, strings(block.get("deny")) or []
