"""HTTP helpers for the topology tests."""

import json
import urllib.error
import urllib.request


def get(server, path, timeout=10):
    """(status, decoded JSON) of ``path`` on ``server``'s monitoring port."""
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def topz(server, query=""):
    status, body = get(server, "/topz" + query)
    assert status == 200, body
    return body


def explain(server, account, subject, extra=""):
    from urllib.parse import urlencode

    status, body = get(server, "/explainz?" + urlencode({"account": account, "subject": subject,
                                                        "timeout": 10}) + extra)
    assert status == 200, body
    return body


def named_servers(body):
    """Names of the servers explain names a subscriber on (plain subscribers,
    every queue member, leaf servers with interest)."""
    names = {r["server"] for r in body["receivers"]}
    for group in body["queue_groups"]:
        names.update(m["server"] for m in group["members"])
    return names


def receiving_servers(body):
    """The servers a message may reach: plain subscribers and the queue
    members that may be picked."""
    names = {r["server"] for r in body["receivers"]}
    for group in body["queue_groups"]:
        names.update(group["candidates"])
    return names


def reasons(body):
    """(server, link or client name, reason code) of every stop."""
    return {(s["server"], s.get("link") or s.get("name", ""), s["reason"]["code"])
            for s in body["not_delivered"]}
