"""The nats-server configuration format parser (pluggy_nats.conf)."""

import datetime as dt
import os
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluggy_nats.conf import (
    ConfigError,
    ConfMap,
    Position,
    digest,
    is_bare_number_duration,
    load,
    loads,
    parse_duration,
    parse_duration_with_warning,
    parse_size,
)


def parse(text, **env):
    """Parse ``text`` with exactly ``env`` as the environment."""
    return loads(text, filename="t.conf", env=env)


def errors_of(text, **env):
    """The ``str()`` lines of the ConfigError that ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        parse(text, **env)
    return str(info.value).splitlines()


def error_of(text, **env):
    lines = errors_of(text, **env)
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ key/value syntax


@pytest.mark.parametrize("text", [
    "port = 4222", "port: 4222", "port 4222", "port=4222", "port:4222", "port\t4222",
    "port = 4222;", "port: 4222,", "  port  :  4222  ", "port\n4222",
    '"port": 4222', "'port' = 4222", "{port: 4222}", '{"port": 4222}', "{\n port = 4222\n}\n",
])
def test_key_value_forms(text):
    assert parse(text) == {"port": 4222}


def test_several_entries_on_one_line():
    assert parse("a = 1; b: 2, c 3") == {"a": 1, "b": 2, "c": 3}


def test_later_definition_wins():
    cfg = parse("a: 1\na: 2\n")
    assert cfg == {"a": 2}
    assert cfg.position("a") == Position("t.conf", 2, 1)


def test_comments_everywhere():
    cfg = parse(
        "# hash comment\n"
        "// slash comment\n"
        "a: 1 # trailing\n"
        "b: 2 // trailing\n"
        "m {  # after the brace\n"
        "  // inside\n"
        "  x: 1 # after a value\n"
        "}\n"
        "arr: [ # after the bracket\n"
        "  1 # after an item\n"
        "  // between items\n"
        "  2\n"
        "]\n")
    assert cfg == {"a": 1, "b": 2, "m": {"x": 1}, "arr": [1, 2]}


def test_hash_inside_unquoted_value_is_text():
    assert parse("a: foo#bar\nb: 4222#x") == {"a": "foo#bar", "b": "4222#x"}
    assert parse("url: nats://host:4222") == {"url": "nats://host:4222"}


def test_hash_or_slashes_where_a_value_starts_are_text():
    # as nats-server: a comment can follow a value, not stand for one
    assert parse("a: #x\nb: //y") == {"a": "#x", "b": "//y"}
    assert parse("m {\n  a: #x\n  b = //y;\n  c #z\n}") == {
        "m": {"a": "#x", "b": "//y", "c": "#z"}}


def test_quoted_keys_keep_any_character():
    assert parse('"a b:c" = 1\n\'x=y\' : 2') == {"a b:c": 1, "x=y": 2}


def test_empty_text_and_only_comments():
    assert parse("") == {}
    assert parse("# nothing\n\n// at all\n") == {}


def test_crlf_line_endings():
    assert parse("a: 1\r\nb: [1,\r\n2]\r\nm {\r\n x: y\r\n}\r\n") == {
        "a": 1, "b": [1, 2], "m": {"x": "y"}}


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbfport: 1\n")
    assert load(str(path)) == {"port": 1}


# ------------------------------------------------------------------ maps and arrays


def test_maps_with_any_separator_and_terminator():
    cfg = parse("m { a = 1; b: 2, c 3\n d: 4 }\nn: {x: 1}\no = {}\n")
    assert cfg == {"m": {"a": 1, "b": 2, "c": 3, "d": 4}, "n": {"x": 1}, "o": {}}
    assert isinstance(cfg["m"], ConfMap)


def test_map_values_may_start_on_the_next_line():
    assert parse("m {\n  a:\n    1\n}") == {"m": {"a": 1}}


def test_arrays_with_commas_new_lines_and_trailing_comma():
    cfg = parse("a: [1, 2, 3]\nb: [\n  x\n  y,\n  z,\n]\nc: []\nd: [ [1, 2], [] ]\n")
    assert cfg == {"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [], "d": [[1, 2], []]}
    assert type(cfg["a"]) is list


def test_integer_right_before_closing_bracket():
    # nats-server v2.15.1 fails on "[1]" (a number directly before ']'); we read it
    assert parse("a: [1]\nb: [1,2]") == {"a": [1], "b": [1, 2]}


def test_nested_maps_and_arrays_keep_positions():
    cfg = parse(
        "outer {\n"
        "  inner {\n"
        "    deep: [ {k: v}, {k2: [1, {z: true}]} ]\n"
        "  }\n"
        "}\n")
    assert cfg == {"outer": {"inner": {"deep": [{"k": "v"}, {"k2": [1, {"z": True}]}]}}}
    inner = cfg["outer"]["inner"]
    assert isinstance(inner, ConfMap)
    assert cfg.position("outer") == Position("t.conf", 1, 1)
    assert cfg["outer"].position("inner") == Position("t.conf", 2, 3)
    assert inner.position("deep") == Position("t.conf", 3, 5)
    assert inner["deep"][0].position("k") == Position("t.conf", 3, 14)
    assert inner["deep"][1]["k2"][1].position("z") == Position("t.conf", 3, 31)


# ------------------------------------------------------------------ strings


def test_unquoted_single_and_double_quoted_strings():
    cfg = parse("a: hello\nb: 'it is'\nc: \"say \\\"hi\\\"\"\nd: 'raw \\t'\ne: \"tab\\there\"")
    assert cfg["a"] == "hello"
    assert cfg["b"] == "it is"
    assert cfg["c"] == 'say "hi"'
    assert cfg["d"] == "raw \\t"
    assert cfg["e"] == "tab\there"


@pytest.mark.parametrize("escape, char", [
    ("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r"), ('\\"', '"'), ("\\\\", "\\"),
    ("\\x41", "A"), ("\\xc3\\xa9", "\u00e9"), ("\\u00e9", "\u00e9"), ("\\u20AC", "\u20ac"),
    ("\\U0001F600", "\U0001f600"),
])
def test_double_quoted_escapes(escape, char):
    assert parse('s: "<%s>"' % escape) == {"s": "<%s>" % char}


def test_escapes_in_unquoted_strings():
    # nats-server decodes escapes in unquoted text too; the result is always a string
    assert parse("a: x\\ty\nb: tru\\x65") == {"a": "x\ty", "b": "true"}


@pytest.mark.parametrize("text, col, message", [
    ('s: "a\\qb"', 6, "invalid escape \\q"),
    ('s: "\\x4"', 5, "\\x needs 2 hexadecimal digits"),
    ('s: "\\u12G4"', 5, "\\u needs 4 hexadecimal digits"),
    ('s: "\\UFFFFFFFF"', 5, "not a valid code point"),
    ('s: "\\uD800"', 5, "not a valid code point"),
])
def test_bad_escapes(text, col, message):
    line = error_of(text)
    assert line.startswith("t.conf:1:%d: " % col)
    assert message in line


def test_quoted_strings_may_span_lines():
    assert parse("a: 'one\ntwo'\nb: \"x\ny\"") == {"a": "one\ntwo", "b": "x\ny"}


def test_quoted_values_are_never_numbers_booleans_or_variables():
    cfg = parse("a: \"4222\"\nb: 'true'\nc: \"$HOME\"\nd: '1MB'")
    assert cfg == {"a": "4222", "b": "true", "c": "$HOME", "d": "1MB"}


def test_unicode_unquoted():
    assert parse("name: caf\u00e9") == {"name": "caf\u00e9"}
    assert "got '\u2603'" in error_of("name: caf\u00e9 \u2603")  # two words


def test_unquoted_text_ends_at_a_single_quote():
    # nats-server ends unquoted text at a ' (and drops it)
    assert parse("a: abc'") == {"a": "abc"}


# ------------------------------------------------------------------ block strings


def test_block_string():
    cfg = parse("text: (\nline one\n  line two\n)\nnext: 1\n")
    assert cfg == {"text": "\nline one\n  line two\n", "next": 1}


def test_block_string_keeps_everything_until_a_bare_paren_line():
    cfg = parse("t: (first\n  ) indented does not end it\n\"quotes\" # and hashes\n)\n")
    assert cfg["t"] == "first\n  ) indented does not end it\n\"quotes\" # and hashes\n"


def test_block_string_at_end_of_text_and_in_a_map():
    assert parse("t: (\nx\n)") == {"t": "\nx\n"}
    assert parse("m {\n  t: (\nx\n)\n}") == {"m": {"t": "\nx\n"}}


def test_unterminated_block_string():
    assert error_of("a: 1\nt: (\nnever\n  )\n") == (
        "t.conf:2:4: unterminated block string: end it with ')' alone at the start of a line")


# ------------------------------------------------------------------ numbers


SUFFIXES = {
    "k": 10 ** 3, "kb": 2 ** 10, "ki": 2 ** 10, "kib": 2 ** 10,
    "m": 10 ** 6, "mb": 2 ** 20, "mi": 2 ** 20, "mib": 2 ** 20,
    "g": 10 ** 9, "gb": 2 ** 30, "gi": 2 ** 30, "gib": 2 ** 30,
    "t": 10 ** 12, "tb": 2 ** 40, "ti": 2 ** 40, "tib": 2 ** 40,
    "p": 10 ** 15, "pb": 2 ** 50, "pi": 2 ** 50, "pib": 2 ** 50,
    "e": 10 ** 18, "eb": 2 ** 60, "ei": 2 ** 60, "eib": 2 ** 60,
}


@pytest.mark.parametrize("suffix, multiplier", sorted(SUFFIXES.items()))
def test_integer_suffixes(suffix, multiplier):
    assert parse("v: 3%s" % suffix) == {"v": 3 * multiplier}
    assert parse("v: 3%s" % suffix.upper()) == {"v": 3 * multiplier}
    assert parse("v: -2%s" % suffix.capitalize()) == {"v": -2 * multiplier}


def test_integers_and_floats():
    cfg = parse("a: 0\nb: -1\nc: 9223372036854775807\nd: 1.5\ne: -0.25\nf: 007\ng: 1MB")
    assert cfg == {"a": 0, "b": -1, "c": 2 ** 63 - 1, "d": 1.5, "e": -0.25, "f": 7,
                   "g": 1048576}
    assert type(cfg["a"]) is int and type(cfg["d"]) is float


@pytest.mark.parametrize("text, message", [
    ("v: 9223372036854775808", "integer '9223372036854775808' is out of range"),
    ("v: -9223372036854775809", "out of range"),
    ("v: 9999999999999999k", "out of range"),
    ("v: 1kbb", "invalid integer suffix 'kbb'"),
    ("v: 1.5s", "invalid number '1.5s' (quote durations: \"1.5s\")"),
    ("v: 1.", "invalid number '1.'"),
    ("v: .5", "a number must start with a digit"),
    ("v: -x", "a digit must follow '-'"),
    ("v: -5x", "invalid number '-5x'"),
    ("v: 12-3", "invalid date '12-3'"),
])
def test_bad_numbers(text, message):
    line = error_of(text)
    assert line.startswith("t.conf:1:4: "), line
    assert message in line


def test_number_like_text_that_is_a_string():
    # as nats-server: a digit followed by text that is no number is a string
    cfg = parse("a: 10s\nb: 500ms\nc: 4222abc\nd: 1kx\ne: 1h30m\nf: 2m")
    assert cfg == {"a": "10s", "b": "500ms", "c": "4222abc", "d": "1kx", "e": "1h30m",
                   "f": 2000000}  # unquoted 2m is two million, not a duration


# ------------------------------------------------------------------ addresses, booleans, dates


@pytest.mark.parametrize("address", [
    "127.0.0.1:4222", "0.0.0.0:4222", "127.0.0.1:-1", "10.0.0.1", "1.2.3", "localhost:4222",
    "nats://127.0.0.1:4222", "nats-route://user:pass@10.0.0.2:6222", "::1",
])
def test_addresses_are_strings(address):
    assert parse("listen: %s" % address) == {"listen": address}


@pytest.mark.parametrize("word, value", [
    ("true", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True), ("ON", True),
    ("false", False), ("False", False), ("no", False), ("NO", False), ("off", False),
    ("Off", False),
])
def test_booleans(word, value):
    cfg = parse("b: %s" % word)
    assert cfg["b"] is value


def test_datetime_is_utc():
    cfg = parse("when: 2006-01-02T15:04:05Z")
    assert cfg["when"] == dt.datetime(2006, 1, 2, 15, 4, 5, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("text", ["2006-13-02T15:04:05Z", "2006-01-02", "2006-01-02T15:04:05"])
def test_bad_datetimes(text):
    assert "invalid date" in error_of("when: %s" % text)


# ------------------------------------------------------------------ bcrypt


def test_unquoted_bcrypt_hash_is_a_string():
    hashed = "$2a$11$7KxN2JvCJ3Z6W7dJ4O0kVuZpJ2ZJ2Z8f3qS1sF2sQ9iN8gXr1wz0e"
    assert parse("password: %s" % hashed) == {"password": hashed}
    assert parse('password: "%s"' % hashed.replace("2a", "2b")) == {
        "password": hashed.replace("2a", "2b")}


def test_other_bcrypt_prefixes_must_be_quoted():
    line = error_of("password: $2b$11$abc")
    assert "variable '$2b$11$abc' is not defined" in line and "quote" in line


# ------------------------------------------------------------------ variables


def test_variable_from_the_same_map():
    cfg = parse("PORT = 4222\nport: $PORT\n")
    assert cfg == {"PORT": 4222, "port": 4222}


def test_variable_innermost_scope_first():
    cfg = parse(
        "NAME = outer\n"
        "a {\n"
        "  NAME = inner\n"
        "  name: $NAME\n"
        "  b { name: $NAME }\n"
        "  list: [ $NAME, { name: $NAME } ]\n"
        "}\n"
        "name: $NAME\n")
    assert cfg["a"]["name"] == "inner"
    assert cfg["a"]["b"]["name"] == "inner"
    assert cfg["a"]["list"] == ["inner", {"name": "inner"}]
    assert cfg["name"] == "outer"


def test_variable_inner_map_is_not_visible_outside():
    line = error_of("a { X = 1 }\nb: $X\n")
    assert line == ("t.conf:2:4: variable '$X' is not defined (in this file before this point,"
                    " nor in the environment)")


def test_variable_holding_a_map_or_list_is_copied():
    cfg = parse("P = { publish: [a, b] }\nu1: $P\nu2: $P\n")
    assert cfg["u1"] == cfg["u2"] == {"publish": ["a", "b"]}
    cfg["u1"]["publish"].append("c")
    assert cfg["u2"] == {"publish": ["a", "b"]} and cfg["P"] == {"publish": ["a", "b"]}
    assert isinstance(cfg["u1"], ConfMap)


def test_variable_from_environment_is_parsed_as_a_value():
    cfg = parse(
        "port: $PORT\nsize: $SIZE\nflag: $FLAG\ntext: $TEXT\nquoted: $QUOTED\nmap: $MAP\n"
        "list: $LIST\nempty: $EMPTY\nref: $REF",
        PORT="4222", SIZE="2MB", FLAG="yes", TEXT="hello", QUOTED='"4222"',
        MAP="{a: 1, b: [x]}", LIST="[1, 2]", EMPTY="", REF="$PORT")
    assert cfg == {"port": 4222, "size": 2 * 2 ** 20, "flag": True, "text": "hello",
                   "quoted": "4222", "map": {"a": 1, "b": ["x"]}, "list": [1, 2],
                   "empty": "", "ref": 4222}


def test_file_variables_shadow_the_environment():
    assert parse("X = 1\nv: $X", X="2") == {"X": 1, "v": 1}


def test_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("PLUGGY_NATS_CONF_TEST_VAR", "64k")
    assert loads("v: $PLUGGY_NATS_CONF_TEST_VAR") == {"v": 64000}


def test_environment_value_that_is_not_one_value():
    line = error_of("name: $EQ", EQ="hello world")
    assert line == ("t.conf:1:7: environment variable EQ='hello world' is not a valid value: "
                    "$EQ:1:7: expected the end of the value, got 'w'")


def test_missing_variable():
    assert error_of("a: 1\nport: $NOPE\n") == (
        "t.conf:2:7: variable '$NOPE' is not defined (in this file before this point, "
        "nor in the environment)")


def test_dollar_alone():
    assert error_of("a: $") == "t.conf:1:4: '$' must be followed by a variable name"


def test_variable_used_before_definition_and_cycles():
    lines = errors_of("A = $B\nB = $A\nport: $A\n")
    assert lines == [
        "t.conf:1:5: variable '$B' is used before it is defined (at t.conf:2:1): a variable "
        "must be defined before it is used, so variables cannot refer to each other in a "
        "cycle"]


def test_self_reference():
    assert "used before it is defined (at t.conf:1:1)" in error_of("A = $A\n")


def test_environment_cycle():
    assert error_of("port: $A", A="$B", B="$A") == (
        "t.conf:1:7: variable reference cycle through the environment: $A -> $B -> $A")
    assert error_of("port: $S", S="$S") == (
        "t.conf:1:7: variable reference cycle through the environment: $S -> $S")


def test_used_and_unused_variables():
    cfg = parse("PORT = 4222\nUNUSED = 1\nport: $PORT\nm { X: 1, y: $X }\n")
    assert cfg.used_variables == {"PORT"}
    assert cfg.is_used_variable("PORT") and not cfg.is_used_variable("port")
    assert cfg["m"].used_variables == {"X"}
    assert cfg.unused_variables == [("UNUSED", Position("t.conf", 2, 1)),
                                    ("port", Position("t.conf", 3, 1)),
                                    ("m", Position("t.conf", 4, 1))]


def test_redefining_a_used_variable_makes_it_unused():
    cfg = parse("A = 1\nb: $A\nA = 2\n")
    assert cfg == {"A": 2, "b": 1}
    assert not cfg.is_used_variable("A")


# ------------------------------------------------------------------ includes


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_include_forms(tmp_path):
    write(tmp_path / "a.conf", "a: 1\n")
    write(tmp_path / "b.conf", "b: 2\n")
    write(tmp_path / "c.conf", "c: 3\n")
    main = write(tmp_path / "main.conf",
                 'include "a.conf"\ninclude b.conf\nINCLUDE \'c.conf\'; d: 4\n')
    assert load(main) == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_include_is_relative_to_the_including_file(tmp_path):
    write(tmp_path / "conf" / "sub" / "leaf.conf", "leaf: true\n")
    write(tmp_path / "conf" / "sub" / "mid.conf", "include leaf.conf\nmid: 1\n")
    main = write(tmp_path / "conf" / "main.conf", "include sub/mid.conf\nport: 1\n")
    cfg = load(main)
    assert cfg == {"leaf": True, "mid": 1, "port": 1}
    assert cfg.position("leaf") == Position(str(tmp_path / "conf" / "sub" / "leaf.conf"), 1, 1)
    assert cfg.position("mid") == Position(str(tmp_path / "conf" / "sub" / "mid.conf"), 2, 1)


def test_include_inside_a_map_merges_into_it(tmp_path):
    write(tmp_path / "users.conf", "users = [ {user: a, password: b} ]\ntimeout: 2\n")
    main = write(tmp_path / "main.conf",
                 "authorization {\n  timeout: 1\n  include users.conf\n}\n")
    cfg = load(main)
    assert cfg == {"authorization": {"timeout": 2, "users": [{"user": "a", "password": "b"}]}}


def test_included_variables_are_visible_after_the_include(tmp_path):
    write(tmp_path / "vars.conf", "PORT = 4333\n")
    main = write(tmp_path / "main.conf", "include vars.conf\nport: $PORT\n")
    cfg = load(main)
    assert cfg["port"] == 4333 and cfg.is_used_variable("PORT")


def test_included_file_does_not_see_the_includers_variables(tmp_path):
    write(tmp_path / "inc.conf", "port: $PORT\n")
    main = write(tmp_path / "main.conf", "PORT = 1\ninclude inc.conf\n")
    with pytest.raises(ConfigError) as info:
        load(main, env={})
    assert str(info.value).startswith(str(tmp_path / "inc.conf") + ":1:7: variable '$PORT'")


def test_missing_include(tmp_path):
    main = write(tmp_path / "main.conf", "a: 1\ninclude nope.conf\nb: 2\n")
    with pytest.raises(ConfigError) as info:
        load(main)
    assert str(info.value) == ("%s:2:9: cannot read include file 'nope.conf': No such file or "
                               "directory" % main)


def test_include_cycle(tmp_path):
    write(tmp_path / "a.conf", "include b.conf\n")
    write(tmp_path / "b.conf", "include a.conf\n")
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path / "a.conf"))
    assert str(info.value).startswith("%s:1:9: include cycle" % (tmp_path / "b.conf"))
    self_include = write(tmp_path / "self.conf", "include self.conf\n")
    with pytest.raises(ConfigError, match="include cycle"):
        load(self_include)


def test_syntax_error_in_an_included_file_and_more_errors_after_it(tmp_path):
    write(tmp_path / "broken.conf", "x = [1,, 2]\n")
    main = write(tmp_path / "main.conf", "include broken.conf\nport: $MISSING\n")
    with pytest.raises(ConfigError) as info:
        load(main, env={})
    assert [(str(pos), msg.split(" (")[0]) for pos, msg in info.value.errors] == [
        ("%s:1:8" % (tmp_path / "broken.conf"), "unexpected ',' in an array"),
        ("%s:2:7" % main, "variable '$MISSING' is not defined"),
    ]


def test_bad_include_values():
    assert error_of("include\nx.conf") == "t.conf:1:8: expected a file name after 'include'"
    assert "got '5' (quote it)" in error_of("include 5")
    assert "unterminated include path" in error_of('include "x.conf')


def test_loads_includes_relative_to_base_dir(tmp_path):
    write(tmp_path / "inc.conf", "x: 1\n")
    assert loads("include inc.conf", base_dir=str(tmp_path)) == {"x": 1}
    assert loads("include inc.conf", filename=str(tmp_path / "virtual.conf")) == {"x": 1}


def test_load_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(str(tmp_path / "absent.conf"))


# ------------------------------------------------------------------ syntax errors


@pytest.mark.parametrize("text, expected", [
    ('a: 1\nb: "never closed\n', "t.conf:2:4: unterminated string: no closing \" for the one "
                                 "here"),
    ("a: 'never closed", "t.conf:1:4: unterminated string: no closing ' for the one here"),
    ("a {\n  b: 1\n", "t.conf:1:3: unterminated map: this '{' is never closed"),
    ("a: [1, 2\n", "t.conf:1:4: unterminated array: this '[' is never closed"),
    ("{ a: 1\n", "t.conf:1:1: unterminated map: this '{' is never closed"),
    ("a: 1 2\n", "t.conf:1:6: expected a new line, ';' or ',' after the value, got '2'"),
    ("a: [1,, 2]", "t.conf:1:7: unexpected ',' in an array (a value is missing)"),
    ("a: [, 2]", "t.conf:1:5: unexpected ',' in an array (a value is missing)"),
    ("a: [1 2]", "t.conf:1:7: expected ',' or ']' after an array item, got '2'"),
    ("m { a: 1 b: 2 }", "t.conf:1:10: expected a new line, ';', ',' or '}' after the value, "
                        "got 'b'"),
    ("m { a }", "t.conf:1:7: key 'a' has no value"),
    ("m { ] }", "t.conf:1:5: unexpected ']' in a map"),
    ("a =\n1", "t.conf:1:4: key 'a' has no value"),
    ("a: 1\nb", "t.conf:2:2: key 'b' has no value"),
    ("a:", "t.conf:1:3: key 'a' has no value"),
    (": 1", "t.conf:1:1: expected a key before ':'"),
    ("a: 1\n}", "t.conf:2:1: unexpected '}' (no map is open)"),
    ("a: 1 }", "t.conf:1:6: expected a new line, ';' or ',' after the value, got '}'"),
    ("a: ]", "t.conf:1:4: expected a value, got ']'"),
    ('"a: 1', "t.conf:1:1: unterminated quoted key (no closing \")"),
])
def test_syntax_errors_with_exact_positions(text, expected):
    assert error_of(text) == expected


def test_columns_count_characters_not_bytes():
    assert error_of("s: \"\u00e9\u00e9\" x") == (
        "t.conf:1:9: expected a new line, ';' or ',' after the value, got 'x'")


def test_several_errors_are_collected():
    with pytest.raises(ConfigError) as info:
        parse("a: $ONE\nb: 1.5s\nc { d: $TWO }\ne: 99999999999999999999\nf: [1,,2]\ng: $THREE\n")
    assert [str(pos) for pos, _ in info.value.errors] == [
        "t.conf:1:4", "t.conf:2:4", "t.conf:3:8", "t.conf:4:4", "t.conf:5:7"]
    assert len(str(info.value).splitlines()) == 5


def test_a_failed_variable_does_not_cascade():
    # "b: $a" is not reported again: a's own error is enough
    assert errors_of("a: $MISSING\nb: $a\n") == [
        "t.conf:1:4: variable '$MISSING' is not defined (in this file before this point, nor "
        "in the environment)"]


def test_config_error_shape():
    error = ConfigError([(Position("f.conf", 3, 7), "bad thing"), (None, "no position")])
    assert str(error) == "f.conf:3:7: bad thing\nno position"
    assert isinstance(error, ValueError)
    assert pickle.loads(pickle.dumps(error)).errors == error.errors
    assert str(Position("x.conf", 1, 2)) == "x.conf:1:2"


# ------------------------------------------------------------------ ConfMap


def test_confmap_is_a_dict_with_positions():
    cfg = parse("a: 1\n  b: {c: 2}\n")
    assert isinstance(cfg, dict) and cfg == {"a": 1, "b": {"c": 2}}
    assert cfg.position("a") == Position("t.conf", 1, 1)
    assert cfg.position("b") == Position("t.conf", 2, 3)
    assert cfg["b"].position("c") == Position("t.conf", 2, 7)
    assert cfg.position("absent") is None
    assert ConfMap(x=1).position("x") is None
    assert "ConfMap" in repr(cfg)
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg and clone.position("b") == cfg.position("b")


def test_load_names_positions_by_the_path_given(tmp_path, monkeypatch):
    write(tmp_path / "server.conf", "\n\n   port: 4222\n")
    monkeypatch.chdir(tmp_path)
    assert load("server.conf").position("port") == Position("server.conf", 3, 4)


# ------------------------------------------------------------------ durations and sizes


@pytest.mark.parametrize("text, seconds", [
    ("2m", 120.0), ("500ms", 0.5), ("1h30m", 5400.0), ("1.5s", 1.5), ("10us", 1e-5),
    ("10\u00b5s", 1e-5), ("3ns", 3e-9), ("0", 0.0), ("-2s", -2.0), ("+1m", 60.0),
    (".5s", 0.5), ("1.s", 1.0), ("2h45m30.5s", 9930.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_duration_with_warning(text) == (pytest.approx(seconds), None)


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("10", 'time: missing unit in duration "10"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'), ("s", 'time: invalid duration "s"'),
    ("1.5.s", "time: "), ("-", 'time: invalid duration "-"'),
    ("9999999999h", 'time: invalid duration "9999999999h"'),
])
def test_parse_duration_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


def test_bare_number_durations_are_seconds_with_a_warning():
    assert parse_duration(10) == 10.0
    assert parse_duration(2.5) == 2.5
    assert is_bare_number_duration(10) and is_bare_number_duration(1.5)
    assert not is_bare_number_duration("10s") and not is_bare_number_duration(True)
    seconds, warning = parse_duration_with_warning(30)
    assert seconds == 30.0 and '"30s"' in warning


def test_parse_duration_errors_with_a_position():
    with pytest.raises(ConfigError) as info:
        parse_duration("1d", pos=Position("s.conf", 4, 3))
    assert str(info.value).startswith("s.conf:4:3: invalid duration '1d'")
    with pytest.raises(TypeError):
        parse_duration([1])
    with pytest.raises(TypeError):
        parse_duration(True)


def test_parse_duration_of_a_parsed_value():
    cfg = parse('ping_interval: "2m"\nwrite_deadline: 10\n')
    assert parse_duration(cfg["ping_interval"]) == 120.0
    assert is_bare_number_duration(cfg["write_deadline"])


@pytest.mark.parametrize("value, size", [
    (1024, 1024), ("1MB", 1048576), ("64k", 64000), ("64K", 64000), ("64kb", 65536),
    ("2mib", 2097152), ("1g", 10 ** 9), ("1GB", 2 ** 30), ("1 MB", 1048576), ("100", 100),
    ("100b", 100), ("-1", -1), (" 5 ", 5),
])
def test_parse_size(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "MB", "1.5MB", "1zb", "one", "1 M B"])
def test_parse_size_errors(value):
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize("value", [1.5, True, None, [1]])
def test_parse_size_type_errors(value):
    with pytest.raises(TypeError):
        parse_size(value)


# ------------------------------------------------------------------ digest


@pytest.mark.parametrize("text, expected", [
    # printed by `nats-server -t` (v2.15.1) for the same text
    ("port: 4222", "797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e"),
    ("port = 4222; max_payload=100, debug: true",
     "8375ce6c1c22bbe2aefb1fd277212bf080a1f23ebf419c4fd984a3fd9fbf9a7e"),
    ("max_payload: 1MB", "805e8fcac4b17c72405e5f4bef5d73b2dd137a8b3f920d23191ff59feb44d80e"),
    ("listen: 127.0.0.1:4222", "bfa037b94ac399931a51e64559d5b8b099a1777b0832b8f5c14fee855e33b59c"),
    ("TEST_PORT=4222\nport: $TEST_PORT",
     "f0bd6061b5ffc57b574d470c8eababb9efff9c1f68f72035ecf9e47c83765b4e"),
    ("authorization { token: (\nline1\n  line2\n)\n}",
     "3f13cd75df060967909462f73c0a350f9d103ed2599c0e302bf091223110d75f"),
    ('authorization { token: "a\\tb\\x41" }',
     "99ef19c228f154c86a5d311aaf3645631def59203053bcfa4100d78c71bbcc83"),
])
def test_digest_matches_nats_server(text, expected):
    assert digest(parse(text)) == "sha256:" + expected


# ------------------------------------------------------------------ a realistic config


FULL_CONFIG = r"""
# A realistic server: clients, monitoring, clustering, gateways, leaf nodes,
# JetStream, accounts and authorization.
server_name: $SERVER_NAME
listen: 0.0.0.0:4222
http: 127.0.0.1:8222
max_payload: 1MB
max_pending: 64MB
max_connections: 64K
ping_interval: "2m"
write_deadline: "10s"
debug: false
trace: off
logtime: yes

CLUSTER_PASS = $2a$11$7KxN2JvCJ3Z6W7dJ4O0kVuZpJ2ZJ2Z8f3qS1sF2sQ9iN8gXr1wz0e

cluster {
  name: east
  listen: 0.0.0.0:6222
  authorization {
    user: route
    password: $CLUSTER_PASS
    timeout: 0.5
  }
  routes = [
    nats-route://route:pass@10.0.0.2:6222
    nats-route://route:pass@10.0.0.3:6222
  ]
}

gateway {
  name: east
  port: 7222
  gateways: [
    {name: west, urls: ["nats://10.1.0.1:7222", "nats://10.1.0.2:7222"]}
  ]
}

leafnodes {
  port: 7422
  remotes = [
    { url: "tls://connect.example.com:7422", credentials: "/etc/nats/leaf.creds" }
  ]
}

jetstream {
  store_dir: "/var/lib/nats"
  max_memory_store: 1G
  max_file_store: 10GiB
}

websocket { port: 8080, no_tls: true }
mqtt { port: 1883 }

system_account: SYS
accounts {
  SYS { users: [ {user: admin, password: admin} ] }
  APP {
    jetstream: enabled
    users: [
      {user: app, password: "app secret", permissions: {
        publish: { allow: ["app.>"], deny: ["app.admin.>"] }
        subscribe: ["app.>", "_INBOX.>"]
      }}
    ]
    exports: [ {stream: "events.>"}, {service: "svc.>"} ]
  }
}

authorization {
  timeout: 2
  default_permissions { publish: ">", subscribe: ">" }
}
"""


def test_realistic_full_config():
    cfg = loads(FULL_CONFIG, filename="nats.conf", env={"SERVER_NAME": "east-1"})
    assert cfg["server_name"] == "east-1"
    assert cfg["listen"] == "0.0.0.0:4222" and cfg["http"] == "127.0.0.1:8222"
    assert cfg["max_payload"] == 1048576 and cfg["max_pending"] == 64 * 2 ** 20
    assert cfg["max_connections"] == 64000
    assert parse_duration(cfg["ping_interval"]) == 120.0
    assert cfg["debug"] is False and cfg["trace"] is False and cfg["logtime"] is True
    cluster = cfg["cluster"]
    assert cluster["authorization"]["password"].startswith("$2a$11$")
    assert cluster["authorization"]["timeout"] == 0.5
    assert cluster["routes"][1] == "nats-route://route:pass@10.0.0.3:6222"
    assert cfg.is_used_variable("CLUSTER_PASS")
    assert cfg["gateway"]["gateways"][0]["urls"][1] == "nats://10.1.0.2:7222"
    assert cfg["leafnodes"]["remotes"][0]["credentials"] == "/etc/nats/leaf.creds"
    assert cfg["jetstream"]["max_file_store"] == 10 * 2 ** 30
    assert cfg["websocket"] == {"port": 8080, "no_tls": True}
    assert cfg["mqtt"] == {"port": 1883}
    app = cfg["accounts"]["APP"]
    assert app["jetstream"] == "enabled"
    assert app["users"][0]["password"] == "app secret"
    assert app["users"][0]["permissions"]["publish"]["deny"] == ["app.admin.>"]
    assert app["exports"] == [{"stream": "events.>"}, {"service": "svc.>"}]
    assert cfg["authorization"]["default_permissions"] == {"publish": ">", "subscribe": ">"}
    assert cfg.position("cluster") == Position("nats.conf", 18, 1)
    assert cfg["accounts"]["APP"].position("exports") == Position("nats.conf", 67, 5)
    assert [name for name, _ in cfg.unused_variables if name.isupper()] == []


def test_realistic_config_from_a_file(tmp_path):
    path = write(tmp_path / "nats.conf", FULL_CONFIG)
    cfg = load(path, env={"SERVER_NAME": "from-file"})
    assert cfg["server_name"] == "from-file"
    assert cfg.position("jetstream") == Position(path, 47, 1)


def test_missing_env_reports_position_in_full_config():
    with pytest.raises(ConfigError) as info:
        loads(FULL_CONFIG, filename="nats.conf", env={})
    assert str(info.value) == ("nats.conf:4:14: variable '$SERVER_NAME' is not defined (in "
                               "this file before this point, nor in the environment)")


# ------------------------------------------------------------------ round trip (property)


KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k.lower() not in ("include", "true", "false", "yes", "no", "on", "off"))
SCALARS = st.one_of(
    st.integers(-(2 ** 63), 2 ** 63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda f: re.fullmatch(r"-?\d+\.\d+", repr(f)) is not None),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0, tzinfo=dt.timezone.utc)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def dump(value, indent=""):
    """Write ``value`` in the config format (the test's own serializer)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str):
        out = []
        for char in value:
            if char in '"\\':
                out.append("\\" + char)
            elif char.isprintable():
                out.append(char)
            else:
                out.append("\\U%08x" % ord(char))
        return '"%s"' % "".join(out)
    if isinstance(value, list):
        return "[%s]" % ", ".join(dump(v, indent) for v in value)
    inner = indent + "  "
    body = "".join("%s%s: %s\n" % (inner, k, dump(v, inner)) for k, v in value.items())
    return "{\n%s%s}" % (body, indent)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_round_trip(data):
    text = "".join("%s = %s\n" % (k, dump(v)) for k, v in data.items())
    assert parse(text) == data


def test_environment_is_not_touched():
    before = dict(os.environ)
    parse("a: $X", X="1")
    assert dict(os.environ) == before
