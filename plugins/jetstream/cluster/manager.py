"""Clustered JetStream on one server: the meta group ``_pn_meta_`` and the
stream groups this server is a peer of (JETSTREAM-CLUSTER.md sections 2, 3).

* Peers: every one of our JetStream servers in the cluster publishes
  ``$JSC.HELLO`` (name, id, cluster, tags) in the system account each
  second; the others learn it over the routes. The meta group is founded
  once as many servers as the configuration names (the route URLs, ours
  counted once) have said hello; later servers are added by the meta leader.
  A Go nats-server never says hello, and our group has its own name and
  wire format, so Go's ``_meta_`` and ours never share a peer: both run.
* The meta leader alone turns API requests into entries (:mod:`.capi`);
  every server applies the committed entries (:class:`.meta.MetaState`) and
  starts or stops the stream groups it is a peer of (:mod:`.replica`).
* A leaf server with a system-account remote and the hub's domain joins
  the hub's meta group as an observer that never leads (:mod:`.extend`).
* Timers are Go's; ``PLUGGY_NATS_RAFT_SCALE`` (tests only) multiplies them.
"""

import os
import time

import gevent
import structlog

from pluggy_nats.internal import InternalClient
from pluggy_nats.raft import ChangeInProgress, FileStorage, NotLeader, RaftConfig
from pluggy_nats.raft.node import RaftNode, node_id_for

from ...monitor.endpoints import go_duration
from .. import advisories
from ..headers import parse_rfc3339
from ..jsonreq import dumps
from . import admin, catchup, extend, moves
from . import meta as M
from .capi import ClusterApi
from .replica import StreamGroup

META_GROUP = "_pn_meta_"
HELLO = "$JSC.HELLO"
HELLO_INTERVAL = 1.0
OFFLINE_AFTER = 5.0          # seconds without a hello: the peer counts as offline
META_SNAPSHOT_ENTRIES = 256
T = "io.nats.jetstream.api.v1."
CONSUMER_GRACE = 5 * 10**9   # ns a new consumer may be missing before /healthz says so (Go)


def check_clustered(js):
    """``(clustered, route manager or None, extend)``: whether JetStream runs
    clustered here, with Go's refusals (no cluster name, no routes and no
    system-account leaf to extend over, a bad ``extension_hint``):
    :func:`.extend.mode`."""
    return extend.mode(js, structlog.get_logger("pluggy_nats.jetstream.cluster"))


def _consumer_health(group, ca):
    """Why a consumer assigned to a current stream group is not, or None: it
    must run here, after Go's grace of 5 s for one just created."""
    stream = group.stream
    if stream is not None and ca["name"] in stream.consumers:
        return None
    try:
        age = time.time_ns() - parse_rfc3339(ca.get("created") or "")
    except ValueError:
        age = CONSUMER_GRACE
    return None if age < CONSUMER_GRACE else "consumer not found"


def _host_port(url, default):
    text = url.split("://", 1)[-1].rsplit("@", 1)[-1].rstrip("/")
    host, _, port = text.rpartition(":")
    return host, int(port) if port.isdigit() else default


def _expected_size(route, gateway=None):
    """Servers named by the configuration (Go: configured routes plus gateway
    URLs): the route URLs, ours counted once, and every other cluster's
    gateway URLs, since one meta group spans the super-cluster."""
    own = route.config.port
    others = set()
    for url in route.config.routes:
        host, port = _host_port(url, 6222)
        if port == own and host.strip("[]") in ("127.0.0.1", "localhost", "0.0.0.0", "::1",
                                                route.config.host):
            continue
        others.add((host, port))
    remote = set()
    if gateway is not None:
        for gw in gateway.config.gateways:
            if gw.name != gateway.name and not gw.implicit:
                remote.update(_host_port(url, 7222) for url in gw.urls)
    return max(2, len(others) + 1 + len(remote))


class ClusterManager:
    """``route`` is None on a leaf server that runs clustered only to extend
    its hub's JetStream (``extend``, :mod:`.extend`): its cluster is then
    its server name, as Go's."""

    def __init__(self, js, route, extend_hub=False):
        self.js = js
        self.server = js.server
        self.route = route
        self.extend = extend_hub  # a system-account leaf remote may extend a hub's JetStream
        self.id = node_id_for(self.server.server_name)
        self.cluster_name = route.config.name if route is not None else \
            self.server.server_name
        self.gateway = self.server.pluginmanager.get_plugin("gateway-manager")
        self.peers = {}           # node id -> PeerInfo
        self.seen = {}            # node id -> monotonic time of the last hello
        self.state = M.MetaState()
        self.groups = {}          # (account, stream) -> StreamGroup
        self.meta = None
        self.api = ClusterApi(self)
        self.client = None
        self.since_snapshot = 0
        self._foreign = set()     # routed servers with another JetStream (logged once)
        self.expected = _expected_size(route, self.gateway) if route is not None else 1
        self.sides = {}           # node id -> True when it extends a hub over a leaf link
        self.migrated = set()     # accounts whose leaf remote is away (jetstream_cluster_migrate)
        self.ext_state = extend.ExtensionState(self.meta_dir())
        self.link_seen = None     # extend.EXTENDED / NOT_EXTENDED seen before the meta node ran
        self.boot = time.time_ns()   # tells a restarted peer from one still running
        self.boots = {}           # node id -> the boot its last hello carried
        self.stream_leaders = {}  # group name -> node id leading it (from hellos)
        self.disabled = False     # removed from the meta group (admin.disable)
        self.was_member = False
        self.admin = admin.Admin(self)
        self.moves = moves.Moves(self)
        self.log = structlog.get_logger("pluggy_nats.jetstream.cluster")
        self._add_self()

    def _add_self(self):
        opts = self.server.options
        self.peers[self.id] = M.PeerInfo(self.id, self.server.server_name, self.cluster_name,
                                         set(opts.server_tags or ()))
        self.seen[self.id] = float("inf")

    # -- life -------------------------------------------------------------------------

    def raft_config(self):
        scale = float(os.environ.get("PLUGGY_NATS_RAFT_SCALE", "1") or 1)
        return RaftConfig.scaled(scale) if scale != 1 else RaftConfig()

    def meta_dir(self):
        return os.path.join(self.js.config.jetstream_dir(), "$SYS", "_js_", META_GROUP)

    def start(self):
        system = self.server.accounts.system_account
        self.client = InternalClient(self.server, system, "$JSC")
        self.client.subscribe(HELLO, self._on_hello)
        for jsa in self.js.accounts.values():
            self.api.serve_account(jsa)  # later accounts: JsAccount.start
        self.client.subscribe(catchup.SYNC + "*", lambda sub, subject, reply, hdr, payload:
                              catchup.serve(self, subject, reply, payload))
        self.admin.start()
        self.moves.start()
        self.server.spawn(self._hello_loop)
        self.server.spawn(self._moves_loop)
        self.server.spawn(self._bootstrap)
        self.log.info("Starting JetStream cluster", meta_group=META_GROUP,
                      expected_peers=self.expected)

    def stop(self):
        for group in list(self.groups.values()):
            group.stop()
        self.groups.clear()
        if self.meta is not None:
            self.meta.stop()
        if self.client is not None:
            self.client.close()

    def _room(self):
        """Bytes left for placement in max_file and max_mem (Go: the limit
        minus what is used)."""
        cfg = self.js.config
        mem = store = 0
        for jsa in self.js.accounts.values():
            m, f = jsa.usage()
            mem, store = mem + m, store + f
        max_mem, max_store = cfg.effective_max_memory(), cfg.effective_max_store()
        return (max(max_store - store, 0) if max_store >= 0 else 1 << 50,
                max(max_mem - mem, 0) if max_mem >= 0 else 1 << 50)

    def _hello(self):
        opts, cfg = self.server.options, self.js.config
        available, available_memory = self._room()
        return {"id": self.id, "name": self.server.server_name, "cluster": self.cluster_name,
                "tags": list(opts.server_tags or ()), "domain": cfg.domain or "",
                "boot": self.boot, "available": available,
                "available_memory": available_memory,
                "leads": sorted(g.name for g in self.groups.values() if g.ready),
                "observer": self.observer}

    @property
    def observer(self):
        """Our meta node is an observer: this server extends a hub's JetStream
        over a leaf link (the leaf side of the link)."""
        return self.meta is not None and self.meta.observer

    def migrate(self, account, away):
        """``jetstream_cluster_migrate`` (the ``nats_leafnode_migrate`` hook):
        while ``account``'s leaf remote is away, our members of its
        replicated streams are observers (a leader hands its lead on), as
        Go's ``checkJetStreamMigrate``; back, they may lead again
        (``clearObserverState``). R1 streams keep leading (Go: no RAFT node).
        The meta group is never touched."""
        if away:
            self.migrated.add(account)
        else:
            self.migrated.discard(account)
        for (name, _stream), group in list(self.groups.items()):
            if name == account:
                group.follow_migration()

    def across_link(self, pid):
        """True when ``pid`` is on the other side of an extending leaf link:
        the account's ``$JS.API`` does not reach it (denied on the link)."""
        return pid != self.id and self.sides.get(pid, False) != self.observer

    def _hello_loop(self):
        started = time.monotonic()
        while not self.disabled:
            self.client.publish(HELLO, dumps(self._hello()))
            try:
                self._tick()
            except Exception:
                self.log.exception("cluster_tick_failed")
            if time.monotonic() - started > 3 * HELLO_INTERVAL:
                self._note_foreign_jetstream()
            gevent.sleep(HELLO_INTERVAL)

    def _tick(self):
        """Each second: the meta leader adds new servers and re-places streams
        of servers that left; every stream group follows its assignment; a
        server taken out of the meta group disables its JetStream."""
        meta = self.meta
        if meta is None:
            return
        if self.id in meta.peers:
            self.was_member = True
        elif self.was_member and meta.peers:
            meta.stop()
            admin.disable(self)
            return
        if meta.is_leader and self.admin.removing is None:
            self._add_new_peers()
            self.admin.replace_missing()
        for key, group in list(self.groups.items()):
            if admin.reconcile(self, group):
                self._drop_group(key)

    def _moves_loop(self):
        """Groups in the middle of a move follow their assignment every RAFT
        heartbeat, not only each second (the same with Go's timers;
        ``PLUGGY_NATS_RAFT_SCALE`` makes moves in tests as much faster)."""
        interval = self.raft_config().heartbeat
        if interval >= HELLO_INTERVAL:
            return  # the tick does it
        while not self.disabled:
            gevent.sleep(interval)
            for key, group in list(self.groups.items()):
                if moves.desired(group.sa) and admin.reconcile(self, group):
                    self._drop_group(key)

    def _note_foreign_jetstream(self):
        """A routed server that never said hello (a Go nats-server) is not
        waited for at bootstrap; one with JetStream gets a log line saying
        the two JetStream clusters stay apart."""
        known = {info.name for info in self.peers.values()}
        for peer in (self.route.peers if self.route is not None else ()):
            for conn in peer.links():
                info = getattr(conn, "remote_info", None) or {}
                name = info.get("server_name") or conn.remote_name
                if name and name not in known and name not in self._foreign:
                    self._foreign.add(name)
                    if not info.get("jetstream"):
                        break
                    self.log.warning(
                        "JetStream: server %s in cluster %s runs another JetStream "
                        "(nats-server); its meta group _meta_ and ours %s stay separate: "
                        "streams are not replicated across them" % (
                            name, self.cluster_name, META_GROUP), peer=name)
                break
        self._note_foreign_extension(known)

    def _note_foreign_extension(self, known):
        """A system-account leaf link with the same domain whose peer runs
        JetStream but never said hello (a Go nats-server): its ``_meta_``
        and our group never mix, so the link extends nothing; said once, with
        what to do when this server is the waiting observer."""
        leaf = self.server.pluginmanager.get_plugin("leafnode-manager")
        system = self.server.accounts.system_account
        if leaf is None or system is None:
            return

        def name_of(conn):
            info = getattr(conn, "remote_info", None) or {}
            return info.get("server_name") or info.get("name") or conn.remote_name

        # A Go leaf's CONNECT says "jetstream" only on the links of accounts
        # with JetStream (never the system account's); a hub's INFO on all.
        with_js = {name_of(c) for c in leaf.links if (c.remote_info or {}).get("jetstream")}
        for conn in leaf.links:
            name, info = name_of(conn), conn.remote_info or {}
            if conn.bound_account is not system or name not in with_js \
                    or time.time() - conn.start < 3 * HELLO_INTERVAL \
                    or (info.get("domain") or "") != (self.js.config.domain or "") \
                    or not name or name in known or name in self._foreign:
                continue  # (one of ours says hello within a second of the link)
            self._foreign.add(name)
            self.log.warning(
                "JetStream: leaf server %s shares the system account and domain but runs "
                "another JetStream (nats-server); its meta group _meta_ and ours %s never "
                "mix, so JetStream is not extended across this link%s" % (
                    name, META_GROUP, (": this server waits for a meta leader (10008); give "
                                       "it another domain, or leave out extension_hint: "
                                       "will_extend") if self.observer else ""), peer=name)

    def _on_hello(self, sub, subject, reply, hdr, payload):
        try:
            import json

            hello = json.loads(bytes(payload))
            pid, name = hello["id"], hello["name"]
        except (ValueError, KeyError, TypeError):
            return
        if pid == self.id or (hello.get("domain") or "") != (self.js.config.domain or ""):
            return
        if pid not in self.peers:
            self.log.info("jetstream_peer_seen", peer=name, id=pid)
        self._foreign.discard(name)
        info = M.PeerInfo(pid, name, hello.get("cluster") or "", set(hello.get("tags") or ()))
        for key in ("available", "available_memory"):
            if isinstance(hello.get(key), int):
                setattr(info, key, hello[key])
        self.peers[pid] = info
        self.boots[pid] = hello.get("boot")
        self.sides[pid] = hello.get("observer") is True
        for gname, leader in list(self.stream_leaders.items()):
            if leader == pid:
                del self.stream_leaders[gname]
        for gname in hello.get("leads") or ():
            self.stream_leaders[gname] = pid
        self.seen[pid] = time.monotonic()

    def _bootstrap(self, found=False):
        """Start the meta node: from its log, else as a founder once the
        configured servers said hello, else (a leaf extending its hub, an
        observer) with no peers: the hub's meta leader adds it. ``found``: a
        leaf whose link showed another domain founds its own group."""
        storage = FileStorage(self.meta_dir(), fsync=self.js.config.sync_always)
        recovering = storage.last_index > 0 or storage.snapshot_index > 0
        observer = extend.initial_observer(self, recovering) if self.extend and not found \
            else False
        if self.link_seen == extend.EXTENDED:
            observer = True
        elif self.link_seen == extend.NOT_EXTENDED:
            observer = False
        if recovering:
            founders = []  # the log knows the group
        elif observer:
            founders = []  # joins the hub's group
        else:
            stable_since, count = time.monotonic(), 0
            while self.link_seen != extend.EXTENDED or found:
                online = [p for p in self.peers if self.peer_online(p)
                          and not (found and self.sides.get(p))]
                if len(online) != count:
                    count, stable_since = len(online), time.monotonic()
                want = max(2 if self.route is not None else 1,
                           self.expected - len(self._foreign))
                if count >= want and time.monotonic() - stable_since >= HELLO_INTERVAL:
                    break
                gevent.sleep(0.1)
            else:
                observer, online = True, []  # the link came up meanwhile: join the hub's
            founders = sorted(online)
        node = RaftNode(self.server, META_GROUP, storage, founders, apply=self._apply,
                        install_snapshot=self._install,
                        leader_changed=self._leader_changed, config=self.raft_config())
        node.set_observer(observer)
        self.meta = node
        node.start()
        self.log.info("jetstream_meta_group_started", observer=observer,
                      peers=[self.peer_name(p) for p in founders])

    # -- a leaf link extending (or not) a hub's JetStream (extend.py) -----------------

    def link_extended(self, hub):
        """The system-account link showed the same domain: observer from now
        on. A meta log this server built as a non-observer is dropped (the
        hub's group is the one; Go's ``Reset``)."""
        self.log.info('Extending JetStream domain "%s" as System Account connected from '
                      "server %s" % (self.js.config.domain or "", hub))
        meta = self.meta
        self.ext_state.write(extend.EXTENDED)
        if meta is None:
            self.link_seen = extend.EXTENDED
            return
        if meta.observer:
            return
        self.log.info("Turning JetStream metadata controller Observer Mode on - System "
                      "Account Connected")
        self._restart_meta(observer=True)

    def link_not_extended(self):
        """The system-account link showed another domain: our own meta group
        elects (Go turns observer mode off and campaigns)."""
        meta = self.meta
        self.ext_state.write(extend.NOT_EXTENDED)
        if meta is None:
            self.link_seen = extend.NOT_EXTENDED
            return
        if not meta.observer:
            return
        self.log.info("Turning JetStream metadata controller Observer Mode off")
        if self.id in meta.peers:
            meta.set_observer(False)
        else:
            self._restart_meta(observer=False)  # never joined a group: found our own

    def _restart_meta(self, observer):
        """Drop the meta log and state and start again: as an observer
        joining the hub's group, or as a founder of our own."""
        meta, self.meta = self.meta, None
        if meta is not None:
            meta.stop()
        for group in list(self.groups.values()):
            group.stop()
        self.groups.clear()
        self.state = M.MetaState()
        self.was_member = False
        import shutil

        for name in os.listdir(self.meta_dir()) if os.path.isdir(self.meta_dir()) else ():
            if name != extend.STATE_FILE:
                path = os.path.join(self.meta_dir(), name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
        self.link_seen = extend.EXTENDED if observer else extend.NOT_EXTENDED
        self.server.spawn(self._bootstrap, not observer)

    def _add_new_peers(self):
        for pid in sorted(self.peers):
            # every cluster of the super-cluster (same domain: hello checks it)
            if pid not in self.meta.peers and self.peer_online(pid) and \
                    self.admin.may_add(pid):
                try:
                    self.meta.add_peer(pid)
                    self.log.info("jetstream_meta_peer_added", peer=self.peer_name(pid))
                except (ChangeInProgress, NotLeader, ValueError):
                    pass
                return  # one change at a time

    # -- peers ------------------------------------------------------------------------

    def health(self, problems, meta_only=False, account="", stream="", consumer=""):
        """/healthz in a cluster (Go's healthz): the meta group first, then
        every stream group this server is a member of with its consumers, or
        only those of ``account`` (``stream``, ``consumer``): 404 when the
        meta state has none there for this server. Our consumers have no
        RAFT group of their own (their state rides the stream's entries, and
        a consumer is created by one): a consumer is current when its stream
        group is and it runs here."""
        meta = self.meta
        if meta is None or meta.leader is None:
            problems.append({"type": "JETSTREAM", "error":
                             "JetStream has not established contact with a meta leader"})
            return
        if not meta.healthy():
            problems.append({"type": "JETSTREAM",
                             "error": "JetStream is not current with the meta leader"})
            return
        if meta_only:
            return
        selected = self._health_selection(problems, account, stream, consumer)
        for (acc, name), group in selected:
            err = group.health_error()
            if err:
                problems.append({"type": "STREAM", "account": acc, "stream": name,
                                 "error": "JetStream stream '%s > %s' is not current: %s"
                                 % (acc, name, err)})
                continue
            sa = self.state.stream(acc, name) or {}
            for cname in sorted(sa.get("consumers") or ()):
                if consumer and cname != consumer:
                    continue
                cerr = _consumer_health(group, sa["consumers"][cname])
                if cerr:
                    problems.append({"type": "CONSUMER", "account": acc, "stream": name,
                                     "consumer": cname, "error":
                                     "JetStream consumer '%s > %s > %s' is not current: %s"
                                     % (acc, name, cname, cerr)})

    def _health_selection(self, problems, account, stream, consumer):
        """The (key, group) pairs /healthz checks; a not-found problem (and
        nothing to check) when the named account, stream or consumer has no
        assignment for this server (Go: account among the assignments,
        stream and consumer with this server among their peers)."""
        from ..monitor import not_found

        mine = sorted(self.groups.items())
        if not account:
            return mine
        if not any(sa["client"]["account"] == account for sa in self.state.streams.values()):
            problems.append(not_found(account))
            return []
        if not stream:
            return [(key, g) for key, g in mine if key[0] == account]
        group = self.groups.get((account, stream))
        sa = self.state.stream(account, stream)
        if group is None or sa is None:
            problems.append(not_found(account, stream))
            return []
        if consumer and consumer not in sa["consumers"] and (
                group.stream is None or consumer not in group.stream.consumers):
            problems.append(not_found(account, stream, consumer))
            return []
        return [((account, stream), group)]

    def peer_online(self, pid):
        return time.monotonic() - self.seen.get(pid, float("-inf")) < OFFLINE_AFTER

    def peer_name(self, pid):
        info = self.peers.get(pid)
        return info.name if info is not None else pid

    def peer_id(self, name):
        for pid, info in self.peers.items():
            if info.name == name or pid == name:
                return pid
        return None

    def placement_peers(self):
        """PeerInfo of the meta group's members, offline and load filled in."""
        out = []
        members = self.meta.peers if self.meta is not None else set()
        for pid in members:
            info = self.peers.get(pid) or M.PeerInfo(pid, pid, self.cluster_name)
            info.offline = not self.peer_online(pid)
            info.streams = sum(1 for sa in self.state.streams.values()
                               if pid in sa["group"]["peers"])
            info.ha_assets = info.streams
            if pid == self.id:
                info.available, info.available_memory = self._room()
            out.append(info)
        return out

    @property
    def meta_leader(self):
        return self.meta.leader if self.meta is not None else None

    @property
    def is_meta_leader(self):
        return self.meta is not None and self.meta.is_leader

    # -- the meta log -----------------------------------------------------------------

    def propose(self, data):
        self.meta.propose(data)

    def _apply(self, entry):
        data = bytes(entry.data)
        try:
            op, body = M.decode_op(data)
        except (ValueError, IndexError):
            self.log.warning("meta_entry_unreadable", index=entry.index)
            return
        for change in self.state.apply(data):
            self._act(change)
        if self.is_meta_leader and body.get("reply") and op == M.REMOVE_STREAM:
            self.client_for(body["client"]["account"]).publish(body["reply"], dumps(
                {"type": T + "stream_delete_response", "success": True}), flush=False)
        self.since_snapshot += 1
        if self.since_snapshot >= META_SNAPSHOT_ENTRIES:
            self.since_snapshot = 0
            self.meta.snapshot(self.state.snapshot())
        self.server.flush_touched()

    def _install(self, data, index):
        for change in self.state.restore(data):
            self._act(change)

    def client_for(self, account):
        jsa = self.js.accounts.get(account)
        return jsa.client if jsa is not None else self.client

    def _act(self, change):
        kind, account, stream, consumer, sa = change
        key = (account, stream)
        group = self.groups.get(key)
        try:
            if kind == "stream_added" or (kind == "stream_updated" and group is None):
                jsa = self.js.accounts.get(account)
                if jsa is None or self.id not in sa["group"]["peers"]:
                    return
                group = StreamGroup(self, jsa, sa)
                # added to a running group (peer remove, scale up): a learner
                # until its leader has caught it up
                group.joining = kind == "stream_updated"
                self.groups[key] = group.start()
            elif kind == "stream_updated":
                group.update(sa)
                if admin.reconcile(self, group):
                    self._drop_group(key)
            elif kind == "stream_removed" and group is not None:
                del self.groups[key]
                group.stop(delete=True)
                from .. import advisories

                advisories.stream_action(group.jsa, stream, "delete")
        except Exception:
            self.log.exception("meta_change_failed", change=kind, stream=stream,
                               consumer=consumer)

    def _drop_group(self, key):
        """Taken out of a stream's group: stop it and delete our copy."""
        group = self.groups.pop(key, None)
        if group is not None:
            group.stop(delete=True)

    def _leader_changed(self, leader, term):
        self.log.info("jetstream_meta_leader", leader=self.peer_name(leader) if leader else None,
                      term=term)
        if leader is not None and leader == self.id:
            advisories.domain_leader_elected(self.client, self.server.server_name,
                                             self.meta_cluster().get("replicas", []),
                                             self.cluster_name, self.js.config.domain)

    # -- views ------------------------------------------------------------------------

    def meta_cluster(self):
        """/jsz ``meta_cluster`` (Go's MetaClusterInfo: ``peer`` is the leader's id)."""
        node = self.meta
        out = {"name": self.cluster_name, "cluster_size": self.expected, "quorum_needed":
               self.expected // 2 + 1, "pending": 0, "pending_requests": 0,
               "pending_infos": 0}
        if node is None or self.disabled:
            return out
        peers = sorted(node.peers)
        out["cluster_size"] = len(peers)
        out["quorum_needed"] = len(peers) // 2 + 1
        if node.leader:
            out["leader"] = self.peer_name(node.leader)
            out["peer"] = node.leader
        replicas = []
        now = time.monotonic()
        for pid in peers:
            if node.leader and pid == self.id:
                continue  # Go: every peer but this server (all while leaderless)
            seen = self.seen.get(pid)
            entry = {"name": self.peer_name(pid), "current": self.peer_online(pid),
                     "active": 0 if seen in (None, float("inf")) else int((now - seen) * 1e9),
                     "peer": pid}
            if not self.peer_online(pid):
                entry["offline"] = True
            replicas.append(entry)
        if replicas:
            out["replicas"] = replicas
        storage = node.storage
        out["snapshot"] = {"pending_entries": max(storage.last_index - storage.snapshot_index, 0),
                           "pending_size": 0, "last_time": "0001-01-01T00:00:00Z"}
        return out

    def raftz(self, query=None):
        """/raftz as Go's: ``{account: {group: RaftzGroup}}``; every group of
        ours is in the system account. ``?acc=`` and ``?group=`` filter."""
        query = query or {}
        system = self.server.accounts.system_account
        account = query.get("acc") or (system.name if system is not None else "")
        wanted = query.get("group") or ""
        if system is None or account != system.name:
            return {}
        nodes = [(META_GROUP, self.meta)] + [(g.name, g.node) for g in self.groups.values()]
        out = {}
        for name, node in nodes:
            if node is not None and (not wanted or name == wanted):
                out[name] = self._raftz_group(node)
        return {account: out} if out else {}

    def _raftz_group(self, node):
        status = node.status()
        size = len(node.peers)
        peers = {}
        for pid, peer in status["peers"].items():
            entry = {"name": self.peer_name(pid), "known": not peer.get("learner")}
            if peer["last_replicated_index"]:
                entry["last_replicated_index"] = peer["last_replicated_index"]
            if peer["last_seen"] is not None:
                entry["last_seen"] = go_duration(peer["last_seen"] * 1e9)
            peers[pid] = entry
        out = {"id": node.id, "state": status["state"].upper(), "size": size,
               "quorum_needed": size // 2 + 1, "committed": status["committed"],
               "applied": status["applied"], "ever_had_leader": bool(status["leader"]),
               "term": status["term"], "pterm": status["pterm"], "pindex": status["pindex"],
               "system_account": True, "traffic_account":
                   self.server.accounts.system_account.name,
               "ipq_proposal_len": 0, "ipq_entry_len": 0, "ipq_resp_len": 0,
               "ipq_apply_len": 0, "peers": peers,
               # ours: where the log was compacted
               "snapshot_index": status["snapshot_index"]}
        if node.observer:
            out["observer"] = True  # Go: omitempty
        if status["leader"]:
            out["leader"] = status["leader"]
        if status["voted_for"]:
            out["voted_for"] = status["voted_for"]
        return out
