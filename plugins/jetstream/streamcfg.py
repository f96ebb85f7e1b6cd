"""Stream configuration: defaults and validation in nats-server's order
(stream.go checkStreamCfgLocked, checkStreamCfgUpdate), producing the config
as Go returns it (every non-omitempty key present)."""

from pluggy_nats.subjects import is_valid_literal_subject, is_valid_subject, subjects_collide

from .errors import ApiError
from .jsonreq import Fields

MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4 * 1024
MAX_METADATA_LEN = 128 * 1024
DEFAULT_DUPLICATE_WINDOW = 120 * 1_000_000_000
MS100 = 100_000_000
SECOND = 1_000_000_000

RETENTION = ("limits", "interest", "workqueue")
DISCARD = ("old", "new")
STORAGE = ("file", "memory")
COMPRESSION = ("none", "s2")


def is_valid_name(name):
    return bool(name) and not any(c in name for c in ".*> \t\r\n\\/")


def _invalid(text):
    return ApiError(10052, err=text)


def _collide(a, b):
    return subjects_collide(a.encode(), b.encode())


def _source(obj, where):
    f = Fields(obj, where)
    out = {"name": f.str("name")}
    for key in ("opt_start_seq",):
        if f.int(key):
            out[key] = f.int(key)
    if f.str("opt_start_time"):
        out["opt_start_time"] = f.str("opt_start_time")
    if f.str("filter_subject"):
        out["filter_subject"] = f.str("filter_subject")
    transforms = obj.get("subject_transforms")
    if transforms:
        out["subject_transforms"] = [{"src": t.get("src", ""), "dest": t.get("dest", "")}
                                     for t in transforms if isinstance(t, dict)]
    ext = f.map("external")
    if ext:
        out["external"] = {"api": ext.get("api", ""), "deliver": ext.get("deliver", "")}
    consumer = f.map("consumer")
    if consumer is not None:
        out["consumer"] = {"name": consumer.get("name", ""),
                           "deliver_subject": consumer.get("deliver_subject", "")}
    return out


def _check_durable(spec, mirror, seen):
    """Durable sourcing (``consumer`` in a mirror or source, Go 2.14+):
    Go's checkStreamCfg refusals (10213 mirror, 10215 source; 10216 for two
    sources through one consumer)."""
    c = spec.get("consumer")
    if c is None:
        return
    err = 10213 if mirror else 10215
    name, deliver = c["name"], c["deliver_subject"]
    if not isinstance(name, str) or not is_valid_name(name) or not isinstance(deliver, str) \
            or not is_valid_literal_subject(deliver.encode()) \
            or spec.get("opt_start_seq") or spec.get("opt_start_time") \
            or spec.get("filter_subject"):
        raise ApiError(err)
    if not mirror:
        from .sources import index_name  # (sources imports stream, which imports us)

        key = (index_name(dict(spec, consumer=None)), name)  # Go composeCName
        if key in seen:
            raise ApiError(10216)
        seen.add(key)


def mirror_requested(obj):
    return isinstance(obj.get("mirror"), dict)


def check_stream_config(obj, server_limits, account_limits, pedantic=False):
    """Validate the request's config dict ``obj``; return the config dict Go would
    store. ``server_limits`` is the JetStreamConfig, ``account_limits`` the
    account's AccountLimits. Raises ApiError."""
    f = Fields(obj, "StreamConfigRequest")
    name = f.str("name")
    if not is_valid_name(name):
        raise _invalid("stream name is required and can not contain '.', '*', '>', '\\', '/'")
    if len(name) > MAX_NAME_LEN:
        raise _invalid("stream name is too long, maximum allowed is %d" % MAX_NAME_LEN)
    description = f.str("description")
    if len(description) > MAX_DESCRIPTION_LEN:
        raise _invalid("stream description is too long, maximum allowed is %d"
                       % MAX_DESCRIPTION_LEN)
    metadata = f.strmap("metadata") or {}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_LEN:
        raise _invalid("stream metadata exceeds maximum size of %d bytes" % MAX_METADATA_LEN)
    retention = f.enum("retention", RETENTION, "limits")
    discard = f.enum("discard", DISCARD, "old")
    compression = f.enum("compression", COMPRESSION + ("",), "none") or "none"
    storage = f.enum("storage", STORAGE, "file")
    replicas = f.int("num_replicas", 0) or 1
    if replicas > 5:
        raise _invalid("maximum replicas is 5")
    if replicas < 0:
        raise ApiError(10133)
    cfg = {"name": name}
    if description:
        cfg["description"] = description
    limits = {}
    for key in ("max_msgs", "max_msgs_per_subject", "max_bytes", "max_msg_size",
                "max_consumers"):
        v = f.int(key, 0)
        if v == 0 or v < -1:
            if pedantic and v < -1:
                raise ApiError(10157, err="%s must be set to -1" % key)
            v = -1
        limits[key] = v
    max_age = f.int("max_age", 0)
    if max_age < 0:
        raise _invalid("max age can not be negative")
    if max_age and max_age < MS100:
        raise _invalid("max age needs to be >= 100ms")
    mirror = f.map("mirror")
    sources = obj.get("sources") or []
    if not isinstance(sources, list):
        f._bad("sources", sources, "[]*server.StreamSource")
    dup = f.int("duplicate_window", 0)
    server_dup = int(server_limits.duplicate_window * SECOND) if server_limits else 0
    if dup == 0 and mirror is None and not sources:
        window = DEFAULT_DUPLICATE_WINDOW
        if server_dup > 0 and window > server_dup:
            window = server_dup
        dup = max_age if (max_age and max_age < window) else window
    if dup < 0:
        raise _invalid("duplicates window can not be negative")
    if max_age and dup > max_age:
        raise _invalid("duplicates window can not be larger then max age")
    if dup and dup < MS100:
        raise _invalid("duplicates window needs to be >= 100ms")
    deny_purge = f.bool("deny_purge")
    allow_rollup = f.bool("allow_rollup_hdrs")
    if deny_purge and allow_rollup:
        raise _invalid("roll-ups require the purge permission")
    if f.bool("allow_msg_counter"):
        if discard == "new":
            raise _invalid("counter stream cannot use discard new")
        if f.bool("allow_msg_ttl"):
            raise _invalid("counter stream cannot use message TTLs")
        if retention != "limits":
            raise _invalid("counter stream can only use limits retention")
        if mirror_requested(obj):
            raise ApiError(10173)
    if f.str("persist_mode").lower() == "async":
        if storage != "file":
            raise _invalid("async persist mode is only supported on file storage")
        if f.bool("allow_atomic"):
            raise _invalid("async persist mode is not supported with atomic batch publish")
    discard_new_per = f.bool("discard_new_per_subject")
    if discard_new_per:
        if discard != "new":
            raise _invalid("discard new per subject requires discard new policy to be set")
        if limits["max_msgs_per_subject"] <= 0:
            raise _invalid("discard new per subject requires max msgs per subject > 0")
    allow_ttl = f.bool("allow_msg_ttl")
    marker_ttl = f.int("subject_delete_marker_ttl", 0)
    if marker_ttl > 0:
        if marker_ttl < SECOND:
            raise _invalid("subject delete marker TTL must be at least 1 second")
        # Go turns both on silently for markers
        allow_ttl = True
        allow_rollup = True
    elif marker_ttl < 0:
        raise _invalid("subject delete marker TTL must not be negative")
    if mirror is not None:
        if f.int("first_seq"):
            raise ApiError(10143)
        if f.strs("subjects"):
            raise ApiError(10034)
        if sources:
            raise ApiError(10031)
        if not is_valid_name(mirror.get("name", "")):
            raise ApiError(10142)
    for src in sources:
        if not isinstance(src, dict) or not is_valid_name(src.get("name", "")):
            raise ApiError(10141)
    subjects = f.strs("subjects")
    no_ack = f.bool("no_ack")
    if not subjects:
        if mirror is None and not sources:
            subjects = [name]
    else:
        seen = set()
        for i, subj in enumerate(subjects):
            if not is_valid_subject(subj.encode()):
                raise _invalid("invalid subject")
            if subj in seen:
                raise _invalid("duplicate subjects detected")
            if subj == ">" and not no_ack:
                raise _invalid("capturing all subjects requires no-ack to be true")
            if not no_ack:
                for ns in ("$JS.>", "$JSC.>", "$NRG.>"):
                    if _collide(subj, ns) and not (subj.startswith("$JS.EVENT.")):
                        raise _invalid("subjects that overlap with jetstream api require "
                                       "no-ack to be true")
                if _collide(subj, "$SYS.>") and not subj.startswith("$SYS.ACCOUNT."):
                    raise _invalid("subjects that overlap with system api require no-ack to "
                                   "be true")
            for other in subjects[i + 1:]:
                if _collide(other, subj):
                    raise _invalid('subject "%s" overlaps with "%s"' % (subj, other))
            seen.add(subj)
    if account_limits is not None:
        limit = (account_limits.memory_max_stream_bytes if storage == "memory"
                 else account_limits.storage_max_stream_bytes)
        if account_limits.max_bytes_required and limits["max_bytes"] <= 0:
            raise ApiError(10113)
        if limit > 0 and limits["max_bytes"] > limit:
            raise ApiError(10122)
    transform = f.map("subject_transform")
    if transform is not None:
        src = transform.get("src", "")
        if src and not is_valid_subject(str(src).encode()):
            raise ApiError(10155, err="invalid subject %s" % src)
        if not is_valid_subject(str(transform.get("dest", "")).encode()):
            raise ApiError(10156, err="invalid subject")
    republish = f.map("republish")
    if republish is not None:
        src = republish.get("src") or ">"
        dest = republish.get("dest", "")
        if not is_valid_subject(str(dest).encode()):
            raise _invalid("stream configuration for republish with transform from '%s' to "
                           "'%s' not valid" % (src, dest))
        for subj in subjects:
            if _collide(dest, subj):
                raise _invalid("stream configuration for republish destination forms a cycle")
    if f.bool("allow_atomic") and mirror is not None:
        raise ApiError(10198)
    cfg["subjects"] = subjects
    if not subjects:
        del cfg["subjects"]
    cfg["retention"] = retention
    cfg["max_consumers"] = limits["max_consumers"]
    cfg["max_msgs"] = limits["max_msgs"]
    cfg["max_bytes"] = limits["max_bytes"]
    cfg["max_age"] = max_age
    cfg["max_msgs_per_subject"] = limits["max_msgs_per_subject"]
    cfg["max_msg_size"] = limits["max_msg_size"]
    cfg["discard"] = discard
    cfg["storage"] = storage
    cfg["num_replicas"] = replicas
    if no_ack:
        cfg["no_ack"] = True
    if dup:  # omitempty: mirrors and sources without one leave it out
        cfg["duplicate_window"] = dup
    placement = f.map("placement")
    if placement:
        cfg["placement"] = placement
    if mirror is not None:
        cfg["mirror"] = _source(mirror, "StreamSource")
        _check_durable(cfg["mirror"], True, set())
    if sources:
        cfg["sources"] = [_source(s, "StreamSource") for s in sources]
        seen = set()
        for spec in cfg["sources"]:
            _check_durable(spec, False, seen)
    cfg["compression"] = compression
    if f.int("first_seq"):
        cfg["first_seq"] = f.int("first_seq")
    if transform is not None:
        cfg["subject_transform"] = {"src": transform.get("src", ""),
                                    "dest": transform.get("dest", "")}
    if republish is not None:
        cfg["republish"] = {"src": republish.get("src", ""), "dest": republish.get("dest", "")}
        if republish.get("headers_only"):
            cfg["republish"]["headers_only"] = True
    cfg["allow_direct"] = f.bool("allow_direct")
    cfg["mirror_direct"] = f.bool("mirror_direct")
    if discard_new_per:
        cfg["discard_new_per_subject"] = True
    cfg["sealed"] = f.bool("sealed")
    cfg["deny_delete"] = f.bool("deny_delete")
    cfg["deny_purge"] = deny_purge
    cfg["allow_rollup_hdrs"] = allow_rollup
    climits = f.map("consumer_limits") or {}
    cl = {}
    for key in ("inactive_threshold", "max_ack_pending"):
        v = Fields(climits, "StreamConsumerLimits").int(key, 0)
        if v:
            cl[key] = v
    cfg["consumer_limits"] = cl
    cfg["allow_msg_ttl"] = allow_ttl
    if marker_ttl:
        cfg["subject_delete_marker_ttl"] = marker_ttl
    for key in ("allow_msg_counter", "allow_atomic", "allow_msg_schedules", "allow_batched"):
        if f.bool(key):
            cfg[key] = True
    persist = f.enum("persist_mode", ("default", "async", ""), "")
    if persist and persist != "default":
        cfg["persist_mode"] = persist
    cfg["metadata"] = metadata
    return cfg


def check_update(old, new, clustered=False):
    """Go's checkStreamCfgUpdate: what an update may not change."""
    if old["name"] != new["name"]:
        raise _invalid("stream configuration name must match original")
    if old["storage"] != new["storage"]:
        raise _invalid("stream configuration update can not change storage type")
    if old["retention"] != new["retention"] and "workqueue" in (old["retention"],
                                                              new["retention"]):
        raise _invalid("stream configuration update can not change retention policy "
                       "to/from workqueue")
    if old.get("sealed") and not new.get("sealed"):
        raise _invalid("stream configuration update can not unseal a sealed stream")
    if old.get("deny_delete") and not new.get("deny_delete"):
        raise _invalid("stream configuration update can not cancel deny message deletes")
    if old.get("deny_purge") and not new.get("deny_purge"):
        raise _invalid("stream configuration update can not cancel deny purge")
    if old.get("allow_msg_ttl") and not new.get("allow_msg_ttl"):
        raise _invalid("message TTL status can not be disabled")
    if old.get("mirror") != new.get("mirror"):
        raise ApiError(10055)
    if new.get("num_replicas", 1) > 1 and not clustered:
        raise ApiError(10074)


def same_config(a, b):
    """Equal apart from the server-stamped metadata (create is idempotent)."""
    def strip(c):
        c = dict(c)
        c["metadata"] = {k: v for k, v in (c.get("metadata") or {}).items()
                         if not k.startswith("_nats.")}
        return c
    return strip(a) == strip(b)
