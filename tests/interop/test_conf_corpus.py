"""Differential test of the config parser against the Go nats-server.

Every ``conf_corpus/good/*.conf`` must be accepted by ``nats-server -t -c FILE``
and by :func:`pluggy_nats.conf.load`, and both must read the same values:
``nats-server -t`` prints a digest of its parsed map (SHA-256 of its JSON), and
:func:`pluggy_nats.conf.digest` computes the same from ours.

Every ``conf_corpus/bad/*.conf`` must be rejected by both, and rejected by the
Go parser itself (a syntax, variable or include error), not by its later checks
of what the settings mean: ``load`` does not check meanings.

Files under ``includes/`` are only included by the others. The environment
variables the corpus uses are set by :func:`corpus_env`.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from pluggy_nats.conf import ConfigError, digest, load
from pluggy_nats.testing.plugin import require_go_nats_server

pytestmark = pytest.mark.interop

CORPUS = Path(__file__).parent / "conf_corpus"
GOOD = sorted((CORPUS / "good").glob("*.conf"))
BAD = sorted((CORPUS / "bad").glob("*.conf"))

# how the Go parser (conf/parse.go), not the option checks, says a file is bad
GO_PARSER_ERROR = re.compile(
    r"Parse error on line|variable reference|error parsing include file|config is invalid"
    r"|integer '.*' is out of the range")
GO_DIGEST = re.compile(r"is valid \((sha256:[0-9a-f]{64})\)")


@pytest.fixture(scope="module")
def nats_server():
    return require_go_nats_server()[0]


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory):
    """The process environment plus the variables the corpus files use."""
    env = dict(os.environ)
    env.update({
        "CORPUS_STORE_DIR": str(tmp_path_factory.mktemp("jetstream")),
        "CORPUS_PORT": "-1",
        "CORPUS_MAX_PAYLOAD": "2MB",
        "CORPUS_DEBUG": "yes",
        "CORPUS_USER": "env_user",
        "CORPUS_PASS": '"env pass word"',
        "CORPUS_CYCLE_A": "$CORPUS_CYCLE_B",
        "CORPUS_CYCLE_B": "$CORPUS_CYCLE_A",
        "CORPUS_BAD_VALUE": "two words",
    })
    env.pop("CORPUS_SURELY_UNDEFINED_VARIABLE", None)
    return env


def run_go(nats_server, path, env):
    """``nats-server -t -c path``: (exit code, output)."""
    proc = subprocess.run([nats_server, "-t", "-c", path.name], cwd=path.parent, env=env,
                          capture_output=True, text=True, timeout=30)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def test_corpus_is_there():
    assert len(GOOD) >= 15 and len(BAD) >= 10


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_config_accepted_by_both(nats_server, corpus_env, path, monkeypatch):
    code, output = run_go(nats_server, path, corpus_env)
    assert code == 0, "nats-server rejects %s:\n%s" % (path.name, output)

    monkeypatch.chdir(path.parent)
    conf = load(path.name, env=corpus_env)
    assert conf, "no values read from %s" % path.name

    match = GO_DIGEST.search(output)
    if match:  # same digest: both parsers read exactly the same values
        assert digest(conf) == match.group(1), (
            "%s: our values differ from nats-server's: %r" % (path.name, dict(conf)))


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_config_rejected_by_both(nats_server, corpus_env, path, monkeypatch):
    code, output = run_go(nats_server, path, corpus_env)
    assert code != 0, "nats-server accepts %s:\n%s" % (path.name, output)
    assert GO_PARSER_ERROR.search(output), (
        "%s is rejected by nats-server for a reason other than its syntax (keep the bad "
        "corpus to syntax, variable and include errors):\n%s" % (path.name, output))

    monkeypatch.chdir(path.parent)
    with pytest.raises(ConfigError) as info:
        load(path.name, env=corpus_env)
    # every error is located: "file:line:col: message"
    for line in str(info.value).splitlines():
        assert re.match(r"[^:]+\.conf:\d+:\d+: \S", line), line
