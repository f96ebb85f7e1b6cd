"""The meta group's state machine, sans I/O: which streams and consumers exist
in the cluster and which servers (peers) carry each one's RAFT group
(JETSTREAM-CLUSTER.md section 2).

Every server applies the same committed meta entries (``MetaState.apply``) and
gets back the changes it must act on (start or stop a stream or consumer group
it is a peer of). Only the meta leader turns API requests into entries
(:func:`propose_stream`, :func:`propose_consumer`, ...), placing new groups
with :func:`select_peer_group`. Entries are Go's: an op byte from Go's
append-only enum, then the assignment JSON; a snapshot is the JSON array of
stream assignments with their consumers nested (Go compresses it with s2; we
do not).
"""

import json
import random
from dataclasses import dataclass, field

# Go's entry ops (srv:jetstream_cluster.go): an append-only enum, never renumber.
ASSIGN_STREAM = 0
ASSIGN_CONSUMER = 1
REMOVE_STREAM = 2
REMOVE_CONSUMER = 3
UPDATE_STREAM = 11

MAX_REPLICAS = 5
_HASH_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class MetaError(Exception):
    """An API error in Go's shape: ``code`` (HTTP-like), ``err_code``, description."""

    def __init__(self, code, err_code, description):
        super().__init__(description)
        self.code, self.err_code, self.description = code, err_code, description

    def to_json(self):
        return {"code": self.code, "err_code": self.err_code, "description": self.description}


def no_peers(reasons=""):
    """Go's 10005 for a placement that found too few peers (``selectPeerError``)."""
    return MetaError(400, 10005, "no suitable peers for placement" + reasons)


def encode_op(op, body):
    return bytes([op]) + json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode_op(data):
    return data[0], json.loads(bytes(data[1:]))


def group_name(kind, replicas, storage, rng):
    """Go's names: ``S-R3F-<8 random chars>`` for streams, ``C-...`` for
    consumers (F/M = file/memory storage)."""
    suffix = "".join(rng.choice(_HASH_DIGITS) for _ in range(8))
    return "%s-R%d%s-%s" % (kind, replicas, "M" if storage == "memory" else "F", suffix)


# -- placement --------------------------------------------------------------------------

@dataclass
class PeerInfo:
    """What the meta leader knows of a server (from ``$SYS`` statsz events)."""

    id: str
    name: str
    cluster: str
    tags: set = field(default_factory=set)
    offline: bool = False
    available: int = 1 << 40      # bytes free in max_file
    available_memory: int = 1 << 40   # bytes free in max_mem
    streams: int = 0
    ha_assets: int = 0


def select_peer_group(peers, replicas, cluster, tags=(), unique_tag=None, max_bytes=0,
                      existing=(), ignore=(), multi=None, storage="file"):
    """Pick ``replicas`` peers of ``cluster`` as Go's ``selectPeerGroup``:
    ``existing`` members stay (first), ``ignore`` are never picked; every tag in
    ``tags`` must be present and ``!tag`` excludes; ``!jetstream`` opts a server
    out; offline servers and those without room for ``max_bytes`` are dropped;
    ``unique_tag`` (e.g. ``"az:"``, unless ``tags`` already name a value of it)
    allows one replica per value of that tag. The rest sort by most available
    space (ties: fewer streams) and, for R>1, by fewest HA assets. Too few:
    :class:`MetaError` 10005 with Go's reasons."""
    existing = list(existing)
    if len(existing) >= replicas:
        return existing[:replicas]
    want = [t for t in tags if not t.startswith("!")]
    avoid = [t[1:] for t in tags if t.startswith("!")]
    if unique_tag and any(t.startswith(unique_tag) for t in list(want) + avoid):
        unique_tag = None
    by_id = {p.id: p for p in peers}
    owners = set()
    if unique_tag:
        for pid in existing:
            peer = by_id.get(pid)
            value = _unique_value(peer, unique_tag) if peer else None
            if value:
                owners.add(value)
    offline = exclude_tag = no_storage = unique = False
    missing, excluded = [], []
    candidates, online = [], 0
    for peer in peers:
        if peer.cluster != cluster:
            continue
        if peer.offline:
            offline = True
            continue
        if peer.id in ignore or peer.id in existing:
            continue
        if "!jetstream" in peer.tags:
            exclude_tag = True
            continue
        bad = next((t for t in avoid if t in peer.tags), None)
        if bad is not None:
            _note(excluded, bad)
            continue
        bad = next((t for t in want if t not in peer.tags), None)
        if bad is not None:
            _note(missing, bad)
            continue
        room = peer.available_memory if storage == "memory" else peer.available
        if max_bytes > 0 and room < max_bytes:
            no_storage = True
            continue
        if unique_tag:
            value = _unique_value(peer, unique_tag)
            if value is None or value in owners:
                unique = True
                continue
            owners.add(value)
        candidates.append(peer)
        online += 1
    if len(candidates) < replicas - len(existing) or online + len(existing) < replicas // 2 + 1:
        reasons = ""
        for flag, text in ((offline, "peer offline"), (exclude_tag, "exclude tag set"),
                           (no_storage, "insufficient storage"),
                           (unique, "server tag not unique"),
                           (not peers, "jetstream not enabled in cluster")):
            if flag:
                reasons += ", " + text
        if missing:
            reasons += ", tags not matched [%s]" % ", ".join("'%s'" % t for t in missing)
        if excluded:
            reasons += ", tags excluded [%s]" % ", ".join("'%s'" % t for t in excluded)
        raise no_peers(reasons)
    memory = storage == "memory"
    candidates.sort(key=lambda p: (-(p.available_memory if memory else p.available),
                                   p.streams, p.name))
    if (multi if multi is not None else replicas) > 1:
        candidates.sort(key=lambda p: p.ha_assets)  # stable: keeps the order above
    return existing + [p.id for p in candidates[:replicas - len(existing)]]


def _note(seen, tag):
    if tag not in seen:
        seen.append(tag)


def _unique_value(peer, prefix):
    return next((t for t in sorted(peer.tags) if t.startswith(prefix)), None)


# -- the state machine ----------------------------------------------------------------

def _key(account, name):
    return "%s > %s" % (account, name)


class MetaState:
    """Stream assignments by (account, stream), each with its consumers."""

    def __init__(self):
        self.streams = {}

    def stream(self, account, name):
        return self.streams.get(_key(account, name))

    def apply(self, data):
        """Apply one committed meta entry; returns the changes as
        ``(kind, account, stream, consumer_or_None, assignment)`` tuples,
        ``kind`` one of ``stream_added``, ``stream_updated``, ``stream_removed``,
        ``consumer_added``, ``consumer_removed``."""
        op, body = decode_op(data)
        if op in (ASSIGN_STREAM, UPDATE_STREAM):
            account, name = body["client"]["account"], body["stream"]["name"]
            key = _key(account, name)
            old = self.streams.get(key)
            if old is None and op == UPDATE_STREAM:
                return []
            body = dict(body, consumers=old["consumers"] if old else {})
            self.streams[key] = body
            return [("stream_updated" if old else "stream_added", account, name, None, body)]
        if op == REMOVE_STREAM:
            account, name = body["client"]["account"], body["stream"]["name"]
            old = self.streams.pop(_key(account, name), None)
            return [("stream_removed", account, name, None, old)] if old else []
        if op == ASSIGN_CONSUMER:
            account, stream = body["client"]["account"], body["stream"]
            sa = self.streams.get(_key(account, stream))
            if sa is None:
                return []  # its stream is gone: nothing to run
            sa["consumers"][body["name"]] = body
            return [("consumer_added", account, stream, body["name"], body)]
        if op == REMOVE_CONSUMER:
            account, stream = body["client"]["account"], body["stream"]
            sa = self.streams.get(_key(account, stream))
            old = sa["consumers"].pop(body["name"], None) if sa else None
            return [("consumer_removed", account, stream, body["name"], old)] if old else []
        return []  # an op we do not know yet: ignored, as Go ignores unknown ops

    def snapshot(self):
        out = []
        for key in sorted(self.streams):
            sa = dict(self.streams[key])
            sa["consumers"] = [sa["consumers"][c] for c in sorted(sa["consumers"])]
            out.append(sa)
        return json.dumps(out, separators=(",", ":"), sort_keys=True).encode()

    def restore(self, data):
        """Replace the state; returns the changes relative to the old one."""
        old, self.streams = self.streams, {}
        for sa in json.loads(data):
            consumers = {c["name"]: c for c in sa.get("consumers") or []}
            sa = dict(sa, consumers=consumers)
            self.streams[_key(sa["client"]["account"], sa["stream"]["name"])] = sa
        changes = []
        for key in sorted(set(old) - set(self.streams)):
            sa = old[key]
            changes.append(("stream_removed", sa["client"]["account"], sa["stream"]["name"],
                            None, sa))
        for key in sorted(self.streams):
            sa = self.streams[key]
            if old.get(key) != sa:
                changes.append(("stream_updated" if key in old else "stream_added",
                                sa["client"]["account"], sa["stream"]["name"], None, sa))
        return changes

    def assigned_to(self, peer_id):
        """(account, stream) of every stream whose group has ``peer_id``."""
        return sorted((sa["client"]["account"], sa["stream"]["name"])
                      for sa in self.streams.values() if peer_id in sa["group"]["peers"])


# -- the leader: requests into entries ------------------------------------------------

def place_stream(peers, config, cluster, alternates=(), unique_tag=None):
    """``(cluster, peer ids)`` for a stream (Go's ``createGroupForStream``):
    ``placement.cluster`` when given, else the requester's ``cluster`` and
    then the other clusters in ``alternates`` order, the first that has room."""
    replicas = max(int(config.get("num_replicas") or 1), 1)
    placement = config.get("placement") or {}
    clusters = [placement["cluster"]] if placement.get("cluster") else \
        [cluster] + [c for c in alternates if c != cluster]
    error = None
    for name in clusters:
        try:
            return name, select_peer_group(peers, replicas, name, placement.get("tags") or (),
                                           unique_tag, max(int(config.get("max_bytes") or 0), 0),
                                           storage=config.get("storage", "file"))
        except MetaError as err:
            error = err
    raise error


def propose_stream(state, account, config, peers, cluster, rng=None, created="", client=None,
                   reply="", unique_tag=None, alternates=()):
    """The ASSIGN_STREAM entry for a create request, placed on ``peers``
    (a list of :class:`PeerInfo`) in ``cluster`` (the requester's) or else one
    of ``alternates``. Raises :class:`MetaError` as Go answers."""
    rng = rng or random.Random()
    replicas = max(int(config.get("num_replicas") or 1), 1)
    if replicas > MAX_REPLICAS:
        raise MetaError(400, 10052, "maximum replicas is %d" % MAX_REPLICAS)
    existing = state.stream(account, config["name"])
    if existing is not None:
        if existing["stream"] == config:
            return None  # the same create again: Go answers with the stream's info
        raise MetaError(400, 10058, "stream name already in use with a different configuration")
    placement = config.get("placement") or {}
    storage = config.get("storage", "file")
    cluster, chosen = place_stream(peers, config, cluster, alternates, unique_tag)
    preferred = placement.get("preferred")
    if preferred:
        names = {p.id: p.name for p in peers}
        preferred = next((pid for pid in chosen if names.get(pid) == preferred), None)
    group = {"name": group_name("S", replicas, storage, rng), "peers": chosen,
             "store": storage, "cluster": cluster}
    if preferred:
        group["preferred"] = preferred
    body = {"client": dict(client or {}, account=account), "created": created,
            "stream": config, "group": group, "sync": "$JSC.SYNC.%s" % group["name"][-8:]}
    if reply:
        body["reply"] = reply  # the new stream's first leader answers the create
    return encode_op(ASSIGN_STREAM, body)


def assignment_body(sa):
    """A copy of the stream assignment ``sa`` to propose changed: without its
    consumers (they have entries of their own) and the replies of the entry
    that last changed it (a create's or update's, answered once)."""
    return {k: v for k, v in sa.items()
            if k not in ("consumers", "reply", "update_reply", "update_type", "update_sys")}


def propose_remove_stream(state, account, name, reply=""):
    sa = state.stream(account, name)
    if sa is None:
        raise MetaError(404, 10059, "stream not found")
    body = {"client": sa["client"], "stream": sa["stream"], "group": sa["group"]}
    if reply:
        body["reply"] = reply  # the meta leader answers once it is committed
    return encode_op(REMOVE_STREAM, body)


def propose_consumer(state, account, stream, name, config, rng=None, created=""):
    """ASSIGN_CONSUMER: a consumer's group defaults to its stream's replicas
    and peers (Go); an R1 consumer of a replicated stream picks one of them."""
    rng = rng or random.Random()
    sa = state.stream(account, stream)
    if sa is None:
        raise MetaError(404, 10059, "stream not found")
    peers = list(sa["group"]["peers"])
    replicas = int(config.get("num_replicas") or 0) or len(peers)
    if replicas > len(peers):
        raise MetaError(400, 10126, "consumer config replica count exceeds parent stream")
    if replicas < len(peers):
        peers = sorted(rng.sample(peers, replicas))
    group = {"name": group_name("C", replicas, sa["group"]["store"], rng), "peers": peers,
             "store": sa["group"]["store"], "cluster": sa["group"]["cluster"]}
    body = {"client": sa["client"], "created": created, "name": name, "stream": stream,
            "consumer": config, "group": group}
    return encode_op(ASSIGN_CONSUMER, body)


def propose_remove_consumer(state, account, stream, name):
    sa = state.stream(account, stream)
    ca = sa["consumers"].get(name) if sa else None
    if ca is None:
        raise MetaError(404, 10014, "consumer not found")
    return encode_op(REMOVE_CONSUMER, {"client": ca["client"], "stream": stream, "name": name,
                                       "group": ca["group"]})
