"""The plugin pipeline seen from outside: a plugin loaded with --plugin adds a
flag, an INFO key, observes interest and publishes, and serves requests from an
internal client; --disable-plugin and env vars work; the README embedding runs."""

import json
import os
import subprocess
import sys
import textwrap

import nats

from pluggy_nats.testing.plugin import run

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.join(os.path.dirname(HERE), "plugins")


def test_client_plugin_hooks_fire(make_server, raw_client, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", PLUGIN_DIR)
    server = make_server("--plugin", "recorder_plugin", "--recorder-tag", "t1")
    assert raw_client(server).info["recorder_tag"] == "t1"

    async def main():
        nc = await nats.connect(server.url, allow_reconnect=False)
        sub = await nc.subscribe("watched.subject")
        await nc.publish("watched.subject", b"payload-1")
        await nc.publish("watched.subject", b"with-headers", headers={"A": "b"})
        await sub.next_msg(timeout=2)
        await sub.unsubscribe()
        reply = await nc.request("recorder.events", b"", timeout=2)
        await nc.close()
        return json.loads(reply.data)

    events = run(main())
    assert ["interest", "$G", "watched.subject", 1] in events
    assert ["interest", "$G", "watched.subject", -1] in events
    assert ["published", "watched.subject", "payload-1", False] in events
    assert ["published", "watched.subject", "with-headers", True] in events


def test_client_disable_plugin(make_server):
    server = make_server("-m", "-1", "--disable-plugin", "monitor")
    assert server.http_port is None
    assert "Starting http monitor" not in server.logs()
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "plugins", "--disable-plugin",
                          "monitor"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "monitor" in out.stdout and "(blocked)" in out.stdout


def test_client_options_from_environment(make_server, raw_client, monkeypatch):
    monkeypatch.setenv("PLUGGY_NATS_MAX_PAYLOAD", "2048")
    monkeypatch.setenv("PLUGGY_NATS_NAME", "from-env")
    server = make_server()
    info = raw_client(server).info
    assert info["max_payload"] == 2048
    assert info["server_name"] == "from-env"


def test_client_embedding_example_from_readme(tmp_path):
    """The README's embedding snippet, run as a program, serves a nats-py client."""
    script = tmp_path / "embed.py"
    script.write_text(textwrap.dedent("""
        import sys
        import gevent
        from pluggy_nats import Server
        from pluggy_nats.internal import InternalClient

        server = Server(host="127.0.0.1", port=0, autoload=False)
        server.start()
        svc = InternalClient(server, server.accounts.global_account, "echo")
        svc.subscribe("svc.echo", lambda sub, subject, reply, headers, payload:
                      reply and svc.publish(reply, payload))
        print(server.port, flush=True)
        gevent.sleep(20)
        server.shutdown()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = proc.stdout.readline()
        while line and not line.strip().isdigit():  # structlog's default goes to stdout
            line = proc.stdout.readline()
        port = int(line)

        async def main():
            nc = await nats.connect("nats://127.0.0.1:%d" % port, allow_reconnect=False)
            reply = await nc.request("svc.echo", b"hello", timeout=2)
            await nc.close()
            return reply.data

        assert run(main()) == b"hello"
    finally:
        proc.kill()
        proc.wait(5)


def test_client_plugin_flag_for_an_installed_plugin(tmp_path, monkeypatch):
    """``--plugin mod`` where mod is also installed (its entry point found):
    registered once, under the entry-point name, instead of failing."""
    (tmp_path / "twice_plugin.py").write_text(
        "from pluggy_nats import hookimpl\n\n"
        "@hookimpl\ndef nats_info(conn, info):\n    info['twice'] = True\n")
    dist = tmp_path / "twice_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: twice-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pluggy_nats]\ntwice = twice_plugin\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "pluggy_nats", "plugins", "--plugin",
                          "twice_plugin"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split()[0] for line in out.stdout.splitlines()]
    assert rows.count("twice") == 1 and "twice_plugin" not in rows, out.stdout
