"""The bench plugin: registers ``pluggy-nats bench``, the load generator
(:mod:`.command`, modelled on ``nats bench``; ``bench compare`` runs servers
side by side). A plugin, so the server package carries no load generator;
the command's modules are imported only when it runs."""

from pluggy_nats import hookimpl


def _main(argv):
    from .command import main

    return main(argv)


@hookimpl
def nats_add_commands(registry):
    registry.add("bench", _main, "the load generator (pluggy-nats bench --help)")
