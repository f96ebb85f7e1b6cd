"""The store's value types and errors (the interface in JS-STORE-API.md)."""

from dataclasses import dataclass, field


class StoreError(Exception):
    """Any failure of a store; the API layer maps it to an API error, never a traceback."""


class ErrMaxMsgs(StoreError):
    pass


class ErrMaxBytes(StoreError):
    pass


class ErrMaxMsgsPerSubject(StoreError):
    pass


class ErrMaxMsgSize(StoreError):
    pass


class ErrStoreClosed(StoreError):
    pass


class ErrStorageFull(StoreError):
    """The disk refused a write (ENOSPC, EDQUOT, EROFS, EACCES...)."""


@dataclass
class StoreConfig:
    """The limits the store enforces itself (as Go's filestore does)."""

    name: str
    subjects: list = ()
    max_msgs: int = -1
    max_bytes: int = -1
    max_age_ns: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard_new: bool = False
    discard_new_per_subject: bool = False
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl_ns: int = 0
    block_size: int = 0
    sync_always: bool = False


@dataclass
class StoredMsg:
    subject: str
    seq: int
    ts: int
    hdr: bytes
    data: bytes


@dataclass
class StreamState:
    msgs: int
    bytes: int
    first_seq: int
    first_ts: int
    last_seq: int
    last_ts: int
    num_subjects: int
    num_deleted: int
    deleted: list = None
    # Sequences found corrupt or torn when the store was opened (file store only).
    lost: list = None
    lost_bytes: int = 0


@dataclass
class ConsumerState:
    delivered_consumer_seq: int = 0
    delivered_stream_seq: int = 0
    ack_floor_consumer_seq: int = 0
    ack_floor_stream_seq: int = 0
    pending: dict = field(default_factory=dict)  # stream seq -> (consumer seq, ts)
    redelivered: dict = field(default_factory=dict)  # stream seq -> extra deliveries
