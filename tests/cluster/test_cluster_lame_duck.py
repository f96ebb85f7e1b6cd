"""Lame duck mode: SIGUSR2 stops accepting, tells clients (INFO ldm), closes
them over lame_duck_duration and exits; nats-py clients carry on elsewhere."""

import asyncio
import signal

import nats

from pluggy_nats.testing.plugin import run

LDM_CONFIG = 'lame_duck_duration: "2s"\nlame_duck_grace_period: "500ms"\n'


def test_cluster_lame_duck_clients_move_to_another_server(launcher, tmp_path, raw_client):
    seed, other = _cluster_with_config(launcher, tmp_path)
    watcher = raw_client(seed)
    watcher.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    watcher.expect(rb"PONG\r\n")

    async def main():
        reconnected = asyncio.Event()

        async def on_reconnect():
            reconnected.set()

        sub_nc = await nats.connect(other.url, allow_reconnect=False)
        sub = await sub_nc.subscribe("ldm.events")
        await sub_nc.flush()
        pub = await nats.connect(servers=[seed.url, other.url], dont_randomize=True,
                                 reconnect_time_wait=0.1, max_reconnect_attempts=60,
                                 reconnected_cb=on_reconnect)
        for _ in range(50):
            await pub.publish("ldm.events", b"before")
            try:
                assert (await sub.next_msg(timeout=0.1)).data == b"before"
                break
            except nats.errors.TimeoutError:
                pass
        seed.signal(signal.SIGUSR2)
        # the watcher (protocol 1) is told first
        watcher.expect(rb'(INFO [^\r]*\r\n)*INFO \{[^\r]*"ldm":true[^\r]*\} \r\n', timeout=5)
        await asyncio.wait_for(reconnected.wait(), 15)
        assert pub.connected_url.port == other.port
        await pub.publish("ldm.events", b"after")
        await pub.flush()
        while (await sub.next_msg(timeout=3)).data != b"after":
            pass
        await pub.close()
        await sub_nc.close()

    run(main(), timeout=60)
    assert seed.proc.wait(timeout=15) == 0  # exits by itself after lame duck
    assert "Entering lame duck mode" in seed.logs()


def _cluster_with_config(launcher, tmp_path):
    from pluggy_nats.testing.launch import pluggy_nats_command
    from pluggy_nats.testing.raw import wait_for_mesh

    seed = launcher.start(pluggy_nats_command(), ["--cluster", "nats://127.0.0.1:-1",
                                                  "--cluster_name", "ldm"],
                          config=LDM_CONFIG, name="ldm0")
    other = launcher.start(pluggy_nats_command(), ["--cluster", "nats://127.0.0.1:-1",
                                                   "--cluster_name", "ldm",
                                                   "--routes", seed.route_url],
                           config=LDM_CONFIG, name="ldm1")
    wait_for_mesh([seed, other])
    return seed, other
