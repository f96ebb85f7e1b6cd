"""Link kinds as data: what each kind of link registers with the layer, and the
two tables that decide where interest and messages may go (docs/architecture.md,
"The link layer").

Every connection has an *origin class* (``conn.origin``): ``"client"`` for
clients and internal clients (local interest and local publishes), and one per
link role: ``"route"``, ``"gateway"``, ``"leaf_hub"`` (a leaf link on which
this server is the hub, the peer a spoke) and ``"leaf_spoke"`` (a leaf link to
our hub). nats-server's ``isHubLeafNode``/``isSpokeLeafNode`` are these two
leaf roles.

* **Propagation** (``interest_from``): which origin classes' interest a link is
  offered, i.e. what it advertises to its peer. A link never gets its own
  interest echoed back (the layer subtracts what the link itself holds).
* **Forwarding** (``messages_from``): which origin classes' messages may be
  delivered to a link holding matching interest (nats-server
  ``processMsgResults``). A message never goes back to the link it came in on.

Both tables are per link and default to the kind's registration; a kind whose
links play different roles (leaf: hub or spoke) sets them per link.
"""

from dataclasses import dataclass, field

CLIENT_ORIGIN = "client"
ROUTE_ORIGIN = "route"
GATEWAY_ORIGIN = "gateway"
LEAF_HUB_ORIGIN = "leaf_hub"
LEAF_SPOKE_ORIGIN = "leaf_spoke"

ORIGINS = (CLIENT_ORIGIN, ROUTE_ORIGIN, GATEWAY_ORIGIN, LEAF_HUB_ORIGIN, LEAF_SPOKE_ORIGIN)


class _AllOrigins(frozenset):
    """Every origin class, a third party's kinds' too (``origin in ALL_ORIGINS``
    is always true; iterating gives the five built-in classes)."""

    def __contains__(self, origin):
        return True


ALL_ORIGINS = _AllOrigins(ORIGINS)

# nats-server's rules, one row per target role: the origins whose interest a
# link of that role advertises to its peer (srv:route.go, gateway.go
# gatewayUpdateSubInterest, leafnode.go initLeafNodeSmapAndSendSubs/updateSmap).
PROPAGATION = {
    # a route learns local, leaf (as hub) interest; never route-learned (full mesh)
    ROUTE_ORIGIN: frozenset({CLIENT_ORIGIN, LEAF_HUB_ORIGIN}),
    # a gateway hears the whole cluster's interest (local, routed, leafs)
    GATEWAY_ORIGIN: frozenset({CLIENT_ORIGIN, ROUTE_ORIGIN, LEAF_HUB_ORIGIN, LEAF_SPOKE_ORIGIN}),
    # a hub sends a spoke all of the account's interest
    LEAF_HUB_ORIGIN: ALL_ORIGINS,
    # a spoke sends its hub only local interest and that of its own spokes
    LEAF_SPOKE_ORIGIN: frozenset({CLIENT_ORIGIN, LEAF_HUB_ORIGIN}),
}

# One row per target role: the origins whose messages it may be handed
# (srv:client.go processMsgResults). Clients take everything. Gateways take
# nothing here: they are sent to after local delivery, by their forwarder.
FORWARDING = {
    CLIENT_ORIGIN: ALL_ORIGINS,
    # never route to route (one hop); not from our hub (a spoke never
    # forwards its hub's messages to its routes)
    ROUTE_ORIGIN: frozenset({CLIENT_ORIGIN, GATEWAY_ORIGIN, LEAF_HUB_ORIGIN}),
    GATEWAY_ORIGIN: frozenset(),
    # a spoke gets what reaches its hub, from routes too
    LEAF_HUB_ORIGIN: ALL_ORIGINS,
    # our hub gets what our side publishes, not what came over our routes
    LEAF_SPOKE_ORIGIN: frozenset({CLIENT_ORIGIN, GATEWAY_ORIGIN, LEAF_HUB_ORIGIN,
                                  LEAF_SPOKE_ORIGIN}),
}

# Which origins' messages reach the gateway forwarder (srv:gateway.go
# sendMsgToGateways callers): only where a message enters the cluster.
GATEWAY_FORWARD_FROM = frozenset({CLIENT_ORIGIN, LEAF_HUB_ORIGIN, LEAF_SPOKE_ORIGIN})


def offered(origin, target):
    """Does a link of role ``target`` advertise interest of ``origin``?"""
    return origin in PROPAGATION.get(target, ())


def may_forward(origin, target):
    """May a message that came from ``origin`` be delivered to ``target``?"""
    return origin in FORWARDING.get(target, ())


@dataclass(frozen=True)
class Framing:
    """How a kind frames routed messages: ``<msg> [<account>] <subject> ...``
    (``account``: the account token follows the verb, unless a link is bound
    to one account) and ``<hmsg> ...`` for messages with headers. One table
    serves the single, batch and run paths in and out."""

    msg: bytes = b"RMSG"
    hmsg: bytes = b"HMSG"
    account: bool = True


@dataclass
class LinkKind:
    """A kind of link as the layer knows it (``server.links.register_kind``).

    ``name``: ``"route"``, ``"gateway"``, ``"leaf"`` (a third party picks its own).
    ``kind``: the connection kind constant (``pluggy_nats.connection.ROUTE`` ...)
    for /connz and logs. ``origin``: the origin class of its links (default:
    ``name``). ``ops``: the kind's own verbs ``{verb: (shape, method)}``; the
    layer adds INFO, CONNECT, PING, PONG, +OK, -ERR and the message verbs of
    ``framing``. ``interest_from``/``messages_from``: the propagation and
    forwarding rows (defaults: the tables above for ``origin``).
    ``forwarder(publisher, account, subject, reply, hdr, msg, result)``: a step
    after local delivery (returns True if it sent the message somewhere), for
    messages from ``forward_from`` (gateways).
    ``run_forwarder(publisher, account, items)``: optional, the same for the
    header-less messages of a client's bulk path
    (``((subject, reply, payload), result)`` in publish order).
    ``lane_forwarder(publisher, account, items, subjects, results)``:
    optional, ``run_forwarder`` for a run without replies, its columns
    given apart (no zip and unzip per message): the items, their subjects,
    their match results. Returns (messages, payload bytes) of ``items``
    where it counted them on the way, else None.
    ``ping_interval_max``: PING at least this often, traffic or not (gateways: 15 s).
    ``interest(account_name, subject)``: for a kind whose peers' interest is
    not in the index (a forwarder's), whether a message would cross; asked by
    ``LinkLayer.has_interest`` (a push consumer's deliver subject, Go
    ``hasDeliveryInterest``).
    """

    name: str
    kind: int
    origin: str = None
    ops: dict = field(default_factory=dict)
    framing: Framing = Framing()
    interest_from: frozenset = None
    messages_from: frozenset = None
    forwarder: object = None
    run_forwarder: object = None
    lane_forwarder: object = None
    forward_from: frozenset = GATEWAY_FORWARD_FROM
    ping_interval_max: float = None
    interest: object = None

    def __post_init__(self):
        if self.origin is None:
            self.origin = self.name
        if self.interest_from is None:
            self.interest_from = PROPAGATION.get(self.origin, frozenset({CLIENT_ORIGIN}))
        if self.messages_from is None:
            self.messages_from = FORWARDING.get(self.origin, frozenset({CLIENT_ORIGIN}))
        if not isinstance(self.interest_from, _AllOrigins):
            self.interest_from = frozenset(self.interest_from)
        if not isinstance(self.messages_from, _AllOrigins):
            self.messages_from = frozenset(self.messages_from)
