"""Stream snapshot and restore over the API (``STREAM.SNAPSHOT`` /
``STREAM.RESTORE``), with nats-server's chunk protocol (jetstream_api.go
streamSnapshot, processStreamRestore) so that ``nats stream backup/restore``
and raw clients following Go's protocol work unchanged.

Snapshot: the API answers ``{config, state}``, then chunks (default 128 KiB)
go to the request's ``deliver_subject``, each with the reply
``$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<n>`` the client answers; at most
``window_size / chunk_size`` chunks are unanswered. The last chunk (shorter)
has no reply; an empty message with status ``204`` ends it (``408 No Flow
Response`` after 5 s without an ack, ``408 No Interest`` when the receiver
left, ``500 <error>``).

Restore: the API answers ``{deliver_subject}`` (``$JS.SNAPSHOT.RESTORE.<stream>
.<id>``); the client sends every chunk as a request there and waits for the
empty answer; an empty request ends it and is answered with a
``stream_create_response``. 5 s without a chunk abandons it.

The archive is ours, not Go's (Go's is its file store's block files in an S2
tar): a gzip'd tar of ``stream.json`` (config, created, state),
``msgs/NNNNNNNN`` members of records and ``consumers/<name>.json`` (config,
created, state), so it is store-neutral (file and memory streams) and can be
read with ``tar tzf``. A nats-server snapshot sent to us is refused with
10062 on its first chunk, before anything is written.
"""

import gzip
import io
import json
import secrets
import struct
import tarfile
import time
import zlib

import gevent
import gevent.queue

from . import advisories
from . import headers as H
from .errors import ApiError
from .jsonreq import Fields, dumps, loads
from .store import StoreError
from .store.consumer import decode_state, encode_state

FORMAT = "pluggy-nats-snapshot/1"
CHUNK_DEFAULT = 128 * 1024
WINDOW_DEFAULT = 8 * 1024 * 1024
ACK_TIMEOUT = 5.0  # Go's snapshotAckTimeout
INTEREST_WAIT = 2.0  # Go waits this long for the deliver subject's subscriber
RESTORE_IDLE = 5.0  # Go's activityInterval for a restore
MEMBER_BYTES = 1024 * 1024  # records per tar member
_REC = struct.Struct("<QqHII")  # seq, ts, subject length, header length, data length
_GZIP_MAGIC = b"\x1f\x8b"
# the start of a nats-server snapshot: an S2 (or Snappy) stream
_GO_MAGIC = (b"\xff\x06\x00\x00S2sTwO", b"\xff\x06\x00\x00sNaPpY")


# -- the archive -----------------------------------------------------------------------

class _Sink:
    """A write-only file collecting what gzip writes, drained by the caller."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def take(self):
        out, self.parts = b"".join(self.parts), []
        return out


def _member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def archive(stream, with_consumers=True):
    """The stream as a gzip'd tar, yielded in pieces (no whole copy in memory).
    Messages up to the last sequence at the start; consumer state as of then."""
    store = stream.store
    st = store.state()
    head = {"format": FORMAT, "config": stream.cfg, "created": stream.created,
            "state": {"first_seq": st.first_seq, "last_seq": st.last_seq,
                      "last_ts": st.last_ts, "messages": st.msgs, "bytes": st.bytes}}
    consumers = []
    if with_consumers:
        consumers = [(name, {"config": c.cfg, "created": c.created,
                             "state": encode_state(c.state()).decode()})
                     for name, c in stream.consumers.items()]
    sink = _Sink()
    gz = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1, mtime=0)
    tar = tarfile.open(fileobj=gz, mode="w|")
    _member(tar, "stream.json", json.dumps(head).encode())
    seq, part, buf, size = st.first_seq, 0, [], 0
    while seq <= st.last_seq:
        msg = store.load_next(None, seq)
        if msg is None or msg.seq > st.last_seq:
            break
        subj = msg.subject.encode()
        buf += (_REC.pack(msg.seq, msg.ts, len(subj), len(msg.hdr), len(msg.data)),
                subj, msg.hdr, msg.data)
        size += _REC.size + len(subj) + len(msg.hdr) + len(msg.data)
        seq = msg.seq + 1
        if size >= MEMBER_BYTES:
            part += 1
            _member(tar, "msgs/%08d" % part, b"".join(buf))
            buf, size = [], 0
            yield sink.take()
    if buf:
        part += 1
        _member(tar, "msgs/%08d" % part, b"".join(buf))
    for name, body in consumers:
        _member(tar, "consumers/%s.json" % name, json.dumps(body).encode())
    tar.close()
    gz.close()
    yield sink.take()


def _records(data):
    off, n = 0, len(data)
    while off < n:
        seq, ts, ls, lh, ld = _REC.unpack_from(data, off)
        off += _REC.size
        subj = data[off:off + ls].decode()
        off += ls
        hdr = data[off:off + lh]
        off += lh
        yield seq, ts, subj, hdr, data[off:off + ld]
        off += ld


class _Pipe:
    """A file fed by restore chunks: read() waits (gevent) for the next one."""

    def __init__(self):
        self.queue = gevent.queue.Queue(maxsize=4)
        self.buf = b""
        self.eof = False

    def read(self, n=-1):
        while not self.eof and (n < 0 or len(self.buf) < n):
            try:
                chunk = self.queue.get(timeout=RESTORE_IDLE)
            except gevent.queue.Empty:
                raise StoreError("restore is stalled") from None
            if chunk is None:
                self.eof = True
            else:
                self.buf += chunk
        if n < 0:
            n = len(self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def fill(jsa, cfg, fileobj):
    """Read an archive into a new (unregistered) store for ``cfg``; returns
    (store, created, consumers [(name, config, created, state)])."""
    from .stream import SECOND, parse_ttl

    store = jsa.open_store(cfg)
    try:
        tar = tarfile.open(fileobj=gzip.GzipFile(fileobj=fileobj, mode="rb"), mode="r|")
        head, consumers, first = None, [], True
        for info in tar:
            data = tar.extractfile(info).read() if info.isfile() else b""
            if info.name == "stream.json":
                head = json.loads(data)
                if head.get("format") != FORMAT:
                    raise StoreError("unknown snapshot format %r" % head.get("format"))
                fs = head["state"]["first_seq"]
                if fs > 1:
                    store.skip_msgs(1, fs - 1)
                    store.purge()
            elif info.name.startswith("msgs/"):
                if head is None:
                    raise StoreError("snapshot has no stream.json first")
                for seq, ts, subj, hdr, body in _records(data):
                    ttl = 0
                    if b"Nats-TTL" in hdr:
                        text = H.parse(hdr).get("Nats-TTL")
                        try:
                            ttl = parse_ttl(text) if text else 0
                        except ApiError:
                            ttl = 0
                    store.store_raw(subj, hdr, body, seq, ts, ttl * SECOND if ttl > 0 else ttl)
                    first = False
            elif info.name.startswith("consumers/"):
                c = json.loads(data)
                consumers.append((info.name[len("consumers/"):-len(".json")], c["config"],
                                  c.get("created", 0), decode_state(c["state"].encode())))
        if head is None:
            raise StoreError("snapshot has no stream.json")
        last = head["state"]["last_seq"]
        top = store.state().last_seq
        if last > top:  # deleted messages at the end keep their sequences
            store.skip_msgs(top + 1, last - top)
            if first:
                store.purge()
        return store, head.get("created") or time.time_ns(), consumers
    except BaseException:
        store.delete()
        raise


# -- the API side ----------------------------------------------------------------------

def snapshot_request(jsa, stream, payload):
    """Validate a STREAM.SNAPSHOT request and start sending; returns the body."""
    req = loads(payload)
    f = Fields(req, "JSApiStreamSnapshotRequest")
    deliver = f.str("deliver_subject")
    chunk = f.int("chunk_size") or CHUNK_DEFAULT
    window = f.int("window_size") or WINDOW_DEFAULT
    no_consumers = f.bool("no_consumers")
    f.bool("jsck")
    if not _valid_publish_subject(deliver):
        raise ApiError(10015)
    chunk = min(max(1024, chunk), 1024 * 1024)
    window = max(min(max(1024, window), 32 * 1024 * 1024), chunk)
    state = stream.state_dict()
    body = {"config": stream.cfg, "state": state}
    jsa.server.spawn(_send_snapshot, jsa, stream, deliver, chunk, window // chunk,
                     not no_consumers, state)
    return body


def _valid_publish_subject(subject):
    if not subject or any(c in subject for c in " \t\r\n"):
        return False
    tokens = subject.split(".")
    return all(t and t not in ("*", ">") for t in tokens)


def _send_snapshot(jsa, stream, deliver, chunk_size, max_inflight, with_consumers, state):
    start = time.time_ns()
    advisories.snapshot(jsa, stream.name, "create", state=state)
    error = ""
    try:
        error = _stream_chunks(jsa, stream, deliver, chunk_size, max_inflight, with_consumers)
    finally:
        advisories.snapshot(jsa, stream.name, "complete", start=start, error=error)
        jsa.log.info("snapshot_done", stream=stream.name, error=error)


def _stream_chunks(jsa, stream, deliver, chunk_size, max_inflight, with_consumers):
    client, sublist = jsa.client, jsa.account.sublist
    target = deliver.encode()
    deadline = time.monotonic() + INTEREST_WAIT
    while not sublist.has_interest(target) and time.monotonic() < deadline:
        gevent.sleep(0.02)
    slots = gevent.queue.Queue()
    for _ in range(max_inflight):
        slots.put(None)
    ack_subject = "$JS.SNAPSHOT.ACK.%s.%s" % (stream.name, secrets.token_hex(11))
    ack_sub = client.subscribe(ack_subject + ".>", lambda *a: slots.put(None))
    status, error = b"NATS/1.0 204\r\n\r\n", ""
    try:
        buf, index = b"", 1
        pieces = archive(stream, with_consumers)
        done = False
        while True:
            while len(buf) < chunk_size and not done:
                try:
                    buf += next(pieces)
                except StopIteration:
                    done = True
                gevent.idle()  # other clients run between archive pieces
            if len(buf) < chunk_size:  # the last, short chunk: no ack asked
                if buf:
                    client.publish(deliver, buf)
                break
            try:
                slots.get(timeout=ACK_TIMEOUT)
            except gevent.queue.Empty:
                status, error = b"NATS/1.0 408 No Flow Response\r\n\r\n", "no flow response"
                break
            if not sublist.has_interest(target):
                status, error = b"NATS/1.0 408 No Interest\r\n\r\n", "no interest"
                break
            piece, buf = buf[:chunk_size], buf[chunk_size:]
            client.publish(deliver, piece, reply="%s.%d.%d" % (ack_subject, len(piece), index))
            index += 1
    except (StoreError, OSError) as exc:
        error = str(exc)
        status = ("NATS/1.0 500 %s\r\n\r\n" % error).encode()
    finally:
        client.unsubscribe(ack_sub)
    client.publish(deliver, b"", headers=status)
    return error


class Restore:
    """One restore in progress: its chunk subscription and filling greenlet."""

    def __init__(self, jsa, api, cfg):
        self.jsa, self.api, self.cfg = jsa, api, cfg
        self.subject = "$JS.SNAPSHOT.RESTORE.%s.%s" % (cfg["name"], secrets.token_hex(11))
        self.pipe = _Pipe()
        self.greenlet = None
        self.result = None  # the stream_create_response once the reader is done
        self.reply_end = ""  # the reply of the empty request that ends the upload
        self.total = 0
        self.start = time.time_ns()
        self.sub = jsa.client.subscribe(self.subject, self._on_chunk)
        self.watchdog = jsa.server.spawn(self._idle_stop)
        advisories.restore(jsa, cfg["name"], "create")

    def _idle_stop(self):
        """Nothing sent at all (or nothing after a failure): stop listening."""
        gevent.sleep(RESTORE_IDLE)
        self._stop()

    def _stop(self):
        if self.sub is not None:
            self.jsa.client.unsubscribe(self.sub)
            self.sub = None
            advisories.restore(self.jsa, self.cfg["name"], "complete", start=self.start,
                               size=self.total)

    def _answer(self, reply, body=b""):
        self.jsa.client.publish(reply, body, flush=False)

    def _error(self, err):
        return {"type": RESTORE_DONE_TYPE, "error": ApiError(10062, err=err).as_dict()}

    def _on_chunk(self, sub, subject, reply, hdr, payload):
        if self.sub is None:
            return
        reply = reply.decode() if reply else ""
        if not reply:  # Go needs a reply per chunk to report back: cancel
            self.result = self.result or self._error("restore requires a reply subject")
            self._stop()
            return
        data = bytes(payload or b"")
        if self.greenlet is None:
            self.watchdog.kill(block=False)
            if data and not data.startswith(_GZIP_MAGIC):
                what = "a nats-server snapshot" if data.startswith(_GO_MAGIC) else "unknown data"
                self._stop()
                self._answer(reply, dumps(self._error(
                    "snapshot format not supported: %s (this server restores only its own"
                    " snapshots)" % what)))
                return
            self.greenlet = self.jsa.server.spawn(self._run)
        if self.result is not None:  # the reader is done: a failure, told at once
            self._stop()
            self._answer(reply, dumps(self.result))
            return
        if not data:  # the end of the upload; answered once the reader is done
            self.reply_end = reply
            self._put(None)
            return
        self.total += len(data)
        if self._put(data):
            self._answer(reply)  # after the reader took it in: Go's flow control

    def _put(self, item):
        try:
            self.pipe.queue.put(item, timeout=RESTORE_IDLE)
            return True
        except gevent.queue.Full:
            return False

    def _run(self):
        name = self.cfg["name"]
        resp = {"type": RESTORE_DONE_TYPE}
        try:
            store, created, consumers = fill(self.jsa, self.cfg, self.pipe)
            while not self.pipe.eof:  # the end marker is still to come
                self.pipe.read(64 * 1024)
            stream = self.api.finish_restore(self.jsa, self.cfg, created, store, consumers)
            resp.update(stream.info(cluster=False))
            self.jsa.log.info("restore_done", stream=name, bytes=self.total)
        except ApiError as err:
            resp["error"] = err.as_dict()
        except (StoreError, OSError, ValueError, KeyError, EOFError, tarfile.TarError,
                struct.error, zlib.error) as exc:
            resp = self._error(str(exc) or type(exc).__name__)
            self.jsa.log.warning("restore_failed", stream=name, error=str(exc))
        self.result = resp
        if self.reply_end:
            self._stop()
            self.jsa.client.publish(self.reply_end, dumps(resp))
        else:  # failed before the end: the next chunk is told; stop if none comes
            self.watchdog = self.jsa.server.spawn(self._idle_stop)


RESTORE_DONE_TYPE = "io.nats.jetstream.api.v1.stream_create_response"
