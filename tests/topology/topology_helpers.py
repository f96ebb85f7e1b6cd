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
