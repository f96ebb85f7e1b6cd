"""JetStream storage: a file store and a memory store behind one interface.

``open_stream_store(kind, directory, config)`` is the only constructor the API layer
uses; see JS-STORE-API.md and docs/architecture.md (JetStream storage).
"""

from .base import StreamStore
from .consumer import ConsumerStore
from .filestore import FileStore
from .groupcommit import GroupCommit, gevent_group_commit
from .memstore import MemoryStore
from .types import (
    ConsumerState,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgSize,
    ErrMaxMsgsPerSubject,
    ErrStorageFull,
    ErrStoreClosed,
    StoreConfig,
    StoredMsg,
    StoreError,
    StreamState,
)


def open_stream_store(kind, directory, config):
    """kind "file" (directory required, created if missing, recovered if present) or
    "memory". Raises StoreError (ErrStorageFull when the disk refuses) on failure."""
    if kind == "memory":
        return MemoryStore(config)
    if kind == "file":
        if not directory:
            raise StoreError("a file store needs a directory")
        return FileStore(directory, config)
    raise StoreError("unknown store kind %r" % (kind,))


__all__ = [
    "open_stream_store", "StreamStore", "FileStore", "MemoryStore", "StoreConfig",
    "StoredMsg", "StreamState", "ConsumerStore", "ConsumerState", "StoreError",
    "ErrMaxMsgs", "ErrMaxBytes", "ErrMaxMsgsPerSubject", "ErrMaxMsgSize", "ErrStoreClosed",
    "ErrStorageFull", "GroupCommit", "gevent_group_commit",
]
