"""/healthz narrowed to one account, stream or consumer on a single
JetStream server (Go's ``account``, ``stream``, ``consumer`` parameters,
monitor.go healthz): 200 when it exists, 404 ``unavailable`` with Go's text
when it does not, 400 for a stream without an account or a consumer without a
stream; ``details=true`` gives the ``errors`` array. Every answer is compared
side by side with the Go nats-server's, status code and body."""

import json
import urllib.error
import urllib.parse
import urllib.request

import nats
import pytest

from pluggy_nats.testing.plugin import run

QUERIES = [
    {"account": "$G"},
    {"account": "NOPE"},
    {"account": "$G", "stream": "HZ"},
    {"account": "$G", "stream": "NOPE"},
    {"account": "NOPE", "stream": "HZ"},
    {"account": "$G", "stream": "HZ", "consumer": "dur"},
    {"account": "$G", "stream": "HZ", "consumer": "NOPE"},
    {"account": "$G", "stream": "NOPE", "consumer": "dur"},
    {"stream": "HZ"},
    {"account": "$G", "consumer": "dur"},
    {"consumer": "dur"},
    {"account": "$G", "stream": "HZ", "js-meta-only": "true"},
    {"account": "NOPE", "js-server-only": "true"},
    {"account": "NOPE", "js-enabled-only": "true"},
]


def health(server, query):
    url = "http://127.0.0.1:%d/healthz?%s" % (server.http_port, urllib.parse.urlencode(query))
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def populate(server):
    nc = await nats.connect(server.url, allow_reconnect=False)
    js = nc.jetstream()
    await js.add_stream(name="HZ", subjects=["hz"])  # file storage: Go sees its folder
    await js.publish("hz", b"x")
    await js.add_consumer("HZ", durable_name="dur")
    await nc.close()


def answers(server):
    out = []
    for query in QUERIES:
        for details in (False, True):
            q = dict(query, details="true") if details else query
            out.append((q, health(server, q)))
    return out


@pytest.fixture
def pair(js_server, go_nats_server, tmp_path):
    go = go_nats_server("-js", "-sd", str(tmp_path / "go-store"), "-m", "-1")
    ours = js_server("-m", "-1")
    for server in (go, ours):
        run(populate(server))
    return go, ours


def test_healthz_asset_filters_match_go(pair):
    go, ours = pair
    go_answers, our_answers = answers(go), answers(ours)
    diffs = ["%s\n  go:   %s\n  ours: %s" % (q, g, o)
             for (q, g), (_, o) in zip(go_answers, our_answers, strict=True) if g != o]
    assert not diffs, "%d differences:\n%s" % (len(diffs), "\n".join(diffs))
    # and the answers are what the issue says (not two servers agreeing on nothing)
    found = dict((json.dumps(q, sort_keys=True), a) for q, a in our_answers)

    def ours_for(**q):
        return found[json.dumps(q, sort_keys=True)]

    assert ours_for(account="$G", stream="HZ", consumer="dur") == (200, {"status": "ok"})
    assert ours_for(account="NOPE") == (404, {
        "status": "unavailable", "error": 'JetStream account "NOPE" not found'})
    assert ours_for(account="$G", stream="NOPE", details="true") == (404, {
        "status": "error", "errors": [{
            "type": "STREAM", "account": "$G", "stream": "NOPE",
            "error": 'JetStream stream "NOPE" not found on account "$G"'}]})
    assert ours_for(account="$G", stream="HZ", consumer="NOPE") == (404, {
        "status": "unavailable",
        "error": 'JetStream consumer "NOPE" not found for stream "HZ" on account "$G"'})
    assert ours_for(account="$G", consumer="dur") == (400, {
        "status": "error", "error": '"stream" must not be empty when checking consumer health'})
    assert ours_for(stream="HZ", details="true") == (400, {
        "status": "error", "errors": [{
            "type": "BAD_REQUEST",
            "error": '"account" must not be empty when checking stream health'}]})
