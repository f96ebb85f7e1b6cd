"""The leaf node wire protocol as nats-server 2.15 speaks it, sans-IO: the
INFO/CONNECT builders, the checks a hub makes of a CONNECT, the LS+/LS- verbs,
loop detection subjects and the error texts a Go peer matches on (leafnode.go;
docs/architecture.md "Leaf nodes"). LMSG/HMSG are the link layer's framing.

Nothing here touches a socket or a clock: connections call these functions.
"""

LEAF_PROTOCOL = 3
LDS_PREFIX = b"$LDS."
# Subjects a hub's and a spoke's permissions never apply to (leafnode.go
# ``leafMsgAllowed``/``processLeafSub``).
UNCHECKED_PREFIXES = (b"$LDS.", b"$GR.", b"_GR_.")
# Seconds a dialler waits after these errors (leafnode.go leafNodeReconnectDelayAfter*).
LOOP_DELAY = 30.0
CLUSTER_NAME_DELAY = 30.0
PERMISSION_DELAY = 30.0
MIN_VERSION_DELAY = 5.0
# CONNECT errors the dialler recognises by substring (leafnode.go ``leafProcessErr``).
LOOP_DETECTED = "Loop detected"
SAME_CLUSTER = "remote leafnode has same cluster name"
MIN_VERSION_TEXT = "minimum version"
PERMISSIONS_VIOLATION = "Permissions Violation"
WRONG_PORT = "attempted to connect to leaf node port"
CLUSTER_SPACES = "cluster name cannot contain spaces"
STALE = "Stale Leaf Node Connection - Closing"
DUPLICATE = "Duplicate Remote LeafNode Connection"

# INFO keys in the order nats-server writes them (Info struct order).
_INFO_ORDER = ("server_id", "server_name", "version", "proto", "go", "host", "port",
               "headers", "auth_required", "tls_required", "max_payload", "ip",
               "client_id", "nonce", "cluster", "domain", "connect_info", "remote_account",
               "acc_is_sys", "import", "export", "jetstream", "api_lvl", "info_on_connect",
               "leafnode_urls")


class LeafProtocolError(ValueError):
    """A malformed LS+/LS-; the connection closes (as nats-server does).
    Messages (LMSG/HMSG) are framed and parsed by the link layer."""


def loop_error(account_name):
    """The -ERR text (and log line) of a loop, word for word as Go sends it."""
    return ('Loop detected for leafnode account="%s". Delaying attempt to reconnect for 30s'
            % account_name)


def lds_subject(nuid):
    """The loop detection subject an account advertises on every leaf link."""
    return LDS_PREFIX + (nuid.encode() if isinstance(nuid, str) else nuid)


def is_unchecked(subject):
    """Subjects that deny rules and permissions never apply to."""
    return subject.startswith(UNCHECKED_PREFIXES)


def reconnect_delay(err):
    """How long a dialler waits before redialling after the hub's -ERR ``err``
    (None: the normal reconnect interval)."""
    if LOOP_DETECTED in err:
        return LOOP_DELAY
    if SAME_CLUSTER in err:
        return CLUSTER_NAME_DELAY
    if PERMISSIONS_VIOLATION in err:
        return PERMISSION_DELAY
    if MIN_VERSION_TEXT in err:
        return MIN_VERSION_DELAY
    return None


def _ordered(info):
    out = {k: info[k] for k in _INFO_ORDER if k in info}
    out.update((k, v) for k, v in info.items() if k not in out)
    return out


def hub_info(*, server_id, server_name, version, go, host, port, max_payload, ip, client_id,
             nonce=None, leafnode_urls=(), cluster=None, tls_required=False, domain=None):
    """The INFO a hub sends on accept. ``client_id`` must be non-zero (a Go
    leaf takes a zero id for a client port); ``compression`` is left out so
    the link stays plain (a Go leaf then sends ``compress_mode:"not
    supported"``); ``info_on_connect`` asks the leaf to wait for the second
    INFO before it registers the link."""
    if not client_id:
        raise ValueError("a leaf INFO needs a non-zero client_id")
    info = {
        "server_id": server_id, "server_name": server_name, "version": version,
        "proto": LEAF_PROTOCOL, "go": go, "host": host, "port": port, "headers": True,
        "auth_required": True, "max_payload": max_payload, "ip": ip,
        "client_id": client_id, "info_on_connect": True,
        "leafnode_urls": list(leafnode_urls),
    }
    if nonce:
        info["nonce"] = nonce
    if cluster:
        info["cluster"] = cluster
    if domain:
        info["domain"] = domain
    if tls_required:
        info["tls_required"] = True
    return _ordered(info)


def connect_info(first_info, *, account_name, is_system=False, permissions=None):
    """The second INFO (``connect_info:true``) a hub sends once it accepted the
    CONNECT: the first one without its nonce, plus the bound account and the
    user's permissions as the leaf sees them (``import``: what it may send us,
    ``export``: what it may subscribe to here)."""
    info = {k: v for k, v in first_info.items() if k not in ("nonce", "compression")}
    info["connect_info"] = True
    info["remote_account"] = account_name
    if is_system:
        info["acc_is_sys"] = True
    if permissions:
        for field in ("import", "export"):
            if permissions.get(field):
                info[field] = permissions[field]
    return _ordered(info)


def leaf_connect(*, version, server_id, name, cluster, remote_account="$G", user=None,
                 password=None, jwt=None, nkey=None, sig=None, is_hub=False,
                 deny_pub=(), isolate=False, domain=None, compress_mode=None):
    """The CONNECT a dialling leaf sends (leafnode.go ``leafConnectInfo``, empty
    fields left out as Go's ``omitempty`` does). A user without a password goes
    as both ``user`` and ``auth_token`` (``sendLeafConnect``)."""
    connect = {"version": version}
    if jwt:
        connect["jwt"] = jwt
    if nkey:
        connect["nkey"] = nkey
    if sig:
        connect["sig"] = sig
    if user:
        connect["user"] = user
        if password:
            connect["pass"] = password
        else:
            connect["auth_token"] = user
    connect["server_id"] = server_id
    if domain:
        connect["domain"] = domain
    connect["name"] = name
    if is_hub:
        connect["is_hub"] = True
    connect["cluster"] = cluster
    connect["headers"] = True
    if deny_pub:
        connect["deny_pub"] = list(deny_pub)
    if isolate:
        connect["isolate"] = True
    if compress_mode:
        connect["compress_mode"] = compress_mode
    connect["remote_account"] = remote_account
    connect["protocol"] = LEAF_PROTOCOL
    return connect


def check_connect(connect, *, hub_cluster=None, min_version=None):
    """What a hub refuses in a (authenticated) leaf CONNECT: the -ERR text, or
    None when it is acceptable. Same order as ``processLeafNodeConnect``."""
    if "lang" in connect:
        return WRONG_PORT
    gateway = connect.get("gateway")
    if gateway:
        return 'Rejecting connection from gateway "%s" on the leafnode port' % gateway
    cluster = connect.get("cluster") or ""
    if not isinstance(cluster, str):
        return "invalid cluster name"
    if " " in cluster:
        return CLUSTER_SPACES
    if hub_cluster and cluster == hub_cluster:
        return SAME_CLUSTER
    if min_version:
        version = str(connect.get("version") or "0.0.0")
        if _version_tuple(version) < _version_tuple(min_version):
            return 'connection rejected since minimum version required is "%s"' % min_version
    return None


def _version_tuple(text):
    parts = []
    for piece in text.lstrip("v").split("-")[0].split(".")[:3]:
        parts.append(int(piece) if piece.isdigit() else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


# -- interest verbs --------------------------------------------------------------


def parse_ls_plus(args):
    """``LS+ <subj>`` | ``LS+ <subj> <queue> <weight>`` -> (subject, queue, weight)."""
    if len(args) == 1:
        return args[0], None, 1
    if len(args) == 3:
        weight = args[2]
        if not weight.isdigit():
            raise LeafProtocolError("invalid queue weight %r" % weight[:32])
        return args[0], args[1], max(int(weight), 1)
    raise LeafProtocolError("LS+ needs <subject> [<queue> <weight>]")


def parse_ls_minus(args):
    """``LS- <subj> [<queue>]`` -> (subject, queue)."""
    if len(args) == 1:
        return args[0], None
    if len(args) == 2:
        return args[0], args[1]
    raise LeafProtocolError("LS- needs <subject> [<queue>]")


def encode_sub(subject, queue=None, weight=1):
    if queue is None:
        return b"LS+ %s\r\n" % subject
    return b"LS+ %s %s %d\r\n" % (subject, queue, weight)


def encode_unsub(subject, queue=None):
    if queue is None:
        return b"LS- %s\r\n" % subject
    return b"LS- %s %s\r\n" % (subject, queue)
