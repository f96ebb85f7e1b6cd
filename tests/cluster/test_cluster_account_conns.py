"""An account's connection limit counts its clients on every server of the
cluster ($SYS account connection events, as nats-server): with ``conn: 2``,
one client on a Go server and one on ours, a third is refused on either."""

import asyncio
import time

import nats
import pytest

from pluggy_nats.testing.operator import Trust
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop


def cluster_block(routes=()):
    conf = "cluster { name: c1, listen: 127.0.0.1:-1"
    if routes:
        conf += ", routes: [%s]" % ", ".join(routes)
    return conf + " }\n"


async def _route_up(sub_url, pub_url, creds):
    """Until a message crosses from pub_url to sub_url (system account users,
    which account A's limit does not count)."""
    a = await nats.connect(sub_url, user_credentials=creds, allow_reconnect=False)
    b = await nats.connect(pub_url, user_credentials=creds, allow_reconnect=False)
    try:
        sub = await a.subscribe("probe")
        await a.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await b.publish("probe", b"x")
            try:
                await sub.next_msg(timeout=0.2)
                return
            except nats.errors.TimeoutError:
                pass
        raise AssertionError("no route within 20s")
    finally:
        await a.close()
        await b.close()


async def _scenario(first_url, second_url, third_urls, creds):
    errors = []

    async def error_cb(exc):
        errors.append(str(exc))

    kept = [await nats.connect(url, user_credentials=creds, allow_reconnect=False)
            for url in (first_url, second_url)]
    outcomes = []
    try:
        for url in third_urls:
            deadline = time.monotonic() + 10  # until the other server's count has arrived
            while True:
                try:
                    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False,
                                            error_cb=error_cb)
                except nats.errors.Error as exc:
                    outcomes.append(str(exc).lower())
                    break
                await nc.close()
                if time.monotonic() > deadline:
                    outcomes.append("admitted")
                    break
                await asyncio.sleep(0.2)
        return outcomes
    finally:
        for nc in kept:
            await nc.close()


def test_cluster_account_connection_limit_counts_all_servers(tmp_path, make_server,
                                                             go_nats_server):
    trust = Trust(tmp_path)
    acc = trust.account("A", limits={"conn": 2})
    creds = trust.user_creds(acc, "u")
    go = go_nats_server(config=trust.config(extra=cluster_block()))
    ours = make_server(config=trust.config(extra=cluster_block([go.route_url])))
    run(_route_up(ours.url, go.url, trust.user_creds(trust.system, "sys")))
    outcomes = run(_scenario(go.url, ours.url, [ours.url, go.url], creds))
    assert outcomes == ["nats: 'maximum account active connections exceeded'"] * 2, outcomes
