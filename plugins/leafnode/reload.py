"""What a reload may change in ``leafnodes {}``, as nats-server decides it
(reload.go getLeafNodeOptionsChanges), sans-IO.

nats-server compares the whole block and allows only ``remotes``,
``compression`` and ``tls`` (added, removed or changed: new connections get
it, open ones keep theirs; adding or removing it changes the default auth
timeout, which is refused unless ``authorization { timeout }`` is set) to
change; ``authorization`` users are compared by
name, password and account (order does not matter). Remotes are matched by
their name (URLs, account, credentials or nkey): a remote that is gone is
removed (its link closed, never redialled), a new one is dialled, and one that
stayed may change only its ``tls`` (its next dial uses it; adding or
removing it is refused, as nats-server's TLSTimeout comparison does),
``compression`` and ``disabled``; anything else is refused.
"""

# Block keys that may change (the rest must be equal; authorization is
# compared by meaning, remotes one by one).
BLOCK_RELOADABLE = {"remotes", "compression", "tls", "authorization"}
# RemoteConfig attributes that may change for a remote that stayed.
REMOTE_RELOADABLE = {"tls", "compression", "disabled", "position"}


def remote_name(remote, redacted=False):
    """nats-server ``RemoteLeafOpts.name()``: ``urls=[...], account="A"`` plus
    the credentials file or nkey (``safeName`` redacts passwords and nkeys)."""
    urls = [_redact(u) for u in remote.urls] if redacted else list(remote.urls)
    name = "urls=[%s], account=\"%s\"" % (" ".join('"%s"' % u for u in urls),
                                         remote.account or "$G")
    if remote.credentials:
        name += ", credentials=\"%s\"" % remote.credentials
    elif remote.nkey:
        name += ", nkey=\"%s\"" % ("[REDACTED]" if redacted else remote.nkey)
    return name


def _redact(url):
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    if ":" not in userinfo:
        return url
    return "%s://%s:xxxxx@%s" % (scheme, userinfo.split(":", 1)[0], host)


def auth_timeout(cfg):
    """nats-server's leafnode ``AuthTimeout`` once defaults are applied: the
    configured one, else the TLS timeout plus a second with TLS, else 2 s
    (opts.go getDefaultAuthTimeout). Adding or removing ``tls`` without an
    explicit timeout changes it, and nats-server refuses that reload."""
    if cfg.auth.timeout:
        return cfg.auth.timeout
    if cfg.tls is not None:
        return cfg.tls.timeout + 1.0
    return 2.0


def _tls_timeout(remote):
    return remote.tls.timeout if remote.tls is not None else 0


def _users(auth):
    return {u.user: (u.password, u.account) for u in auth.users}


def plan(old_block, new_block, running, fresh):
    """``(refused, added, removed, kept)``: the reasons a reload is refused
    (empty if it may go on), the fresh remotes to dial, the running remotes
    to drop, and ``(running, fresh)`` pairs of remotes that stayed."""
    refused = []
    old_keys = {k.lower(): v for k, v in old_block.items()}
    new_keys = {k.lower(): v for k, v in new_block.items()}
    changed = sorted(k for k in set(old_keys) | set(new_keys)
                     if k not in BLOCK_RELOADABLE and old_keys.get(k) != new_keys.get(k))
    if changed:
        refused.append("leafnodes %s changed: needs a restart" % ", ".join(changed))
    a, b = running.auth, fresh.auth
    if _users(a) != _users(b) or len(a.users) != len(b.users):
        refused.append('config reload not supported for LeafNode: field "Users"')
    elif (a.user, a.password, a.nkey, a.account) != (b.user, b.password, b.nkey, b.account):
        refused.append("leafnodes authorization changed: needs a restart")
    if auth_timeout(running) != auth_timeout(fresh):
        refused.append('config reload not supported for LeafNode: field "AuthTimeout": '
                       "old=%g, new=%g" % (auth_timeout(running), auth_timeout(fresh)))
    by_name = {remote_name(r): r for r in running.remotes}
    added, kept = [], []
    for remote in fresh.remotes:
        old = by_name.pop(remote_name(remote), None)
        if old is None:
            added.append(remote)
            continue
        for attr in sorted(vars(old)):
            if attr not in REMOTE_RELOADABLE and getattr(old, attr) != getattr(remote, attr):
                refused.append("config reload not supported for LeafNode: remote %s: "
                               "field %r" % (remote_name(remote, redacted=True), attr))
        if (old.tls is None) != (remote.tls is None):
            # nats-server compares the remote's TLSTimeout, 0 without tls: so
            # a remote's tls may change, but not come or go
            refused.append('config reload not supported for LeafNode: remote %s: field '
                           '"TLSTimeout": old=%g, new=%g' % (
                               remote_name(remote, redacted=True), _tls_timeout(old),
                               _tls_timeout(remote)))
        kept.append((old, remote))
    return refused, added, list(by_name.values()), kept
