"""Monitoring plugin: the HTTP endpoints of nats-server's ``-m`` port.

Core endpoints (/varz, /connz, /subsz, /healthz) live in :mod:`.endpoints`;
other plugins add theirs through ``nats_monitor_endpoints``.
"""

from pluggy_nats import hookimpl

from .http import MonitorServer


@hookimpl
def nats_configure(config, server):
    if config.http_port:
        server.pluginmanager.register(MonitorServer(server), "monitor-http")


@hookimpl
def nats_monitor_endpoints(registry):
    from . import endpoints

    registry.add("/varz", endpoints.varz)
    registry.add("/connz", endpoints.connz)
    registry.add("/subsz", endpoints.subsz)
    registry.add("/subscriptionsz", endpoints.subsz)
    registry.add("/healthz", endpoints.healthz)
