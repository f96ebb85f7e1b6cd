"""Clustered JetStream: the meta group's assignments (:mod:`.meta`), on the
RAFT module :mod:`pluggy_nats.raft`."""
