"""``$JS.EVENT.ADVISORY.>`` events (jetstream_events.go), published in the
account the event is about, and only built when someone listens."""

import secrets
import time

from . import headers as H
from .jsonreq import dumps

PREFIX = "$JS.EVENT.ADVISORY."
T = "io.nats.jetstream.advisory.v1."


def _publish(jsa, subject, body, prefix=T):
    if not jsa.account.sublist.has_interest(subject.encode()):
        return
    event = {"type": prefix + body.pop("type"), "id": secrets.token_hex(11),
             "timestamp": H.rfc3339(time.time_ns())}
    event.update(body)
    if jsa.js.config.domain:
        event["domain"] = jsa.js.config.domain
    jsa.client.publish(subject, dumps(event), flush=False)


def api_audit(jsa, subject, request, response):
    _publish(jsa, PREFIX + "API", {
        "type": "api_audit", "server": jsa.server.server_name,
        "client": _client(jsa), "subject": subject, "request": request, "response": response})


def stream_action(jsa, stream, action):
    verb = {"create": "CREATED", "delete": "DELETED", "modify": "UPDATED"}[action]
    _publish(jsa, PREFIX + "STREAM.%s.%s" % (verb, stream),
             {"type": "stream_action", "stream": stream, "action": action})


def consumer_action(jsa, stream, consumer, action):
    verb = {"create": "CREATED", "delete": "DELETED"}[action]
    _publish(jsa, PREFIX + "CONSUMER.%s.%s.%s" % (verb, stream, consumer),
             {"type": "consumer_action", "stream": stream, "consumer": consumer,
              "action": action})


def consumer_pause(jsa, stream, consumer, paused, until):
    body = {"type": "consumer_pause", "stream": stream, "consumer": consumer,
            "paused": paused}
    if paused:
        body["pause_until"] = until
    _publish(jsa, PREFIX + "CONSUMER.PAUSE.%s.%s" % (stream, consumer), body)


def max_deliveries(jsa, consumer, seq, dc):
    _publish(jsa, PREFIX + "CONSUMER.MAX_DELIVERIES.%s.%s" % (consumer.stream.name,
                                                              consumer.name),
             {"type": "max_deliver", "stream": consumer.stream.name,
              "consumer": consumer.name, "stream_seq": seq, "deliveries": dc})


def naked(jsa, consumer, seq, dc):
    _publish(jsa, PREFIX + "CONSUMER.MSG_NAKED.%s.%s" % (consumer.stream.name, consumer.name),
             {"type": "nak", "stream": consumer.stream.name, "consumer": consumer.name,
              "stream_seq": seq, "deliveries": dc})


def terminated(jsa, consumer, seq, dc, reason):
    _publish(jsa, PREFIX + "CONSUMER.MSG_TERMINATED.%s.%s" % (consumer.stream.name,
                                                              consumer.name),
             {"type": "terminated", "stream": consumer.stream.name,
              "consumer": consumer.name, "stream_seq": seq, "deliveries": dc,
              "reason": reason})


def pinned(jsa, consumer, group):
    _publish(jsa, PREFIX + "CONSUMER.PINNED.%s.%s" % (consumer.stream.name, consumer.name),
             {"type": "consumer_group_pinned", "account": jsa.account.name,
              "stream": consumer.stream.name, "consumer": consumer.name, "group": group,
              "pinned_id": consumer.pin_id})


def unpinned(jsa, consumer, group, reason):
    _publish(jsa, PREFIX + "CONSUMER.UNPINNED.%s.%s" % (consumer.stream.name, consumer.name),
             {"type": "consumer_group_unpinned", "account": jsa.account.name,
              "stream": consumer.stream.name, "consumer": consumer.name, "group": group,
              "reason": reason})


def ack_metric(jsa, consumer, sseq, dseq, dc, delay_ns):
    """``$JS.EVENT.METRIC.CONSUMER.ACK.<stream>.<consumer>`` for a sampled ack
    (``sample_freq``)."""
    _publish(jsa, "$JS.EVENT.METRIC.CONSUMER.ACK.%s.%s" % (consumer.stream.name,
                                                          consumer.name),
             {"type": "consumer_ack", "stream": consumer.stream.name,
              "consumer": consumer.name, "consumer_seq": dseq, "stream_seq": sseq,
              "ack_time": delay_ns, "deliveries": dc},
             prefix="io.nats.jetstream.metric.v1.")


def stream_leader_elected(jsa, stream, leader, replicas, system=None):
    """A replicated stream's new leader (Go's JSStreamLeaderElectedAdvisory):
    in the stream's account, and with ``account`` in the system account
    (``system``: an internal client there)."""
    subject = PREFIX + "STREAM.LEADER_ELECTED.%s" % stream
    body = {"type": "stream_leader_elected", "stream": stream, "leader": leader,
            "replicas": [{"name": name, "current": True} for name in replicas]}
    _in_both(jsa, subject, body, system)


def consumer_leader_elected(jsa, stream, consumer, leader, replicas, system=None):
    """A consumer's new leader (Go's JSConsumerLeaderElectedAdvisory); ours
    move with their stream's leader."""
    subject = PREFIX + "CONSUMER.LEADER_ELECTED.%s.%s" % (stream, consumer)
    body = {"type": "consumer_leader_elected", "stream": stream, "consumer": consumer,
            "leader": leader, "replicas": [{"name": name, "current": True} for name in replicas]}
    _in_both(jsa, subject, body, system)


_QUORUM_LOST_INTERVAL = 10.0   # Go's lostQuorumAdvInterval: once per 10 s per stream
_quorum_lost_sent = {}


def quorum_lost(jsa, stream, consumers, replicas, system=None):
    """``STREAM.QUORUM_LOST.<stream>`` and ``CONSUMER.QUORUM_LOST.<stream>.<c>``
    for each of its consumers (they share its group here), throttled as Go."""
    key = (jsa.account.name, stream)
    now = time.monotonic()
    if now - _quorum_lost_sent.get(key, -_QUORUM_LOST_INTERVAL) < _QUORUM_LOST_INTERVAL:
        return
    _quorum_lost_sent[key] = now
    peers = [{"name": name, "current": False} for name in replicas]
    events = [(PREFIX + "STREAM.QUORUM_LOST.%s" % stream,
               {"type": "stream_quorum_lost", "stream": stream, "replicas": peers})]
    events += [(PREFIX + "CONSUMER.QUORUM_LOST.%s.%s" % (stream, c),
                {"type": "consumer_quorum_lost", "stream": stream, "consumer": c,
                 "replicas": peers}) for c in consumers]
    for subject, body in events:
        _in_both(jsa, subject, body, system)


def _in_both(jsa, subject, body, system):
    """In the account, and (Go) in the system account with ``account`` added."""
    _publish(jsa, subject, dict(body))
    if system is not None:
        publish_system(system, subject, dict(body, account=jsa.account.name),
                       jsa.js.config.domain)


def publish_system(client, subject, body, domain=""):
    """An advisory in the system account (Go's publishAdvisory with no account)."""
    if not client.account.sublist.has_interest(subject.encode()):
        return
    event = {"type": T + body.pop("type"), "id": secrets.token_hex(11),
             "timestamp": H.rfc3339(time.time_ns())}
    event.update(body)
    if domain:
        event["domain"] = domain
    client.publish(subject, dumps(event), flush=False)


def domain_leader_elected(client, leader, replicas, cluster, domain=""):
    """``$JS.EVENT.ADVISORY.DOMAIN.LEADER_ELECTED``: a new meta leader (system account)."""
    publish_system(client, PREFIX + "DOMAIN.LEADER_ELECTED", {
        "type": "domain_leader_elected", "leader": leader, "replicas": replicas,
        "cluster": cluster}, domain)


def server_removed(client, server, server_id, cluster, domain=""):
    """``$JS.EVENT.ADVISORY.SERVER.REMOVED``: this server left the meta group
    and disabled its JetStream (system account)."""
    publish_system(client, PREFIX + "SERVER.REMOVED", {
        "type": "server_removed", "server": server, "server_id": server_id,
        "cluster": cluster}, domain)


def _client(jsa):
    return {"acc": jsa.account.name, "server": jsa.server.server_name}


def snapshot(jsa, stream, stage, state=None, start=0, error=""):
    """``STREAM.SNAPSHOT_CREATE|SNAPSHOT_COMPLETE.<stream>`` (snapshot_create/_complete)."""
    body = {"type": "snapshot_" + stage, "stream": stream}
    if stage == "create":
        body["state"] = state
    else:
        body.update(start=H.rfc3339(start), end=H.rfc3339(time.time_ns()))
    body["client"] = _client(jsa)
    if error:
        body["error"] = error
    _publish(jsa, PREFIX + "STREAM.SNAPSHOT_%s.%s" % (stage.upper(), stream), body)


def restore(jsa, stream, stage, start=0, size=0):
    """``STREAM.RESTORE_CREATE|RESTORE_COMPLETE.<stream>`` (restore_create/_complete)."""
    body = {"type": "restore_" + stage, "stream": stream}
    if stage == "complete":
        body.update(start=H.rfc3339(start), end=H.rfc3339(time.time_ns()), bytes=size)
    body["client"] = _client(jsa)
    _publish(jsa, PREFIX + "STREAM.RESTORE_%s.%s" % (stage.upper(), stream), body)
