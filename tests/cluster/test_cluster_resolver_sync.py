"""The full resolver's ``interval`` sync: account JWTs that only one server
of a cluster has reach the others' resolver directories ($SYS.REQ.CLAIMS.PACK,
as nats-server's DirAccResolver), between the Go server and ours, both ways;
a user of the account then logs in on the server that did not have it."""

import os

import nats
import pytest

from pluggy_nats.testing.operator import Trust
from pluggy_nats.testing.plugin import run
from pluggy_nats.testing.raw import wait_for

pytestmark = pytest.mark.interop


def _config(trust, jwt_dir, preload, routes=()):
    lines = ["operator: \"%s\"" % trust.write_operator(),
             "system_account: %s" % trust.system.pubkey,
             "resolver { type: full, dir: \"%s\", interval: \"1s\" }" % jwt_dir,
             "resolver_preload: {"]
    lines += ["  %s: %s" % (a.pubkey, a.jwt) for a in preload]
    lines.append("}")
    cluster = "cluster { name: c1, listen: 127.0.0.1:-1"
    if routes:
        cluster += ", routes: [%s]" % ", ".join(routes)
    return "\n".join(lines) + "\n" + cluster + " }\n"


async def _login(url, creds):
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False)
    await nc.flush()
    await nc.close()
    return "ok"


def test_cluster_resolver_interval_sync_both_ways(tmp_path, make_server, go_nats_server):
    trust = Trust(tmp_path)
    only_go = trust.account("ONLY_GO")
    only_ours = trust.account("ONLY_OURS")
    go_dir, our_dir = str(tmp_path / "go-jwt"), str(tmp_path / "our-jwt")
    go = go_nats_server(config=_config(trust, go_dir, [trust.system, only_go]))
    ours = make_server(config=_config(trust, our_dir, [trust.system, only_ours],
                                      [go.route_url]))
    wait_for(lambda: os.path.exists(os.path.join(our_dir, only_go.pubkey + ".jwt")),
             timeout=20, message="Go's account JWT in our directory")
    wait_for(lambda: os.path.exists(os.path.join(go_dir, only_ours.pubkey + ".jwt")),
             timeout=20, message="our account JWT in Go's directory")
    with open(os.path.join(our_dir, only_go.pubkey + ".jwt")) as f:
        assert f.read().strip() == only_go.jwt
    assert run(_login(ours.url, trust.user_creds(only_go, "u"))) == "ok"
    assert run(_login(go.url, trust.user_creds(only_ours, "v"))) == "ok"
