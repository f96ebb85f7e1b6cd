"""A toy replicated state machine for the multi-process RAFT test, loaded with
``--plugin raftkv_plugin`` (the test puts this directory on PYTHONPATH).

Configuration by environment: ``RAFTKV_PEERS`` (server names of the group),
``RAFTKV_DIR`` (a directory per server under it), ``RAFTKV_SCALE`` (Go's
timers times this).

The state is the ordered list of unique operation ids applied. Only the
leader subscribes to ``kv.add`` (as a stream leader subscribes to its
subjects): a request's payload is an op id, answered after it commits
(``{"index", "dup"}``). ``kv.state.<server name>`` answers with a member's
local view (``RaftNode.status()`` and the op ids).
"""

import json
import os

from pluggy_nats import hookimpl
from pluggy_nats.accounts import GLOBAL_ACCOUNT
from pluggy_nats.internal import InternalClient
from pluggy_nats.raft import FileStorage, NotLeader, RaftConfig
from pluggy_nats.raft.node import RaftNode, node_id_for

SNAPSHOT_EVERY = 40


class ReplicatedCounter:
    def __init__(self, server):
        self.server = server
        self.ops = []
        self.seen = set()
        self.pending = {}   # log index -> reply subject (leader only)
        self.add_sub = None

    def start(self):
        server = self.server
        peers = [node_id_for(n) for n in os.environ["RAFTKV_PEERS"].split(",")]
        directory = os.path.join(os.environ["RAFTKV_DIR"], server.server_name)
        scale = float(os.environ.get("RAFTKV_SCALE", "0.1"))
        self.client = InternalClient(server, server.accounts.get_or_create(GLOBAL_ACCOUNT),
                                     "raftkv")
        self.node = RaftNode(server, "KV", FileStorage(directory), peers, apply=self.apply,
                             install_snapshot=self.install, leader_changed=self.leader_changed,
                             config=RaftConfig.scaled(scale))
        self.client.subscribe("kv.state.%s" % server.server_name, self.on_state)
        self.node.start()

    # -- the state machine ------------------------------------------------------------

    def apply(self, entry):
        op = entry.data.decode()
        dup = op in self.seen
        if not dup:
            self.seen.add(op)
            self.ops.append(op)
        reply = self.pending.pop(entry.index, None)
        if reply:
            self.client.publish(reply, json.dumps({"index": entry.index, "dup": dup}))
        if entry.index % SNAPSHOT_EVERY == 0:
            self.node.snapshot(json.dumps(self.ops).encode())

    def install(self, data, index):
        self.ops = json.loads(data)
        self.seen = set(self.ops)

    def leader_changed(self, leader, term):
        if self.node.is_leader and self.add_sub is None:
            self.add_sub = self.client.subscribe("kv.add", self.on_add)
        elif not self.node.is_leader and self.add_sub is not None:
            self.client.unsubscribe(self.add_sub)
            self.add_sub = None
            self.pending.clear()  # unanswered: the client retries

    # -- requests ---------------------------------------------------------------------

    def on_add(self, sub, subject, reply, headers, payload):
        try:
            index = self.node.propose(payload)
        except NotLeader:
            return  # no answer: the client retries
        if reply:
            self.pending[index] = reply

    def on_state(self, sub, subject, reply, headers, payload):
        self.client.publish(reply, json.dumps(dict(self.node.status(), ops=self.ops)))


@hookimpl
def nats_server_ready(server):
    ReplicatedCounter(server).start()
