"""``pluggy-nats topology`` and ``pluggy-nats explain``.

``--server`` is a NATS URL whose user belongs to the system account
(``nats://sys:pass@host:4222``: the command gathers over ``$SYS`` itself, Go
servers included), or a monitoring URL (``http://host:8222``: the server
there gathers, through ``/topz?system=1`` or ``/explainz``).
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from . import render, system
from .explain import BadInput
from .gather import DEFAULT_TIMEOUT


def _http(url, path, query, timeout):
    full = url.rstrip("/") + path + "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(full, timeout=timeout + 5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", "")
        except ValueError:
            message = ""
        raise BadInput(message or "HTTP %d from %s" % (exc.code, full)) from None


def _with_client(url, timeout, work):
    from .client import SysClient

    client = SysClient(url, timeout=max(timeout, 2.0))
    try:
        return work(client)
    finally:
        client.close()


def fetch_topology(url, timeout):
    if url.startswith(("http://", "https://")):
        return _http(url, "/topz", {"system": "1", "timeout": timeout}, timeout)
    return _with_client(url, timeout, lambda c: system.topology(c.gather, timeout))


def fetch_explanation(url, account, subject, timeout, publisher=""):
    if url.startswith(("http://", "https://")):
        return _http(url, "/explainz", {"account": account, "subject": subject,
                                        "timeout": timeout, "from": publisher}, timeout)

    def work(client):
        def origin_part(subj):
            raw = client.request("$SYS.REQ.SERVER.%s.EXPLAINZ" % client.server_id,
                                 json.dumps({"account": account, "subject": subj}).encode(),
                                 timeout)
            if raw is None:
                raise BadInput("%s did not answer EXPLAINZ: explain publishes from a "
                               "pluggy-nats server with the topology plugin, asked as a "
                               "system account user" % url)
            answer = json.loads(raw)
            if answer.get("error"):
                raise BadInput(answer["error"].get("description", str(answer["error"])))
            return answer["data"]

        return system.explanation(client.gather, origin_part, account, subject, timeout,
                                  publisher=publisher)

    return _with_client(url, timeout, work)


def explanation_text(body):
    origin = body["origin"]
    lines = ["explain: account %s, subject %s, published on %s (cluster %s)" % (
        body["account"], body["subject"], origin["server"], origin["cluster"] or "-")]
    mapping = body.get("mapping")
    if mapping:
        lines.append("mapping: %s -> %s" % (mapping["from"], mapping["explained"]))
    lines.append("receives:" if body["receivers"] or body["queue_groups"] else
                 "receives: nobody")
    for r in body["receivers"]:
        if r.get("kind") == "leaf server":
            lines.append("  %s  leaf server on hub %s: %s" % (r["server"], r["hub"],
                                                              r["reason"]["text"]))
            continue
        via = "  (%s)" % r["via"]["text"] if r.get("via") else ""
        lines.append("  %s (%s)  %s %s %r user %s  on %s%s" % (
            r["server"], r["cluster"] or "-", r["kind"], r.get("client", ""), r.get("name", ""),
            r.get("user") or "-", r["subject"], via))
    for group in body["queue_groups"]:
        lines.append("  queue group %s [%s]: members on %s; picks %s" % (
            group["queue"], group["account"], ", ".join(m["server"] for m in group["members"]),
            group["picked"]))
    if body["not_delivered"]:
        lines.append("does not go:")
    for stop in body["not_delivered"]:
        what = "%s %s" % (stop["link"], stop["peer"]) if stop.get("link") else \
            "client %r" % stop.get("name", "")
        lines.append("  %s  %s: %s" % (stop["server"], what, stop["reason"]["text"]))
    for note in body.get("notes") or ():
        lines.append("note: %s" % note)
    if body.get("partial"):
        lines.append("PARTIAL: %s" % "; ".join(
            ["%s did not answer %s" % (m.get("server_id") or m.get("server_name"), m["endpoint"])
             for m in body["missing"]]
            + body.get("errors", [])))
    return "\n".join(lines) + "\n"


def _parser(prog, description):
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--server", "-s", default="nats://127.0.0.1:4222",
                    help="nats://SYSUSER:PASS@host:port (a system account user) or "
                         "http://host:monitor_port")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="seconds to wait for servers to answer (default %(default)s)")
    return ap


def _run(work):
    try:
        body, text = work()
    except BadInput as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print("error: cannot reach the server: %s" % exc, file=sys.stderr)
        return 1
    sys.stdout.write(text)
    if body.get("partial"):
        print("partial: some servers did not answer in time", file=sys.stderr)
    return 0


def topology_main(argv):
    ap = _parser("pluggy-nats topology", "The whole system: clusters, gateways, leafs, "
                                         "links with their traffic, JetStream streams.")
    ap.add_argument("--format", "-f", choices=("text", "svg", "dot", "json"), default="text")
    args = ap.parse_args(argv)
    formats = {"text": render.text, "svg": render.svg, "dot": render.dot,
               "json": lambda b: json.dumps(b, indent=2) + "\n"}

    def work():
        body = fetch_topology(args.server, args.timeout)
        if not body["servers"]:
            raise BadInput("; ".join(body["errors"]) or "no server answered")
        return body, formats[args.format](body)

    return _run(work)


def explain_main(argv):
    ap = _parser("pluggy-nats explain", "Who would receive a message published on SUBJECT "
                                        "in ACCOUNT, and where and why it would not go.")
    ap.add_argument("--account", "-a", default="$G")
    ap.add_argument("--from", dest="publisher", default="",
                    help="the server (name or id) to publish from; default: the one asked")
    ap.add_argument("--format", "-f", choices=("text", "json"), default="text")
    ap.add_argument("subject")
    args = ap.parse_args(argv)

    def work():
        body = fetch_explanation(args.server, args.account, args.subject, args.timeout,
                                 args.publisher)
        text = explanation_text(body) if args.format == "text" else json.dumps(
            body, indent=2) + "\n"
        return body, text

    return _run(work)
