"""An import granted by an activation token that expires stops working when
it expires, on the Go nats-server and on ours (nats-server's activation
expiry timer): a request through the import is answered before, and no longer
after."""

import asyncio
import time

import nats
import pytest

from pluggy_nats.testing.operator import Trust, now
from pluggy_nats.testing.plugin import run

pytestmark = pytest.mark.interop


async def _requests(url, svc_creds, user_creds, expires_at):
    """(answer before expiry, answer after) for a request through the import."""
    svc = await nats.connect(url, user_credentials=svc_creds, allow_reconnect=False)
    cli = await nats.connect(url, user_credentials=user_creds, allow_reconnect=False)
    try:
        async def echo(msg):
            await msg.respond(b"re:" + msg.data)

        await svc.subscribe("svc.echo", cb=echo)
        await svc.flush()

        async def ask():
            try:
                return (await cli.request("svc.echo", b"hi", timeout=1)).data.decode()
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
                return type(exc).__name__

        before = await ask()
        await asyncio.sleep(max(0.0, expires_at - time.time()) + 1.5)
        return before, await ask()
    finally:
        await cli.close()
        await svc.close()


def test_jwt_activation_expiry_stops_the_import(tmp_path, make_server, go_nats_server):
    results = []
    for name, start in (("go", go_nats_server), ("ours", make_server)):
        (tmp_path / name).mkdir()
        trust = Trust(tmp_path / name)  # a fresh token per server: it expires in 3s
        svc = trust.account("S", exports=[Trust.service_export("svc.echo", token_req=True)])
        acc = trust.account("A")
        expires_at = now() + 3
        trust.account_jwt(acc, imports=[Trust.service_import(
            svc, "svc.echo", token=trust.activation(svc, acc, "svc.echo", exp=expires_at))])
        server = start(config=trust.config())
        results.append(run(_requests(server.url, trust.user_creds(svc, "svc"),
                                     trust.user_creds(acc, "u"), expires_at)))
    assert results[0][0] == "re:hi" and results[0][1] != "re:hi", results[0]
    assert results[1] == results[0]
