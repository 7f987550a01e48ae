"""MAIL FROM: the POP-before-SMTP window (when it opens, when it closes, after the sunset)
and the own-addresses rule.  This table is the unit form of the e2e migration matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstack import replies
from mailstack.policy import auth_window, sender_rules
from mailstack.policy.decision import Verdict
from mailstack.realm.credentials import AccountRef

from tests.support.policy_doubles import START, FakeStore, clock_at, fired, settings, smtp_request

CUSTOMER, NEIGHBOUR = "192.0.2.31", "192.0.2.32"
SUNSET = START + timedelta(days=30)


def window(store, clock, *, enabled=True, required=True, applies_to=None, protocols=("pop3",)):
    config = settings(pop_before_smtp={"enabled": enabled, "window": 600, "sunset": SUNSET,
                                       "protocols": list(protocols)})
    return auth_window.PopBeforeSMTP(store, clock, config.pop_before_smtp,
                                     "https://help.test", required=required,
                                     applies_to=applies_to)


# (days from now, seconds since the login, from which IP, login ok?, protocol) -> verdict
@pytest.mark.parametrize("days, age, ip, success, protocol, verdict, reply", [
    (0, 0, CUSTOMER, True, "pop3", Verdict.PERMIT, None),
    (0, 600, CUSTOMER, True, "pop3", Verdict.PERMIT, None),            # the window's last second
    (0, 601, CUSTOMER, True, "pop3", Verdict.REJECT, replies.AUTH_REQUIRED),   # closed
    (0, 0, NEIGHBOUR, True, "pop3", Verdict.REJECT, replies.AUTH_REQUIRED),    # per IP, not net
    (0, 0, CUSTOMER, False, "pop3", Verdict.REJECT, replies.AUTH_REQUIRED),    # failed login
    (0, 0, CUSTOMER, True, "imap", Verdict.REJECT, replies.AUTH_REQUIRED),     # not configured
    (31, 0, CUSTOMER, True, "pop3", Verdict.REJECT, replies.POP_BEFORE_SMTP_ENDED),  # sunset
])
def test_the_window(days, age, ip, success, protocol, verdict, reply):
    store, clock = FakeStore(), clock_at(START + timedelta(days=days))
    ann = store.add_account("ann@example.test", 1)
    now = START + timedelta(days=days)
    store.login(CUSTOMER, ann, now - timedelta(seconds=age), protocol=protocol, success=success)
    decision = fired(window(store, clock).check(smtp_request("mail", client_ip=ip)))
    assert decision.verdict is verdict
    if reply is None:
        assert decision.subject == auth_window.WindowLogin(ann, "pop3", True)
    else:
        assert decision.reply.status == reply.status and decision.reply.code == 530
        assert decision.reply.text.startswith(reply.text.split("{")[0])


def test_no_window_when_pop_before_smtp_is_off_and_none_needed_after_auth():
    store, clock = FakeStore(), clock_at()
    ann = store.add_account("ann@example.test", 1)
    store.login(CUSTOMER, ann, START)
    off = fired(window(store, clock, enabled=False).check(smtp_request(client_ip=CUSTOMER)))
    assert off.verdict is Verdict.REJECT and off.reply == replies.AUTH_REQUIRED
    authed = smtp_request(client_ip=NEIGHBOUR, authenticated_as=ann)
    assert fired(window(store, clock).check(authed)).verdict is Verdict.DUNNO


@pytest.mark.parametrize("ip, has_window, verdict", [
    (CUSTOMER, True, Verdict.PERMIT), (CUSTOMER, False, Verdict.DUNNO),
    ("203.0.113.9", True, Verdict.DUNNO),       # not a customer network: not asked
])
def test_an_optional_window_for_customer_networks_never_refuses(ip, has_window, verdict):
    store, clock = FakeStore(), clock_at()
    ann = store.add_account("ann@example.test", 1)
    if has_window:
        store.login(ip, ann, START)
    check = window(store, clock, required=False, applies_to=lambda a: a.startswith("192.0.2."))
    assert fired(check.check(smtp_request(client_ip=ip))).verdict is verdict


def test_the_sunset_is_a_moment_on_the_injected_clock():
    clock = clock_at(SUNSET - timedelta(seconds=1))
    check = window(FakeStore(), clock)
    assert not check.sunset_passed()
    clock.advance(1)
    assert check.sunset_passed()


@pytest.mark.parametrize("sender, sends_as, verdict", [
    ("ann@example.test", (), Verdict.DUNNO),
    ("ann.alias@example.test", ("ann.alias@example.test",), Verdict.DUNNO),
    ("boss@bank.test", (), Verdict.REJECT),
    ("", (), Verdict.DUNNO),                     # the null sender: bounces from mail programs
    ("boss@bank.test", "any", Verdict.DUNNO),
])
def test_an_authenticated_sender_uses_its_own_addresses(sender, sends_as, verdict):
    store = FakeStore()
    ann = store.add_account("ann@example.test", 1, sends_as=() if sends_as == "any" else sends_as)
    if sends_as == "any":
        store.send_as[1] = "any"
    decision = fired(sender_rules.OwnAddressesOnly(store).check(
        smtp_request("mail", sender=sender, authenticated_as=ann)))
    assert decision.verdict is verdict
    if verdict is Verdict.REJECT:
        assert decision.reply.code == 553


def test_own_address_and_the_rule_any_read_at_login_need_no_store_read():
    store = FakeStore()
    ann = store.add_account("ann@example.test", 1)
    check = sender_rules.OwnAddressesOnly(store)
    assert fired(check.check(smtp_request("mail", sender="ann@example.test",
                                          authenticated_as=ann))).verdict is Verdict.DUNNO
    anyone = AccountRef(ann.id, ann.address, sends_as_any=True)
    assert fired(check.check(smtp_request("mail", sender="boss@bank.test",
                                          authenticated_as=anyone))).verdict is Verdict.DUNNO
    assert store.calls == []


def test_an_unauthenticated_sender_is_not_asked_about():
    store = FakeStore()
    check = sender_rules.OwnAddressesOnly(store)
    assert fired(check.check(smtp_request("mail", sender="x@y.test"))).verdict is Verdict.DUNNO
    assert store.calls == []
