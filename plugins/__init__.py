"""First-party plugins, installed as the import package ``pluggy_nats_plugins``.

Each is registered through the ``pluggy_nats`` entry-point group exactly like a
third-party plugin, so ``--disable-plugin NAME`` works on them too.
"""
