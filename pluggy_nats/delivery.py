"""The data plane's one step: hand a message to every subscription a match found.

Called for every published message, whoever published it (client, link,
internal client), so it is written for speed: the parts of a MSG frame that do
not depend on the subscription are built once per message, and a client
subscriber costs three appends to its buffer (cheaper than building one frame).
Internal clients get a callback through ``conn.deliver_msg`` (told who
published, for service imports); a link (route,
gateway, leaf) gets one ``send_msg`` per message however many of its remote
subscriptions matched, naming the queue groups it was picked to serve.

``deliver_run`` is the same step for a *segment* of the bulk paths
(``ClientConnection.op_pub``, ``Link.op_msg``): consecutive header-less
messages that reach the same subscriptions, one control line repeated (the
parser's item with its list of payloads) or several subjects under one
wildcard. Each subscriber's share is built by one ``join`` (the payloads
joined by the frame head, or the frames cut at the sid), and bookkeeping is
paid once per segment. Publish order per
subscriber is kept: a segment is only ever delivered whole, in order.
"""

import weakref
from itertools import chain, repeat
from operator import itemgetter
from random import random

# b"<size>\r\n" for common payload sizes (links frame with it too): joining
# pre-encoded parts is ~25% cheaper than b"%d\r\n%s\r\n" % (len(msg), msg), and for big payloads it
# skips the format machinery's copy (join copies the payload once).
SIZE_CRLF = {n: b"%d\r\n" % n for n in range(8192)}
_join = b"".join
_flat = chain.from_iterable
_first = itemgetter(0)
_second = itemgetter(1)
_last = itemgetter(-1)
_head = itemgetter(7)  # a plan's one client head (make_plan)
# The same into a new bytearray (a client's ``out`` buffer); its separator is
# this empty bytearray, which nothing else touches.
_ba_join = bytearray().join


def deliver(result, subject, reply, hdr, msg, publisher):
    """Deliver ``msg`` (``hdr`` bytes of headers first, 0 for none) to ``result``
    (a sublist match) and return how many subscriptions received it.

    Every plain subscription gets a copy; each queue group one member, picked
    at random (remote members appear ``weight`` times, which weights the pick).
    A publisher with echo off (``publisher.noecho`` is itself) never receives
    its own messages.
    """
    psubs, qsubs = result
    noecho = publisher.noecho
    if qsubs:
        if len(qsubs) == 1 and noecho is None:
            # One group, echo on (the usual queue case): pick inline, no tuple
            # for the picked members.
            members = qsubs[0]
            member = members[int(random() * len(members))]
            if member.conn.queue_fallback:
                member = _prefer_primary(members, member)
            picked = (member,)
        else:
            picked = _pick_queue_members(qsubs, noecho)
        psubs = psubs + picked if psubs else picked
    elif len(psubs) > 1 and not hdr and noecho is None:
        # Fan-out: the frame heads of this result's client subscriptions are
        # built once (a plan), so each subscriber costs two appends. (One
        # subscriber is as quick the general way.)
        plan = _PLANS.get(subject)
        if plan is None or plan[0] is not result:
            plan = make_plan(result, subject)
        heads = plan[3]
        if heads is not None:
            size = len(msg)
            size_crlf = SIZE_CRLF.get(size) or b"%d\r\n" % size
            tail = _join((reply, b" ", size_crlf, msg, b"\r\n")) if reply \
                else _join((size_crlf, msg, b"\r\n"))
            touched = publisher.touched
            for c, head in heads:
                out = c.out
                out += head
                out += tail
                c.out_msgs += 1
                c.out_bytes += size
                if not c.flush_queued:
                    c.flush_queued = True
                    touched.append(c)
            if reply and plan[5]:
                for track in plan[5]:
                    track(reply)  # allow_responses: it may answer this one
            links = plan[4]
            if links:
                account = publisher.account
                frame = publisher.link_frame
                if frame is not None:  # a JetStream delivery: links/jsdeliver.py
                    subject, reply = frame
                for link in links:
                    link.send_msg(account, subject, reply, 0, msg, ())
            return len(psubs) - plan[6]
    touched = publisher.touched
    size = len(msg)
    head = tail = None  # MSG frame parts shared by every client subscriber, built lazily
    links = None  # link -> queue groups it must serve: one frame per link per message
    n = 0
    for sub in psubs:
        c = sub.conn
        if c is noecho:
            continue
        n += 1
        if c.kind:  # CLIENT is 0: anything else frames its own messages
            if c.is_link:
                if links is None:
                    links = {}
                queues = links.get(c)
                if queues is None:
                    queues = links[c] = []
                if sub.queue:  # a queue sub in psubs was picked for its group
                    queues.append(sub.queue)
            else:
                c.deliver_msg(sub, subject, reply, hdr, msg, publisher)
        else:
            deny = c.deny_delivery
            if deny is not None:  # clients with permissions only
                if deny(subject):
                    n -= 1  # a subscribe-deny rule inside an allowed wildcard
                    continue
                if reply and c.reply_tracker is not None:
                    c.reply_tracker(reply)  # allow_responses: it may answer this one
            out = c.out
            if hdr:
                if head is None:
                    head, tail, hhead, htail = _frame_parts(subject, reply, hdr, msg)
                if c.headers:
                    out += hhead
                    out += sub.sid_part
                    out += htail
                else:
                    out += head
                    out += sub.sid_part
                    out += tail
            else:
                if tail is None:  # inline: this is most messages
                    size_crlf = SIZE_CRLF.get(size) or b"%d\r\n" % size
                    if reply:
                        tail = _join((reply, b" ", size_crlf, msg, b"\r\n"))
                    else:
                        tail = _join((size_crlf, msg, b"\r\n"))
                if sub.subject == subject:  # a literal subscription: head precomputed
                    out += sub.msg_head
                else:
                    if head is None:
                        head = b"MSG " + subject
                    out += head
                    out += sub.sid_part
                out += tail
            c.out_msgs += 1
            c.out_bytes += size
            if not c.flush_queued:  # max_pending is checked when it is flushed
                c.flush_queued = True
                touched.append(c)
        if sub.max_msgs:
            sub.delivered += 1
            if sub.delivered >= sub.max_msgs:
                c.remove_subscription(sub)
    if links is not None:
        account = publisher.account
        frame = publisher.link_frame
        if frame is not None:  # a JetStream delivery: links/jsdeliver.py
            subject, reply = frame
        for link, queues in links.items():
            link.send_msg(account, subject, reply, hdr, msg, queues)
    return n


# subject -> (result, subject, key, heads, links, trackers, denied): the *plan* of delivering a
# header-less message on ``subject`` to ``result`` (a sublist match, or a
# link's forwarding targets). ``heads``: ``(conn, b"MSG <subject> <sid> ")``
# per client subscription, None where a subscription needs the general path;
# ``links``: the links among the connections, each once; ``key``: the target
# connections as one shared (interned) tuple, or None where messages of the
# plan cannot join a segment (queue groups, a connection holding two of the
# subscriptions, anything ``heads`` refuses). Consecutive messages whose plans
# have the same key reach the same connections: one segment
# (``deliver_planned``), whatever their subjects. Results are immutable and
# new ones replace them when interest changes; what can change without that
# (auto-unsubscribe limits, permissions) calls forget_plans().
_PLANS = {}
_PLANS_MAX = 4096
_KEYS = {}  # target connections -> the one tuple standing for them
NO_PLAN = (None, None, None, None, (), (), 0, None)  # the plan of no targets: nothing to do
# Objects keeping plans of their own (links cache theirs with their targets).
_HOLDERS = weakref.WeakSet()


def hold_plans(holder):
    """``holder`` keeps plans: its ``forget_plans()`` is called when they go stale."""
    _HOLDERS.add(holder)


def forget_plans():
    """Drop every delivery plan (a subscription got an auto-unsubscribe limit,
    a connection's permissions changed)."""
    _PLANS.clear()
    _KEYS.clear()
    _RUNNABLE.clear()
    for holder in list(_HOLDERS):
        holder.forget_plans()


def make_plan(result, subject):
    """Build (and keep) the plan of ``result`` for messages on ``subject``
    (see ``_PLANS``). Permissions are settled here, once per subject: a
    subscriber whose subscribe-deny rules refuse ``subject`` is left out
    (``denied`` counts them), one with ``allow_responses`` is in ``trackers``
    (told each reply subject it is handed)."""
    heads = []
    links = []
    trackers = []
    denied = 0
    conns = set()
    segmentable = not result[1]
    for sub in result[0]:
        c = sub.conn
        c.in_plans = True
        if c.kind:
            if not c.is_link:
                heads = None  # an internal client: its callback, in order
                break
            if c not in links:
                links.append(c)
            continue
        if sub.max_msgs:
            heads = None
            break
        deny = c.deny_delivery
        if deny is not None:  # clients with permissions only
            if deny(subject):
                denied += 1  # a subscribe-deny rule inside an allowed wildcard
                continue
            if c.reply_tracker is not None:
                trackers.append(c.reply_tracker)
        if c in conns:  # its frames interleave message by message
            segmentable = False
        conns.add(c)
        heads.append((c, sub.msg_head if sub.subject == subject
                      else b"MSG " + subject + sub.sid_part))
    key = None
    if heads is not None:
        heads = tuple(heads)
        if segmentable and (heads or links):
            key = tuple([c for c, _ in heads] + links)
            key = _KEYS.setdefault(key, key)
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
        _KEYS.clear()
    head = heads[0][1] if heads is not None and len(heads) == 1 else None
    plan = _PLANS[subject] = (result, subject, key, heads, tuple(links), tuple(trackers), denied,
                              head)
    return plan


def deliver_planned(items, plans, publisher):
    """Deliver a segment: header-less items in publish order whose ``plans``
    (one each) share a key, i.e. reach the same connections, each by one
    subscription. Items are the bulk paths': ``(subject, reply, payloads)``
    from a client, ``(args, payloads)`` from a link (no reply). Each client's
    share is built as a list and joined once; each link gets the items in
    one ``send_run``. Returns (messages, payload bytes) where it counted
    them on the way (one client, a frame per item, or a link's
    ``send_run``), else None."""
    first = plans[0]
    heads = first[3]
    replies = len(items[0]) == 3
    counted = None
    if heads:
        touched = publisher.touched
        sizes = SIZE_CRLF
        if len(items) == 1:  # one control line (a publisher streaming a subject)
            item = items[0]
            payloads = item[-1]
            reply = item[1] if replies else None
            size = len(payloads[0])
            size_crlf = sizes.get(size) or b"%d\r\n" % size
            mid = reply + b" " + size_crlf if reply else size_crlf
            nbytes = size * len(payloads)
            for c, head in heads:
                _append_line(c, head + mid, payloads, nbytes, touched)
        elif len(heads) == 1 and (counted := _joined_run(heads[0][0], items, plans, replies,
                                                         touched)):
            pass  # one subscriber, a frame per item: joined in C
        elif len(heads) == 1:  # one subscriber (real traffic to one client)
            parts = []
            count = nbytes = 0
            for item, plan in zip(items, plans, strict=True):
                payloads = item[-1]
                head = plan[3][0][1]
                n = len(payloads)
                size = len(payloads[0])
                count += n
                nbytes += size * n
                size_crlf = sizes.get(size) or b"%d\r\n" % size
                if replies and item[1]:
                    head = _join((head, item[1], b" ", size_crlf))
                    size_crlf = b""
                if n == 1:
                    parts += (head, size_crlf, payloads[0], b"\r\n")
                else:
                    head += size_crlf
                    parts += (head, (b"\r\n" + head).join(payloads), b"\r\n")
            _append_parts(heads[0][0], parts, count, nbytes, touched)
        else:
            shares = [[] for _ in heads]
            count = nbytes = 0
            for item, plan in zip(items, plans, strict=True):
                payloads = item[-1]
                n = len(payloads)
                size = len(payloads[0])
                count += n
                nbytes += size * n
                size_crlf = sizes.get(size) or b"%d\r\n" % size
                mid = item[1] + b" " + size_crlf if replies and item[1] else size_crlf
                if n == 1:
                    tail = _join((mid, payloads[0], b"\r\n"))
                    for share, (_c, head) in zip(shares, plan[3], strict=True):
                        share += (head, tail)
                else:
                    for share, (_c, head) in zip(shares, plan[3], strict=True):
                        head += mid
                        share += (head, (b"\r\n" + head).join(payloads), b"\r\n")
            for share, (c, _h) in zip(shares, heads, strict=True):
                _append_parts(c, share, count, nbytes, touched)
    trackers = first[5]  # (the same connections: the same trackers)
    if trackers and replies:
        for item in items:
            if item[1]:
                for _ in item[2]:
                    for track in trackers:
                        track(item[1])
    links = first[4]
    if links:
        account = publisher.account
        if not replies:
            items = [(args[-1], None, payloads) for args, payloads in items]
        for link in links:
            got = link.send_run(account, items, not replies)
            if counted is None:
                counted = got
    return counted


def _joined_run(c, items, plans, replies, touched):
    """``deliver_planned`` to one client ``c`` when every item is one frame
    (subjects that change from message to message) without a reply: each
    frame's pieces (its plan's head, size, payload, CRLF) lined up and
    joined in C, no pass over the items here. Returns (messages, payload
    bytes), or None, having done nothing, for anything else."""
    if replies and any(map(_second, items)):
        return None
    payloads = list(_flat(map(_last, items)))
    if len(payloads) != len(items):
        return None  # an item with several payloads (one line repeated)
    sizes = list(map(len, payloads))
    try:  # (a size past the table raises: no max() comparing each size)
        parts = list(_flat(zip(map(_head, plans), map(SIZE_CRLF.__getitem__, sizes),
                               payloads, repeat(b"\r\n"))))
    except KeyError:
        return None
    nbytes = sum(sizes)
    _append_parts(c, parts, len(sizes), nbytes, touched)
    return len(sizes), nbytes


def count_items(items):
    """(messages, payload bytes) of bulk-path items (payloads last in each):
    what a run counts when ``deliver_planned`` did not count on the way."""
    payloads = list(_flat(map(_last, items)))
    return len(payloads), sum(map(len, payloads))


def _frame_parts(subject, reply, hdr, msg):
    """(MSG head, MSG tail, HMSG head, HMSG tail) for a message with headers; the
    sid goes between head and tail. A client that did not ask for headers gets
    the payload alone."""
    reply = reply + b" " if reply else b""
    payload = msg[hdr:]
    return (b"MSG " + subject, b"%s%d\r\n%s\r\n" % (reply, len(payload), payload),
            b"HMSG " + subject, b"%s%d %d\r\n%s\r\n" % (reply, hdr, len(msg), msg))


def _pick_queue_members(qsubs, noecho):
    """One member per group; a member that would echo to a no-echo publisher is
    passed over for the next one, and a fallback member (a leaf link's) is
    taken only when the group has nobody else."""
    chosen = []
    for members in qsubs:
        count = len(members)
        i = int(random() * count)
        fallback = None
        for _ in range(count):
            sub = members[i]
            if sub.conn is not noecho:
                if not sub.conn.queue_fallback:
                    chosen.append(sub)
                    break
                if fallback is None:
                    fallback = sub
            i = (i + 1) % count
        else:
            if fallback is not None:
                chosen.append(fallback)
    return tuple(chosen)


def _prefer_primary(members, fallback):
    """A random member of ``members`` that is not a fallback, else ``fallback``."""
    primary = [s for s in members if not s.conn.queue_fallback]
    return primary[int(random() * len(primary))] if primary else fallback


def deliver_run(result, items, publisher):
    """``deliver`` for a segment: ``items`` are header-less ``(subject, reply,
    payloads)`` in publish order (the bulk paths' items: each a list of
    payloads of one control line), every one of which matched subscriptions
    equal to ``result``'s: one subject repeated, or several under one
    wildcard. A segment of one item (a publisher streaming one subject) has
    frames with one head to each subscriber, so the payloads are joined with it.

    Returns False, having done nothing, where a run cannot be exact; the
    caller then delivers message by message (matching each anew). That is: a
    connection holding two of the matching subscriptions (its frames
    interleave message by message), an internal client (its callback may
    change interest between messages), a subscription that auto-unsubscribes,
    a client whose subscribe-deny rules refuse one of the segment's subjects
    or that tracks the replies it is handed (allow_responses), and for queue
    groups a no-echo publisher, a member that is a link or an internal
    client, and groups too big to check per run.
    """
    psubs, qsubs = result
    if not qsubs and len(psubs) == 1 and psubs[0].run_callback is not None:
        return _run_to_callback(psubs[0], items, publisher)
    noecho = publisher.noecho
    if not _runnable(result, items) or (qsubs and not _queues_runnable(qsubs, noecho, items)):
        return False
    touched = publisher.touched
    clients, links = _split_plain(psubs, noecho)
    frames = _Frames(items)
    for sub in clients:
        frames.send_to(sub, touched)
    for members in qsubs:  # one random member per message, as deliver does
        n = len(members)
        buckets = [[] for _ in members]
        picks = [b.append for b in buckets]
        if len(items) == 1:  # one control line: each member's share of its payloads
            subject, reply, payloads = items[0]
            for p in payloads:
                picks[int(random() * n)](p)
            for sub, mine in zip(members, buckets, strict=True):
                if mine:
                    part = _Frames([(subject, reply, mine)])
                    part.send_to(sub, touched)
            continue
        for m in frames.messages():
            picks[int(random() * n)](m)
        for sub, mine in zip(members, buckets, strict=True):
            if mine:
                part = _Frames([(s, r, [p]) for s, r, p in mine])
                part.send_to(sub, touched)
    if links:
        account = publisher.account
        for link in links:
            link.send_run(account, items)
    return True


class _Frames:
    """The MSG frames of a segment, built once and specialised per
    subscription (the sid is the only part that differs between subscribers)."""

    __slots__ = ("items", "count", "nbytes", "_parts", "_msgs")

    def __init__(self, items):
        self.items = items
        self._parts = self._msgs = None
        if len(items) == 1:
            payloads = items[0][2]
            self.count = len(payloads)
            self.nbytes = len(payloads[0]) * len(payloads)
        else:
            msgs = self.messages()
            self.count = len(msgs)
            self.nbytes = sum([len(m[2]) for m in msgs])

    def messages(self):
        """``(subject, reply, payload)`` of every message, in order."""
        msgs = self._msgs
        if msgs is None:
            msgs = self._msgs = [(s, r, p) for s, r, payloads in self.items for p in payloads]
        return msgs

    def send_to(self, sub, touched):
        """Append ``sub``'s share, every frame of the segment with its sid, to
        its connection's buffer."""
        items = self.items
        c = sub.conn
        if len(items) == 1:
            # One control line: each frame is head + payload + CRLF with equal
            # heads (``_append_line``).
            subject, reply, payloads = items[0]
            size = len(payloads[0])
            size_crlf = SIZE_CRLF.get(size) or b"%d\r\n" % size
            head = (sub.msg_head if sub.subject == subject
                    else b"MSG " + subject + sub.sid_part) + \
                (reply + b" " + size_crlf if reply else size_crlf)
            _append_line(c, head, payloads, self.nbytes, touched)
            return
        parts = self._parts
        if parts is None:
            parts = self._parts = _run_parts(self.messages())
        out = c.out
        if out:
            out += sub.sid_part.join(parts)
        else:  # one copy: the join becomes the buffer
            c.out = bytearray(sub.sid_part).join(parts)
        c.out_msgs += self.count
        c.out_bytes += self.nbytes
        if not c.flush_queued:
            c.flush_queued = True
            touched.append(c)


def _run_to_callback(sub, items, publisher):
    """``deliver_run`` where the one target is an internal subscription
    taking runs (a stream's intake, ``Subscription.run_callback``): the
    segment is handed over at once as ``[(subject, reply, payload)]``."""
    if sub.max_msgs:
        return False
    sub.conn.deliver_msgs(sub, items[0][0], [(subject, reply, payload) for subject, reply,
                                             payloads in items for payload in payloads],
                          publisher)
    return True


def _split_plain(psubs, noecho):
    """A run's plain subscriptions: the client ones (the no-echo publisher's
    left out) and the links among their connections, each once: one frame
    per link however many of its subscriptions matched. (``_runnable`` has
    turned internal clients away.)"""
    clients = []
    links = []
    for sub in psubs:
        c = sub.conn
        if c is noecho:
            continue
        if not c.kind:
            clients.append(sub)
        elif c not in links:
            links.append(c)
    return clients, links


def _queues_runnable(qsubs, noecho, items):
    """Queue members can take picks for a whole run: an echoing publisher,
    client members only, none that auto-unsubscribes or refuses a message of
    ``items`` (``_takes_all``), groups small enough."""
    if noecho is not None:
        return False
    for members in qsubs:
        if len(members) > _QUEUE_RUN_MAX:
            return False
        for sub in members:
            c = sub.conn
            if c.kind or sub.max_msgs or not _takes_all(c, items):
                return False
    return True


def _takes_all(c, items):
    """Client ``c`` takes every message of ``items`` as a run: it has no
    permissions, or its subscribe-deny rules refuse none of their subjects
    (checked once per subject, not per message) and none has a reply it
    would have to track (allow_responses)."""
    deny = c.deny_delivery
    if deny is None:
        return True
    if c.reply_tracker is not None and any(map(_second, items)):
        return False
    if len(items) == 1:
        return not deny(items[0][0])
    return not any(map(deny, {item[0] for item in items}))


def _run_parts(msgs):
    """The MSG frames of ``msgs`` cut where the sid goes: ``[b"MSG subj0",
    b"<reply> <size>\r\n<payload>\r\nMSG subj1", ..., b"<size>\r\n<payload>\r\n"]``,
    so ``b" <sid> ".join(parts)`` is the subscriber's whole share."""
    sizes = SIZE_CRLF
    parts = []
    append = parts.append
    tail = b"MSG "  # what precedes the next subject: the previous frame's tail
    for subject, reply, payload in msgs:
        append(tail + subject)
        size_crlf = sizes.get(len(payload)) or b"%d\r\n" % len(payload)
        if reply:
            tail = _join((reply, b" ", size_crlf, payload, b"\r\nMSG "))
        else:
            tail = _join((size_crlf, payload, b"\r\nMSG "))
    append(tail[:-4])  # the last frame is not followed by another "MSG "
    return parts


def _append_line(c, head, payloads, nbytes, touched):
    """Append to client ``c`` the frames of one control line's ``payloads``
    (``nbytes`` in all): ``head`` (the frame up to its payload) before each,
    CRLF after. Each payload byte is copied once on its way to the socket
    where Python allows: a lone payload is appended after its head; a run
    into an empty buffer (the usual case: the last flush took everything) is
    one bytearray ``join`` that becomes the buffer, rather than a join
    copied into it."""
    out = c.out
    if len(payloads) == 1:
        out += head
        out += payloads[0]
        out += b"\r\n"
    elif out:  # (something queued since the last flush: appended behind it)
        out += head
        out += (b"\r\n" + head).join(payloads)
        out += b"\r\n"
    else:
        # CRLF head p1 CRLF head p2 ... CRLF head pn CRLF head, then the
        # leading CRLF and the trailing head cut off (both O(1) on a bytearray).
        sep = bytearray(b"\r\n")
        sep += head
        out = c.out = sep.join([b"", *payloads, b""])
        del out[:2]
        del out[-len(head):]
    c.out_msgs += len(payloads)
    c.out_bytes += nbytes
    if not c.flush_queued:
        c.flush_queued = True
        touched.append(c)


def append_joined(c, parts):
    """Append the join of ``parts`` to ``c.out``: into an empty buffer the
    join itself becomes the buffer (one copy of each payload, not two)."""
    out = c.out
    if out:
        out += _join(parts)
    else:
        c.out = _ba_join(parts)


def _append_parts(c, parts, count, nbytes, touched):
    """Append ``count`` framed messages (``nbytes`` of payload), the join of
    ``parts``, to client ``c``."""
    append_joined(c, parts)
    c.out_msgs += count
    c.out_bytes += nbytes
    if not c.flush_queued:
        c.flush_queued = True
        touched.append(c)


# Queue groups with more members than this go message by message: checking
# every member per run would cost more than running saves.
_QUEUE_RUN_MAX = 64
# id(result) -> (result, runnable); results are immutable and reused by the
# sublist cache, so the answer is worked out once per result.
_RUNNABLE = {}
_RUNNABLE_MAX = 1024


def _runnable(result, items):
    """No internal client among ``result``'s subscriptions, no connection but
    a link holding two of them; no auto-unsubscribe, and every client with
    permissions takes all of ``items`` (checked each time: limits and
    permissions change without the result changing)."""
    got = _RUNNABLE.get(id(result))
    if got is None or got[0] is not result:
        seen = set()
        ok = True
        for sub in chain(result[0], *result[1]):
            c = sub.conn
            if c.is_link:
                continue  # one frame per link and message either way
            if c.kind or c in seen:
                ok = False
                break
            seen.add(c)
        if len(_RUNNABLE) >= _RUNNABLE_MAX:
            _RUNNABLE.clear()
        _RUNNABLE[id(result)] = got = (result, ok)
    if not got[1]:
        return False
    for sub in result[0]:
        c = sub.conn
        if sub.max_msgs or (not c.kind and not _takes_all(c, items)):
            return False
    return True
