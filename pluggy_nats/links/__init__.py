"""The link layer: one mechanism for every connection that joins servers
(routes, gateways, leaf nodes, a third party's kind). docs/architecture.md,
"The link layer", is the map; in short:

* :mod:`.kinds`: a kind registers as data (:class:`LinkKind`: name, verbs,
  :class:`Framing` of routed messages, propagation and forwarding rows,
  optional forwarder); the propagation and forwarding tables live here.
* :mod:`.link`: :class:`Link`, the connection base: handshake driver,
  remote interest, advertisements, PING/PONG, one bulk path in and out.
* :mod:`.interest`: :class:`InterestLedger`, interest counted per origin.
* :mod:`.peers`: :class:`PeerTable`, peers by slot, and the duplicate rules.
* :mod:`.dial`: :class:`Solicitor` (dial, back off with jitter, reconnect),
  :func:`use_tls`, :func:`run_link`.
* :mod:`.layer`: :class:`LinkLayer`, ``server.links``: registered kinds and
  links, interest propagation, forwarders, listeners, stop and lame duck.

Names are imported lazily: the core's connection module uses :mod:`.kinds`
before :mod:`.link` (a Connection subclass) can be imported.
"""

_EXPORTS = {
    "LinkKind": "kinds", "Framing": "kinds", "PROPAGATION": "kinds", "FORWARDING": "kinds",
    "CLIENT_ORIGIN": "kinds", "ROUTE_ORIGIN": "kinds", "GATEWAY_ORIGIN": "kinds",
    "LEAF_HUB_ORIGIN": "kinds", "LEAF_SPOKE_ORIGIN": "kinds", "ALL_ORIGINS": "kinds",
    "offered": "kinds", "may_forward": "kinds",
    "Link": "link", "forwarding_targets": "link",
    "InterestLedger": "interest",
    "PeerTable": "peers", "Peer": "peers", "KEEP_SOLICITED_BY_SMALLER_ID": "peers",
    "KEEP_EXISTING": "peers", "REPLACE": "peers",
    "Solicitor": "dial", "use_tls": "dial", "run_link": "dial",
    "LinkLayer": "layer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib

    return getattr(importlib.import_module("." + module, __name__), name)
