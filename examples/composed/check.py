"""Check the running example (README.md) with the same nats-py code at every
position: each subscribes to "demo.>" and answers requests on "who.<position>";
each publishes its name and asks every other position. Prints what each
position received and exits non-zero when a message or an answer is missing,
or when anything crossed between account T (the tenant leafs TA, TB) and the
default account.

    python check.py
"""

import asyncio
import sys

import nats

PORTS = {"A0": 4222, "A1": 4223, "A2": 4224, "B0": 4232, "B1": 4233, "B2": 4234,
         "LA1": 4252, "LA2": 4253, "LB1": 4262, "LB2": 4263, "TA": 4254, "TB": 4264}
TENANT = {"TA", "TB"}


def same_account(a, b):
    return (a in TENANT) == (b in TENANT)


async def main():
    ncs, got = {}, {name: set() for name in PORTS}
    for name, port in PORTS.items():
        nc = ncs[name] = await nats.connect("nats://127.0.0.1:%d" % port)

        async def on_msg(msg, name=name):
            got[name].add(msg.data.decode())

        async def answer(msg, name=name):
            await msg.respond(name.encode())

        await nc.subscribe("demo.>", cb=on_msg)
        await nc.subscribe("who." + name, cb=answer)
        await nc.flush()
    # publish until every position heard every position of its account
    # (interest takes a moment to spread after the subscriptions), at most 10 s
    want = {name: {other for other in PORTS if same_account(name, other)} for name in PORTS}
    for _ in range(50):
        for name, nc in ncs.items():
            await nc.publish("demo." + name, name.encode())
            await nc.flush()
        await asyncio.sleep(0.2)
        if all(want[name] <= got[name] for name in PORTS):
            break
    failures = 0
    for src, nc in ncs.items():
        for dst in PORTS:
            if dst == src:
                continue
            try:
                answer = (await nc.request("who." + dst, b"", timeout=1)).data.decode()
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                answer = None
            expected = dst if same_account(src, dst) else None
            if answer != expected:
                failures += 1
                print("request %s -> %s: got %r, want %r" % (src, dst, answer, expected))
    for name in PORTS:
        print("%-4s received from %s" % (name, " ".join(sorted(got[name]))))
        if got[name] != want[name]:
            failures += 1
            print("     want %s" % " ".join(sorted(want[name])))
    for nc in ncs.values():
        await nc.close()
    print("OK" if not failures else "%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
