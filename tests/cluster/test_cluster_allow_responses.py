"""allow_responses is tracked where the request is delivered (nats-server
deliverMsg), not by a per-publish hook: a responder may answer a request that
came over a route, and only the queue member that got a request may answer it."""

from pluggy_nats.testing.raw import RawClient, wait_for

CONF = """
cluster { listen: "127.0.0.1:-1", name: resp, %s }
authorization {
  users: [
    {user: admin, password: admin}
    {user: responder, password: responder, permissions: {
      subscribe: "svc.>", allow_responses: true }}
  ]
}
"""
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}\r\nPING\r\n'


def login(server, user):
    c = RawClient("127.0.0.1", server.port)
    c.send(CONNECT % (user, user))
    c.expect(rb"PONG\r\n")
    return c


def test_cluster_allow_responses_over_a_route(make_server):
    a = make_server(config=CONF % "", name="a")
    b = make_server(config=CONF % ('routes: ["%s"]' % a.route_url), name="b")
    clients = []
    try:
        resp = login(b, b"responder")
        resp2 = login(b, b"responder")
        clients += [resp, resp2]
        resp.send(b"SUB svc.echo workers 1\r\nPING\r\n")
        resp2.send(b"SUB svc.echo workers 1\r\nPING\r\n")
        resp.expect(rb"PONG\r\n")
        resp2.expect(rb"PONG\r\n")
        admin = login(a, b"admin")
        clients.append(admin)
        admin.send(b"SUB inbox.> 9\r\nPING\r\n")
        admin.expect(rb"PONG\r\n")

        # The request comes from server a, over the route (queue group named).
        got = {}

        def delivered():
            admin.send(b"PUB svc.echo inbox.1 4\r\nping\r\n")
            for c in (resp, resp2):
                data = c.read_all(timeout=0.1)
                if b"inbox.1" in data:
                    got["to"] = c
            return "to" in got
        wait_for(delivered, timeout=10, message="request over the route")
        answerer = got["to"]
        other = resp2 if answerer is resp else resp
        other.read_all(timeout=0.1)
        # The member that did not receive it may not answer (nats-server
        # records the reply for the member it delivered to only).
        other.send(b"PUB inbox.1 5\r\nwrong\r\nPING\r\n")
        other.expect(rb"-ERR 'Permissions Violation for Publish to \"inbox\.1\"'\r\nPONG\r\n")
        answerer.send(b"PUB inbox.1 4\r\npong\r\nPING\r\n")
        answerer.expect(rb"PONG\r\n")
        admin.expect(rb"MSG inbox\.1 9 4\r\npong\r\n", timeout=5)
    finally:
        for c in clients:
            c.close()
