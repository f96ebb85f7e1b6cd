"""RAFT consensus for replicated JetStream assets: one module owns the log.

* :mod:`.core`: the sans-IO state machine (:class:`RaftCore`);
* :mod:`.storage`: term/vote, log and snapshots (memory and file);
* :mod:`.messages`: entries, messages and their wire encoding;
* :mod:`.sim`: a deterministic in-memory network with fault injection and a
  safety checker, for tests;
* :mod:`.node`: :class:`RaftNode`, the driver that runs a core inside a server
  over internal ``$NRG.*`` subscriptions in the system account.
"""

from .core import ChangeInProgress, NotLeader, RaftConfig, RaftCore
from .messages import Entry
from .storage import CorruptLog, FileStorage, MemoryStorage, Snapshot

__all__ = ["ChangeInProgress", "CorruptLog", "Entry", "FileStorage", "MemoryStorage",
           "NotLeader", "RaftConfig", "RaftCore", "Snapshot"]
