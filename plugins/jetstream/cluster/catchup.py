"""Stream catch-up from the leader's store (JETSTREAM-CLUSTER.md section 3,
Go's ``$JSC.SYNC`` catch-up; the wire format is ours).

A member that installs a RAFT snapshot whose stream is ahead of its own store
(a server whose store directory was wiped, a new member added by a scale-up
or a peer remove after the log was compacted) asks the group for the
messages it misses before it applies anything after the snapshot:

* request to ``$JSC.SYNC.<group>``: JSON ``{"from": seq, "to": seq}``, reply
  to an inbox; only the group's leader answers (every member subscribes
  through the manager's one ``$JSC.SYNC.*`` subscription);
* answer: ``first u64, last u64`` (the leader's store), then records
  ``u32 len`` + a stream-message entry (:func:`.ops.encode_msg`), at most
  :data:`BATCH_BYTES` per answer; the member asks again from the sequence
  after the last record until it holds ``to``.

Messages are stored at their sequence (gaps become deleted sequences, as the
leader has them); messages below the leader's first sequence are compacted
away. What is copied is the leader's stored message: subject, headers, data
and timestamp (not its ``Nats-Msg-Id`` window nor a per-message TTL).
"""

import json
import secrets
import struct

import gevent.event

from ..store import StoreError
from . import ops

SYNC = "$JSC.SYNC."
BATCH_BYTES = 1 << 20
_HEAD = struct.Struct("<QQ")
_LEN = struct.Struct("<I")
REQUEST_TIMEOUT = 5.0
ATTEMPTS = 6


def serve(manager, subject, reply, payload):
    """The leader's side: answer one catch-up request for the group named in
    ``subject`` (silence when this server does not lead it)."""
    name = bytes(subject).decode("utf-8", "replace")[len(SYNC):]
    group = next((g for g in manager.groups.values() if g.name == name), None)
    if group is None or not group.ready or not reply:
        return
    try:
        req = json.loads(bytes(payload))
        lo, hi = int(req["from"]), int(req["to"])
    except (ValueError, KeyError, TypeError):
        return
    store = group.stream.store
    st = store.state()
    parts, size, seq = [_HEAD.pack(st.first_seq, st.last_seq)], 0, max(lo, 1)
    while seq <= hi and size < BATCH_BYTES:
        msg = store.load_next(None, seq)
        if msg is None or msg.seq > hi:
            break
        rec = ops.encode_msg(msg.seq, msg.ts, 0, "", msg.subject, b"", "", None,
                             bytes(msg.hdr or b""), bytes(msg.data))
        parts.append(_LEN.pack(len(rec)))
        parts.append(rec)
        size += len(rec)
        seq = msg.seq + 1
    manager.client.publish(reply, b"".join(parts), flush=True)


def fetch(manager, group, target):
    """The member's side: copy every message up to ``target`` that our store
    lacks from the group's leader. Runs in the group's RAFT greenlet (nothing
    after the snapshot is applied until the store holds it). Returns True
    when the store reached ``target``."""
    store = group.stream.store
    inbox = "$JSC.R.%s.%s" % (group.name, secrets.token_hex(6))
    answers = []
    ready = gevent.event.Event()

    def on_answer(sub, subject, reply, hdr, payload):
        answers.append(bytes(payload))
        ready.set()

    sub = manager.client.subscribe(inbox, on_answer)
    try:
        failures = 0
        while store.state().last_seq < target:
            nxt = store.state().last_seq + 1
            ready.clear()
            answers.clear()
            manager.client.publish(SYNC + group.name, json.dumps(
                {"from": nxt, "to": target}).encode(), reply=inbox, flush=True)
            if not ready.wait(REQUEST_TIMEOUT):
                failures += 1
                if failures >= ATTEMPTS:
                    group.log.warning("stream_catchup_failed", have=nxt - 1, want=target)
                    return False
                continue
            first, last, records = _parse(answers[0])
            if first > nxt and store.state().msgs == 0:
                store.compact(first)  # the leader no longer has those: nor do we
            for rec in records:
                seq, ts, _, _, subject, _, _, _, hdr, data = ops.decode_msg(rec)
                if seq > store.state().last_seq:
                    try:
                        store.store_raw(subject, hdr, data, seq, ts)
                    except StoreError as exc:
                        group.log.warning("stream_catchup_store_failed", seq=seq,
                                          error=str(exc))
                        return False
            if not records:
                # the rest were deleted on the leader: keep the sequence numbers
                have = store.state().last_seq
                if min(last, target) > have:
                    store.skip_msgs(have + 1, min(last, target) - have)
                if store.state().last_seq < target:
                    group.log.warning("stream_catchup_short", have=store.state().last_seq,
                                      want=target, leader_last=last)
                    return False
        group.log.info("stream_caught_up", last_seq=store.state().last_seq)
        return True
    finally:
        manager.client.unsubscribe(sub)


def _parse(buf):
    first, last = _HEAD.unpack_from(buf)
    pos, records = _HEAD.size, []
    while pos < len(buf):
        (n,) = _LEN.unpack_from(buf, pos)
        pos += _LEN.size
        records.append(buf[pos:pos + n])
        pos += n
    return first, last, records
