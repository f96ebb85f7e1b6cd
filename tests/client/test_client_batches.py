"""Bursts of same-size messages on one subject, as nats-py writes them (many
PUBs in one socket write): the server delivers them in batches, and every
subscriber must still get each message once, in publish order."""

import nats

from pluggy_nats.testing.plugin import run

TOTAL = 3000


async def connect(server, **kw):
    kw.setdefault("allow_reconnect", False)
    return await nats.connect(server.url, **kw)


def seqs(msgs):
    return [int(m.data) for m in msgs]


def test_client_burst_in_order_to_plain_queue_and_auto_unsub(server):
    async def main():
        pub = await connect(server)
        # One subscription per connection: batches go out whole (a connection
        # holding two matching subscriptions is served message by message).
        conns = [await connect(server) for _ in range(4)]
        plain = await conns[0].subscribe("burst.x", pending_msgs_limit=TOTAL * 2)
        wild = await conns[1].subscribe("burst.*", pending_msgs_limit=TOTAL * 2)
        limited = await conns[2].subscribe("burst.x", max_msgs=100)
        both = [await conns[3].subscribe(s, pending_msgs_limit=TOTAL * 2)
                for s in ("other.x", "other.>")]
        members = []
        for _ in range(3):
            nc = await connect(server)
            members.append((nc, await nc.subscribe("burst.x", queue="q",
                                                   pending_msgs_limit=TOTAL * 2)))
        for nc in conns + [nc for nc, _ in members]:
            await nc.flush()
        for n in range(TOTAL):
            await pub.publish("burst.x", b"%06d" % n)  # all frames alike but the payload
        for n in range(TOTAL):
            await pub.publish("other.x", b"%06d" % n)
        await pub.flush()

        async def drain(sub, count):
            return [await sub.next_msg(timeout=10) for _ in range(count)]

        assert seqs(await drain(plain, TOTAL)) == list(range(TOTAL))
        assert seqs(await drain(wild, TOTAL)) == list(range(TOTAL))
        assert seqs(await drain(limited, 100)) == list(range(100))
        for sub in both:
            assert seqs(await drain(sub, TOTAL)) == list(range(TOTAL))
        shares = []
        for nc, sub in members:
            await nc.flush()
            got = []
            while True:
                try:
                    got.append(await sub.next_msg(timeout=0.5))
                except nats.errors.TimeoutError:
                    break
            shares.append(seqs(got))
        for share in shares:
            assert share == sorted(share) and len(share) > TOTAL // 10, len(share)
        assert sorted(sum(shares, [])) == list(range(TOTAL))  # each message once
        try:
            await limited.next_msg(timeout=0.3)
            raise AssertionError("auto-unsubscribed after 100, got more")
        except nats.errors.TimeoutError:
            pass
        for nc in [pub] + conns + [nc for nc, _ in members]:
            await nc.close()

    run(main())
