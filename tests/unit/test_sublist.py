"""The subject index (pluggy_nats.sublist): matching, queue groups, weights,
cache invalidation, pruning, stats, and a property test against brute force."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluggy_nats.subjects import subject_matches
from pluggy_nats.sublist import CACHE_MAX, EMPTY_RESULT, Sublist, SublistResult


class Sub:
    __slots__ = ("subject", "queue", "weight", "name")

    def __init__(self, subject, queue=None, weight=1, name=""):
        self.subject = subject
        self.queue = queue
        self.weight = weight
        self.name = name

    def __repr__(self):
        return "Sub(%r, %r, %r)" % (self.subject, self.queue, self.weight)


class EqSub(Sub):
    """Compares equal to every other EqSub (and is unhashable by equality):
    the sublist must still work by identity."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, EqSub)

    __hash__ = None


def subjects_of(subs):
    return sorted(s.subject for s in subs)


def group_counts(result):
    """{queue: Counter(member -> occurrences)} of a result."""
    out = {}
    for members in result.qsubs:
        assert members, "empty queue group in result"
        q = members[0].queue
        assert all(m.queue == q for m in members)
        assert q not in out, "queue group %r split in result" % q
        out[q] = Counter(id(m) for m in members)
    return out


# -- basic matching -------------------------------------------------------------------


def test_empty_sublist():
    sl = Sublist()
    r = sl.match(b"foo")
    assert r is EMPTY_RESULT
    assert r == ((), ())
    assert r.psubs == () and r.qsubs == ()
    assert isinstance(r, SublistResult)
    assert sl.count() == 0
    assert not sl.has_interest(b"foo")


def test_literal_match():
    sl = Sublist()
    a, b = Sub(b"foo"), Sub(b"foo.bar")
    sl.insert(a)
    sl.insert(b)
    assert sl.match(b"foo").psubs == (a,)
    assert sl.match(b"foo.bar").psubs == (b,)
    assert sl.match(b"foo.baz") is EMPTY_RESULT
    assert sl.match(b"bar") is EMPTY_RESULT
    assert sl.count() == 2


def test_psubs_in_insertion_order_within_subject():
    sl = Sublist()
    subs = [Sub(b"foo.bar", name=str(i)) for i in range(20)]
    for s in subs:
        sl.insert(s)
    assert sl.match(b"foo.bar").psubs == tuple(subs)


def test_pwc_match():
    sl = Sublist()
    s = Sub(b"foo.*")
    sl.insert(s)
    assert sl.match(b"foo.bar").psubs == (s,)
    assert sl.match(b"foo.baz").psubs == (s,)
    assert sl.match(b"foo") is EMPTY_RESULT
    assert sl.match(b"foo.bar.baz") is EMPTY_RESULT
    s2 = Sub(b"*")
    sl.insert(s2)
    assert sl.match(b"foo").psubs == (s2,)
    assert sl.match(b"x.y") is EMPTY_RESULT


def test_pwc_middle():
    sl = Sublist()
    s = Sub(b"foo.*.baz")
    sl.insert(s)
    assert sl.match(b"foo.x.baz").psubs == (s,)
    assert sl.match(b"foo.x.bar") is EMPTY_RESULT
    assert sl.match(b"foo.x") is EMPTY_RESULT


def test_fwc_match():
    sl = Sublist()
    s = Sub(b"foo.>")
    sl.insert(s)
    assert sl.match(b"foo") is EMPTY_RESULT  # ">" needs at least one token
    assert sl.match(b"foo.bar").psubs == (s,)
    assert sl.match(b"foo.bar.baz.qux").psubs == (s,)
    assert sl.match(b"bar.baz") is EMPTY_RESULT
    full = Sub(b">")
    sl.insert(full)
    assert sl.match(b"anything").psubs == (full,)
    assert subjects_of(sl.match(b"foo.x").psubs) == [b">", b"foo.>"]


def test_mixed_wildcards():
    sl = Sublist()
    subs = [Sub(x) for x in (b"foo.bar", b"foo.*", b"foo.>", b"*.bar", b">", b"*.*", b"*.>",
                             b"foo.bar.baz", b"foo.*.baz", b"*.bar.>")]
    for s in subs:
        sl.insert(s)
    for subject in (b"foo.bar", b"foo.bar.baz", b"x.bar", b"foo", b"x.bar.y.z", b"foo.q.baz"):
        expect = sorted(s.subject for s in subs if subject_matches(s.subject, subject))
        assert subjects_of(sl.match(subject).psubs) == expect, subject
        assert sl.has_interest(subject) is bool(expect)


def test_wildcard_chars_inside_tokens_are_literal():
    sl = Sublist()
    s = Sub(b"foo*.bar")
    sl.insert(s)
    assert sl.match(b"foo*.bar").psubs == (s,)
    assert sl.match(b"foox.bar") is EMPTY_RESULT
    t = Sub(b"a.>b")
    sl.insert(t)
    assert sl.match(b"a.>b").psubs == (t,)
    assert sl.match(b"a.x") is EMPTY_RESULT


def test_invalid_publish_subjects_match_nothing():
    sl = Sublist()
    sl.insert(Sub(b">"))
    sl.insert(Sub(b"*.*"))
    for bad in (b"", b".", b"foo.", b".foo", b"foo..bar"):
        assert sl.match(bad) is EMPTY_RESULT
        assert not sl.has_interest(bad)


@pytest.mark.parametrize("bad", [b"", b"foo..bar", b".foo", b"foo.", b"foo.>.bar", b">.foo"])
def test_insert_rejects_invalid_subject(bad):
    sl = Sublist()
    with pytest.raises(ValueError):
        sl.insert(Sub(bad))
    assert sl.count() == 0
    assert sl.num_nodes() == 0


def test_real_subscription_class():
    from pluggy_nats.subscription import Subscription

    sl = Sublist()
    s = Subscription(None, b"foo.*", sid=b"1")
    q = Subscription(None, b"foo.bar", queue=b"q", sid=b"2", weight=2)
    sl.insert(s)
    sl.insert(q)
    r = sl.match(b"foo.bar")
    assert r.psubs == (s,)
    assert r.qsubs == ((q, q),)
    assert sl.remove(s) and sl.remove(q)
    assert sl.num_nodes() == 0


# -- queue groups and weights -----------------------------------------------------------


def test_queue_groups():
    sl = Sublist()
    p = Sub(b"foo")
    q1a, q1b, q2a = Sub(b"foo", b"q1"), Sub(b"foo", b"q1"), Sub(b"foo", b"q2")
    for s in (p, q1a, q1b, q2a):
        sl.insert(s)
    r = sl.match(b"foo")
    assert r.psubs == (p,)
    assert len(r.qsubs) == 2
    groups = group_counts(r)
    assert groups[b"q1"] == Counter({id(q1a): 1, id(q1b): 1})
    assert groups[b"q2"] == Counter({id(q2a): 1})
    assert r.qsubs[0] == (q1a, q1b)  # members in insertion order


def test_queue_groups_merge_across_levels():
    sl = Sublist()
    a, b, c = Sub(b"foo.*", b"q1"), Sub(b"foo.>", b"q1"), Sub(b"foo.bar", b"q1")
    d = Sub(b">", b"q2")
    for s in (a, b, c, d):
        sl.insert(s)
    r = sl.match(b"foo.bar")
    groups = group_counts(r)
    assert set(groups) == {b"q1", b"q2"}
    assert groups[b"q1"] == Counter({id(a): 1, id(b): 1, id(c): 1})
    assert r.psubs == ()


def test_weights_repeat_members():
    sl = Sublist()
    local = Sub(b"foo", b"q")
    remote = Sub(b"foo", b"q", weight=3)
    sl.insert(local)
    sl.insert(remote)
    (members,) = sl.match(b"foo").qsubs
    assert len(members) == 4
    assert Counter(id(m) for m in members) == Counter({id(local): 1, id(remote): 3})


def test_weights_across_levels():
    sl = Sublist()
    a = Sub(b"foo.*", b"q", weight=2)
    b = Sub(b"foo.>", b"q", weight=5)
    sl.insert(a)
    sl.insert(b)
    assert group_counts(sl.match(b"foo.x"))[b"q"] == Counter({id(a): 2, id(b): 5})


def test_bogus_weight_counts_once():
    sl = Sublist()
    s = Sub(b"foo", b"q", weight=0)
    sl.insert(s)
    assert sl.match(b"foo").qsubs == ((s,),)


def test_update_weight_invalidates_cache():
    sl = Sublist()
    remote = Sub(b"foo.*", b"q", weight=1)
    sl.insert(remote)
    assert sl.match(b"foo.x").qsubs == ((remote,),)
    g = sl.genid
    sl.update_weight(remote, 4)
    assert remote.weight == 4
    assert sl.genid > g
    assert sl.match(b"foo.x").qsubs == ((remote,) * 4,)
    sl.update_weight(remote, 2)
    assert sl.match(b"foo.x").qsubs == ((remote,) * 2,)
    # a literal one too
    lit = Sub(b"bar", b"q", weight=1)
    sl.insert(lit)
    assert sl.match(b"bar").qsubs == ((lit,),)
    sl.update_weight(lit, 3)
    assert sl.match(b"bar").qsubs == ((lit,) * 3,)


# -- removal and identity ----------------------------------------------------------------


def test_remove_by_identity():
    sl = Sublist()
    a, b = EqSub(b"foo"), EqSub(b"foo")
    assert a == b
    sl.insert(a)
    sl.insert(b)
    assert sl.count() == 2
    assert sl.match(b"foo").psubs == (a, b)
    assert sl.remove(b) is True
    r = sl.match(b"foo").psubs
    assert len(r) == 1 and r[0] is a
    assert sl.remove(b) is False
    assert sl.remove(EqSub(b"foo")) is False
    assert sl.remove(a) is True
    assert sl.count() == 0
    assert sl.num_nodes() == 0


def test_remove_queue_by_identity():
    sl = Sublist()
    a, b = EqSub(b"foo", b"q"), EqSub(b"foo", b"q")
    sl.insert(a)
    sl.insert(b)
    assert sl.remove(b) is True
    (members,) = sl.match(b"foo").qsubs
    assert len(members) == 1 and members[0] is a
    assert sl.remove(EqSub(b"foo", b"q")) is False
    assert sl.remove(Sub(b"foo", b"other")) is False
    assert sl.remove(Sub(b"foo")) is False
    assert sl.remove(a) is True
    assert sl.match(b"foo") is EMPTY_RESULT
    assert sl.num_nodes() == 0


def test_remove_absent():
    sl = Sublist()
    sl.insert(Sub(b"foo.bar"))
    g = sl.genid
    assert sl.remove(Sub(b"foo.bar")) is False
    assert sl.remove(Sub(b"foo")) is False
    assert sl.remove(Sub(b"foo.bar.baz")) is False
    assert sl.remove(Sub(b"foo.*")) is False
    assert sl.remove(Sub(b"foo..bar")) is False
    assert sl.genid == g
    assert sl.count() == 1


def test_double_insert_is_noop():
    sl = Sublist()
    s = Sub(b"foo")
    q = Sub(b"foo", b"q")
    sl.insert(s)
    sl.insert(s)
    sl.insert(q)
    sl.insert(q)
    assert sl.count() == 2
    assert sl.match(b"foo") == ((s,), ((q,),))
    assert sl.remove(s) and not sl.remove(s)


def test_prune_keeps_siblings():
    sl = Sublist()
    a, b, c = Sub(b"foo.bar.baz"), Sub(b"foo.bar"), Sub(b"foo.*.baz")
    for s in (a, b, c):
        sl.insert(s)
    n = sl.num_nodes()
    assert sl.remove(b)
    assert sl.num_nodes() == n  # foo.bar node still leads to foo.bar.baz
    assert sl.match(b"foo.bar.baz").psubs and sl.match(b"foo.bar") is EMPTY_RESULT
    assert sl.remove(a)
    assert sl.num_nodes() == 3  # foo, *, baz
    assert sl.remove(c)
    assert sl.num_nodes() == 0


def test_churn_prunes_to_empty():
    rng = random.Random(1234)
    vocab = [b"a", b"b", b"c", b"dd", b"eee", b"f", b"ggg", b"hh"]
    sl = Sublist()
    subs = []
    for _ in range(10_000):
        n = rng.randint(1, 6)
        toks = [rng.choice(vocab + [b"*"]) for _ in range(n)]
        if rng.random() < 0.1:
            toks[-1] = b">"
        queue = rng.choice([None, None, None, b"q1", b"q2"])
        subs.append(Sub(b".".join(toks), queue, rng.randint(1, 3)))
    for s in subs:
        sl.insert(s)
        if rng.random() < 0.05:
            sl.match(b".".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))))
    assert sl.count() == 10_000
    assert sl.num_nodes() > 0
    assert sorted(map(id, sl.subscriptions())) == sorted(map(id, subs))
    rng.shuffle(subs)
    for i, s in enumerate(subs):
        assert sl.remove(s) is True
        if i % 997 == 0:
            sl.match(b"a.b.c")
    assert sl.count() == 0
    assert sl.num_nodes() == 0
    assert list(sl.subscriptions()) == []
    assert sl.match(b"a.b") is EMPTY_RESULT


# -- cache --------------------------------------------------------------------------------


def test_cache_hit_returns_same_object():
    sl = Sublist()
    sl.insert(Sub(b"foo.*"))
    r1 = sl.match(b"foo.bar")
    r2 = sl.match(b"foo.bar")
    assert r1 is r2
    assert sl.cache_count() == 1


def test_cache_invalidated_on_literal_insert_and_remove():
    sl = Sublist()
    assert sl.match(b"foo") is EMPTY_RESULT
    assert sl.match(b"bar") is EMPTY_RESULT
    s = Sub(b"foo")
    sl.insert(s)
    assert sl.match(b"foo").psubs == (s,)
    assert sl.cache_count() == 2  # "bar" kept: a literal change only drops its own entry
    sl.remove(s)
    assert sl.match(b"foo") is EMPTY_RESULT


def test_cache_invalidated_on_wildcard_insert_and_remove():
    sl = Sublist()
    subjects = [b"foo.bar", b"foo.baz", b"foo.bar.x", b"bar.baz", b"foo"]
    for subj in subjects:
        assert sl.match(subj) is EMPTY_RESULT
    w = Sub(b"foo.*")
    sl.insert(w)
    assert sl.cache_count() == 3  # only foo.bar and foo.baz dropped
    assert sl.match(b"foo.bar").psubs == (w,)
    assert sl.match(b"foo.baz").psubs == (w,)
    assert sl.match(b"foo.bar.x") is EMPTY_RESULT
    f = Sub(b"foo.>")
    sl.insert(f)
    assert sl.match(b"foo.bar.x").psubs == (f,)
    assert sl.match(b"foo") is EMPTY_RESULT
    assert subjects_of(sl.match(b"foo.bar").psubs) == [b"foo.*", b"foo.>"]
    sl.remove(w)
    assert sl.match(b"foo.bar").psubs == (f,)
    sl.remove(f)
    for subj in subjects:
        assert sl.match(subj) is EMPTY_RESULT
    full = Sub(b">")
    sl.insert(full)
    for subj in subjects:
        assert sl.match(subj).psubs == (full,)


def test_wildcard_invalidation_scans_hot_cache_clears_cold_one():
    sl = Sublist()
    subjects = [b"k.%d" % i for i in range(200)] + [b"other.%d" % i for i in range(200)]
    for subj in subjects:
        sl.match(subj)
    for subj in subjects:  # hot: every entry hit since the last wildcard change
        sl.match(subj)
    s = Sub(b"k.*")
    sl.insert(s)
    assert sl.cache_count() == 200  # only the k.* entries went
    assert sl.match(b"k.5").psubs == (s,)
    # No hits since: a second wildcard change (a burst) clears rather than scans.
    sl.insert(Sub(b"other.*"))
    assert sl.cache_count() == 0
    assert sl.match(b"other.1").psubs and sl.match(b"k.1").psubs == (s,)


def test_cache_invalidated_for_queue_subs():
    sl = Sublist()
    a = Sub(b"foo.*", b"q")
    sl.insert(a)
    assert sl.match(b"foo.x").qsubs == ((a,),)
    b = Sub(b"foo.x", b"q")
    sl.insert(b)
    assert group_counts(sl.match(b"foo.x"))[b"q"] == Counter({id(a): 1, id(b): 1})
    sl.remove(a)
    assert sl.match(b"foo.x").qsubs == ((b,),)


def test_cache_bounded():
    sl = Sublist()
    s = Sub(b"k.*")
    sl.insert(s)
    for i in range(CACHE_MAX * 3):
        assert sl.match(b"k.%d" % i).psubs == (s,)
        assert sl.cache_count() <= CACHE_MAX
    # entries evicted or not, answers stay right
    for i in range(0, CACHE_MAX * 3, 7):
        assert sl.match(b"k.%d" % i).psubs == (s,)
    sl.remove(s)
    for i in range(0, CACHE_MAX * 3, 7):
        assert sl.match(b"k.%d" % i) is EMPTY_RESULT


def test_genid_bumps():
    sl = Sublist()
    g0 = sl.genid
    s = Sub(b"foo", b"q")
    sl.insert(s)
    g1 = sl.genid
    assert g1 > g0
    sl.update_weight(s, 2)
    g2 = sl.genid
    assert g2 > g1
    sl.remove(s)
    assert sl.genid > g2


def test_results_are_immutable_tuples():
    sl = Sublist()
    sl.insert(Sub(b"foo", b"q"))
    sl.insert(Sub(b"foo"))
    r = sl.match(b"foo")
    assert type(r.psubs) is tuple and type(r.qsubs) is tuple
    assert all(type(m) is tuple for m in r.qsubs)
    psubs, qsubs = r  # unpackable, as delivery does
    assert psubs is r.psubs and qsubs is r.qsubs


def test_cached_result_is_not_mutated_by_later_changes():
    sl = Sublist()
    a = Sub(b"foo")
    sl.insert(a)
    r = sl.match(b"foo")
    b = Sub(b"foo")
    sl.insert(b)
    assert r.psubs == (a,)
    assert sl.match(b"foo").psubs == (a, b)


# -- stats ----------------------------------------------------------------------------------


def test_stats():
    sl = Sublist()
    st0 = sl.stats()
    assert st0 == {"num_subscriptions": 0, "num_cache": 0, "num_inserts": 0, "num_removes": 0,
                   "num_matches": 0, "cache_hit_rate": 0.0, "max_fanout": 0, "avg_fanout": 0.0}
    subs = [Sub(b"foo"), Sub(b"foo.*"), Sub(b"foo.bar", b"q"), Sub(b"foo.bar", b"q")]
    for s in subs:
        sl.insert(s)
    sl.remove(subs[0])
    sl.match(b"foo.bar")  # miss: 1 psub + 1 group -> fanout 2
    sl.match(b"foo.bar")  # hit
    sl.match(b"foo.baz")  # miss: fanout 1
    sl.match(b"foo.baz")  # hit
    st = sl.stats()
    assert st["num_subscriptions"] == 3
    assert st["num_inserts"] == 4
    assert st["num_removes"] == 1
    assert st["num_matches"] == 4
    assert st["num_cache"] == 2
    assert st["cache_hit_rate"] == 0.5
    assert st["max_fanout"] == 2
    assert st["avg_fanout"] == 1.5
    assert len(sl) == sl.count() == 3


# -- property: the index agrees with brute force under random changes ----------------------

LIT = [b"a", b"b", b"c"]


@st.composite
def filter_subjects(draw):
    n = draw(st.integers(1, 4))
    toks = [draw(st.sampled_from(LIT + [b"*"])) for _ in range(n)]
    if draw(st.booleans()) and draw(st.booleans()):
        toks[-1] = b">"
    return b".".join(toks)


literal_subjects = st.lists(st.sampled_from(LIT), min_size=1, max_size=5).map(b".".join)

ops = st.one_of(
    st.tuples(st.just("insert"), filter_subjects(),
              st.sampled_from([None, None, b"q1", b"q2"]), st.integers(1, 3)),
    st.tuples(st.just("remove"), st.integers(0, 1000)),
    st.tuples(st.just("update"), st.integers(0, 1000), st.integers(1, 4)),
    st.tuples(st.just("match"), literal_subjects),
)


def expected(live, subject):
    psubs = sorted(id(s) for s in live if not s.queue and subject_matches(s.subject, subject))
    groups = {}
    for s in live:
        if s.queue and subject_matches(s.subject, subject):
            groups.setdefault(s.queue, Counter())[id(s)] += s.weight
    return psubs, groups


def check(sl, live, subject):
    r = sl.match(subject)
    psubs, groups = expected(live, subject)
    assert sorted(id(s) for s in r.psubs) == psubs
    assert len(r.psubs) == len(set(map(id, r.psubs)))
    assert group_counts(r) == groups
    assert (r is EMPTY_RESULT) is (not psubs and not groups)
    assert sl.has_interest(subject) is bool(psubs or groups)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=60), st.lists(literal_subjects, min_size=1, max_size=8))
def test_matches_brute_force(operations, probes):
    sl = Sublist()
    live = []
    for op in operations:
        kind = op[0]
        if kind == "insert":
            s = Sub(op[1], op[2], op[3])
            sl.insert(s)
            live.append(s)
        elif kind == "remove":
            if live:
                s = live.pop(op[1] % len(live))
                assert sl.remove(s) is True
                assert sl.remove(s) is False
        elif kind == "update":
            if live:
                s = live[op[1] % len(live)]
                sl.update_weight(s, op[2])
        else:
            check(sl, live, op[1])  # fills the cache between changes
        assert sl.count() == len(live)
    for subject in probes:
        check(sl, live, subject)
        check(sl, live, subject)  # second time from the cache
    sl.clear_cache()
    for subject in probes:
        check(sl, live, subject)
    assert sorted(map(id, sl.subscriptions())) == sorted(map(id, live))
    for s in live:
        assert sl.remove(s) is True
    assert sl.count() == 0
    assert sl.num_nodes() == 0
