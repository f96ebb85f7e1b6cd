"""Permissions, checked by what is delivered (nats-py) and by the -ERR texts on
the wire (raw sockets): publish and subscribe allow/deny, wildcard rules, queue
entries, deny winning, default permissions and allow_responses."""

import asyncio
import time

import nats

from pluggy_nats.testing.plugin import run

CONF = """
authorization {
  default_permissions: { publish: "default.>", subscribe: "default.>" }
  users: [
    {user: admin, password: admin, permissions: {publish: ">", subscribe: ">"}}
    {user: limited, password: limited, permissions: {
      publish: { allow: ["orders.>", "metrics.*"], deny: ["orders.secret", "orders.*.internal"] }
      subscribe: { allow: ["updates.>", "jobs.* workers"], deny: "updates.secret.>" }
    }}
    {user: pubonly, password: pubonly, permissions: { publish: "out.*", subscribe: { deny: ">" } }}
    {user: dflt, password: dflt}
    {user: responder, password: responder, permissions: {
      subscribe: "svc.>", allow_responses: true
    }}
    {user: responder2, password: responder2, permissions: {
      subscribe: "svc2.>", publish: "status", allow_responses: { max: 2, expires: "400ms" }
    }}
  ]
}
"""

async def settle(nc):
    """A real barrier: everything sent so far has been processed by the server.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, so it can
    overtake SUB/PUB commands still queued for the client's flusher task (and
    return before the server saw them). Give the flusher a turn first."""
    await asyncio.sleep(0.01)
    await nc.flush()


def _connect(c, user):
    c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}\r\n'
           % (user.encode(), user.encode()))


def _perm_err(kind, subject):
    return (rb"-ERR 'Permissions Violation for %s to \"%s\"'\r\n"
            % (kind.encode(), subject.replace(".", r"\.").replace("*", r"\*").encode()))


def test_auth_permissions_publish_raw(make_server, raw_client):
    server = make_server(config=CONF)
    admin = raw_client(server)
    _connect(admin, "admin")
    admin.send(b"SUB > 1\r\nPING\r\n")
    admin.expect(rb"PONG\r\n")
    c = raw_client(server)
    _connect(c, "limited")
    c.send(b"PUB orders.new 1\r\na\r\n"           # allowed
           b"PUB orders.secret 1\r\nb\r\n"        # deny wins over orders.>
           b"PUB orders.x.internal 1\r\nc\r\n"    # deny with a wildcard
           b"PUB orders.x.internal.y 1\r\nd\r\n"  # not covered by the deny
           b"PUB metrics.cpu 1\r\ne\r\n"          # metrics.* matches one token
           b"PUB metrics.cpu.load 1\r\nf\r\n"     # ... not two
           b"PUB other 1\r\ng\r\nPING\r\n")
    c.expect(_perm_err("Publish", "orders.secret") + _perm_err("Publish", "orders.x.internal")
             + _perm_err("Publish", "metrics.cpu.load") + _perm_err("Publish", "other")
             + rb"PONG\r\n")
    # the connection stays open and usable after violations
    c.send(b"PUB orders.again 1\r\nh\r\nPING\r\n")
    c.expect(rb"PONG\r\n")
    admin.send(b"PING\r\n")
    got = admin.expect(rb"(.*)PONG\r\n").group(1)
    assert got == (b"MSG orders.new 1 1\r\na\r\nMSG orders.x.internal.y 1 1\r\nd\r\n"
                   b"MSG metrics.cpu 1 1\r\ne\r\nMSG orders.again 1 1\r\nh\r\n")


def test_auth_permissions_subscribe_raw(make_server, raw_client):
    server = make_server(config=CONF)
    c = raw_client(server)
    _connect(c, "limited")
    c.send(b"SUB updates.a 1\r\n"              # allowed
           b"SUB updates.> 2\r\n"              # allowed; updates.secret.> is filtered out
           b"SUB updates.* 3\r\n"              # narrower wildcard: allowed
           b"SUB > 4\r\n"                      # wider than any allow: denied
           b"SUB updates.secret.x 5\r\n"       # deny wins
           b"SUB jobs.a 6\r\n"                 # jobs.* is allowed only in queue workers
           b"SUB jobs.a workers 7\r\n"
           b"SUB jobs.a others 8\r\n"
           b"SUB orders.new 9\r\nPING\r\n")
    c.expect(_perm_err("Subscription", ">") + _perm_err("Subscription", "updates.secret.x")
             + _perm_err("Subscription", "jobs.a")
             + rb"-ERR 'Permissions Violation for Subscription to \"jobs\.a\"[^']*'\r\n"
             + _perm_err("Subscription", "orders.new") + rb"PONG\r\n")
    # the allowed subscriptions exist: one publish reaches each of them
    admin = raw_client(server)
    _connect(admin, "admin")
    admin.send(b"PUB updates.a 1\r\nx\r\nPUB jobs.a 1\r\ny\r\nPUB orders.new 1\r\nz\r\n"
               b"PUB updates.secret.x 1\r\ns\r\nPUB updates.secret 1\r\nt\r\nPING\r\n")
    admin.expect(rb"PONG\r\n")
    c.send(b"PING\r\n")
    got = c.expect(rb"(.*)PONG\r\n").group(1)
    msgs = sorted(got.split(b"MSG ")[1:])
    # updates.secret.x matches updates.> but is denied: dropped at delivery
    assert msgs == [b"jobs.a 7 1\r\ny\r\n", b"updates.a 1 1\r\nx\r\n",
                    b"updates.a 2 1\r\nx\r\n", b"updates.a 3 1\r\nx\r\n",
                    b"updates.secret 2 1\r\nt\r\n", b"updates.secret 3 1\r\nt\r\n"]


def test_auth_permissions_default_and_subscribe_deny_all(make_server, raw_client):
    server = make_server(config=CONF)
    d = raw_client(server)
    _connect(d, "dflt")  # no permissions of its own: default_permissions apply
    d.send(b"SUB default.x 1\r\nSUB other 2\r\nPUB default.x 1\r\na\r\nPUB other 1\r\nb\r\n"
           b"PING\r\n")
    d.expect(_perm_err("Subscription", "other") + rb"MSG default\.x 1 1\r\na\r\n"
             + _perm_err("Publish", "other") + rb"PONG\r\n")
    p = raw_client(server)
    _connect(p, "pubonly")
    p.send(b"SUB out.a 1\r\nPUB out.a 1\r\na\r\nPUB out 1\r\nb\r\nPING\r\n")
    p.expect(_perm_err("Subscription", "out.a") + _perm_err("Publish", "out") + rb"PONG\r\n")


def test_auth_permissions_observed_with_nats_py(make_server):
    """Delivery as a real client sees it: what is denied never arrives, the
    publisher's error callback gets the violation, and the connection lives on."""
    server = make_server(config=CONF)

    async def main():
        errors = []

        async def error_cb(exc):
            errors.append(str(exc).replace("nats: ", "", 1).lower())

        admin = await nats.connect(server.url, user="admin", password="admin",
                                   allow_reconnect=False)
        limited = await nats.connect(server.url, user="limited", password="limited",
                                     allow_reconnect=False, error_cb=error_cb)
        seen = await admin.subscribe(">")
        await settle(admin)
        for subject in ("orders.1", "orders.secret", "metrics.cpu", "forbidden", "orders.2"):
            await limited.publish(subject, subject.encode())
        await settle(limited)
        got = []
        for _ in range(3):
            got.append((await seen.next_msg(timeout=5)).subject)
        try:
            extra = await seen.next_msg(timeout=0.3)
            got.append(extra.subject)
        except nats.errors.TimeoutError:
            pass
        # subscribe side: a denied subscription receives nothing
        upd = await limited.subscribe("updates.secret.x")
        ok = await limited.subscribe("updates.ok")
        await settle(limited)
        await admin.publish("updates.secret.x", b"no")
        await admin.publish("updates.ok", b"yes")
        await settle(admin)
        msg = await ok.next_msg(timeout=5)
        try:
            await upd.next_msg(timeout=0.3)
            leaked = True
        except nats.errors.TimeoutError:
            leaked = False
        assert limited.is_connected
        await limited.close()
        await admin.close()
        return got, errors, msg.data, leaked

    got, errors, data, leaked = run(main())
    assert got == ["orders.1", "metrics.cpu", "orders.2"]
    # (nats-py lowercases the -ERR text it hands to error_cb)
    assert 'permissions violation for publish to "orders.secret"' in errors
    assert 'permissions violation for publish to "forbidden"' in errors
    assert 'permissions violation for subscription to "updates.secret.x"' in errors
    assert data == b"yes" and not leaked


def test_auth_permissions_publish_cache_is_bounded_and_correct(make_server, raw_client):
    """More distinct subjects than the per-connection cache holds: every
    decision stays right across the evictions."""
    server = make_server(config=CONF)
    c = raw_client(server)
    _connect(c, "limited")
    batch = []
    expected = []
    for i in range(3000):
        if i % 3 == 0:
            batch.append(b"PUB nope.%d 1\r\nx\r\n" % i)
            expected.append(b"-ERR 'Permissions Violation for Publish to \"nope.%d\"'\r\n" % i)
        else:
            batch.append(b"PUB orders.%d 1\r\nx\r\n" % i)
    c.send(b"".join(batch) + b"PING\r\n")
    got = c.expect(rb"(.*)PONG\r\n", timeout=10).group(1)
    assert got == b"".join(expected)


def test_auth_permissions_allow_responses(make_server):
    server = make_server(config=CONF)

    async def main():
        errors = []

        async def error_cb(exc):
            errors.append(str(exc).replace("nats: ", "", 1).lower())

        admin = await nats.connect(server.url, user="admin", password="admin",
                                   allow_reconnect=False)
        resp = await nats.connect(server.url, user="responder", password="responder",
                                  allow_reconnect=False, error_cb=error_cb)
        requests = await resp.subscribe("svc.echo")
        await settle(resp)
        inbox = admin.new_inbox()
        replies = await admin.subscribe(inbox)
        await settle(admin)
        await admin.publish("svc.echo", b"q1", reply=inbox)
        msg = await requests.next_msg(timeout=5)
        await resp.publish(msg.reply, b"first")   # allowed: a reply
        await resp.publish(msg.reply, b"second")  # max 1 (default): denied
        await resp.publish("svc.echo", b"x")      # publish is otherwise denied
        await settle(resp)
        got = [(await replies.next_msg(timeout=5)).data]
        try:
            got.append((await replies.next_msg(timeout=0.3)).data)
        except nats.errors.TimeoutError:
            pass
        # request/reply through nats-py's own request API works too
        async def serve():
            m = await requests.next_msg(timeout=5)
            await m.respond(b"pong")

        task = asyncio.ensure_future(serve())
        answer = await admin.request("svc.echo", b"ping", timeout=5)
        await task
        await resp.close()
        await admin.close()
        return got, answer.data, errors

    got, answer, errors = run(main())
    assert got == [b"first"]
    assert answer == b"pong"
    assert len(errors) == 2, errors
    assert errors[0].startswith('permissions violation for publish to "_inbox.')
    assert errors[1] == 'permissions violation for publish to "svc.echo"'



def test_auth_permissions_allow_responses_max_and_expiry(make_server, raw_client):
    server = make_server(config=CONF)
    r = raw_client(server)
    _connect(r, "responder2")
    r.send(b"SUB svc2.x 1\r\nPING\r\n")
    r.expect(rb"PONG\r\n")
    a = raw_client(server)
    _connect(a, "admin")
    a.send(b"SUB reply.> 9\r\nPUB svc2.x reply.1 1\r\nq\r\nPUB svc2.x reply.2 1\r\nq\r\nPING\r\n")
    a.expect(rb"PONG\r\n")
    r.expect(rb"MSG svc2\.x 1 reply\.1 1\r\nq\r\nMSG svc2\.x 1 reply\.2 1\r\nq\r\n")
    # max 2 replies to reply.1; static publish permission still works
    r.send(b"PUB reply.1 1\r\na\r\nPUB reply.1 1\r\nb\r\nPUB reply.1 1\r\nc\r\n"
           b"PUB status 1\r\nd\r\nPING\r\n")
    r.expect(_perm_err("Publish", "reply.1") + rb"PONG\r\n")
    # reply.2 expires after 400ms
    time.sleep(0.6)
    r.send(b"PUB reply.2 1\r\ne\r\nPING\r\n")
    r.expect(_perm_err("Publish", "reply.2") + rb"PONG\r\n")
    a.send(b"PING\r\n")
    assert a.expect(rb"(.*)PONG\r\n").group(1) == (
        b"MSG reply.1 9 1\r\na\r\nMSG reply.1 9 1\r\nb\r\n")
