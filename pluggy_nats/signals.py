"""``pluggy-nats serve --signal CMD[=PID]``: send a running server a signal,
as ``nats-server --signal`` does (PROTOCOL.md 5.3). Without ``=PID`` the pid
comes from the ``-P``/``pidfile`` file."""

import os
import signal

COMMANDS = {
    "stop": signal.SIGKILL,
    "quit": signal.SIGINT,
    "term": signal.SIGTERM,
    "reload": signal.SIGHUP,
    "reopen": signal.SIGUSR1,
    "ldm": signal.SIGUSR2,
}


class SignalError(Exception):
    pass


def send_signal(spec, pidfile=None):
    """Send the signal named by ``spec`` ("ldm" or "ldm=1234"); returns the pid."""
    command, _, pid_text = spec.partition("=")
    sig = COMMANDS.get(command.lower())
    if sig is None:
        raise SignalError("unknown signal %r (one of %s)" % (command, ", ".join(COMMANDS)))
    if not pid_text:
        if not pidfile:
            raise SignalError("no pid: use --signal %s=PID or give the pid file with -P"
                              % command)
        try:
            with open(pidfile) as f:
                pid_text = f.read().strip()
        except OSError as exc:
            raise SignalError("cannot read pid file %s: %s" % (pidfile, exc))
    try:
        pid = int(pid_text)
        os.kill(pid, sig)
    except ValueError:
        raise SignalError("not a pid: %r" % pid_text)
    except ProcessLookupError:
        raise SignalError("no process %s" % pid_text)
    return pid
