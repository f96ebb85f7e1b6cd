"""Fuzzing the config format and every plugin's config parsing (issue 18):
seeded hypothesis configurations, checked in-process exactly as ``serve -t``
checks them. Whatever the file holds, the check ends with "valid" or with
errors that each carry file:line; no exception escapes."""

import contextlib
import io
import os
import re

from hypothesis import given, seed
from hypothesis import strategies as st

from pluggy_nats.cli import serve
from pluggy_nats.testing import fuzz

# Keys the core and the plugins read, at the top level and inside blocks.
TOP_KEYS = ["port", "host", "listen", "http", "http_port", "server_name", "max_payload",
            "max_pending", "max_control_line", "max_connections", "ping_interval", "ping_max",
            "write_deadline", "debug", "trace", "logtime", "no_auth_user", "lame_duck_duration",
            "system_account", "mappings", "tls", "jetstream", "unknown_key"]
BLOCK_KEYS = {
    "cluster": ["name", "listen", "host", "port", "routes", "advertise", "no_advertise",
                "connect_retries", "pool_size", "accounts", "authorization", "compression",
                "permissions", "tls", "bogus"],
    "authorization": ["user", "password", "token", "timeout", "users", "permissions",
                      "default_permissions", "auth_callout"],
    "accounts": ["A", "B", "$SYS"],
    "tls": ["cert_file", "key_file", "ca_file", "verify", "timeout", "handshake_first"],
}
NESTED_KEYS = ["user", "password", "users", "publish", "subscribe", "allow", "deny", "import",
               "export", "exports", "imports", "stream", "service", "account", "subject",
               "limits", "max_connections", "mappings", "nkey", "mode", "issuer", "auth_users",
               "jetstream", "to", "prefix", "allow_responses", "max", "expires"]


def _scalar():
    return st.one_of(
        st.integers(-3, 70000).map(str), st.sampled_from(["1.5", "-1", "1MB", "2m", "1x", "1e9"]),
        st.sampled_from(["true", "false", "yes", "off", '"x"', '"127.0.0.1:-1"', "127.0.",
                         '"nats://127.0.0.1:4222"', '"foo.*"', '"a..b"', '""', "'q'",
                         '"$2a$11$abcdefghijklmnopqrstuv"', "$UNDEFINED", '"\\u00e9"']),
    )


def _value(depth):
    if depth <= 0:
        return _scalar()
    inner = _value(depth - 1)
    return st.one_of(
        _scalar(),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(NESTED_KEYS), inner, max_size=3).map(
            lambda d: "{ " + "\n".join("%s: %s" % kv for kv in d.items()) + " }"),
    )


@st.composite
def configs(draw):
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            block = draw(st.sampled_from(sorted(BLOCK_KEYS)))
            entries = draw(st.dictionaries(st.sampled_from(BLOCK_KEYS[block]), _value(2),
                                           max_size=4))
            body = draw(st.one_of(_scalar(), st.just(
                "{\n" + "\n".join("  %s: %s" % kv for kv in entries.items()) + "\n}")))
            lines.append("%s: %s" % (block, body) if not body.startswith("{")
                         else "%s %s" % (block, body))
        else:
            lines.append("%s: %s" % (draw(st.sampled_from(TOP_KEYS)), draw(_value(1))))
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 5)) == 0:  # a cut or a junk byte somewhere
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", "{", "\x00", "\"", "\n]"])) + text[cut:]
    return text


EXAMPLES = 100  # each is a full `serve -t` (plugins loaded): ~0.1 s
_LOCATED = re.compile(r"^.+:\d+:\d+: ")


def test_fuzz_config(tmp_path):
    path = os.path.join(str(tmp_path), "fuzz.conf")
    seen = {"valid": 0, "errors": 0}

    @seed(4242)
    @fuzz.fuzz_settings(EXAMPLES)
    @given(configs())
    def check(text):
        with open(path, "w") as f:
            f.write(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = serve(["-t", "-c", path, "-p", "-1"])
        assert rc in (0, 1), (text, rc, err.getvalue())
        assert "Traceback" not in err.getvalue() + out.getvalue(), (text, err.getvalue())
        if rc == 0:
            seen["valid"] += 1
            return
        seen["errors"] += 1
        lines = err.getvalue().splitlines()
        assert lines and lines[0].startswith(("pluggy-nats: config", "pluggy-nats: Parse error")), (
            text, err.getvalue())
        for line in lines[1:]:
            assert _LOCATED.match(line), "error without file:line:col for %r: %r" % (text, line)

    check()
    assert seen["valid"] + seen["errors"] == fuzz.examples(EXAMPLES)
    assert seen["valid"] and seen["errors"], seen  # the grammar reaches both outcomes
