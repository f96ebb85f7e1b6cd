"""Gateway interest modes, sans-IO (GATEWAY.md section 5): optimistic sends
with A-/RS- marks, the interest-only bracket, the switch after 1,000 RS-."""

from pluggy_nats_plugins.gateway import interest as gi
from pluggy_nats_plugins.gateway import wire


def cmd_line(cmd, account):
    return wire.encode_info(wire.cmd_info("A", cmd, account))


# -- the sending side -----------------------------------------------------------


def test_optimistic_sends_until_told_otherwise():
    out = gi.OutboundInterest(interest_only=False)
    assert out.interest("APP", b"foo") == (True, ())
    out.rs_minus("APP", b"foo")
    assert out.interest("APP", b"foo") == (False, ())
    assert out.interest("APP", b"bar") == (True, ())
    out.rs_plus("APP", b"foo")
    assert out.interest("APP", b"foo") == (True, ())
    out.rs_minus("APP", b"a.b")
    out.rs_minus("APP", b"a.c")
    out.rs_plus("APP", b"a.*")  # a wildcard clears every subject it covers
    assert out.interest("APP", b"a.b")[0] and out.interest("APP", b"a.c")[0]
    out.a_minus("APP")
    assert out.interest("APP", b"bar") == (False, ())
    out.a_plus("APP")
    assert out.interest("APP", b"bar") == (True, ())


def test_interest_only_peer_means_no_interest_for_unknown_accounts():
    out = gi.OutboundInterest(interest_only=True)
    assert out.interest("APP", b"foo") == (False, ())
    # plain RS+ before the cmd 2 bracket is ignored (Go processGatewayRSub)
    out.rs_plus("APP", b"foo")
    assert out.interest("APP", b"foo") == (False, ())
    out.all_subs_start("APP")
    out.rs_plus("APP", b"foo")
    out.all_subs_complete("APP")
    assert out.interest("APP", b"foo")[0] is True
    assert out.interest("APP", b"bar")[0] is False
    assert out.mode("APP") == gi.INTEREST_ONLY
    out.rs_minus("APP", b"foo")
    assert out.interest("APP", b"foo")[0] is False


def test_transition_from_optimistic():
    out = gi.OutboundInterest(interest_only=False)
    out.rs_minus("APP", b"x")
    out.all_subs_start("APP")
    assert out.mode("APP") == gi.TRANSITIONING
    out.rs_plus("APP", b"y")
    out.all_subs_complete("APP")
    assert out.interest("APP", b"y")[0] and not out.interest("APP", b"z")[0]
    assert out.account_stats("APP") == (gi.INTEREST_ONLY, 0, 1, 0)


def test_queue_interest_is_always_explicit():
    out = gi.OutboundInterest(interest_only=True)
    out.rs_plus("APP", b"svc", b"workers", 1)
    plain, groups = out.interest("APP", b"svc")
    assert plain is False
    assert [g[0].queue for g in groups] == [b"workers"]
    assert out.total_qsubs == 1
    out.a_minus("APP")  # keeps queue interest
    assert out.interest("APP", b"svc")[1]
    out.rs_minus("APP", b"svc", b"workers")
    assert out.interest("APP", b"svc") == (False, ())
    assert out.total_qsubs == 0


# -- the receiving side -----------------------------------------------------------


def test_no_interest_replies_once_each():
    inn = gi.InboundInterest("A", lambda acc: [])
    assert inn.no_account_interest("APP") == [b"A- APP\r\n"]
    assert inn.no_account_interest("APP") == []
    assert inn.local_sub_changed("APP", b"foo", None, True) == [b"A+ APP\r\n"]
    assert inn.no_subject_interest("APP", b"bar", cmd_line) == [b"RS- APP bar\r\n"]
    assert inn.no_subject_interest("APP", b"bar", cmd_line) == []
    assert inn.local_sub_changed("APP", b"bar", None, True) == [b"RS+ APP bar\r\n"]
    assert inn.local_sub_changed("APP", b"other", None, True) == []  # optimistic: not needed


def test_switch_after_threshold_of_rs_minus():
    subs = [b"keep.1", b"keep.2"]
    inn = gi.InboundInterest("A", lambda acc: subs)
    for i in range(gi.MAX_RUNSUB_BEFORE_SWITCH):
        assert inn.no_subject_interest("APP", b"s.%d" % i, cmd_line) == [b"RS- APP s.%d\r\n" % i]
    lines = inn.no_subject_interest("APP", b"one.more", cmd_line)
    assert lines[0] == cmd_line(2, "APP") and lines[-1] == cmd_line(3, "APP")
    assert lines[1:-1] == [b"RS+ APP keep.1\r\n", b"RS+ APP keep.2\r\n"]
    assert inn.mode("APP") == gi.INTEREST_ONLY
    # from now on every first/last subscription is sent, no more RS- replies
    assert inn.no_subject_interest("APP", b"again", cmd_line) == []
    assert inn.local_sub_changed("APP", b"n", None, True) == [b"RS+ APP n\r\n"]
    assert inn.local_sub_changed("APP", b"n", None, False) == [b"RS- APP n\r\n"]


def test_switch_is_done_once_and_queue_lines_carry_weight_one():
    inn = gi.InboundInterest("A", lambda acc: [b"foo"])
    assert len(inn.switch("APP", cmd_line)) == 3
    assert inn.switch("APP", cmd_line) == []
    assert inn.local_sub_changed("APP", b"q", b"grp", True) == [b"RS+ APP q grp 1\r\n"]
    assert inn.local_sub_changed("APP", b"q", b"grp", False) == [b"RS- APP q grp\r\n"]


# -- forwarding plan and reply tables ---------------------------------------------


def test_plan_serves_queue_groups_once_in_rtt_order():
    from pluggy_nats_plugins.gateway.forward import plan

    near = gi.OutboundInterest(interest_only=True)
    far = gi.OutboundInterest(interest_only=True)
    for out in (near, far):
        out.rs_plus("APP", b"job", b"workers", 1)
    far.all_subs_start("APP")
    far.rs_plus("APP", b"job")
    far.all_subs_complete("APP")
    # nobody here served "workers": the nearest cluster with members gets it
    assert plan([("near", near), ("far", far)], "APP", b"job", ()) == [
        ("near", [b"workers"]), ("far", [])]
    # served locally: only the far cluster's plain subscriber gets a copy
    assert plan([("near", near), ("far", far)], "APP", b"job", {b"workers"}) == [("far", [])]
    assert plan([("near", near), ("far", far)], "APP", b"other", ()) == []


def test_recent_subs_and_reply_map_expire():
    from pluggy_nats_plugins.gateway.replies import RecentSubs, ReplyMap

    recent = RecentSubs()
    recent.added("APP", b"_INBOX.abc.*", now=10.0)
    assert recent.should_map("APP", b"_INBOX.abc.1", now=11.0)
    assert not recent.should_map("APP", b"_INBOX.other", now=11.0)
    assert not recent.should_map("OTHER", b"_INBOX.abc.1", now=11.0)
    assert not recent.should_map("APP", b"_INBOX.abc.1", now=12.5)  # older than 2 s
    replies = ReplyMap()
    replies.track("APP", b"_INBOX.x", b"_GR_.NUmM6c.LTinJZ._INBOX.x", now=5.0)
    assert replies.lookup("APP", b"_INBOX.x", now=6.0) == b"_GR_.NUmM6c.LTinJZ._INBOX.x"
    assert replies.lookup("APP", b"_INBOX.y", now=6.0) is None
    assert replies.lookup("APP", b"_INBOX.x", now=7.5) is None
    assert replies.count == 0


def test_reply_tables_stay_bounded():
    from pluggy_nats_plugins.gateway.replies import RecentSubs, ReplyMap

    recent = RecentSubs()
    for i in range(1000):
        recent.added("APP", b"s.%d" % i, now=float(i))  # one per second, never asked
    assert len(recent.expiry) <= 3
    replies = ReplyMap()
    for i in range(1000):
        replies.track("APP", b"_INBOX.%d" % i, b"_GR_.a.b._INBOX.%d" % i, now=float(i))
    assert replies.count <= 4  # never answered, still forgotten
