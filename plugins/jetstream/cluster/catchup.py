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
  :data:`BATCH_BYTES` per answer and always below the server's
  ``max_payload`` (a bigger message makes the receiving route close the
  link); the member asks again from the sequence after the last record
  until it holds ``to``.

The member keeps asking until it holds ``to`` (whoever leads by then
answers): it answers the snapshot only then (``RaftNode._flush`` installs
before it sends), so it never counts in a quorum without the messages.

Messages are stored at their sequence (gaps become deleted sequences, as the
leader has them); messages below the leader's first sequence are compacted
away. What is copied is the leader's stored message: subject, headers, data
and timestamp (not a per-message TTL); the member rebuilds its
``Nats-Msg-Id`` window from them (``Stream.rebuild_dedup``).
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
WARN_EVERY = 6     # failed requests between two warnings


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
    limit = min(BATCH_BYTES, manager.server.options.max_payload - 1024)
    parts, size, seq = [_HEAD.pack(st.first_seq, st.last_seq)], _HEAD.size, max(lo, 1)
    while seq <= hi:
        msg = store.load_next(None, seq)
        if msg is None or msg.seq > hi:
            break
        rec = ops.encode_msg(msg.seq, msg.ts, 0, "", msg.subject, b"", "", None,
                             bytes(msg.hdr or b""), bytes(msg.data))
        if size + _LEN.size + len(rec) > limit and len(parts) > 1:
            break  # the rest in the next answer
        parts.append(_LEN.pack(len(rec)))
        parts.append(rec)
        size += _LEN.size + len(rec)
        seq = msg.seq + 1
    manager.client.publish(reply, b"".join(parts), flush=True)


def fetch(manager, group, target):
    """The member's side: copy every message up to ``target`` that our store
    lacks from the group's leader. Runs in the group's RAFT greenlet (nothing
    after the snapshot is applied, and the snapshot is not answered, until
    the store holds it), asking again until it does: a member without the
    messages must not go on as one that has them. Stopping the group kills
    the greenlet."""
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
            if failures:
                if failures % WARN_EVERY == 0:
                    group.log.warning("stream_catchup_stalled", have=nxt - 1, want=target)
                gevent.sleep(min(0.1 * failures, 1.0))
            ready.clear()
            answers.clear()
            manager.client.publish(SYNC + group.name, json.dumps(
                {"from": nxt, "to": target}).encode(), reply=inbox, flush=True)
            if not ready.wait(REQUEST_TIMEOUT):
                failures += 1
                continue
            first, last, records = _parse(answers[0])
            if first > nxt and store.state().msgs == 0:
                store.compact(first)  # the leader no longer has those: nor do we
            try:
                for rec in records:
                    seq, ts, _, _, subject, _, _, _, hdr, data = ops.decode_msg(rec)
                    if seq > store.state().last_seq:
                        store.store_raw(subject, hdr, data, seq, ts)
            except StoreError as exc:
                group.log.warning("stream_catchup_store_failed", error=str(exc))
                failures += 1
                continue
            if not records:
                # the rest were deleted on the leader: keep the sequence numbers
                have = store.state().last_seq
                if min(last, target) > have:
                    store.skip_msgs(have + 1, min(last, target) - have)
                if store.state().last_seq < target:
                    # a leader behind the snapshot (it is not: ask again)
                    group.log.warning("stream_catchup_short", have=store.state().last_seq,
                                      want=target, leader_last=last)
                    failures += 1
            else:
                failures = 0
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
