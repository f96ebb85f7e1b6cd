"""Subject mappings: a published subject rewritten before it is matched.

nats-server's ``mappings {}`` (top level, for ``$G``) and an account's
``mappings``: a source subject (literal or with wildcards) maps to one
destination, or to weighted destinations of which one is picked at random per
message. Destinations take the transform functions of nats-server's
``server/subject_transform.go``: ``$N`` and ``{{wildcard(N)}}``,
``{{partition(n, N...)}}`` (FNV-1a of the named tokens, modulo n; of the whole
subject without N), ``{{split(N, delim)}}``, ``{{splitfromleft(N, pos)}}``,
``{{splitfromright(N, pos)}}``, ``{{slicefromleft(N, size)}}``,
``{{slicefromright(N, size)}}``, ``{{left(N, len)}}``, ``{{right(N, len)}}``
and ``{{random(n)}}``. Errors carry nats-server's texts (checked against
nats-server 2.15.1 in tests/auth/test_auth_services_interop.py).

The engine works on bytes, as the core does. :class:`AccountMappings` caches
which mapping (or none) a subject selects, so a subject no mapping covers costs
one dict lookup after the first time.
"""

import re
from random import random

from .subjects import is_literal, is_valid_subject, subset_match

_INVALID = "invalid mapping destination"
ERR_OUT_OF_RANGE = _INVALID + ": wildcard index out of range"
ERR_NOT_ENOUGH_ARGS = _INVALID + ": not enough arguments passed to the function"
ERR_BAD_ARG = _INVALID + ": function argument is invalid or in the wrong format"
ERR_TOO_MANY_ARGS = _INVALID + ": too many arguments passed to the function"
ERR_UNKNOWN_FUNCTION = _INVALID + ": unknown function"
ERR_BAD_SUBJECT = "invalid subject"

# function name (lower case) -> kind; each regex as nats-server's, case-insensitive
_FUNCTIONS = [(name, re.compile(r"^{{\s*%s\s*\((.*)\)\s*}}$" % name, re.I)) for name in (
    "wildcard", "partition", "splitfromleft", "splitfromright", "slicefromleft",
    "slicefromright", "split", "left", "right", "random")]
_COMMA = re.compile(r",\s*")
_CACHE_MAX = 4096


class MappingError(ValueError):
    """A destination nats-server refuses; ``str()`` is its error text."""


def _fnv32a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _int(token, s):
    try:
        return int(s.strip(" "))
    except ValueError:
        raise MappingError("%s in %s" % (ERR_BAD_ARG, token))


def _placeholder(token):
    """(kind, [wildcard indexes], int arg, str arg) of a destination token; kind
    None is a literal token."""
    if len(token) > 1 and token[0] == "$":
        try:
            return "wildcard", [int(token[1:])], None, None
        except ValueError:
            return None, None, None, None  # "$x" stays literal, as nats-server
    if not (len(token) > 4 and token.startswith("{{") and token.endswith("}}")):
        return None, None, None, None
    for name, regex in _FUNCTIONS:
        m = regex.match(token)
        if m is None:
            continue
        args = _COMMA.split(m.group(1))
        if name == "wildcard":
            if args == [""]:
                raise MappingError("%s in %s" % (ERR_NOT_ENOUGH_ARGS, token))
            if len(args) > 1:
                raise MappingError("%s in %s" % (ERR_TOO_MANY_ARGS, token))
            return name, [_int(token, args[0])], None, None
        if name == "partition":
            if args == [""]:
                raise MappingError("%s in %s" % (ERR_NOT_ENOUGH_ARGS, token))
            # without token numbers: the whole subject is hashed
            return name, [_int(token, a) for a in args[1:]], _int(token, args[0]), None
        if name == "random":
            if len(args) > 1:  # sic: nats-server 2.15.1's text for extra arguments
                raise MappingError("%s in %s" % (ERR_NOT_ENOUGH_ARGS, token))
            return name, [], _int(token, args[0]), None
        if len(args) < 2:
            raise MappingError("%s in %s" % (ERR_NOT_ENOUGH_ARGS, token))
        if len(args) > 2:
            raise MappingError("%s in %s" % (ERR_TOO_MANY_ARGS, token))
        if name == "split":
            if " " in args[1] or "." in args[1]:
                raise MappingError("%s in %s" % (ERR_BAD_ARG, token))
            return name, [_int(token, args[0])], None, args[1]
        return name, [_int(token, args[0])], _int(token, args[1]), None
    raise MappingError("%s in %s" % (ERR_UNKNOWN_FUNCTION, token))


class Transform:
    """One source pattern -> one destination (``subject_transform.go``)."""

    def __init__(self, src, dest):
        if not is_valid_subject(src.encode()) or not is_valid_subject(dest.encode()):
            raise MappingError(ERR_BAD_SUBJECT)
        stoks = src.split(".")
        dtoks = dest.split(".")
        if "*" in dtoks or (stoks[-1] == ">") != (dtoks[-1] == ">"):
            raise MappingError(ERR_BAD_SUBJECT)
        self.src = src
        self.dest = dest
        self.dest_bytes = dest.encode()
        self.fwc = dtoks[-1] == ">"
        self.nsrc = len(stoks)
        pwcs = [i for i, t in enumerate(stoks) if t == "*"]  # wildcard N -> token index
        self.parts = []  # (kind, source token indexes, int arg, bytes arg | literal bytes)
        for token in dtoks:
            kind, indexes, iarg, sarg = _placeholder(token)
            if kind is None:
                self.parts.append((None, None, None, token.encode()))
                continue
            if not pwcs and indexes:
                raise MappingError("%s in %s" % (ERR_OUT_OF_RANGE, token))
            src_idx = []
            for n in indexes:
                if n > len(pwcs) or n < 1:
                    raise MappingError("%s in %s: [%d]" % (ERR_OUT_OF_RANGE, token, n))
                src_idx.append(pwcs[n - 1])
            self.parts.append((kind, src_idx, iarg, sarg.encode() if sarg else None))
        self.literal = all(kind is None for kind, _, _, _ in self.parts)
        self.random = any(kind == "random" for kind, _, _, _ in self.parts)

    def apply(self, tokens):
        """The destination for a subject split into ``tokens`` (bytes)."""
        if self.literal and not self.fwc:
            return self.dest_bytes
        out = []
        for kind, idx, iarg, arg in self.parts:
            if kind is None:
                if arg == b">":
                    break
                out.append(arg)
            elif kind == "wildcard":
                out.append(tokens[idx[0]])
            elif kind == "partition":
                key = b"".join(tokens[i] for i in idx) if idx else b".".join(tokens)
                out.append(b"%d" % (_fnv32a(key) % iarg if iarg > 0 else 0))
            elif kind == "random":
                out.append(b"%d" % (int(random() * iarg) if iarg > 0 else 0))
            else:
                out.append(_function(kind, tokens[idx[0]], iarg, arg))
        if self.fwc:
            out.extend(tokens[self.nsrc - 1:])
        return b".".join(out)


def _function(kind, tok, n, delim):
    size = len(tok)
    if kind == "split":
        return b".".join(p for p in tok.split(delim) if p)
    if kind == "left":
        return tok[:n] if n > 0 else tok
    if kind == "right":
        return tok[size - n:] if 0 < n < size else tok
    if not 0 < n < size:
        return tok
    if kind == "splitfromleft":
        return tok[:n] + b"." + tok[n:]
    if kind == "splitfromright":
        return tok[:size - n] + b"." + tok[size - n:]
    if kind == "slicefromleft":
        return b".".join(tok[i:i + n] for i in range(0, size, n))
    # slicefromright: the short piece (if any) first
    rem = size % n
    pieces = [tok[:rem]] if rem else []
    pieces.extend(tok[i:i + n] for i in range(rem, size, n))
    return b".".join(pieces)


class Mapping:
    """A source subject and its destinations, with cumulative weights (a weight
    total under 100 leaves the rest to the unchanged subject, as nats-server)."""

    def __init__(self, src, dests):
        """``dests``: [(destination subject, weight 0..100)]."""
        if not is_valid_subject(src.encode()):
            raise MappingError(ERR_BAD_SUBJECT)
        self.src = src
        self.src_bytes = src.encode()
        seen = set()
        total = 0
        entries = []
        for dest, weight in dests:
            if dest in seen:
                raise MappingError("duplicate entry for %s" % _quote(dest))
            seen.add(dest)
            if weight > 100:
                raise MappingError("individual weights need to be <= 100")
            total += weight
            if total > 100:
                raise MappingError("total weight needs to be <= 100")
            entries.append((weight, Transform(src, dest)))
        if total < 100:
            # the remainder keeps the subject: a transform to the source itself
            n = iter(range(1, 1000))
            same = ".".join("$%d" % next(n) if t == "*" else t for t in src.split("."))
            entries.append((100 - total if entries else 100, Transform(src, same)))
        entries.sort(key=lambda e: e[0])
        self.dests = []
        cum = 0
        for weight, tr in entries:
            cum += weight
            self.dests.append((cum, tr))
        self.single = self.dests[0][1] if len(self.dests) == 1 and cum == 100 else None
        # one destination without {{random}}: a subject always maps the same way
        self.fixed = self.single is not None and not self.single.random

    def select(self, subject):
        tr = self.single
        if tr is None:
            w = int(random() * 100)
            for cum, t in self.dests:
                if w < cum:
                    tr = t
                    break
            else:
                return subject
        if tr.literal and not tr.fwc:
            return tr.dest_bytes
        return tr.apply(subject.split(b"."))


def _quote(s):
    return '"%s"' % s


class AccountMappings:
    """The mappings of one account; :meth:`map` is called per publish (only
    for accounts that have mappings). The cache holds, per subject, the mapped
    subject itself when the mapping is fixed (so a partition is hashed once per
    subject), else the Mapping to select from, or None for "not mapped"."""

    def __init__(self, mappings=()):
        self.literal = {}  # source bytes -> Mapping
        self.wildcard = []  # [Mapping], config order
        self._cache = {}  # subject -> mapped subject (bytes), Mapping or None
        for m in mappings:
            self.add(m)

    def add(self, m):
        if is_literal(m.src_bytes):
            self.literal[m.src_bytes] = m
        else:
            self.wildcard = [w for w in self.wildcard if w.src != m.src] + [m]
        self._cache.clear()

    def __len__(self):
        return len(self.literal) + len(self.wildcard)

    def map(self, subject):
        """The subject to deliver ``subject`` to (itself when nothing maps it)."""
        cache = self._cache
        m = cache.get(subject, 0)
        if m == 0:
            m = self.literal.get(subject)
            if m is None:
                for w in self.wildcard:
                    if subset_match(subject, w.src_bytes):
                        m = w
                        break
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            if m is not None and m.fixed:
                m = m.select(subject)
            cache[subject] = m
        if m is None:
            return subject
        if m.__class__ is bytes:
            return m
        return m.select(subject)

    def fixed(self, subject):
        """Does ``subject`` (after ``map`` saw it) always map to one subject?
        (A weighted mapping picks a destination per message.)"""
        return self._cache.get(subject).__class__ is not Mapping


def parse_mappings(value, errors, position=None):
    """The ``mappings {}`` block (top level or an account's) as a list of
    :class:`Mapping`; problems are appended to ``errors`` as
    ``(Position or None, message)`` with nats-server's texts (opts.go
    parseAccountMappings). ``position(key)`` locates a key of ``value``."""
    pos = position or (lambda key: None)
    out = []
    if not isinstance(value, dict):
        errors.append((None, "Expected a map of subject mappings, got %r" % (value,)))
        return out
    for src, v in value.items():
        if not is_valid_subject(src.encode()):
            errors.append((pos(src), "Subject %s is not a valid subject" % _quote(src)))
            continue
        if isinstance(v, str):
            dests = [(v, 100)]
            shown = " to " + _quote(v)
        else:
            items = v if isinstance(v, list) else [v]
            dests = []
            bad = False
            for item in items:
                d = _map_dest(item, errors, pos(src))
                if d is None:
                    bad = True
                else:
                    dests.append(d)
            if bad:
                continue
            shown = ""  # nats-server names no destination for a list
        try:
            out.append(Mapping(src, dests))
        except MappingError as exc:
            errors.append((pos(src), "Error adding mapping for %s%s : %s"
                           % (_quote(src), shown, exc)))
    return out


def _map_dest(item, errors, where):
    """(subject, weight) of one ``{destination: x, weight: 50%}`` entry, or None."""
    if not isinstance(item, dict):
        errors.append((where, "Expected an entry for the mapping destination"))
        return None
    subject = None
    weight = None
    for k, v in item.items():
        lk = k.lower()
        if lk in ("dest", "destination"):
            subject = v if isinstance(v, str) else str(v)
        elif lk == "weight":
            if isinstance(v, str):
                ws = v[:-1] if v.endswith("%") else v
                try:
                    weight = int(ws)
                except ValueError:
                    errors.append((where, "Invalid weight %s for mapping destination"
                                   % _quote(ws)))
                    return None
            elif isinstance(v, int) and not isinstance(v, bool):
                weight = v
            else:
                errors.append((where, "Unknown entry type for weight of %s\n" % (v,)))
                return None
            if weight > 100 or weight < 0:
                errors.append((where, "Invalid weight %d for mapping destination" % weight))
                return None
        elif lk == "cluster":
            errors.append((where, "cluster-scoped mapping destinations are not supported"))
            return None
        else:
            errors.append((where, "Unknown field %s for mapping destination" % _quote(k)))
            return None
    if weight is None:
        errors.append((where, "Missing weight for mapping destination %s"
                       % _quote(subject or "")))
        return None
    return subject or "", weight
