"""The one place the plugin imports the store from (JS-STORE-API.md)."""

from .store import (  # noqa: F401  (re-exported)
    ConsumerState,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgSize,
    ErrMaxMsgsPerSubject,
    ErrStorageFull,
    ErrStoreClosed,
    StoreConfig,
    StoreError,
    gevent_group_commit,
    open_stream_store,
)
