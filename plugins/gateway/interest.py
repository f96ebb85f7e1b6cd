"""Gateway interest bookkeeping, sans-IO (GATEWAY.md section 5; Go
``gateway.go`` outsie/insie, gatewayInterest, processGatewayRSub/RUnsub,
gatewayHandleSubjectNoInterest, gatewaySwitchAccountToSendAllSubs).

Two sides, one per direction of a gateway:

* :class:`OutboundInterest` lives on the connection we dial and send messages
  on. It answers "may this message cross?" from what the peer told us: in
  optimistic mode everything crosses except accounts it sent ``A-`` for and
  subjects it sent ``RS-`` for; in interest-only mode only what its ``RS+``
  match. Queue interest is always explicit.
* :class:`InboundInterest` lives on a connection we accepted. It decides what
  we tell the peer: ``A-``/``RS-`` in reply to unwanted messages (optimistic),
  and after :data:`MAX_RUNSUB_BEFORE_SWITCH` of them (or at once, since 2.9)
  the switch of an account to interest-only, bracketed by INFO ``gateway_cmd``
  2 and 3.

Neither does I/O: methods return the protocol lines to send (bytes), and the
connection queues them.
"""

from pluggy_nats.subjects import subset_match
from pluggy_nats.sublist import EMPTY_RESULT, Sublist

OPTIMISTIC = "Optimistic"
TRANSITIONING = "Transitioning"
INTEREST_ONLY = "Interest-Only"

MAX_RUNSUB_BEFORE_SWITCH = 1000  # Go gatewayMaxRUnsubBeforeSwitch

_NO_ACCOUNT = object()  # the peer sent A- for this account
_PLAIN_MAX = 4096  # subjects remembered per account (OutboundInterest.plain)


def _has_wildcard(subject):
    return b"*" in subject or b">" in subject


class RemoteSub:
    """What the sublist holds for one RS+ of the peer."""

    __slots__ = ("subject", "queue", "weight")

    def __init__(self, subject, queue=None, weight=1):
        self.subject = subject
        self.queue = queue
        self.weight = weight


class _OutAccount:
    """Go ``outsie``: one account's interest on an outbound."""

    __slots__ = ("mode", "ni", "sublist", "subs", "qsubs")

    def __init__(self, mode=OPTIMISTIC):
        self.mode = mode
        self.ni = set() if mode == OPTIMISTIC else None  # subjects the peer sent RS- for
        self.sublist = Sublist()
        self.subs = {}  # (subject, queue) -> RemoteSub
        self.qsubs = 0


class OutboundInterest:
    """The peer's interest, as seen by the side that sends it messages.

    ``interest_only`` is the peer's INFO ``gateway_iom``: an account it never
    mentioned then means no interest, not "send and see".
    """

    def __init__(self, interest_only):
        self.interest_only = interest_only
        self.accounts = {}  # name -> _OutAccount or _NO_ACCOUNT
        self.total_qsubs = 0
        # account -> {subject: crosses for plain interest}: the forwarder's
        # answers, kept until the peer's interest or mode changes.
        self.plain = {}

    # -- the peer's verbs ----------------------------------------------------

    def rs_plus(self, account, subject, queue=None, weight=1):
        """``RS+``: returns the RemoteSub added, or None (nothing changed)."""
        self.plain = {}
        e = self.accounts.get(account)
        if e is None or e is _NO_ACCOUNT:
            if queue is None:
                return None  # optimistic: no RS- came first, so nothing to undo
            e = self.accounts[account] = _OutAccount(
                INTEREST_ONLY if self.interest_only else OPTIMISTIC)
        if queue is None and e.mode == OPTIMISTIC:
            if _has_wildcard(subject):
                e.ni = {s for s in e.ni if not subset_match(s, subject)}
            else:
                e.ni.discard(subject)
            return None
        key = (subject, queue)
        if key in e.subs:
            return None
        sub = RemoteSub(subject, queue, weight)
        try:
            e.sublist.insert(sub)
        except ValueError:
            return None
        e.subs[key] = sub
        if queue is not None:
            e.qsubs += 1
            self.total_qsubs += 1
        return sub

    def rs_minus(self, account, subject, queue=None):
        """``RS-``: returns the RemoteSub removed, or None."""
        self.plain = {}
        e = self.accounts.get(account)
        if e is _NO_ACCOUNT:
            e = None
        if e is None:
            if queue is not None:
                return None
            e = self.accounts[account] = _OutAccount(OPTIMISTIC)
        if queue is not None or e.mode != OPTIMISTIC:
            sub = e.subs.pop((subject, queue), None)
            if sub is None:
                return None
            e.sublist.remove(sub)
            if queue is not None:
                e.qsubs -= 1
                self.total_qsubs -= 1
            if not e.subs and e.mode == OPTIMISTIC and not e.ni:
                del self.accounts[account]
            return sub
        e.ni.add(subject)
        return None

    def a_minus(self, account):
        """``A-``: no interest at all in ``account`` (queue interest kept)."""
        self.plain = {}
        e = self.accounts.get(account)
        if isinstance(e, _OutAccount) and e.qsubs:
            e.ni = set()
            return
        self.accounts[account] = _NO_ACCOUNT

    def a_plus(self, account):
        """``A+``: undo an ``A-``."""
        self.plain = {}
        if self.accounts.get(account) is _NO_ACCOUNT:
            del self.accounts[account]

    def all_subs_start(self, account):
        """INFO ``gateway_cmd`` 2: RS+/RS- now go to the sublist."""
        self.plain = {}
        e = self.accounts.get(account)
        if not isinstance(e, _OutAccount):
            e = self.accounts[account] = _OutAccount(TRANSITIONING)
            e.ni = None
        e.mode = TRANSITIONING

    def all_subs_complete(self, account):
        """INFO ``gateway_cmd`` 3: send only what the sublist matches."""
        self.plain = {}
        e = self.accounts.get(account)
        if isinstance(e, _OutAccount):
            e.ni = None
            e.mode = INTEREST_ONLY

    # -- the send decision ---------------------------------------------------------

    def interest(self, account, subject):
        """``(plain, queue groups)`` for a message on ``subject``: whether it
        crosses for plain subscribers, and the sublist's queue groups (each a
        tuple of RemoteSub) the peer has members of."""
        e = self.accounts.get(account)
        if e is None:
            return not self.interest_only, ()
        if e is _NO_ACCOUNT:
            return False, ()
        plain = False
        if not self.interest_only and e.ni is not None and subject not in e.ni:
            plain = True
        if e.ni is None or e.qsubs:
            result = e.sublist.match(subject)
            if result is not EMPTY_RESULT:
                if result.psubs:
                    plain = True
                return plain, result.qsubs
        return plain, ()

    def plain_known(self, account):
        """``{subject: crosses}`` of ``account`` as far as known (filled by
        :meth:`wants_plain`), so a run of messages is decided by lookups."""
        known = self.plain.get(account)
        if known is None:
            known = self.plain[account] = {}
        return known

    def wants_plain(self, account, subject, known):
        """Whether ``subject`` crosses for plain interest, remembered in
        ``known`` (:meth:`plain_known`)."""
        if len(known) >= _PLAIN_MAX:
            known.clear()
        known[subject] = wanted = self.interest(account, subject)[0]
        return wanted

    def mode(self, account):
        e = self.accounts.get(account)
        if isinstance(e, _OutAccount):
            return e.mode
        return INTEREST_ONLY if self.interest_only else OPTIMISTIC

    def account_stats(self, account):
        """(mode, no-interest count, plain subs, queue subs) for /gatewayz."""
        e = self.accounts.get(account)
        if not isinstance(e, _OutAccount):
            return self.mode(account), 0, 0, 0
        return e.mode, len(e.ni or ()), len(e.subs) - e.qsubs, e.qsubs

    def subscriptions(self, account):
        e = self.accounts.get(account)
        return list(e.subs.values()) if isinstance(e, _OutAccount) else []


class _InAccount:
    """Go ``insie``: what we told the peer about one account."""

    __slots__ = ("mode", "ni")

    def __init__(self):
        self.mode = OPTIMISTIC
        self.ni = set()  # subjects we sent RS- for


class InboundInterest:
    """What we tell the peer that sends us messages.

    ``plain_subs(account)`` (given by the owner) lists the cluster-wide plain
    subjects of an account: the RS+ lines of a switch. Methods return the
    protocol lines to queue, in order.
    """

    def __init__(self, gateway_name, plain_subs):
        self.gateway_name = gateway_name
        self.plain_subs = plain_subs
        self.accounts = {}  # name -> _InAccount, or None after we sent A-

    def mode(self, account):
        e = self.accounts.get(account)
        return e.mode if e is not None else OPTIMISTIC

    def is_interest_only(self, account):
        e = self.accounts.get(account)
        return e is not None and e.mode == INTEREST_ONLY

    def switch(self, account, cmd_line):
        """Switch ``account`` to interest-only: INFO cmd 2, every plain sub as
        RS+, INFO cmd 3 (``cmd_line(cmd, account)`` builds the INFO lines).
        Nothing when already switched or switching."""
        e = self.accounts.get(account)
        if e is None:
            e = self.accounts[account] = _InAccount()
        if e.mode != OPTIMISTIC:
            return []
        e.ni = None
        e.mode = TRANSITIONING
        lines = [cmd_line(2, account)]
        acc = account.encode()
        lines += [b"RS+ %s %s\r\n" % (acc, subject) for subject in self.plain_subs(account)]
        lines.append(cmd_line(3, account))
        e.mode = INTEREST_ONLY
        return lines

    def no_account_interest(self, account):
        """A message for an account we have nothing for: ``A-`` once."""
        if account in self.accounts and self.accounts[account] is None:
            return []
        e = self.accounts.get(account)
        if e is not None and e.mode != OPTIMISTIC:
            return []  # the peer only sends what we asked for
        self.accounts[account] = None
        return [b"A- %s\r\n" % account.encode()]

    def no_subject_interest(self, account, subject, cmd_line):
        """A message on a subject nobody here wants: ``RS-`` once; past the
        threshold, the switch to interest-only instead."""
        e = self.accounts.get(account)
        if e is None:
            e = self.accounts[account] = _InAccount()
        if e.ni is None or subject in e.ni:
            return []
        if len(e.ni) >= MAX_RUNSUB_BEFORE_SWITCH:
            return self.switch(account, cmd_line)
        e.ni.add(subject)
        return [b"RS- %s %s\r\n" % (account.encode(), subject)]

    def local_sub_changed(self, account, subject, queue, added):
        """A cluster-wide first (``added``) or last plain/queue subscription:
        the lines this peer must get (Go maybeSendSubOrUnsubToGateways,
        sendQueueSubOrUnsubToGateways)."""
        acc = account.encode()
        if queue is not None:
            if added and account in self.accounts and self.accounts[account] is None:
                del self.accounts[account]  # a queue sub clears the A- marker
            if added:
                return [b"RS+ %s %s %s 1\r\n" % (acc, subject, queue)]
            return [b"RS- %s %s %s\r\n" % (acc, subject, queue)]
        if account in self.accounts and self.accounts[account] is None:
            if added:
                del self.accounts[account]
                return [b"A+ %s\r\n" % acc]
            return []
        e = self.accounts.get(account)
        if e is None:
            return []
        if e.ni is not None:
            if not added:
                return []
            if _has_wildcard(subject):
                covered = {s for s in e.ni if subset_match(s, subject)}
                if not covered:
                    return []
                e.ni -= covered
            elif subject in e.ni:
                e.ni.discard(subject)
            else:
                return []
            return [b"RS+ %s %s\r\n" % (acc, subject)]
        if e.mode == INTEREST_ONLY:
            return [(b"RS+ %s %s\r\n" if added else b"RS- %s %s\r\n") % (acc, subject)]
        return []
