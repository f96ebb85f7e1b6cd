"""Subject filters of a leaf link, from deny rules and a user's permissions.

A link has three: what we never send (``out_denied``), what we never take
(``in_denied``) and the peer's ``LS+`` we refuse (``ls_denied``). This module
turns allow/deny lists (config, a user's permissions, a hub's INFO
``import``/``export``) into those callables.
"""

from operator import methodcaller

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

    def msg(subject):
        return not P.is_unchecked(subject) and not pub.publish_allowed(subject)

    def interest(subject):
        return not P.is_unchecked(subject) and not sub.subscribe_allowed(subject)

    # Every leaf link carries the JetStream denies ("$JS.API.>", "$KV.>"...):
    # a subject that starts with none of their literal prefixes passes
    # unchecked, and callers test whole lists of subjects at once (in C).
    msg.prefixes = deny_prefixes(allow, deny)
    return msg, interest


def deny_prefixes(allow, deny):
    """A tuple of byte prefixes one of which every denied subject starts
    with: each deny pattern's tokens before its first wildcard (``$JS.API.>``
    -> ``$JS.API.``; a literal pattern is its own prefix). ``(b"",)`` (every
    subject) when an allow list exists or a pattern starts with a wildcard."""
    if allow is not None:
        return (b"",)
    prefixes = set()
    for d in deny:
        d = d.encode() if isinstance(d, str) else d
        toks = d.split(b".")
        lit = []
        for tok in toks:
            if tok in (b"*", b">"):
                break
            lit.append(tok)
        if not lit:
            return (b"",)
        prefix = b".".join(lit)
        prefixes.add(prefix + b"." if len(lit) < len(toks) else prefix)
    return tuple(sorted(prefixes))


def may_deny(denied):
    """A C-level test over many subjects: ``any(map(may_deny(f), subjects))``
    is False only if filter ``f`` passes every one (None: nothing denied)."""
    if denied is None:
        return None
    return methodcaller("startswith", getattr(denied, "prefixes", (b"",)))


def _always(subjects):
    """Any subject at all (every subject starts with the empty prefix)."""
    for _ in subjects:
        return True
    return False


def may_deny_any(denied):
    """``may_deny`` for a whole run at once: ``f(subjects)`` is False only if
    filter ``denied`` passes every one of ``subjects`` (None: nothing denied).
    The subjects are joined once, each after a LF (no subject holds one), and
    each prefix searched as LF + prefix: a few C scans of the run instead of
    a ``startswith`` call per message (~400 instructions each). A subject
    holding a LF can only make it True, which sends the run to the exact
    filter."""
    if denied is None:
        return None
    prefixes = getattr(denied, "prefixes", (b"",))
    if b"" in prefixes:
        return _always  # every subject may be denied
    needles = tuple(b"\n" + p for p in prefixes)

    def any_may_deny(subjects):
        text = b"\n" + b"\n".join(subjects)
        for needle in needles:
            if needle in text:
                return True
        return False

    return any_may_deny


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
