"""Scatter and gather over ``$SYS``: ask every server of the system
(``$SYS.REQ.SERVER.PING.<ENDPOINT>``, which crosses routes, gateways and
leafs that share the system account) and collect the answers by server id.

:class:`Gathering` is sans-IO: which requests to send, where an answer goes,
when the picture is complete (every server named so far answered every
required endpoint, and nothing new came for a quiet moment). :func:`run` drives
it with a ``send`` and a ``receive`` the caller provides: the topology plugin
inside the server (an internal client, gevent) and the command line (a socket).
"""

import json
import time

from .view import ENDPOINTS, REQUEST_BODIES, REQUIRED, expected_ids

PING = "$SYS.REQ.SERVER.PING."
DEFAULT_TIMEOUT = 2.0
QUIET = 0.15  # once complete, how long to wait for servers nobody named


class Gathering:
    """``asks``: endpoint -> request body; ``required``: the endpoints every
    server must answer for the result to be complete; ``expected(answers)``:
    the server ids the answers so far name."""

    def __init__(self, asks=None, required=REQUIRED, expected=expected_ids):
        self.asks = dict(asks) if asks is not None else {
            ep: REQUEST_BODIES.get(ep, {}) for ep in ENDPOINTS}
        self.required = tuple(required)
        self.expected = expected
        self.answers = {ep: {} for ep in self.asks}
        self.errors = []

    def requests(self, reply_prefix):
        """(subject, reply, payload) for each endpoint asked."""
        return [(PING + ep, "%s.%s" % (reply_prefix, ep), json.dumps(body).encode())
                for ep, body in self.asks.items()]

    def add(self, endpoint, payload):
        """An answer arrived for ``endpoint`` (the reply subject's last token)."""
        if endpoint not in self.answers:
            return
        try:
            response = json.loads(payload)
            sid = response["server"]["id"]
        except (ValueError, KeyError, TypeError):
            self.errors.append("%s: an answer that is not a server response" % endpoint)
            return
        if response.get("error"):
            err = response["error"]
            text = err.get("description", err) if isinstance(err, dict) else err
            self.errors.append("%s from %s: %s" % (endpoint, response["server"].get(
                "name") or sid, text))
        self.answers[endpoint][sid] = response

    def complete(self):
        if not all(self.answers.get(ep) for ep in self.required):
            return False
        ids = self.expected(self.answers)
        return all(sid in self.answers[ep] for ep in self.required for sid in ids)


def run(gathering, send, receive, timeout=DEFAULT_TIMEOUT, quiet=QUIET, reply_prefix="",
        clock=time.monotonic):
    """Send ``gathering``'s requests, feed it answers until it is complete and
    quiet, or ``timeout`` seconds passed. ``send(subject, reply, payload)``;
    ``receive(seconds)`` -> (endpoint, payload) or None after ``seconds``.
    Returns the milliseconds it took."""
    start = clock()
    for subject, reply, payload in gathering.requests(reply_prefix):
        send(subject, reply, payload)
    deadline = start + timeout
    last = start
    while True:
        now = clock()
        if now >= deadline:
            break
        done = gathering.complete()
        if done and now - last >= quiet:
            break
        item = receive(min(deadline - now, quiet - (now - last) if done else deadline - now))
        if item is not None:
            gathering.add(*item)
            last = clock()
    return round((clock() - start) * 1000, 1)


def timeout_param(query, default=DEFAULT_TIMEOUT):
    """``timeout`` in seconds (0.05 to 30), from a monitoring query."""
    from pluggy_nats_plugins.monitor.http import BadRequest

    text = query.get("timeout", "")
    if text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest("timeout: not a number of seconds: %r" % text) from None
    if not 0.05 <= value <= 30:
        raise BadRequest("timeout: must be between 0.05 and 30 seconds, got %s" % text)
    return value
