"""Topology plugin: see and explain the whole system (issue 20).

* ``/topz``: this server's view (identity, cluster, every route, gateway and
  leaf link with its peer, RTT, messages and bytes each way, pending bytes);
  ``/topz?system=1`` the whole system, gathered over ``$SYS`` from every server
  (Go servers answer from their own VARZ/ROUTEZ/GATEWAYZ/LEAFZ/JSZ), marked
  ``partial`` when a server did not answer in time.

The conversion is :mod:`.view` (sans-IO), the scatter/gather :mod:`.gather`,
the in-server part :mod:`.service`.
"""

from pluggy_nats import hookimpl

from .service import TopologyService


@hookimpl
def nats_add_commands(registry):
    from .cli import explain_main, topology_main

    registry.add("topology", topology_main, "the whole system as a text tree, SVG or DOT")
    registry.add("explain", explain_main, "who would receive a subject, and why not")


@hookimpl
def nats_configure(config, server):
    server.pluginmanager.register(TopologyService(server), "topology-service")
