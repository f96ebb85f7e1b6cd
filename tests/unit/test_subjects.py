"""Subject validation, filter matching and filter overlap (pluggy_nats.subjects)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pluggy_nats.subjects import (
    is_literal,
    is_valid_literal_subject,
    is_valid_queue,
    is_valid_subject,
    subject_matches,
    subjects_collide,
    subset_match,
)

VALID_LITERAL = [
    b"foo", b"foo.bar", b"foo.bar.baz", b"a.b.c.d.e.f.g", b"_INBOX.abc123", b"$SYS.REQ.SERVER.PING",
    b"foo*", b"*foo", b"foo.bar*", b"f*o.b>r", b">x", b"x>", b"foo.>bar", b"foo.**", b"foo.>>",
    b"1.2.3", b"caf\xc3\xa9.bar", b"foo-bar.baz_qux", b"a", b"\x00", b"foo/bar",
]
VALID_WILDCARD = [
    b"*", b">", b"foo.*", b"foo.>", b"*.bar", b"*.*", b"*.>", b"foo.*.baz", b"foo.*.>", b"*.*.*.>",
    b"foo.bar.>", b"_INBOX.abc.*",
]
INVALID = [
    b"", b".", b"..", b"foo.", b".foo", b"foo..bar", b".foo.bar.", b"foo bar", b"foo\tbar",
    b"foo\rbar", b"foo\nbar", b"foo\x0cbar", b" foo", b"foo ", b"foo.bar\r\n", b"foo. .bar",
    b">.foo", b"foo.>.bar", b"foo.>.*", b">.>", b"*.>.*", b"foo.>.", b"foo.*.",
    b"\t", b" ", b"foo.\n",
]


@pytest.mark.parametrize("subject", VALID_LITERAL)
def test_valid_literal_subjects(subject):
    assert is_valid_subject(subject) is True
    assert is_valid_literal_subject(subject) is True
    assert is_literal(subject)


@pytest.mark.parametrize("subject", VALID_WILDCARD)
def test_valid_wildcard_subjects(subject):
    assert is_valid_subject(subject) is True
    assert is_valid_literal_subject(subject) is False
    assert not is_literal(subject)


@pytest.mark.parametrize("subject", INVALID)
def test_invalid_subjects(subject):
    assert is_valid_subject(subject) is False
    assert is_valid_literal_subject(subject) is False


@pytest.mark.parametrize("queue", [b"q", b"workers", b"q.with.dots", b"q*", b">", b"a-b_c"])
def test_valid_queue(queue):
    assert is_valid_queue(queue) is True


@pytest.mark.parametrize("queue", [b"", b" ", b"a b", b"a\tb", b"a\r", b"\nq", b"q\x0c"])
def test_invalid_queue(queue):
    assert is_valid_queue(queue) is False


@pytest.mark.parametrize("filter,subject,expected", [
    (b"foo", b"foo", True),
    (b"foo", b"bar", False),
    (b"foo.bar", b"foo.bar", True),
    (b"foo.bar", b"foo", False),
    (b"foo", b"foo.bar", False),
    (b"*", b"foo", True),
    (b"*", b"foo.bar", False),
    (b"foo.*", b"foo.bar", True),
    (b"foo.*", b"foo", False),
    (b"foo.*", b"foo.bar.baz", False),
    (b"*.bar", b"foo.bar", True),
    (b"*.bar", b"foo.baz", False),
    (b"foo.*.baz", b"foo.x.baz", True),
    (b"foo.*.baz", b"foo.x.bar", False),
    (b">", b"foo", True),
    (b">", b"foo.bar.baz", True),
    (b"foo.>", b"foo", False),  # ">" needs at least one token
    (b"foo.>", b"foo.bar", True),
    (b"foo.>", b"foo.bar.baz", True),
    (b"foo.>", b"bar.baz", False),
    (b"*.>", b"foo", False),
    (b"*.>", b"foo.bar", True),
    (b"foo.*.>", b"foo.a.b.c", True),
    (b"foo.*.>", b"foo.a", False),
    (b"foo*", b"foo.bar", False),  # not a wildcard
    (b"foo*", b"foox", False),
    (b"foo*", b"foo*", True),
    (b"foo.>x", b"foo.bar", False),
    (b"foo", b"foo.", False),
    (b"*", b"", False),
    (b">", b"foo..bar", False),
    (b"foo..bar", b"foo..bar", False),
])
def test_subject_matches(filter, subject, expected):
    assert subject_matches(filter, subject) is expected


@pytest.mark.parametrize("a,b,expected", [
    (b"foo.bar", b"foo.bar", True),
    (b"foo.bar", b"foo.*", True),
    (b"foo.bar", b"foo.>", True),
    (b"foo.bar", b">", True),
    (b"foo.*", b"foo.*", True),
    (b"foo.*", b"*.*", True),
    (b"foo.*", b">", True),
    (b"foo.*", b"foo.>", True),
    (b"foo.*", b"foo.bar", False),
    (b"foo.>", b"foo.*", False),
    (b"foo.>", b"foo.>", True),
    (b"foo.>", b">", True),
    (b">", b"foo.>", False),
    (b"foo.bar.>", b"foo.*.>", True),
    (b"foo.*.>", b"foo.bar.>", False),
    (b"foo", b"foo.>", False),
    (b"foo.bar", b"foo.bar.baz", False),
    (b"foo.bar.baz", b"foo.bar", False),
    (b"*", b"foo", False),
])
def test_subset_match(a, b, expected):
    assert subset_match(a, b) is expected


@pytest.mark.parametrize("a,b,expected", [
    (b"foo", b"foo", True),
    (b"foo", b"bar", False),
    (b"foo.*", b"foo.bar", True),
    (b"foo.*", b"*.bar", True),
    (b"foo.*", b"bar.*", False),
    (b"foo.>", b"foo", False),
    (b"foo.>", b"foo.bar.baz", True),
    (b"foo.>", b"*.bar", True),
    (b"foo.>", b"bar.>", False),
    (b">", b"anything.at.all", True),
    (b"a.*", b"a.b.c.>", False),  # nats-server's SubjectsCollide says True here
    (b"a.*.*.*", b"a.b.c.>", True),
    (b"*.*", b"*", False),
    (b"*.>", b"*", False),
    (b"*.>", b">", True),
    (b"foo.*.baz", b"foo.bar.*", True),
    (b"foo.*.baz", b"foo.bar.qux", False),
])
def test_subjects_collide(a, b, expected):
    assert subjects_collide(a, b) is expected
    assert subjects_collide(b, a) is expected


# -- properties against brute force over a tiny alphabet ------------------------------

TOKENS = [b"a", b"b"]


@st.composite
def filters(draw):
    n = draw(st.integers(1, 4))
    toks = [draw(st.sampled_from([b"a", b"b", b"*", b">"] if i == n - 1 else [b"a", b"b", b"*"]))
            for i in range(n)]
    return b".".join(toks)


def all_subjects(max_len):
    # A fresh token "c" stands for any literal not named by the filters.
    for n in range(1, max_len + 1):
        for toks in itertools.product([b"a", b"b", b"c"], repeat=n):
            yield b".".join(toks)


def ntok(s):
    return s.count(b".") + 1


@given(filters(), filters())
def test_collide_and_subset_match_brute_force(a, b):
    subjects = list(all_subjects(max(ntok(a), ntok(b)) + 1))
    ma = {s for s in subjects if subject_matches(a, s)}
    mb = {s for s in subjects if subject_matches(b, s)}
    assert subjects_collide(a, b) is bool(ma & mb)
    assert subset_match(a, b) is (ma <= mb)


@given(filters(), st.lists(st.sampled_from([b"a", b"b", b"c"]), min_size=1, max_size=5))
def test_subject_matches_agrees_with_regex_model(f, toks):
    import re

    subject = b".".join(toks)
    pattern = b"\\.".join(b"[^.]+" if t == b"*" else b".+" if t == b">" else re.escape(t)
                          for t in f.split(b"."))
    assert subject_matches(f, subject) is (re.fullmatch(pattern, subject) is not None)
    assert is_valid_subject(f)
