"""Monitoring plugin: the HTTP endpoints of nats-server's ``-m`` port.

Core endpoints (/varz, /connz, /subsz, /accountz, /healthz) live in
:mod:`.endpoints` with nats-server's JSON field names and types; other plugins
add theirs (/routez, /gatewayz, /leafz, /jsz) through ``nats_monitor_endpoints``
and fill their /varz blocks through ``nats_varz``. ``/`` lists every endpoint.
"""

from pluggy_nats import hookimpl

from .http import MonitorServer


@hookimpl
def nats_configure(config, server):
    if config.http_port or config.https_port:
        server.pluginmanager.register(MonitorServer(server), "monitor-http")


@hookimpl
def nats_monitor_endpoints(registry):
    from . import endpoints

    registry.add("/varz", endpoints.varz)
    registry.add("/connz", endpoints.connz)
    registry.add("/subsz", endpoints.subsz)
    registry.add("/subscriptionsz", endpoints.subsz)
    registry.add("/accountz", endpoints.accountz)
    registry.add("/healthz", endpoints.healthz)
