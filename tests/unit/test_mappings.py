"""The subject transform engine (pluggy_nats.mappings) on its own: every
function, weighted selection, the cache, and nats-server's error texts."""

import collections

import pytest

from pluggy_nats.mappings import AccountMappings, Mapping, MappingError, Transform


@pytest.mark.parametrize("src,dest,subject,expected", [
    ("a", "b", b"a", b"b"),
    ("a.*.*", "b.$2.$1", b"a.x.y", b"b.y.x"),
    ("a.*.*", "b.{{wildcard(2)}}.{{Wildcard(1)}}", b"a.x.y", b"b.y.x"),
    ("a.*.>", "b.$1.>", b"a.x.y.z", b"b.x.y.z"),
    ("a.>", "b.>", b"a.x", b"b.x"),
    ("a.*", "b.{{split(1,-)}}", b"a.-x--y-", b"b.x.y"),
    ("a.*", "b.{{splitfromleft(1,2)}}", b"a.abcde", b"b.ab.cde"),
    ("a.*", "b.{{splitfromright(1,2)}}", b"a.abcde", b"b.abc.de"),
    ("a.*", "b.{{slicefromleft(1,2)}}", b"a.abcde", b"b.ab.cd.e"),
    ("a.*", "b.{{slicefromright(1,2)}}", b"a.abcde", b"b.a.bc.de"),
    ("a.*", "b.{{slicefromright(1,9)}}", b"a.abcde", b"b.abcde"),
    ("a.*", "b.{{left(1,2)}}", b"a.abcde", b"b.ab"),
    ("a.*", "b.{{right(1,2)}}", b"a.abcde", b"b.de"),
    ("a.*", "b.{{random(1)}}", b"a.x", b"b.0"),
    # FNV-1a("k0") = 0x0b3ac0b7... as nats-server: k0 -> 1 of 3; "p.k0" -> 2
    ("a.*", "b.{{partition(3,1)}}", b"a.k0", b"b.1"),
    ("p.*", "b.{{partition(3)}}", b"p.k0", b"b.2"),
])
def test_transform_functions(src, dest, subject, expected):
    assert Transform(src, dest).apply(subject.split(b".")) == expected


@pytest.mark.parametrize("src,dest,message", [
    ("a.*", "b.$2", "wildcard index out of range in $2: [2]"),
    ("a", "b.$1", "wildcard index out of range in $1"),
    ("a.*", "b.{{foo(1)}}", "unknown function in {{foo(1)}}"),
    ("a.*", "b.{{wildcard()}}", "not enough arguments passed to the function"),
    ("a.*", "b.{{split(1)}}", "not enough arguments passed to the function"),
    ("a.*", "b.{{splitfromleft(1,2,3)}}", "too many arguments passed to the function"),
    ("a.*", "b.{{partition(x)}}", "function argument is invalid or in the wrong format"),
    ("a.*", "b.*", "invalid subject"),
    ("a.>", "b", "invalid subject"),
])
def test_transform_errors(src, dest, message):
    with pytest.raises(MappingError) as info:
        Transform(src, dest)
    assert message in str(info.value)


def test_weighted_selection_and_remainder():
    m = Mapping("a", [("x", 60), ("y", 20)])  # 20% keeps "a"
    counts = collections.Counter(m.select(b"a") for _ in range(20000))
    assert set(counts) == {b"x", b"y", b"a"}
    for subject, share in ((b"x", 0.6), (b"y", 0.2), (b"a", 0.2)):
        assert abs(counts[subject] / 20000 - share) < 0.03, counts
    with pytest.raises(MappingError, match="total weight needs to be <= 100"):
        Mapping("a", [("x", 60), ("y", 50)])
    with pytest.raises(MappingError, match='duplicate entry for "x"'):
        Mapping("a", [("x", 10), ("x", 10)])


def test_account_mappings_literal_first_and_cache():
    am = AccountMappings([Mapping("a.*", [("w.$1", 100)]), Mapping("a.b", [("lit", 100)])])
    assert am.map(b"a.b") == b"lit"
    assert am.map(b"a.c") == b"w.c"
    assert am.map(b"zzz") == b"zzz"
    assert am.map(b"zzz") == b"zzz"  # from the cache
    am.add(Mapping("zzz", [("new", 100)]))  # adding clears the cache
    assert am.map(b"zzz") == b"new"


def test_account_mappings_cache_fixed_results_only():
    """A fixed mapping's result is cached per subject; a random or weighted one
    is chosen again for every message."""
    am = AccountMappings([Mapping("p.*", [("pp.{{partition(4,1)}}", 100)]),
                          Mapping("r.*", [("r.{{random(3)}}", 100)]),
                          Mapping("w", [("x", 50), ("y", 50)])])
    assert len({am.map(b"p.key") for _ in range(50)}) == 1
    assert {am.map(b"r.x") for _ in range(300)} == {b"r.0", b"r.1", b"r.2"}
    assert {am.map(b"w") for _ in range(300)} == {b"x", b"y"}
