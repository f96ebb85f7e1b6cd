"""A test plugin loaded with ``pluggy-nats serve --plugin recorder_plugin``.

It records interest changes and (through the opt-in data hook) publishes, and
answers requests on ``recorder.events`` from an internal client with what it
recorded, so a test can see the hooks fire from the outside.
"""

import json

from pluggy_nats import hookimpl
from pluggy_nats.internal import InternalClient


class Recorder:
    def __init__(self):
        self.events = []
        self.client = None

    @hookimpl
    def nats_interest_changed(self, account, sub, delta, origin):
        self.events.append(["interest", account.name, sub.subject.decode(), delta])

    @hookimpl
    def nats_message_published(self, conn, subject, reply, headers, payload):
        self.events.append(["published", subject.decode(), payload.decode(errors="replace"),
                            headers is not None])

    @hookimpl
    def nats_client_closed(self, conn, reason):
        self.events.append(["closed", reason.value])

    @hookimpl
    def nats_server_ready(self, server):
        self.client = InternalClient(server, server.accounts.global_account, "recorder")
        self.client.subscribe("recorder.events", self.dump)

    def dump(self, sub, subject, reply, headers, payload):
        if reply:
            self.client.publish(reply, json.dumps(self.events).encode())


@hookimpl
def nats_addoption(parser):
    parser.add_argument_group("recorder").add_argument(
        "--recorder-tag", default="none", help="a flag added by a plugin")


@hookimpl
def nats_configure(config, server):
    server.recorder_tag = config.args.recorder_tag if config.args else "none"
    server.pluginmanager.register(Recorder(), "recorder")


@hookimpl
def nats_info(conn, info):
    info["recorder_tag"] = conn.server.recorder_tag
