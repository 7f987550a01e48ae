"""RCPT and DATA checks: relay and OP25B, the recipients-per-hour brake, the reflector,
unknown and full mailboxes, spam traps, directory harvest, and the quota after DATA."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstack import replies
from mailstack.policy import (
    blocklist, containment, harvest, op25b, quota, recipients, reflector, relay, spamtrap,
)
from mailstack.policy.decision import Verdict
from mailstack.policy.outcome import Accepted
from mailstack.realm.credentials import AccountRef
from mailstack.store import rejections

from tests.support.policy_doubles import START, FakeStore, clock_at, fired, settings, smtp_request

ANN = AccountRef(1, "ann@example.test")
IP = "192.0.2.7"


def rcpt(store, address, **facts):
    return smtp_request("rcpt", recipient=address, route=store.route(address), **facts)


@pytest.mark.parametrize("address, sender, hosted_says, proven_says", [
    ("bob@example.test", None, Verdict.PERMIT, Verdict.DUNNO),
    ("x@remote.test", None, Verdict.DUNNO, Verdict.DUNNO),
    ("x@remote.test", ANN, Verdict.DUNNO, Verdict.PERMIT),
])
def test_relay_checks_only_ever_permit(address, sender, hosted_says, proven_says):
    request = rcpt(FakeStore(), address, authenticated_as=sender)
    assert relay.HostedDomain().check(request).verdict is hosted_says
    assert relay.ProvenSender().check(request).verdict is proven_says
    denied = relay.denied(request)
    assert (denied.verdict, denied.check, denied.reply) == (
        Verdict.REJECT, "relay", replies.RELAY_DENIED.format(address=address))


PHASES = {"customer_networks": ["192.0.2.0/24"], "op25b_domains": ["mobile.test"],
          "op25b_domains_from": START + timedelta(days=10),
          "op25b_all_from": START + timedelta(days=20)}


@pytest.mark.parametrize("days, ip, address, verdict", [
    (0, IP, "x@mobile.test", Verdict.DUNNO),              # before the phases
    (11, IP, "x@mobile.test", Verdict.REJECT),            # domains phase
    (11, IP, "x@other.test", Verdict.DUNNO),
    (21, IP, "x@other.test", Verdict.REJECT),             # all
    (21, IP, "bob@example.test", Verdict.DUNNO),          # mail to us: never
    (21, "203.0.113.5", "x@other.test", Verdict.DUNNO),   # not a customer network
])
def test_op25b_phases(days, ip, address, verdict):
    migration = settings(migration=PHASES).migration
    check = op25b.OutboundPort25Blocked(migration, clock_at(START + timedelta(days=days)),
                                        "https://help.test")
    decision = check.check(rcpt(FakeStore(), address, client_ip=ip))
    assert decision.verdict is verdict
    if verdict is Verdict.REJECT:
        assert decision.reply == replies.OP25B.format(url="https://help.test")
    assert op25b.Phases(settings().migration).phase(START) == "none"


@pytest.mark.parametrize("sent, pending, verdict", [
    (0, 0, Verdict.DUNNO), (8, 1, Verdict.DUNNO), (9, 1, Verdict.DEFER), (10, 0, Verdict.DEFER),
])
def test_recipients_per_hour(sent, pending, verdict):
    store, clock = FakeStore(), clock_at()
    store.submissions.append((1, START - timedelta(minutes=30), sent))
    store.submissions.append((1, START - timedelta(hours=2), 100))     # outside the hour
    check = containment.RecipientsPerHour(store, clock, 10)
    request = rcpt(store, "x@remote.test", authenticated_as=ANN,
                   recipients=tuple(Accepted(f"r{i}@remote.test") for i in range(pending)))
    decision = fired(check.check(request))
    assert decision.verdict is verdict
    if verdict is Verdict.DEFER:
        assert decision.reply == replies.RATE_LIMITED
    assert fired(check.check(rcpt(store, "x@remote.test"))).verdict is Verdict.DUNNO


@pytest.mark.parametrize("address, sender, exists, verdict", [
    ("check@example.test", ANN, False, Verdict.PERMIT),
    ("check@example.test", None, False, Verdict.DUNNO),      # unauthenticated: unknown user
    ("check@example.test", ANN, True, Verdict.DUNNO),        # a real mailbox of that name
    ("check@remote.test", ANN, False, Verdict.DUNNO),
    ("bob@example.test", ANN, False, Verdict.DUNNO),
])
def test_the_reflector_answers_only_proven_senders(address, sender, exists, verdict):
    store = FakeStore()
    if exists:
        store.add_account(address, 5)
    check = reflector.Reflector("check")
    assert check.check(rcpt(store, address, authenticated_as=sender)).verdict is verdict
    assert reflector.Reflector("").is_reflector("check@example.test") is False


def test_the_reflector_report_says_what_to_change():
    arrival = reflector.Arrival("ann@example.test", "smtp", 25, None, "pop-before-smtp", False)
    fixes = reflector.Reflector.verdict(arrival)
    assert len(fixes) == 3
    text = reflector.Reflector("check").report(arrival, "mx.test", START).decode()
    assert "From: \"Mail settings check\" <check@example.test>" in text
    assert "Password:    sent WITHOUT encryption" in text
    ready = reflector.Arrival("ann@example.test", "submissions", 465, "TLSv1.3", "auth", True)
    assert reflector.Reflector.verdict(ready) == []
    assert "nothing to do" in reflector.Reflector("check").report(ready, "mx.test", START).decode()


@pytest.mark.parametrize("address, room, declared, verdict, reply", [
    ("bob@example.test", None, None, Verdict.PERMIT, None),
    ("nobody@example.test", None, None, Verdict.REJECT, replies.UNKNOWN_USER),
    ("bob@example.test", 0, None, Verdict.DEFER, replies.MAILBOX_FULL),
    ("bob@example.test", 1000, 1001, Verdict.DEFER, replies.MAILBOX_FULL),
    ("bob@example.test", 1000, 1000, Verdict.PERMIT, None),
    ("x@remote.test", None, None, Verdict.DUNNO, None),
])
def test_local_recipients(address, room, declared, verdict, reply):
    store = FakeStore()
    store.add_account("bob@example.test", 2, room=room)
    decision = recipients.LocalRecipientExists().check(rcpt(store, address, declared_size=declared))
    assert decision.verdict is verdict
    assert decision.reply == (reply.format(address=address) if reply else None)


def test_an_alias_is_a_recipient():
    store = FakeStore()
    store.aliases["team@example.test"] = (2, 3)
    decision = recipients.LocalRecipientExists().check(rcpt(store, "team@example.test"))
    assert decision.verdict is Verdict.PERMIT


def test_a_spam_trap_discards_and_blocks_the_client():
    store, clock = FakeStore(), clock_at()
    antispam = settings(antispam={"spam_traps": ["Trap@example.test"],
                                  "trap_block_duration": 7200}).antispam
    trap = spamtrap.SpamTrap(store, clock, antispam.spam_traps, blocklist.Blocker(antispam))
    assert fired(trap.check(rcpt(store, "bob@example.test", client_ip=IP))).verdict is Verdict.DUNNO
    decision = fired(trap.check(rcpt(store, "trap@example.test", client_ip=IP, sender="s@x.test")))
    assert (decision.verdict, decision.reason) == (Verdict.DISCARD, "spam trap hit: trap@example.test")
    (block,) = store.blocks
    assert (block.network, block.source, block.expires_at - block.created_at) == (
        f"{IP}/32", "trap", timedelta(hours=2))
    assert "MAIL FROM <s@x.test> RCPT TO <trap@example.test>" in block.evidence


def refusal(at, ip=IP, check="recipients"):
    return rejections.Rejection("REF", at, "S", "smtp", "rcpt", check, ip, None, None, None,
                                None, "550")


def test_directory_harvest_is_firewalled_at_the_threshold_once():
    store, clock = FakeStore(), clock_at()
    antispam = settings(antispam={"harvest_threshold": 3, "harvest_window": 600}).antispam
    watch = harvest.HarvestWatch(store, clock, antispam, blocklist.Blocker(antispam))
    store.rejections += [refusal(START - timedelta(seconds=700))] * 5     # too old
    store.rejections += [refusal(START), refusal(START, check="relay"), refusal(START, "192.0.2.8")]
    request = rcpt(store, "guess@example.test", client_ip=IP)
    assert fired(watch.after_unknown_user(request)) is None
    store.rejections += [refusal(START)] * 2
    block = fired(watch.after_unknown_user(request))
    assert (block.action, block.source) == ("firewall", "harvest")
    assert "3 RCPTs to unknown users in 600 s" in block.reason
    assert fired(watch.after_unknown_user(request)) is None       # already firewalled
    assert len(store.blocks) == 1


def accepted(address, room, **kw):
    return Accepted(address, (1,), room=room, **kw)


@pytest.mark.parametrize("rooms, size, verdict, without_room", [
    ([None, None], 5000, Verdict.DUNNO, []),
    ([1000, None], 5000, Verdict.DUNNO, [0]),         # some fit: bounce for the others
    ([1000, 4999], 5000, Verdict.REJECT, [0, 1]),     # none fits: 552 for the whole message
    ([5000], 5000, Verdict.DUNNO, []),
])
def test_the_quota_after_data(rooms, size, verdict, without_room):
    recipients_ = [accepted(f"r{i}@example.test", room) for i, room in enumerate(rooms)]
    recipients_.append(Accepted("trap@example.test", discard=True))   # keeps no copy
    decision = quota.FitsMailbox().check(smtp_request("data", recipients=tuple(recipients_),
                                                      size=size))
    assert decision.verdict is verdict
    if verdict is Verdict.REJECT:
        assert decision.reply == replies.MESSAGE_OVER_QUOTA
    assert quota.without_room(recipients_, size) == [recipients_[i] for i in without_room]
