"""Accounts: each has its own subject index, so accounts are isolated by construction.

The core knows two: the global account ``$G`` that clients join when nobody says
otherwise, and the system account ``$SYS`` for server services. The auth plugin
creates the rest (from the config file or account JWTs) and places users into them.

The package also holds what accounts share with each other: the export/import
model (:mod:`.exports`), stream imports (:mod:`.streams`), service imports with
their response routes (:mod:`.services`) and activation tokens
(:mod:`.activation`), so JetStream and leaf nodes use them without the auth plugin.
"""

from ..sublist import Sublist

GLOBAL_ACCOUNT = "$G"
SYSTEM_ACCOUNT = "$SYS"


class Account:
    __slots__ = ("name", "name_bytes", "sublist", "clients", "limits", "mappings", "__dict__")

    def __init__(self, name):
        self.name = name
        self.name_bytes = name.encode()  # as links put it on the wire
        self.sublist = Sublist()
        self.clients = set()  # client connections bound to this account
        # max_connections, max_subscriptions, max_payload: absent or negative = no
        # limit (the auth plugin fills them from config or account JWTs); the
        # core enforces them when a client binds to the account.
        self.limits = {}
        # pluggy_nats.mappings.AccountMappings, or None: publishes from clients
        # of an account without mappings never look at them.
        self.mappings = None

    @property
    def is_system(self):
        return self.name == SYSTEM_ACCOUNT

    def __repr__(self):
        return "<Account %s>" % self.name


class Accounts:
    """The server's accounts by name. ``hook`` (the server's plugin hooks, if
    given) hears of accounts created, updated and removed."""

    def __init__(self, system_account=SYSTEM_ACCOUNT, hook=None):
        self._by_name = {}
        self.hook = hook
        self.global_account = self.get_or_create(GLOBAL_ACCOUNT)
        self.system_account = self.get_or_create(system_account) if system_account else None

    def get(self, name):
        return self._by_name.get(name)

    def get_or_create(self, name):
        acc = self._by_name.get(name)
        if acc is None:
            acc = self._by_name[name] = Account(name)
            if self.hook is not None:
                self.hook.nats_account_created(account=acc)
        return acc

    def updated(self, account):
        """``account`` took on new claims, limits, imports or exports."""
        if self.hook is not None:
            self.hook.nats_account_updated(account=account)

    def removed(self, account):
        """``account`` was removed (its JWT deleted, its clients cut off). The
        object stays registered, as nats-server keeps an expired account: links
        and imports may still name it, and a new JWT revives it."""
        if self.hook is not None:
            self.hook.nats_account_removed(account=account)

    def __iter__(self):
        return iter(list(self._by_name.values()))

    def __len__(self):
        return len(self._by_name)
