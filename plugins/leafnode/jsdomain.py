"""JetStream domains on a leaf link: the deny rules nats-server adds when a
leaf connection comes up (leafnode.go ``addLeafNodeConnection``, pr#2693;
JETSTREAM-CLUSTER.md section 6).

Plain ``$JS.API`` always means the JetStream of one's own side: for an
ordinary account the link denies ``$JS.API.>``, ``$KV.>`` and ``$OBJ.>`` in
both directions, whatever the domains, and a JetStream elsewhere is reached
by its domain (``$JS.<domain>.API.>``, which that side answers). For the
system account the denies add ``$JSC.>`` and ``$NRG.>`` unless both sides
share one domain (then JetStream is *extended* over the link: the
jetstream plugin's cluster/extend.py, told by its ``nats_link_up`` hook).
When the domains differ (or this side has neither JetStream nor a
domain), requests for our own domain never leave through the link (a
guard against a hub and a leaf with the same name).

We read our side's JetStream from the server's INFO fields (``jetstream``,
``domain``), which the jetstream plugin sets, so leafnode imports no
JetStream code.
"""

DENY_CLIENT_JS = ("$JS.API.>", "$KV.>", "$OBJ.>")
DENY_ALL_JS = ("$JSC.>", "$NRG.>") + DENY_CLIENT_JS


def local_jetstream(server):
    """(JetStream on, our domain or "")."""
    return bool(server.extra_info.get("jetstream")), server.extra_info.get("domain") or ""


def link_denies(server, account, remote_domain, log):
    """``(deny both ways, deny outgoing only)`` subject lists for a leaf link
    of ``account`` whose peer named ``remote_domain``, logged as Go does."""
    js_on, domain = local_jetstream(server)
    remote_domain = remote_domain if isinstance(remote_domain, str) else ""
    system = server.accounts.system_account
    both = ()
    block_outgoing = False
    if domain != remote_domain or (not js_on and not domain) or system is None:
        if account is system:
            log.info("leafnode_jetstream_not_extended", reason="domains differ")
            both = DENY_ALL_JS
        else:
            log.info("leafnode_jetstream_domains", local=domain, remote=remote_domain,
                     message='JetStream using domains: local "%s", remote "%s"'
                     % (domain, remote_domain))
            both = DENY_CLIENT_JS
        block_outgoing = True
    elif account is not system:
        # Same domain: still denied, the system account carries the API then.
        both = DENY_CLIENT_JS
    out = ()
    if domain and js_on and block_outgoing:
        out = ("$JS.%s.API.>" % domain,)
    return list(both), list(out)
