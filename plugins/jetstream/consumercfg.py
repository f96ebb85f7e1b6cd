"""Consumer configuration: defaults and validation in nats-server's order
(consumer.go setConsumerConfigDefaults, checkConsumerCfg), producing the config
dict as Go returns it (omitempty keys left out)."""

from pluggy_nats.subjects import is_literal, is_valid_subject, subset_match

from .errors import ApiError
from .headers import parse_rfc3339
from .jsonreq import Fields
from .streamcfg import MAX_DESCRIPTION_LEN, MAX_METADATA_LEN, is_valid_name

SECOND = 1_000_000_000
DEFAULT_ACK_WAIT = 30 * SECOND
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_MAX_WAITING = 512
DEFAULT_INACTIVE = 5 * SECOND  # ephemeral (non-durable) consumers
DELIVER = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK = ("none", "all", "explicit", "flow_control")
REPLAY = ("instant", "original")
PRIORITY = ("none", "overflow", "pinned_client", "prioritized")


def _invalid(text):
    return ApiError(10052, err=text)


def filters_of(cfg):
    """The consumer's filter subjects as a list ([] = everything)."""
    if cfg.get("filter_subjects"):
        return list(cfg["filter_subjects"])
    if cfg.get("filter_subject"):
        return [cfg["filter_subject"]]
    return []


def check_consumer_config(obj, stream_cfg, server_limits, account_limits, pedantic=False):
    """``obj``: the request's ``config``; returns the normalized config dict."""
    f = Fields(obj, "CreateConsumerRequest.config")
    deliver_policy = f.enum("deliver_policy", DELIVER, "all")
    ack_policy = f.enum("ack_policy", ACK, "none")
    replay = f.enum("replay_policy", REPLAY, "instant")
    priority_policy = f.enum("priority_policy", PRIORITY, "none")
    deliver_subject = f.str("deliver_subject")
    max_deliver = f.int("max_deliver", 0)
    if max_deliver == 0 or max_deliver < -1:
        if pedantic and max_deliver < -1:
            raise ApiError(10157, err="max_deliver must be set to -1")
        max_deliver = -1
    max_waiting = max(0, f.int("max_waiting", 0))
    max_ack_pending = f.int("max_ack_pending", 0)
    if max_ack_pending < -1:
        max_ack_pending = -1
    max_batch = max(0, f.int("max_batch", 0))
    max_expires = max(0, f.int("max_expires", 0))
    max_bytes = max(0, f.int("max_bytes", 0))
    heartbeat = max(0, f.int("idle_heartbeat", 0))
    inactive = max(0, f.int("inactive_threshold", 0))
    ack_wait = f.int("ack_wait", 0)
    backoff = f.ints("backoff")
    climits = stream_cfg.get("consumer_limits") or {}
    if not deliver_subject and max_waiting == 0:
        max_waiting = DEFAULT_MAX_WAITING
    if ack_wait == 0 and ack_policy in ("explicit", "all"):
        ack_wait = DEFAULT_ACK_WAIT
    if backoff:
        ack_wait = backoff[0]
    if max_ack_pending == 0:
        max_ack_pending = climits.get("max_ack_pending", 0)
    if inactive == 0:
        inactive = climits.get("inactive_threshold", 0)
    if max_ack_pending == 0 and ack_policy != "none":
        pending = DEFAULT_MAX_ACK_PENDING
        for lim in (server_limits.max_ack_pending if server_limits else -1,
                    account_limits.max_ack_pending if account_limits else -1):
            if 0 < lim < pending:
                pending = lim
        max_ack_pending = pending
    if not deliver_subject and max_batch == 0 and server_limits and \
            server_limits.max_request_batch > 0:
        max_batch = server_limits.max_request_batch
    if ack_policy == "flow_control":
        obj = dict(obj, flow_control=True)
        heartbeat = SECOND
    flow_control = f.bool("flow_control") or ack_policy == "flow_control"
    name = f.str("name")
    durable = f.str("durable_name")
    if name and not is_valid_name(name):
        raise _invalid("consumer name can not contain '.', '*', '>', '\\', '/'")
    if durable and not is_valid_name(durable):
        raise _invalid("consumer durable name can not contain '.', '*', '>', '\\', '/'")
    replicas = f.int("num_replicas", 0)
    if replicas > 0 and replicas > stream_cfg.get("num_replicas", 1):
        raise ApiError(10126)
    if replicas < 0:
        raise ApiError(10133)
    if any(b < 0 for b in backoff):
        raise ApiError(10184)
    if ack_wait < 0:
        raise ApiError(10183)
    if ack_policy == "flow_control":
        if not deliver_subject:
            raise ApiError(10218)
        if max_ack_pending <= 0:
            raise ApiError(10220)
    if backoff and max_deliver != -1 and len(backoff) > max_deliver:
        raise ApiError(10116)
    description = f.str("description")
    if len(description) > MAX_DESCRIPTION_LEN:
        raise ApiError(10107, max=MAX_DESCRIPTION_LEN)
    retention = stream_cfg.get("retention", "limits")
    rate_limit = f.int("rate_limit_bps", 0)
    if deliver_subject:
        if not is_literal(deliver_subject.encode()):
            raise ApiError(10079)
        if not is_valid_subject(deliver_subject.encode()):
            raise ApiError(10112)
        for subj in stream_cfg.get("subjects", []):
            if subset_match(deliver_subject.encode(), subj.encode()):
                raise ApiError(10081)
        if f.int("max_waiting", 0) != 0:
            raise ApiError(10080)
        if max_ack_pending > 0 and ack_policy == "none":
            raise ApiError(10082)
        if 0 < heartbeat < 100_000_000:
            raise ApiError(10083)
    else:
        if ack_policy == "none" and retention == "workqueue":
            raise ApiError(10084)
        if rate_limit > 0:
            raise ApiError(10086)
        if heartbeat > 0:
            raise ApiError(10088)
        if flow_control:
            raise ApiError(10089)
        if max_expires and max_expires < 1_000_000:
            raise ApiError(10115)
        if server_limits and server_limits.max_request_batch > 0 and \
                max_batch > server_limits.max_request_batch:
            raise ApiError(10125, limit=server_limits.max_request_batch)
    for lim in (server_limits.max_ack_pending if server_limits else -1,
                account_limits.max_ack_pending if account_limits else -1,
                climits.get("max_ack_pending", 0)):
        if lim > 0 and max_ack_pending > lim:
            raise ApiError(10121, limit=lim)
    if climits.get("inactive_threshold", 0) > 0 and inactive > climits["inactive_threshold"]:
        raise ApiError(10153, limit=climits["inactive_threshold"])
    filter_subject = f.str("filter_subject")
    filter_subjects = f.strs("filter_subjects")
    if filter_subject and filter_subjects:
        raise ApiError(10136)
    if filter_subject and not is_valid_subject(filter_subject.encode()):
        raise _invalid("invalid subject")
    if any(s == "" for s in filter_subjects):
        raise ApiError(10139)
    filters = filter_subjects or ([filter_subject] if filter_subject else [])
    for i, a in enumerate(filters):
        if not is_valid_subject(a.encode()):
            raise _invalid("invalid subject")
        for j, b in enumerate(filters):
            if i != j and subset_match(a.encode(), b.encode()):
                raise ApiError(10138)
    opt_seq = f.int("opt_start_seq", 0)
    opt_time = f.str("opt_start_time")
    words = {"all": "all", "last": "last", "last_per_subject": "last per subject",
             "new": "new"}
    if deliver_policy in words:
        w = words[deliver_policy]
        if opt_seq > 0:
            raise ApiError(10094, err="consumer delivery policy is deliver %s, but optional "
                           "start sequence is also set" % w)
        if opt_time:
            raise ApiError(10094, err="consumer delivery policy is deliver %s, but optional "
                           "start time is also set" % w)
        if deliver_policy == "last_per_subject" and not filters:
            raise ApiError(10094, err="consumer delivery policy is deliver last per subject, "
                           "but optional filter subject is not set")
    elif deliver_policy == "by_start_sequence":
        if opt_seq == 0:
            raise ApiError(10094, err="consumer delivery policy is deliver by start sequence, "
                           "but optional start sequence is not set")
        if opt_time:
            raise ApiError(10094, err="consumer delivery policy is deliver by start sequence, "
                           "but optional start time is also set")
    elif deliver_policy == "by_start_time":
        if not opt_time:
            raise ApiError(10094, err="consumer delivery policy is deliver by start time, but "
                           "optional start time is not set")
        if opt_seq:
            raise ApiError(10094, err="consumer delivery policy is deliver by start time, but "
                           "optional start sequence is also set")
        try:
            parse_rfc3339(opt_time)
        except ValueError:
            raise ApiError(10025, err="parsing time %s" % opt_time) from None
    sample = f.str("sample_freq")
    if sample:
        digits = sample[:-1] if sample.endswith("%") else sample
        if not digits.lstrip("-").isdigit() or int(digits) < 0:
            raise ApiError(10095, err='strconv.Atoi: parsing "%s": invalid syntax' % digits)
    if flow_control and heartbeat == 0:
        raise ApiError(10108)
    if durable and name and name != durable:
        raise ApiError(10132)
    metadata = f.strmap("metadata") or {}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_LEN:
        raise ApiError(10135, limit="%dKB" % (MAX_METADATA_LEN // 1024))
    groups = f.strs("priority_groups")
    if priority_policy != "none":
        if deliver_subject:
            raise ApiError(10178)
        if not groups:
            raise ApiError(10159)
    elif groups:
        raise ApiError(10196)
    # workqueue rules against the stream alone (others need the siblings: see stream)
    if retention == "workqueue":
        if ack_policy != "explicit" and deliver_subject:
            raise ApiError(10098)
        if deliver_policy != "all":
            raise ApiError(10101)
    if not durable and inactive == 0:
        inactive = DEFAULT_INACTIVE
    timeout = f.int("priority_timeout", 0)
    if priority_policy == "pinned_client" and not timeout:
        timeout = 120 * SECOND
    pushed = bool(deliver_subject)
    # Go's field order; the flag says whether Go writes the key when it is empty
    fields = (
        ("durable_name", durable, False), ("name", name or durable, False),
        ("description", description, False), ("deliver_policy", deliver_policy, True),
        ("opt_start_seq", opt_seq, False), ("opt_start_time", opt_time, False),
        ("ack_policy", ack_policy, True), ("ack_wait", ack_wait, False),
        ("max_deliver", max_deliver, True), ("backoff", backoff, False),
        ("filter_subject", filter_subject, False), ("filter_subjects", filter_subjects, False),
        ("replay_policy", replay, True), ("rate_limit_bps", rate_limit, False),
        ("sample_freq", f.str("sample_freq"), False),
        ("max_waiting", 0 if pushed else max_waiting, False),
        ("max_ack_pending", max_ack_pending, False), ("flow_control", flow_control, False),
        ("idle_heartbeat", heartbeat, False), ("headers_only", f.bool("headers_only"), False),
        ("max_batch", max_batch, False), ("max_expires", max_expires, False),
        ("max_bytes", max_bytes, False), ("deliver_subject", deliver_subject, False),
        ("deliver_group", f.str("deliver_group"), False),
        ("inactive_threshold", inactive, False), ("num_replicas", replicas, True),
        ("mem_storage", f.bool("mem_storage"), False), ("direct", f.bool("direct"), False),
        ("metadata", metadata, True),
        ("pause_until", f.str("pause_until"), False), ("priority_groups", groups, False),
        ("priority_policy", "" if priority_policy == "none" else priority_policy, False),
        ("priority_timeout", timeout if priority_policy != "none" else 0, False),
        ("sourcing", f.bool("sourcing"), False),
    )
    cfg = {key: value for key, value, always in fields if always or value}
    return cfg


def is_durable(cfg):
    return bool(cfg.get("durable_name"))


def same_config(a, b):
    def strip(c):
        c = dict(c)
        c["metadata"] = {k: v for k, v in (c.get("metadata") or {}).items()
                         if not k.startswith("_nats.")}
        c.pop("pause_until", None)
        return c
    return strip(a) == strip(b)
