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

from .view import ENDPOINTS, REQUEST_BODIES, REQUIRED, named_ids, system_leafs

PING = "$SYS.REQ.SERVER.PING."
DEFAULT_TIMEOUT = 2.0
QUIET = 0.15  # once complete, how long to wait for servers nobody named


class Gathering:
    """``asks``: endpoint -> request body; ``required``: the endpoints every
    server must answer for the result to be complete. The servers expected are
    those the answers so far name (kept up to date per answer, so a check is
    cheap with hundreds of answers)."""

    def __init__(self, asks=None, required=REQUIRED):
        self.asks = dict(asks) if asks is not None else {
            ep: REQUEST_BODIES.get(ep, {}) for ep in ENDPOINTS}
        self.required = tuple(required)
        self.expected = set()  # ids of servers that must answer
        self.leaf_names = set()  # names of system-account leafs that must answer
        self.names = set()  # names of the servers that answered
        self.answers = {ep: {} for ep in self.asks}
        self.errors = []
        self.elapsed_ms = 0.0

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
        err = response.get("error")
        if isinstance(err, dict) and err.get("code") == 404:
            response = {"server": response["server"], "data": None}  # no such feature here
            err = None
        if err:
            text = err.get("description", err) if isinstance(err, dict) else err
            self.errors.append("%s from %s: %s" % (endpoint, response["server"].get(
                "name") or sid, text))
        self.answers[endpoint][sid] = response
        self.expected |= named_ids(endpoint, response)
        self.names.add(response["server"].get("name"))
        if endpoint in ("VARZ", "LEAFZ") and sid in self.answers.get("LEAFZ", {}):
            varz = (self.answers.get("VARZ", {}).get(sid) or {}).get("data")
            self.leaf_names |= system_leafs(varz, self.answers["LEAFZ"][sid].get("data"))

    def complete(self):
        if not all(self.answers.get(ep) for ep in self.required):
            return False
        if not self.leaf_names <= self.names:
            return False
        return all(sid in self.answers[ep] for ep in self.required for sid in self.expected)


def run(gathering, send, receive, timeout=DEFAULT_TIMEOUT, quiet=QUIET, reply_prefix="",
        clock=time.monotonic):
    """Send ``gathering``'s requests, feed it answers until it is complete and
    quiet, or ``timeout`` seconds passed. ``send(subject, reply, payload)``;
    ``receive(seconds)`` -> (endpoint, payload) or None after ``seconds``.
    Sets (and returns) ``gathering.elapsed_ms``."""
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
    gathering.elapsed_ms = round((clock() - start) * 1000, 1)
    return gathering.elapsed_ms


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


# -- explain -----------------------------------------------------------------------

# EXPLAINZ first: our servers answer in order, so theirs is in before the rest.
EXPLAIN_REQUIRED = ("ROUTEZ", "GATEWAYZ", "LEAFZ", "CONNZ")


def explain_asks(account, subject):
    """Our servers answer EXPLAINZ; a Go server's part is read from the rest."""
    return {"EXPLAINZ": {"account": account, "subject": subject},
            "CONNZ": {"subscriptions_detail": True, "auth": True},
            "LEAFZ": {"subscriptions": True}, "ROUTEZ": {}, "GATEWAYZ": {},
            "VARZ": {}}  # VARZ: the system account, whose leafs must answer too


def explain_parts(answers, account, subject):
    """server id -> part: ours from EXPLAINZ, Go's from its other answers
    (matching the accounts our servers' stream imports deliver into too)."""
    from .explain import from_go

    parts = {}
    for sid, response in answers.get("EXPLAINZ", {}).items():
        if isinstance(response.get("data"), dict) and "receivers" in response["data"]:
            parts[sid] = response["data"]
    wanted = [(account, subject, None)]
    for part in parts.values():
        for r in part["receivers"]:
            key = (r["account"], r["delivered_as"], r.get("via"))
            if r.get("via") and all(w[:2] != key[:2] for w in wanted):
                wanted.append(key)
    for sid, response in answers.get("CONNZ", {}).items():
        if sid in parts:
            continue

        def data(ep, sid=sid):
            return (answers.get(ep, {}).get(sid) or {}).get("data")

        parts[sid] = from_go(response.get("server") or {}, data("CONNZ"), data("LEAFZ"),
                             data("ROUTEZ"), data("GATEWAYZ"), wanted)
    return parts
