"""Answers of the ``nats_authenticate`` decision hook (the auth plugin makes them)."""


class Allow:
    """Let the connection in, bound to ``account`` (an Account or its name; default
    the global account) with optional ``permissions`` (an object with
    ``can_publish(subject)`` and ``can_subscribe(subject, queue)``) and the
    ``user`` name shown in /connz. ``limits`` are this connection's own
    ``max_subscriptions``/``max_payload`` (a user JWT's ``subs``/``payload``):
    the smallest of them, the account's and the server's applies."""

    __slots__ = ("account", "permissions", "user", "limits")

    def __init__(self, account=None, permissions=None, user=None, limits=None):
        self.account = account
        self.permissions = permissions
        self.user = user
        self.limits = limits

    def __repr__(self):
        return "Allow(account=%r, user=%r)" % (self.account, self.user)


class Deny:
    """Refuse the connection. ``reason`` goes to the log, never to the client."""

    __slots__ = ("reason",)

    def __init__(self, reason="denied"):
        self.reason = reason

    def __repr__(self):
        return "Deny(%r)" % self.reason
