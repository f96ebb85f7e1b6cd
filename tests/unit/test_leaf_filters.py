"""The leaf link's run prefilter (filters.may_deny_any) answers exactly what
the per-subject one (filters.may_deny) answers over the same subjects."""

import random

from plugins.leafnode.filters import deny_prefixes, may_deny, may_deny_any


class _Denied:
    """A filter as the manager builds one: what matters here is its prefixes."""

    def __init__(self, deny):
        self.prefixes = deny_prefixes(None, deny)


SUBJECTS = [b"foo.0", b"foo.1", b"$JS.API.INFO", b"$JS.API", b"$JSC.x", b"$KV.b.k", b"_INBOX.a",
            b"bar", b"$JS.APIX", b"a.$JS.API.x", b"x\n$JS.API.y", b"$JS"]
DENIES = [[b"$JS.API.>"], [b"$JS.API.>", b"$KV.>", b"_INBOX.*"], [b"foo.1"], [b"*.x"],
          [b"bar", b"$JSC.>"]]


def test_a_run_prefilter_answers_as_the_per_subject_one():
    rng = random.Random(5)
    for deny in DENIES:
        denied = _Denied(deny)
        one, run = may_deny(denied), may_deny_any(denied)
        for _ in range(300):
            subjects = rng.sample(SUBJECTS, rng.randint(0, 5))
            expected = any(map(one, subjects))
            got = run(iter(subjects))
            # exact where no subject holds a LF; one that does may only say "may deny"
            assert got == expected or (got and any(b"\n" in s for s in subjects)), \
                (deny, subjects)
    assert may_deny_any(None) is None
