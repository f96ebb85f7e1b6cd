"""Route permissions: cluster { permissions { import, export } } on one node
filter what crosses its routes; the same test passes with that node being the
Go nats-server, so the semantics match."""

import asyncio

import nats
import pytest

from pluggy_nats.testing.plugin import run

PERMS = """
cluster {
  name: perms
  listen: 127.0.0.1:-1
  %s
  permissions {
    import: "allowed.>"
    export: { deny: "secret.>" }
  }
}
"""


async def _delivered(pub_nc, sub_nc, subject, attempts=40):
    sub = await sub_nc.subscribe(subject)
    await sub_nc.flush()
    await asyncio.sleep(0.1)
    got = False
    for _ in range(attempts):
        await pub_nc.publish(subject, b"x")
        try:
            await sub.next_msg(timeout=0.05)
            got = True
            break
        except nats.errors.TimeoutError:
            pass
    await sub.unsubscribe()
    return got


@pytest.mark.parametrize("restricted", ["pluggy-nats", "nats-server"])
def test_cluster_route_permissions_import_export(make_server, go_nats_server, restricted):
    other = make_server("--cluster", "nats://127.0.0.1:-1", "--cluster_name", "perms")
    start = make_server if restricted == "pluggy-nats" else go_nats_server
    node = start(config=PERMS % ("routes: [%s]" % other.route_url))

    async def main():
        a = await nats.connect(node.url, allow_reconnect=False)  # the restricted node
        b = await nats.connect(other.url, allow_reconnect=False)
        assert await _delivered(b, a, "allowed.x", attempts=100)  # warm-up: route is up
        results = {
            "import allowed": await _delivered(b, a, "allowed.y"),
            "import not allowed": await _delivered(b, a, "blocked.y"),
            "export allowed": await _delivered(a, b, "public.y"),
            "export denied": await _delivered(a, b, "secret.y"),
        }
        await a.close()
        await b.close()
        return results

    assert run(main(), timeout=60) == {
        "import allowed": True, "import not allowed": False,
        "export allowed": True, "export denied": False,
    }
