"""A test plugin for the hooks of issue 10 (``--plugin hooks_plugin``): it adds
its own hookspec (``nats_addhooks``) and implements it, records accounts
created/updated/removed, closes with their kind, and which INFO route peers
sent (``nats_link_info_received``) with a field it adds (``nats_link_info``);
it answers ``hooks.events`` with what it recorded."""

import json

import pluggy

from pluggy_nats import hookimpl
from pluggy_nats.internal import InternalClient

hookspec = pluggy.HookspecMarker("pluggy_nats")
# Accounts are created from the Server's first line on, before any plugin's
# nats_configure could register a recorder: so this one is module state (one
# server per process in these tests).
CREATED = []


class Specs:
    @hookspec(firstresult=True)
    def hooks_plugin_answer(self, question):
        """A hook this plugin adds: the first answer to ``question``."""


class Recorder:
    def __init__(self, server):
        self.server = server
        self.events = []

    @hookimpl
    def hooks_plugin_answer(self, question):
        return "answer to " + question

    @hookimpl
    def nats_client_closed(self, conn, reason, kind):
        self.events.append(["closed", kind])

    @hookimpl
    def nats_link_info(self, link, info):
        info["hooks_plugin"] = self.server.server_name

    @hookimpl
    def nats_link_info_received(self, link, info):
        self.events.append(["peer_info", link.link_kind.name, info.get("hooks_plugin")])

    @hookimpl
    def nats_server_ready(self, server):
        client = InternalClient(server, server.accounts.global_account, "hooks")
        answer = server.hook.hooks_plugin_answer(question="ready")

        def reply(sub, subject, reply_to, headers, payload):
            client.publish(reply_to, json.dumps({"events": CREATED + self.events,
                                                "answer": answer}))

        client.subscribe("hooks.events", reply)


@hookimpl
def nats_account_created(account):
    CREATED.append(["account_created", account.name])


@hookimpl
def nats_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(Specs)


@hookimpl
def nats_configure(config, server):
    server.pluginmanager.register(Recorder(server), "hooks-recorder")
