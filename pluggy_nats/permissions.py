"""Subject permissions: compiled once per user, checked per connection.

The engine is shared: the auth plugin compiles users' permissions with it, and
the route plugin a cluster's ``permissions { import, export }`` (import maps to
publish, export to subscribe, as in nats-server's route.go).

A user's ``permissions { publish, subscribe, allow_responses }`` becomes a
:class:`CompiledPermissions` (allow and deny :class:`~pluggy_nats.sublist.Sublist`
indexes shared by every connection of that user). Each connection gets its own
:class:`ConnPermissions` from :meth:`CompiledPermissions.for_connection`: the
object the core calls as ``conn.permissions.can_publish(subject)`` on every PUB
and ``can_subscribe(subject, queue)`` on every SUB.

The rules are nats-server's (``client.go`` pubAllowed / canSubscribe):

* publish: allowed when the allow list is absent or has a filter matching the
  subject, and no deny filter matches it (deny wins);
* subscribe: the subject (which may hold wildcards) is matched against the
  filters token by token, so a ``*`` or ``>`` in the subscription only matches
  a wildcard in the filter at that place (``foo.>`` may subscribe ``foo.*``,
  not the other way round). Entries may name a queue (``"foo.* workers"``): an
  allow entry with a queue admits only that queue on its subjects, a deny entry
  with a queue denies only that queue;
* a wildcard subscription that can also match denied subjects (``foo.*``
  under ``deny: foo.bar``) is accepted, and the denied messages are dropped at
  delivery: the core calls ``conn.deny_delivery(subject)`` (taken from
  :attr:`ConnPermissions.deny_delivery`, None without subscribe deny rules) for
  every message to such a connection. nats-server does the same ("mperms");
* ``allow_responses``: publishing to a reply subject of a message this
  connection received is allowed (at most ``max`` times within ``expires``)
  even where the publish permissions deny it; it also turns the publish allow
  list into "nothing" unless one was given.
"""

import time

from pluggy_nats.subjects import is_literal, subset_match
from pluggy_nats.sublist import Sublist

PUB_CACHE_MAX = 1024  # per connection; the cache is cleared when it grows past this
DENY_CACHE_MAX = 1024  # the same for the per-message subscribe-deny check
REPLIES_MAX = 4096  # tracked reply subjects per connection before expired ones are pruned
DEFAULT_RESPONSE_MAX = 1  # nats-server DEFAULT_ALLOW_RESPONSE_MAX_MSGS
DEFAULT_RESPONSE_EXPIRES = 120.0  # nats-server DEFAULT_ALLOW_RESPONSE_EXPIRATION (2m)


class _Entry:
    """One permission filter, shaped like a subscription for the Sublist."""

    __slots__ = ("subject", "queue", "weight")

    def __init__(self, subject, queue=None):
        self.subject = subject
        self.queue = queue
        self.weight = 1


def split_subject_queue(text):
    """``"subj"`` or ``"subj queue"`` -> (subject, queue or None); ValueError
    when there are more than two fields."""
    fields = text.split()
    if not fields:
        raise ValueError("empty subject")
    if len(fields) > 2:
        raise ValueError("invalid subject-queue %r" % text)
    return fields[0], (fields[1] if len(fields) == 2 else None)


def _index(entries, with_queues):
    sl = Sublist()
    for text in entries:
        if with_queues:
            subject, queue = split_subject_queue(text)
        else:
            subject, queue = text, None
        sl.insert(_Entry(subject.encode(), queue.encode() if queue is not None else None))
    return sl


class SubjectPermission:
    """``allow`` / ``deny`` lists of subject strings as configured. ``allow`` is
    None for "everything"; an empty list allows nothing."""

    __slots__ = ("allow", "deny")

    def __init__(self, allow=None, deny=None):
        self.allow = allow
        self.deny = deny

    def __repr__(self):
        return "SubjectPermission(allow=%r, deny=%r)" % (self.allow, self.deny)


class ResponsePermission:
    """``allow_responses``: ``max`` replies per request (<0: unlimited) within
    ``expires`` seconds (<0: forever)."""

    __slots__ = ("max", "expires")

    def __init__(self, max=DEFAULT_RESPONSE_MAX, expires=DEFAULT_RESPONSE_EXPIRES):
        self.max = max
        self.expires = expires


class PermissionSpec:
    """Permissions as parsed from the configuration (plain lists)."""

    __slots__ = ("publish", "subscribe", "response")

    def __init__(self, publish=None, subscribe=None, response=None):
        self.publish = publish
        self.subscribe = subscribe
        self.response = response

    def compile(self):
        return CompiledPermissions(self)


class CompiledPermissions:
    """The indexes of one user's permissions (shared by its connections)."""

    def __init__(self, spec):
        self.spec = spec  # as configured (links hand a user's lists on: leaf INFO)
        pub = spec.publish
        sub = spec.subscribe
        self.response = spec.response
        pub_allow = pub.allow if pub is not None else None
        if self.response is not None and pub_allow is None:
            pub_allow = []  # allow_responses turns off the blanket publish allow
        # nats-server: a publish allow list that is present but empty allows
        # nothing; an empty subscribe allow list is no restriction.
        self.pub_allow = _index(pub_allow, False) if pub_allow is not None else None
        self.pub_deny = _index(pub.deny, False) if pub is not None and pub.deny else None
        self.sub_allow = _index(sub.allow, True) if sub is not None and sub.allow else None
        self.sub_deny = _index(sub.deny, True) if sub is not None and sub.deny else None
        # Plain (queue-less) subscribe deny filters, checked per delivered message.
        # Entries naming a queue only ever refuse subscriptions (as nats-server,
        # whose delivery filter holds "subject queue" strings that match nothing).
        plain = [t for t in (sub.deny or ()) if split_subject_queue(t)[1] is None] \
            if sub is not None else []
        self.delivery_deny = _index(plain, False) if plain else None

    @property
    def restricts_publish(self):
        return self.pub_allow is not None or self.pub_deny is not None

    def publish_allowed(self, subject):
        """The static answer (no reply tracking) for a publish subject (bytes)."""
        if self.pub_allow is not None and not self.pub_allow.has_interest(subject):
            return False
        if self.pub_deny is not None and self.pub_deny.has_interest(subject):
            return False
        return True

    def subscribe_allowed(self, subject, queue=None):
        allowed = True
        if self.sub_allow is not None:
            r = self.sub_allow.match(subject)
            allowed = bool(r.psubs)
            if queue and r.qsubs:
                allowed = _queue_matches(queue, r.qsubs)
        if allowed and self.sub_deny is not None:
            r = self.sub_deny.match(subject)
            allowed = not r.psubs
            if queue and r.qsubs:
                allowed = not _queue_matches(queue, r.qsubs)
        return allowed

    def for_connection(self):
        return ConnPermissions(self)


def _queue_matches(queue, qgroups):
    for members in qgroups:
        name = members[0].queue
        if queue == name or (not is_literal(name) and subset_match(queue, name)):
            return True
    return False


class _PubCache(dict):
    """subject -> bool. A miss computes the answer (``__missing__``), so a hit
    is one C-level ``dict.__getitem__``."""

    __slots__ = ("compiled",)

    def __init__(self, compiled):
        super().__init__()
        self.compiled = compiled

    def __missing__(self, subject):
        if len(self) >= PUB_CACHE_MAX:
            self.clear()
        allowed = self[subject] = self.compiled.publish_allowed(subject)
        return allowed


class _DenyCache(dict):
    """subject -> True when a subscribe deny filter matches it (drop the message)."""

    __slots__ = ("sublist",)

    def __init__(self, sublist):
        super().__init__()
        self.sublist = sublist

    def __missing__(self, subject):
        if len(self) >= DENY_CACHE_MAX:
            self.clear()
        denied = self[subject] = self.sublist.has_interest(subject)
        return denied


def _always(*args):
    return True


def always_allowed(check):
    """Is ``check`` (a ``can_publish``) the one that allows everything?"""
    return check is _always


def _never(*args):
    return False


class ConnPermissions:
    """One connection's view of its user's permissions: a bounded publish cache
    and, with ``allow_responses``, the reply subjects it may answer."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.response = compiled.response
        self.replies = {} if self.response is not None else None  # reply -> [t, n]
        # Read once by the core at CONNECT: None, or a C-speed subject -> bool
        # lookup. Delivery consults reply_tracker only behind that test, so an
        # allow_responses user gets a deny check that never denies.
        self.deny_delivery = _DenyCache(compiled.delivery_deny).__getitem__ \
            if compiled.delivery_deny is not None else None
        self.reply_tracker = None
        if self.response is not None:
            self.reply_tracker = self.track_reply
            if self.deny_delivery is None:
                self.deny_delivery = _never
        if not compiled.restricts_publish:
            self.can_publish = _always
        elif self.response is None:
            # The hot path: a bound C method, no Python frame on a cache hit.
            self.can_publish = _PubCache(compiled).__getitem__
        else:
            self._cache = _PubCache(compiled)
        # The publish check without allow_responses' reply tracking: a subject
        # it allows is allowed for every message (the bulk path checks it once
        # per control line); one it refuses goes message by message through
        # can_publish, which may still allow a tracked reply (and counts it).
        self.static_publish = self._cache.__getitem__ if self.response is not None \
            else self.can_publish

    def can_publish(self, subject):  # replaced per instance unless allow_responses
        if self._cache[subject]:
            return True
        return self._reply_allowed(subject)

    def can_subscribe(self, subject, queue=None):
        return self.compiled.subscribe_allowed(subject, queue)

    # -- allow_responses ------------------------------------------------------

    def track_reply(self, reply, now=None):
        """Called when this connection is handed a message with ``reply``."""
        replies = self.replies
        replies[reply] = [time.monotonic() if now is None else now, 0]
        if len(replies) > REPLIES_MAX:
            self.prune_replies()

    def prune_replies(self, now=None):
        now = time.monotonic() if now is None else now
        resp = self.response
        replies = self.replies
        for reply, (t, n) in list(replies.items()):
            if (resp.max > 0 and n >= resp.max) or (resp.expires > 0 and now - t > resp.expires):
                del replies[reply]
        while len(replies) > REPLIES_MAX:  # still too many live ones: drop the oldest
            del replies[next(iter(replies))]

    def _reply_allowed(self, subject):
        entry = self.replies.get(subject)
        if entry is None:
            return False
        entry[1] += 1
        resp = self.response
        if resp.max > 0 and entry[1] > resp.max:
            del self.replies[subject]
            return False
        if resp.expires > 0 and time.monotonic() - entry[0] > resp.expires:
            del self.replies[subject]
            return False
        return True
