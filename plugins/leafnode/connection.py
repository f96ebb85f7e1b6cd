"""One leaf node link: the leaf verbs and handshake on the shared link layer.

Roles: the side that dials is the *spoke* and the side that accepts the *hub*,
unless the dialler's remote says ``hub: true`` (CONNECT ``is_hub``), which swaps
them. The role is the link's origin class (``leaf_hub`` when we are the hub,
``leaf_spoke`` when we are the spoke): the layer's propagation and forwarding
tables then decide what interest the link is offered and which messages it
may be handed (docs/architecture.md, "Leaf nodes").

Handshake (nats-server 2.15.1 on the wire, see :mod:`.protocol`):

* accepting: INFO -> (CONNECT) -> auth, checks, bind account -> second INFO
  (``connect_info``) -> link up (our LS+ follow) -> PING;
* dialling: (INFO) -> CONNECT -> (second INFO) -> link up -> our LS+.

There is no account on the wire: the link is bound to one local account and
everything it carries belongs to it (``Framing(account=False)``).
"""

from operator import itemgetter

from pluggy_nats.connection import LEAF, ClosedReason
from pluggy_nats.links import (
    LEAF_HUB_ORIGIN,
    LEAF_SPOKE_ORIGIN,
    PROPAGATION,
    Framing,
    Link,
    LinkKind,
)
from pluggy_nats.protocol import encode
from pluggy_nats.protocol.parser import LINE
from pluggy_nats.subjects import is_valid_queue, is_valid_subject

from . import protocol as P
from .filters import may_deny, may_deny_any

_first = itemgetter(0)

# Seconds a dialler waits for the hub's second INFO after its CONNECT.
_ANSWER_WAIT = 5.0
# Interest a hub does not pass to an isolated link (isolate_leafnode_interest).
_LEAF_ORIGINS = frozenset({LEAF_HUB_ORIGIN, LEAF_SPOKE_ORIGIN})


class LeafConnection(Link):
    solicitor_sends_info = False  # a leaf answers INFO with CONNECT only
    queue_fallback = True  # a leaf's queue member serves a client's message last

    def __init__(self, server, sock, addr, manager, solicited=False, remote=None, url=None):
        super().__init__(server, sock, addr, manager, solicited, url)
        self.remote = remote  # the RemoteConfig we dialled for (solicited links)
        self.we_are_hub = True
        self.isolated = False
        self.take_role(hub=not solicited or (remote is not None and remote.hub))
        self.remote_account = ""  # the account the peer bound the link to
        self.remote_cluster = ""
        self.first_info = None  # the INFO we sent (hub) or got (spoke)
        self.client_type = "LEAFNODE"  # what user JWTs' allowed_connection_types see
        self.nonce = None
        self.headers = True  # the peer takes HMSG (its CONNECT or INFO says so)
        self.retry_after = None  # seconds the dialler waits after the peer's -ERR
        # Filters from deny rules and permissions (None: nothing denied): the
        # messages we never send the peer, and those we never take from it.
        self.out_denied = None
        self.in_denied = None
        # C-level prefilters of a list of subjects (filters.may_deny), set
        # with the filters: True for a subject the filter may refuse.
        self.out_may_deny = self.in_may_deny = None
        self.out_may_deny_any = self.in_may_deny_any = None  # the same for a run's subjects
        self.ls_denied = None  # the peer's LS+ we refuse (hub) or ignore (spoke)
        self.perm_info = None  # the user's permissions as our second INFO names them

    def take_role(self, hub, isolated=False):
        """Make this link the hub's end (``hub``) or the spoke's: the layer's
        rows for ``leaf_hub``/``leaf_spoke``, without the leaf origins in the
        propagation row when ``isolated``. Before any interest flows."""
        self.we_are_hub = hub
        self.isolated = isolated
        origin = LEAF_HUB_ORIGIN if hub else LEAF_SPOKE_ORIGIN
        self.set_role(origin, interest_from=PROPAGATION[origin] - _LEAF_ORIGINS
                      if isolated else None)

    def filters_set(self):
        """The manager set ``out_denied``/``in_denied``: derive their prefilters."""
        self.out_may_deny = may_deny(self.out_denied)
        self.in_may_deny = may_deny(self.in_denied)
        self.out_may_deny_any = may_deny_any(self.out_denied)
        self.in_may_deny_any = may_deny_any(self.in_denied)

    @property
    def is_spoke(self):
        """This side is the spoke (``is_spoke`` in /leafz)."""
        return not self.we_are_hub

    # -- handshake ------------------------------------------------------------

    def on_start(self):
        if not self.solicited:
            Link.on_start(self)  # the hub's INFO (in plaintext, TLS follows)
        elif self.tls_config is not None and not self.tls_first:
            # The hub's INFO comes in plaintext before the TLS handshake; it is
            # processed (and our CONNECT sent) once TLS is up.
            self._plain_info = self._read_plain_info()

    def _read_plain_info(self):
        timeout = self.remote.first_info_timeout if self.remote is not None else 1.0
        data = b""
        self.sock.settimeout(max(timeout, 0.5) + 1.0)
        try:
            while b"\r\n" not in data and len(data) < self.server.options.max_control_line:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        finally:
            self.sock.settimeout(None)
        return data

    def start_tls(self):
        ok = Link.start_tls(self)
        pending = getattr(self, "_plain_info", None)
        if ok and pending:
            self._plain_info = None
            self.parser.feed(pending)
            self.server.flush_touched()
        return ok

    def info_dict(self):
        self.first_info = self.manager.hub_info(self)
        return self.first_info

    def op_info(self, rest):
        # Not the layer's driver: the CONNECT is built from the hub's INFO (its
        # nonce for the signature, a client_id to check), and the link
        # registers on the second INFO (connect_info), not the first.
        info = self._json(rest)
        if info is None:
            return
        if self.registered:
            self.manager.info_update(self, info)
            if not self.closed:
                self.server.hook.nats_link_info_received(link=self, info=info)
            return
        if not self.solicited:
            return  # nothing to learn from a leaf's INFO before its CONNECT
        if self.first_info is None:
            if not info.get("client_id"):
                # nats-server's own check: this is a client port, not a leafnode port.
                self.log.error("attempted to connect to wrong port (client port?)")
                self.close(ClosedReason.WRONG_PORT)
                return
            self.first_info = info
            if self.manager.send_connect(self, info) and not info.get("info_on_connect"):
                self.manager.register(self, info)  # an old hub: no second INFO comes
            return
        if info.get("connect_info"):
            self.manager.register(self, info)

    def op_connect(self, rest):
        if self.solicited or self.connect_received:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        connect = self._json(rest)
        if connect is None:
            return
        self.connect_received = True
        self.manager.accept_connect(self, connect)

    def _unauthenticated(self):
        """A dialling leaf sent something before its CONNECT: nats-server
        answers with an authorization violation and closes."""
        if self.solicited or self.connect_received:
            return False
        self.fail(ClosedReason.AUTHENTICATION_VIOLATION, "Authorization Violation")
        return True

    def op_ping(self):
        if not self._unauthenticated():
            Link.op_ping(self)

    def op_err(self, rest):
        text = rest.decode(errors="replace").strip().strip("'")
        self.log.error("Leafnode Error '%s'" % text[:300])
        self.retry_after = P.reconnect_delay(text)
        self.close(ClosedReason.PROTOCOL_VIOLATION)

    def lame_duck(self):
        """nats-server tells routes and clients (INFO ``ldm``), not leafs: the
        link stays until the server stops."""

    def ping_check(self, now, interval, ping_max):
        if self.registered:
            Link.ping_check(self, now, interval, ping_max)
        else:
            self._handshake_timeout(now - self.start_mono)

    def _handshake_timeout(self, waited):
        """A link that does not finish its handshake in time is closed, so a
        silent peer never holds a connection: the hub waits the authorization
        timeout for the CONNECT (nats-server's -ERR); the dialler
        ``first_info_timeout`` (at least 2 s here) for the INFO, then 5 s more for
        the hub's answer ("Stale Leaf Node Connection - Closing"; nats-server
        waits 2 s, we allow for a loaded machine: nothing on the wire differs)."""
        if not self.solicited:
            limit = self.manager.config.auth.timeout or self.server.options.auth_timeout
            if not self.connect_received and waited >= limit:
                self.fail(ClosedReason.AUTHENTICATION_TIMEOUT, "Authentication Timeout")
            return
        first = max(self.remote.first_info_timeout if self.remote is not None else 1.0, 2.0)
        if self.tls_config is not None:
            first += self.tls_config.timeout
        if self.first_info is None:
            if waited >= first:
                self.log.error("leafnode_first_info_timeout", seconds=first)
                self.close(ClosedReason.STALE_CONNECTION)
        elif waited >= first + _ANSWER_WAIT:
            self.log.error(P.STALE)
            self.close(ClosedReason.STALE_CONNECTION)

    def fail(self, reason, err):
        """Close with a -ERR the peer (a Go server too) recognises and logs."""
        self.log.error(err)
        self.close(reason, err)

    # -- interest ---------------------------------------------------------------

    def op_ls_plus(self, args):
        try:
            subject, queue, weight = P.parse_ls_plus(args)
        except P.LeafProtocolError as exc:
            self.log.debug("bad_ls_plus", error=str(exc))
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if not self.registered:
            self._unauthenticated()
            return
        if not is_valid_subject(subject) or (queue is not None and not is_valid_queue(queue)):
            self.log.debug("invalid_leaf_subscription", subject=subject[:64])
            self.send(encode.err("Invalid Subscription"))
            return
        if subject.startswith(P.LDS_PREFIX) and self.manager.is_own_lds(self.bound_account,
                                                                       subject):
            self.manager.loop_detected(self)
            return
        if self.ls_denied is not None and self.ls_denied(subject):
            if self.we_are_hub:
                self.fail(ClosedReason.PROTOCOL_VIOLATION,
                          'Permissions Violation for Subscription to "%s"' % subject.decode())
            return  # a spoke ignores interest it may not serve
        self.on_remote_sub(self.bound_account, subject, queue, weight)

    def op_ls_minus(self, args):
        try:
            subject, queue = P.parse_ls_minus(args)
        except P.LeafProtocolError:
            self.close(ClosedReason.PROTOCOL_VIOLATION)
            return
        if self.registered:
            self.on_remote_unsub(self.bound_account, subject, queue)
        else:
            self._unauthenticated()

    def send_sub(self, account_name, subject, queue, weight):
        self.send(P.encode_sub(subject, queue, weight))

    def send_unsub(self, account_name, subject, queue):
        self.send(P.encode_unsub(subject, queue))

    # -- messages: the layer frames them; deny rules filter them ------------------

    def send_msg(self, account, subject, reply, hdr, msg, queues):
        denied = self.out_denied
        if denied is None or not self.out_may_deny(subject) or not denied(subject):
            if hdr and not self.headers:  # a peer without headers gets the payload
                msg, hdr = msg[hdr:], 0
            Link.send_msg(self, account, subject, reply, hdr, msg, queues)

    def run_leads(self, account, subject):
        denied = self.out_denied
        if denied is not None and self.out_may_deny(subject) and denied(subject):
            return None
        leads = Link.run_leads(self, account, subject)
        return leads if self.headers else (leads[0], None)

    def send_run(self, account, items, plain=False):
        denied = self.out_denied
        if denied is not None and self.out_may_deny_any(map(_first, items)):
            sent = [m for m in items if not denied(m[0])]
            if len(sent) != len(items):
                if sent:
                    Link.send_run(self, account, sent, plain)
                return None  # (what it counted is not the run)
        return Link.send_run(self, account, items, plain)

    def op_msg(self, items):
        # (a frame's args are never empty: the parser wants a subject and a size)
        if self.registered and (self.in_denied is None or not self.in_may_deny_any(
                map(_first, map(_first, items)))):
            Link.op_msg(self, items)  # nothing in the list can be denied
            return
        for args, payloads in items:  # deny rules (or a link not yet up): one by one
            for payload in payloads:
                self._inbound(args, 0, payload)
                if self.closed:
                    return

    def _inbound(self, args, hdr, msg):
        if not self.registered:
            self._unauthenticated()
            return  # nothing is delivered before the link is bound
        denied = self.in_denied
        if denied is not None and args and self.in_may_deny(args[0]) and denied(args[0]):
            self.in_msgs += 1
            self.in_bytes += len(msg)
            if self.we_are_hub:
                self.fail(ClosedReason.PROTOCOL_VIOLATION,
                          'Permissions Violation for Publish to "%s"' % args[0].decode())
            return
        Link._inbound(self, args, hdr, msg)


LEAF_KIND = LinkKind(
    name="leaf", kind=LEAF, origin=LEAF_HUB_ORIGIN,
    framing=Framing(msg=b"LMSG", hmsg=b"HMSG", account=False),
    ops={b"LS+": (LINE, LeafConnection.op_ls_plus),
         b"LS-": (LINE, LeafConnection.op_ls_minus)},
)
LeafConnection.bind_kind(LEAF_KIND)


def connect_frame(connect):
    return encode.connect(connect)
