"""The gateway protocol's words, sans-IO: INFO/CONNECT as nats-server 2.15.1
sends them (GATEWAY.md sections 3, 4, 7), the handshake checks with Go's
texts, and the ``_GR_.<cluster hash>.<server hash>.`` reply mapping.

Go marshals its ``Info`` struct, so every INFO it sends carries the fields
that are not ``omitempty`` (``server_id`` .. ``max_payload``) even when they
are empty, in the struct's order; :func:`go_info` does the same so a capture
of ours reads like a capture of Go's.
"""

import base64
import hashlib
import json

GATEWAY_CMD_GOSSIP = 1
GATEWAY_CMD_ALL_SUBS_START = 2
GATEWAY_CMD_ALL_SUBS_COMPLETE = 3

GW_REPLY_PREFIX = b"_GR_."
OLD_GW_REPLY_PREFIX = b"$GR."
GW_HASH_LEN = 6
GW_CLUSTER_OFFSET = len(GW_REPLY_PREFIX)
GW_SERVER_OFFSET = GW_CLUSTER_OFFSET + GW_HASH_LEN + 1
GW_SUBJECT_OFFSET = GW_SERVER_OFFSET + GW_HASH_LEN + 1
OLD_GW_REPLY_START = len(OLD_GW_REPLY_PREFIX) + 5  # "$GR." + 4 hex + "."

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Go's Info struct: (json name, zero value, omitempty), in declaration order.
_INFO_FIELDS = (
    ("server_id", "", False), ("server_name", "", False), ("version", "", False),
    ("proto", 0, False), ("go", "", False), ("host", "", False), ("port", 0, False),
    ("headers", False, False), ("auth_required", False, True), ("tls_required", False, True),
    ("tls_verify", False, True), ("max_payload", 0, False), ("gateway", "", True),
    ("gateway_urls", None, True), ("gateway_url", "", True), ("gateway_cmd", 0, True),
    ("gateway_cmd_payload", None, True), ("gateway_nrp", False, True),
    ("gateway_iom", False, True),
)


def goq(text):
    """Go's ``%q``: a double-quoted string with Go escapes (JSON's are the same
    for the names and URLs quoted here)."""
    return json.dumps(str(text), ensure_ascii=False)


def hash6(name):
    """nats-server's ``getHashSize(name, 6)``: the first 6 bytes of
    sha256(name), each mapped to ``digits[b % 62]``."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(_DIGITS[b % 62] for b in digest[:GW_HASH_LEN])


def old_hash(name):
    """The pre-2.2 ``$GR.`` prefix hash: 4 hex digits of sha256(name)."""
    return hashlib.sha256(name.encode()).hexdigest()[:4]


def reply_prefix(cluster, server_id):
    """``_GR_.<hash6(cluster)>.<hash6(server_id)>.`` (bytes)."""
    return ("_GR_.%s.%s." % (hash6(cluster), hash6(server_id))).encode()


def old_reply_prefix(cluster):
    return ("$GR.%s." % old_hash(cluster)).encode()


def parse_routed_reply(subject):
    """Split a mapped subject: ``(cluster hash, server hash or None, inner
    subject, old prefix?)``, or None if ``subject`` is not one."""
    if len(subject) > GW_SUBJECT_OFFSET and subject.startswith(GW_REPLY_PREFIX):
        return (subject[GW_CLUSTER_OFFSET:GW_CLUSTER_OFFSET + GW_HASH_LEN],
                subject[GW_SERVER_OFFSET:GW_SERVER_OFFSET + GW_HASH_LEN],
                subject[GW_SUBJECT_OFFSET:], False)
    if len(subject) > OLD_GW_REPLY_START and subject.startswith(OLD_GW_REPLY_PREFIX):
        return (subject[len(OLD_GW_REPLY_PREFIX):OLD_GW_REPLY_START - 1], None,
                subject[OLD_GW_REPLY_START:], True)
    return None


def has_reply_prefix(subject):
    """Clients may not publish on ``_GR_.`` (Go: hasGWRoutedReplyPrefix)."""
    return len(subject) > len(GW_REPLY_PREFIX) and subject.startswith(GW_REPLY_PREFIX)


def go_info(**fields):
    """An INFO dict shaped like Go's marshalled Info (see module docstring)."""
    info = {}
    for name, zero, omitempty in _INFO_FIELDS:
        value = fields.pop(name, zero)
        if omitempty and not value:
            continue
        info[name] = value
    if fields:
        raise TypeError("unknown INFO fields: %s" % ", ".join(sorted(fields)))
    return info


def encode_info(info):
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"


def server_info(server_id, server_name, version, host, port, max_payload, gateway,
                gateway_urls, gateway_url, auth_required=False, tls_required=False):
    """The INFO an acceptor sends first (and a dialer after its CONNECT)."""
    return go_info(server_id=server_id, server_name=server_name, version=version, proto=3,
                   host=host, port=port, headers=True, auth_required=auth_required,
                   tls_required=tls_required, tls_verify=tls_required,
                   max_payload=max_payload, gateway=gateway, gateway_urls=list(gateway_urls),
                   gateway_url=gateway_url, gateway_nrp=True, gateway_iom=True)


def gossip_info(server_id, gateway, urls):
    """Acceptor -> new inbound, once per other remote cluster; also what a
    dialer tells its routes (with ``server_id`` "GW" + its id)."""
    return go_info(server_id=server_id, gateway=gateway, gateway_urls=list(urls),
                   gateway_cmd=GATEWAY_CMD_GOSSIP)


def cmd_info(gateway, cmd, account):
    """The interest-only bracket for ``account`` (cmd 2 start, 3 complete);
    the payload is a Go []byte, hence base64."""
    return go_info(gateway=gateway, gateway_cmd=cmd,
                   gateway_cmd_payload=base64.b64encode(account.encode()).decode())


def cmd_account(info):
    """The account of a cmd 2/3 INFO, or None when the payload is missing or
    not base64 (Go: "Account absent from receive-all-subscriptions-%s command")."""
    payload = info.get("gateway_cmd_payload")
    if not payload or not isinstance(payload, str):
        return None
    try:
        return base64.b64decode(payload, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def connect(server_id, gateway, user=None, password=None, tls_required=False):
    """The dialer's CONNECT: ``headers`` is always false (headers come from
    INFO), ``cluster`` always empty, credentials only when set."""
    fields = {"echo": False, "verbose": False, "pedantic": False}
    if user:
        fields["user"] = user
    if password:
        fields["pass"] = password
    fields.update({"tls_required": tls_required, "headers": False, "name": server_id,
                   "cluster": "", "gateway": gateway})
    return fields


def encode_connect(fields):
    return b"CONNECT " + json.dumps(fields, separators=(",", ":")).encode() + b"\r\n"


class HandshakeError(Exception):
    """The handshake failed. ``err`` is the -ERR text to send (None: close
    without one), ``log`` what our log says, ``reason`` the close reason name
    (a ClosedReason member name)."""

    def __init__(self, reason, log, err=None):
        super().__init__(log)
        self.reason = reason
        self.log = log
        self.err = err


def check_dialer_info(info, ours, wanted):
    """The first INFO on a connection we dialled to reach cluster ``wanted``
    (Go processGatewayInfo, outbound). Raises HandshakeError."""
    name = info.get("gateway") or ""
    if not name:
        text = "Attempt to connect to gateway %s using wrong port" % goq(wanted)
        raise HandshakeError("WRONG_PORT", text, text)
    if name != wanted:
        raise HandshakeError(
            "WRONG_GATEWAY",
            "Failing connection to gateway %s, remote gateway name is %s"
            % (goq(wanted), goq(name)),
            "Connection from %s rejected, wanted to connect to %s, this is %s"
            % (goq(ours), goq(wanted), goq(name)))


def check_acceptor_connect(connect_fields, ours, known, reject_unknown, user, password):
    """A CONNECT on a connection we accepted (Go processConnect: credentials,
    then processGatewayConnect). Returns the dialer's cluster name."""
    # Go's processConnect checks credentials first, for every connection kind
    if user and not (connect_fields.get("user") == user and
                     connect_fields.get("pass") == password):
        raise HandshakeError("AUTHENTICATION_VIOLATION", "authentication error",
                             "Authorization Violation")
    name = connect_fields.get("gateway") or ""
    if not name:
        text = "attempted to connect to gateway port"
        raise HandshakeError("WRONG_PORT", text, text)
    if reject_unknown and name not in known:
        raise HandshakeError("WRONG_GATEWAY", "Rejecting connection from gateway %s" % goq(name),
                             "Connection to gateway %s rejected" % goq(ours))
    return name
