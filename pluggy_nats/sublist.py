"""The subject index: which subscriptions does a published subject reach?

A trie with one node per token (nats-server's ``server/sublist.go`` layout):
literal tokens live in a per-node dict, ``*`` and ``>`` in dedicated slots, so
matching a subject of n tokens visits O(n) nodes per wildcard branch taken.
In front of it sits a per-subject result cache; a published subject that was
seen before costs one dict lookup.

Results are immutable and shared (by the cache and by every caller), so a
caller may keep one as long as it likes but must never mutate it. When nothing
matches, ``match`` returns the shared ``EMPTY_RESULT``, so ``result is
EMPTY_RESULT`` is a valid "no interest" test.

Single-threaded by design: the server runs on gevent and nothing here yields,
so every method is atomic with respect to other greenlets; no locks.
"""

import re
from itertools import chain, islice
from typing import NamedTuple

__all__ = ["Sublist", "SublistResult", "EMPTY_RESULT", "CACHE_MAX", "CACHE_SWEEP"]

CACHE_MAX = 1024  # nats-server's slCacheMax
CACHE_SWEEP = 512  # entries left after a sweep (nats-server's slCacheSweep)

_PWC = b"*"
_FWC = b">"


class SublistResult(NamedTuple):
    """``psubs``: plain subscriptions, each once (insertion order among subs of
    one subject; subjects in trie-walk order). ``qsubs``: one non-empty tuple
    per queue group, members of one group name merged across subjects
    (``foo.*`` and ``foo.>`` in q1 are one group), each member repeated
    ``weight`` times so a uniform random pick is weight-proportional."""

    psubs: tuple
    qsubs: tuple


EMPTY_RESULT = SublistResult((), ())

# tuple.__new__ skips NamedTuple's Python-level __new__ (about 2x cheaper).
_new_result = tuple.__new__


class _Node:
    """One token position. ``nodes``/``psubs``/``qsubs`` are None until needed
    (most nodes are pure path or pure leaf). ``pl``/``ql``/``qr`` cache this
    node's share of a result (None = stale, rebuilt on the next cache miss):
    ``pl`` the plain subs tuple, ``ql`` ((queue, members), ...), ``qr`` the
    members tuples alone (reused as is when one node holds all queue groups)."""

    __slots__ = ("nodes", "pwc", "fwc", "psubs", "qsubs", "pl", "ql", "qr")

    def __init__(self):
        self.nodes = None  # literal token -> _Node
        self.pwc = None  # the "*" child
        self.fwc = None  # the ">" child
        self.psubs = None  # id(sub) -> sub (insertion ordered, identity keyed)
        self.qsubs = None  # queue -> {id(sub): sub}
        self.pl = ()
        self.ql = ()
        self.qr = ()


def _refresh_plain(node):
    pl = node.pl = tuple(node.psubs.values()) if node.psubs else ()
    return pl


def _refresh_queues(node):
    ql = []
    qsubs = node.qsubs
    if qsubs:
        for name, members in qsubs.items():
            out = []
            for s in members.values():
                w = s.weight
                if w > 1:
                    out += [s] * w
                else:  # 1, or a bogus 0/negative: still a member
                    out.append(s)
            ql.append((name, tuple(out)))
    node.ql = ql = tuple(ql)
    node.qr = tuple([m for _, m in ql])
    return ql


def _filter_regex(subject):
    """A compiled fullmatch for the literal subjects a wildcard filter matches."""
    parts = []
    for tok in subject.split(b"."):
        if tok == _PWC:
            parts.append(rb"[^.]+")
        elif tok == _FWC:
            parts.append(rb".+")
        else:
            parts.append(re.escape(tok))
    return re.compile(rb"\.".join(parts), re.DOTALL).fullmatch


def _is_empty(node):
    return not (node.psubs or node.qsubs or node.nodes or node.pwc is not None
                or node.fwc is not None)


class Sublist:
    """Subscriptions indexed by subject. A subscription is any object with
    ``subject`` (bytes), ``queue`` (bytes or None) and ``weight`` (int >= 1)
    attributes; it is held and removed by identity."""

    __slots__ = ("_root", "_cache", "_cache_get", "_count", "_inserts", "_removes",
                 "_hits", "_misses", "_hits_mark", "genid", "_cache_max")

    def __init__(self, cache=True):
        self._root = _Node()
        self._cache = {}  # subject -> SublistResult; never rebound (see _cache_get)
        self._cache_get = self._cache.get  # pre-bound: saves a lookup per hit
        # cache=False (no_sublist_cache): every match walks the trie, nothing is kept
        self._cache_max = CACHE_MAX if cache else 0
        self._count = 0
        self._inserts = 0
        self._removes = 0
        self._hits = 0
        self._misses = 0
        self._hits_mark = 0  # self._hits at the last wildcard invalidation
        self.genid = 0

    # -- the hot path ---------------------------------------------------------------

    def match(self, subject):
        """All subscriptions matching the literal ``subject`` (bytes)."""
        r = self._cache_get(subject)
        if r is not None:
            self._hits += 1
            return r
        return self._match_miss(subject)

    def _match_miss(self, subject):
        self._misses += 1
        toks = subject.split(b".")
        if b"" in toks:  # empty subject or empty token: matches nothing, not cached
            return EMPTY_RESULT
        nodes = self._collect(toks)
        psubs = ()
        qsubs = ()
        if nodes:
            plists = []
            qnodes = []
            for n in nodes:
                pl = n.pl
                if pl is None:
                    pl = _refresh_plain(n)
                if pl:
                    plists.append(pl)
                ql = n.ql
                if ql is None:
                    ql = _refresh_queues(n)
                if ql:
                    qnodes.append(n)
            if plists:
                # One contributing node (the usual case): share its tuple as is.
                psubs = plists[0] if len(plists) == 1 else tuple(chain.from_iterable(plists))
            if qnodes:
                if len(qnodes) == 1:
                    qsubs = qnodes[0].qr
                else:
                    # Same queue name at several nodes (foo.* q1 + foo.> q1) is one group.
                    groups = {}
                    for n in qnodes:
                        for name, members in n.ql:
                            g = groups.get(name)
                            groups[name] = members if g is None else g + members
                    qsubs = tuple(groups.values())
        r = _new_result(SublistResult, (psubs, qsubs)) if psubs or qsubs else EMPTY_RESULT
        cache = self._cache
        if len(cache) >= self._cache_max:
            if not self._cache_max:
                return r
            self._sweep()
        cache[subject] = r  # misses are cached too: a subject nobody wants stays cheap
        return r

    def _collect(self, toks):
        """The nodes whose subscriptions match ``toks``: a breadth-first walk
        holding every live branch (literal child and ``*`` child) per token; a
        ``>`` child matches as soon as there is a token for it to take."""
        found = []
        cur = (self._root,)
        for tok in toks:
            nxt = []
            for n in cur:
                c = n.fwc
                if c is not None:
                    found.append(c)
                c = n.pwc
                if c is not None:
                    nxt.append(c)
                d = n.nodes
                if d is not None:
                    c = d.get(tok)
                    if c is not None:
                        nxt.append(c)
            if not nxt:
                return found
            cur = nxt
        found += cur
        return found

    def has_interest(self, subject):
        """Whether anything matches ``subject``; walks the trie without building
        a result (and without filling the cache) on a miss."""
        r = self._cache_get(subject)
        if r is not None:
            return r is not EMPTY_RESULT
        toks = subject.split(b".")
        if b"" in toks:
            return False
        for n in self._collect(toks):
            if n.psubs or n.qsubs:
                return True
        return False

    # -- changes ----------------------------------------------------------------------

    def insert(self, sub):
        """Add ``sub``. Inserting a sub already present is a no-op. Raises
        ValueError for an empty token or a ``>`` that is not last."""
        subject = sub.subject
        toks = subject.split(b".")
        if b"" in toks or _FWC in toks[:-1]:
            raise ValueError("invalid subject %r" % (subject,))
        n = self._root
        literal = True
        for tok in toks:
            if tok == _PWC:
                literal = False
                c = n.pwc
                if c is None:
                    c = n.pwc = _Node()
            elif tok == _FWC:
                literal = False
                c = n.fwc
                if c is None:
                    c = n.fwc = _Node()
            else:
                d = n.nodes
                if d is None:
                    d = n.nodes = {}
                c = d.get(tok)
                if c is None:
                    c = d[tok] = _Node()
            n = c
        key = id(sub)  # identity, whatever __eq__/__hash__ the sub defines
        queue = sub.queue
        if queue:
            qsubs = n.qsubs
            if qsubs is None:
                qsubs = n.qsubs = {}
            members = qsubs.get(queue)
            if members is None:
                members = qsubs[queue] = {}
            elif key in members:
                return
            members[key] = sub
            n.ql = None
        else:
            psubs = n.psubs
            if psubs is None:
                psubs = n.psubs = {}
            elif key in psubs:
                return
            psubs[key] = sub
            n.pl = None
        self._count += 1
        self._inserts += 1
        self.genid += 1
        self._invalidate(subject, literal)

    def remove(self, sub):
        """Remove ``sub`` (by identity); True if it was present. Nodes left
        empty are pruned, so churn does not grow the trie."""
        subject = sub.subject
        path, literal = self._path(subject)
        if path is None:
            return False
        n = path[-1][2]
        key = id(sub)
        queue = sub.queue
        if queue:
            qsubs = n.qsubs
            members = qsubs.get(queue) if qsubs else None
            if not members or members.pop(key, None) is None:
                return False
            if not members:
                del qsubs[queue]
                if not qsubs:
                    n.qsubs = None
            n.ql = None
        else:
            psubs = n.psubs
            if not psubs or psubs.pop(key, None) is None:
                return False
            if not psubs:
                n.psubs = None
            n.pl = None
        for parent, tok, c in reversed(path):
            if not _is_empty(c):
                break
            if tok == _PWC:
                parent.pwc = None
            elif tok == _FWC:
                parent.fwc = None
            else:
                d = parent.nodes
                del d[tok]
                if not d:
                    parent.nodes = None
        self._count -= 1
        self._removes += 1
        self.genid += 1
        self._invalidate(subject, literal)
        return True

    def update_weight(self, sub, weight):
        """Set a (remote) queue sub's ``weight`` and refresh what depends on it."""
        sub.weight = weight
        self.genid += 1
        if not sub.queue:
            return
        path, literal = self._path(sub.subject)
        if path is None:
            return
        path[-1][2].ql = None
        self._invalidate(sub.subject, literal)

    def _path(self, subject):
        """The trie nodes of ``subject`` as ``(parent, token, child)`` from the
        root down (None if a node is missing), and whether it is literal."""
        n = self._root
        path = []
        literal = True
        for tok in subject.split(b"."):
            if tok == _PWC:
                literal = False
                c = n.pwc
            elif tok == _FWC:
                literal = False
                c = n.fwc
            else:
                d = n.nodes
                c = d.get(tok) if d is not None else None
            if c is None:
                return None, literal
            path.append((n, tok, c))
            n = c
        return path, literal

    def _invalidate(self, subject, literal):
        """Drop the cached results a change to ``subject``'s subs may alter.

        A literal subject affects only its own entry. A wildcard one affects
        every entry it matches, found by one compiled regex run over the keys
        (``filter`` keeps the loop in C): ~80 ns a key, so ~80 us for a full
        cache. That beats clearing a hot cache (each lost hot entry costs a
        miss, ~50x a key test) but not a cold one: when fewer than 1/32 of the
        entries could have been hit since the last wildcard change (a burst
        of SUBs/UNSUBs: a route's initial interest, a client going away),
        clearing is cheaper, and leaves the next changes nothing to scan.
        """
        cache = self._cache
        if not cache:
            return
        if literal:
            cache.pop(subject, None)
            return
        hits = self._hits
        if hits - self._hits_mark < len(cache) >> 5 or subject == _FWC:
            cache.clear()
        else:
            for key in list(filter(_filter_regex(subject), cache)):
                del cache[key]
        self._hits_mark = hits

    def _sweep(self):
        """Cache full: drop the oldest entries down to CACHE_SWEEP (dicts keep
        insertion order, so this is FIFO; nats-server drops at random)."""
        cache = self._cache
        for key in list(islice(cache, len(cache) - CACHE_SWEEP)):
            del cache[key]

    def clear_cache(self):
        self._cache.clear()

    # -- introspection ----------------------------------------------------------------

    def count(self):
        """The number of subscriptions."""
        return self._count

    def __len__(self):
        return self._count

    def subscriptions(self):
        """An iterator over every subscription (a snapshot: the sublist may be
        changed while it is consumed)."""
        out = []
        stack = [self._root]
        while stack:
            n = stack.pop()
            if n.psubs:
                out.extend(n.psubs.values())
            if n.qsubs:
                for members in n.qsubs.values():
                    out.extend(members.values())
            if n.nodes:
                stack.extend(n.nodes.values())
            if n.pwc is not None:
                stack.append(n.pwc)
            if n.fwc is not None:
                stack.append(n.fwc)
        return iter(out)

    def num_nodes(self):
        """Trie nodes below the root (0 when empty; for leak tests)."""
        total = 0
        stack = [self._root]
        while stack:
            n = stack.pop()
            if n.nodes:
                stack.extend(n.nodes.values())
            if n.pwc is not None:
                stack.append(n.pwc)
            if n.fwc is not None:
                stack.append(n.fwc)
            total += 1
        return total - 1

    def cache_count(self):
        return len(self._cache)

    def stats(self):
        """nats-server's /subsz figures. Fanout (plain subs + queue groups per
        cached result) is computed over the cache, as nats-server does."""
        matches = self._hits + self._misses
        tot = mx = 0
        cache = self._cache
        for r in cache.values():
            f = len(r[0]) + len(r[1])
            tot += f
            if f > mx:
                mx = f
        return {
            "num_subscriptions": self._count,
            "num_cache": len(cache),
            "num_inserts": self._inserts,
            "num_removes": self._removes,
            "num_matches": matches,
            "cache_hit_rate": self._hits / matches if matches else 0.0,
            "max_fanout": mx,
            "avg_fanout": tot / len(cache) if cache else 0.0,
        }
