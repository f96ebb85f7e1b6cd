"""An example third-party pluggy-nats plugin: clients authenticate against an
Apache htpasswd file (``--htpasswd FILE`` or ``htpasswd: FILE`` in the config).

It uses only the public plugin API: ``nats_addoption`` for the flag,
``nats_configure`` to read the file and register an :class:`Htpasswd` object,
whose ``nats_authenticate`` answers ``Allow``/``Deny`` for the users in the
file and ``None`` ("not mine") for the others.
"""

import structlog

from pluggy_nats import hookimpl
from pluggy_nats.options import ConfigError

from .authenticator import Htpasswd
from .entries import HtpasswdError, load

__version__ = "0.1.0"
__all__ = ["Htpasswd", "HtpasswdError", "load"]

CONFIG_KEY = "htpasswd"


@hookimpl
def nats_addoption(parser):
    g = parser.add_argument_group("htpasswd")
    g.add_argument("--htpasswd", dest="htpasswd", metavar="FILE",
                   help="authenticate clients against this htpasswd file (bcrypt, {SHA})")


@hookimpl(trylast=True)
def nats_configure(config, server):
    # trylast: after the built-in auth plugin has set server.auth_required.
    path = getattr(config.args, "htpasswd", None) if config.args is not None else None
    for key in config.conf:
        if key.lower() == CONFIG_KEY:
            config.claim(key)
            path = path or config.conf[key]  # the flag wins, as nats-server flags do
    if not path:
        return
    if not isinstance(path, str):
        raise ConfigError([(None, "htpasswd: expected a file name, got %r" % (path,))])
    try:
        entries = load(path)
    except (OSError, HtpasswdError) as exc:
        raise ConfigError([(None, "htpasswd: %s" % exc)])
    structlog.get_logger("pluggy_nats.htpasswd").info("htpasswd_loaded", path=path,
                                                       users=len(entries))
    server.auth_required = True
    server.pluginmanager.register(Htpasswd(entries), "htpasswd-authenticator")
