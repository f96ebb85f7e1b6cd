"""Consumer state persistence: one home for both stores.

A file consumer keeps ``state.dat`` (its ConsumerState) and ``meta.dat`` (the API layer's
config blob) in its own directory; each write goes to a temporary file renamed over the
old one, so a crash leaves the old or the new state, never half of one. Every file carries
a CRC32 so a damaged one reads as absent instead of as garbage.
"""

import json
import os
import shutil

from .types import ConsumerState
from .util import atomic_write, read_checked


def encode_state(state):
    return json.dumps([
        state.delivered_consumer_seq, state.delivered_stream_seq,
        state.ack_floor_consumer_seq, state.ack_floor_stream_seq,
        [[s, c, t] for s, (c, t) in state.pending.items()],
        [[s, n] for s, n in state.redelivered.items()],
    ], separators=(",", ":")).encode()


def decode_state(raw):
    dc, ds, ac, as_, pending, redelivered = json.loads(raw)
    return ConsumerState(dc, ds, ac, as_, {s: (c, t) for s, c, t in pending},
                         {s: n for s, n in redelivered})


class ConsumerStore:
    """One consumer's persisted state and config blob (``stream_store.consumer_store``)."""

    def update(self, state):
        """Persist ``state`` (file: atomic rename; fsync with sync_always)."""
        raise NotImplementedError

    def load(self):
        """The last state persisted, or None."""
        raise NotImplementedError

    def write_meta(self, blob):
        """Persist the API layer's consumer config blob."""
        raise NotImplementedError

    def read_meta(self):
        """The config blob, or None."""
        raise NotImplementedError

    def delete(self):
        raise NotImplementedError


class MemoryConsumerStore(ConsumerStore):
    def __init__(self, registry, name):
        self._registry = registry
        self.name = name
        self._state = None
        self._meta = None

    def update(self, state):
        # A copy, so later changes by the caller are not "persisted" by aliasing.
        self._state = decode_state(encode_state(state))

    def load(self):
        return self._state

    def write_meta(self, blob):
        self._meta = bytes(blob)

    def read_meta(self):
        return self._meta

    def delete(self):
        self._registry.pop(self.name, None)


class FileConsumerStore(ConsumerStore):
    def __init__(self, directory, name, fsync):
        self.name = name
        self.directory = directory
        self._fsync = fsync
        os.makedirs(directory, exist_ok=True)

    def update(self, state):
        atomic_write(os.path.join(self.directory, "state.dat"), encode_state(state), self._fsync)

    def load(self):
        raw = read_checked(os.path.join(self.directory, "state.dat"))
        if raw is None:
            return None
        try:
            return decode_state(raw)
        except (ValueError, TypeError):
            return None

    def write_meta(self, blob):
        atomic_write(os.path.join(self.directory, "meta.dat"), bytes(blob), self._fsync)

    def read_meta(self):
        return read_checked(os.path.join(self.directory, "meta.dat"))

    def delete(self):
        shutil.rmtree(self.directory, ignore_errors=True)

