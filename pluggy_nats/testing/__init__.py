"""Test support for pluggy-nats: the pytest plugin and process launchers."""
