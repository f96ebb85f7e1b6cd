"""pluggy-nats: a NATS server in Python, on gevent, extended with pluggy plugins.

Public API: :class:`Server`, :class:`Options`, ``hookimpl`` for plugins, and the
:class:`Allow` / :class:`Deny` answers of the authentication hook.
"""

__version__ = "0.1.0"

from .auth import Allow, Deny  # noqa: E402
from .plugins import hookimpl  # noqa: E402


def __getattr__(name):
    # Server and Options import gevent; keep `import pluggy_nats` (used by
    # plugins for `hookimpl`) cheap and free of side effects.
    if name == "Server":
        from .server import Server

        return Server
    if name == "Options":
        from .options import Options

        return Options
    raise AttributeError(name)


__all__ = ["Server", "Options", "hookimpl", "Allow", "Deny", "__version__"]
