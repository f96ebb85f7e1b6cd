"""The ``$SYS`` auth error event: every refused authentication publishes
``$SYS.SERVER.<id>.CLIENT.AUTH.ERR`` (a client_disconnect body with reason
"Authentication Failure") and the ``$G`` DISCONNECT event, for our server and
the Go nats-server alike."""

import json

import nats
import pytest

from pluggy_nats.testing.plugin import run

CONF = """
accounts {
  SYS { users: [{user: sys, password: sys-pw}] }
  APP { users: [{user: alice, password: alice-pw}] }
}
system_account: SYS
"""


def _events(server, raw_client):
    """The events a system-account subscriber sees while one client fails to
    authenticate and another succeeds: [(subject, body), ...]."""

    async def main():
        sys_nc = await nats.connect(server.url, user="sys", password="sys-pw",
                                    allow_reconnect=False)
        errs = await sys_nc.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR")
        disc = await sys_nc.subscribe("$SYS.ACCOUNT.$G.DISCONNECT")
        await sys_nc.flush()
        c = raw_client(server)
        c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"wrong","name":"bad-one",'
               b'"lang":"raw","version":"9.9"}\r\nPING\r\n')
        c.expect(rb"-ERR 'Authorization Violation'\r\n")
        good = await nats.connect(server.url, user="alice", password="alice-pw",
                                  allow_reconnect=False)
        await good.close()
        out = [await errs.next_msg(timeout=5), await disc.next_msg(timeout=5)]
        try:  # exactly one auth error: the good client made none
            extra = await errs.next_msg(timeout=0.5)
            out.append(extra)
        except nats.errors.TimeoutError:
            pass
        await sys_nc.close()
        return [(m.subject, json.loads(m.data)) for m in out]

    return run(main())


def _check(events, server_id):
    assert len(events) == 2, [s for s, _ in events]
    (err_subject, err), (disc_subject, disc) = events
    assert err_subject == "$SYS.SERVER.%s.CLIENT.AUTH.ERR" % server_id
    assert disc_subject == "$SYS.ACCOUNT.$G.DISCONNECT"
    for body in (err, disc):
        assert body["type"] == "io.nats.server.advisory.v1.client_disconnect"
        assert body["reason"] == "Authentication Failure"
        assert body["server"]["id"] == server_id
        client = body["client"]
        assert (client["acc"], client["user"], client["name"], client["lang"],
                client["ver"]) == ("$G", "alice", "bad-one", "raw", "9.9")
        assert client["kind"] == "Client" and client["client_type"] == "nats"
        assert client["start"] <= client["stop"]
        assert body["sent"] == {"msgs": 0, "bytes": 0}
    return err


def test_auth_error_event(make_server, raw_client):
    server = make_server(config=CONF)
    server_id = raw_client(server).info["server_id"]
    _check(_events(server, raw_client), server_id)


@pytest.mark.interop
def test_auth_error_event_same_as_go(make_server, go_nats_server, raw_client):
    ours = make_server(config=CONF)
    go = go_nats_server(config=CONF)
    go_err = _check(_events(go, raw_client), raw_client(go).info["server_id"])
    our_err = _check(_events(ours, raw_client), raw_client(ours).info["server_id"])
    assert set(our_err) == set(go_err)
    # Go adds rtt once measured; ours also names the server (as our other events do)
    assert set(our_err["client"]) - {"server", "rtt"} <= set(go_err["client"])
    assert set(go_err["client"]) - {"rtt"} <= set(our_err["client"])
