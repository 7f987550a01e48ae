"""The stage runner: order decides, a failing check defers, the default ends a chain."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from mailstack import replies
from mailstack.policy import mx, submission
from mailstack.policy.decision import DUNNO, Verdict, permit, reject
from mailstack.policy.stages import Chain

from tests.support.policy_doubles import (
    FakeResolver, FakeStore, clock_at, fired, settings, smtp_request,
)


class Says:
    def __init__(self, name, decision):
        self.name, self.decision, self.asked = name, decision, 0

    def check(self, request):
        self.asked += 1
        return defer.succeed(self.decision)


class SaysAtOnce(Says):
    """A check that reads memory: its decision, not a Deferred."""

    def check(self, request):
        self.asked += 1
        return self.decision


class FailsLater:
    name = "outage"

    def check(self, request):
        return defer.fail(RuntimeError("store down"))


class Raises:
    name = "broken"

    def check(self, request):
        raise RuntimeError("bug")


NO = reject("no", "no", replies.RELAY_DENIED.format(address="x"))


@pytest.mark.parametrize("decisions, winner", [
    ([DUNNO, DUNNO], None),
    ([DUNNO, permit("b"), NO], "b"),
    ([NO, permit("b")], "no"),
])
def test_the_first_decision_that_is_not_dunno_wins(decisions, winner):
    checks = [Says(f"c{i}", d) for i, d in enumerate(decisions)]
    decision = fired(Chain("t", checks).run(smtp_request()))
    assert decision.check == (winner or "")
    stopped = next((i for i, d in enumerate(decisions) if d.verdict is not Verdict.DUNNO),
                   len(decisions) - 1)
    assert [c.asked for c in checks] == [1] * (stopped + 1) + [0] * (len(checks) - stopped - 1)


@pytest.mark.parametrize("kinds", ["sdsd", "ddss", "ssss", "dddd", "sdds"])
@pytest.mark.parametrize("decisions, winner", [
    ([DUNNO, DUNNO, DUNNO, DUNNO], None),
    ([DUNNO, DUNNO, permit("c2"), NO], "c2"),
    ([DUNNO, NO, permit("c2"), NO], "no"),
])
def test_checks_answering_at_once_and_later_keep_the_order(kinds, decisions, winner):
    checks = [(SaysAtOnce if kind == "s" else Says)(f"c{i}", d)
              for i, (kind, d) in enumerate(zip(kinds, decisions))]
    later = defer.Deferred()
    checks.insert(1, Says("waits", DUNNO))
    checks[1].check = lambda request: later          # answered only when ``later`` fires
    answers = []
    Chain("t", checks).run(smtp_request()).addBoth(answers.append)
    assert answers == [] and [c.asked for c in checks[2:]] == [0, 0, 0]
    later.callback(DUNNO)
    [decision] = answers
    assert decision.check == (winner or "")
    asked = [c.asked for c in checks if c is not checks[1]]
    stopped = next((i for i, d in enumerate(decisions) if d.verdict is not Verdict.DUNNO), 3)
    assert asked == [1] * (stopped + 1) + [0] * (3 - stopped)


@pytest.mark.parametrize("broken", [Raises(), FailsLater()])
def test_a_check_that_raises_defers_and_never_rejects(broken):
    decision = fired(Chain("t", [SaysAtOnce("first", DUNNO), broken,
                                 Says("later", permit("later"))]).run(smtp_request()))
    assert (decision.verdict, decision.check, decision.reply) == (
        Verdict.DEFER, broken.name, replies.STORE_UNAVAILABLE)


def test_the_default_decides_when_every_check_says_dunno():
    request = smtp_request(recipient="x@remote.test")
    assert fired(Chain("t", [], default=NO).run(request)) is NO
    denied = fired(Chain("t", [Says("a", DUNNO)], default=lambda r: reject(
        "relay", "d", replies.RELAY_DENIED.format(address=r.recipient))).run(request))
    assert denied.reply.text == "<x@remote.test>: Relay access denied"


@pytest.mark.parametrize("mx_relay, relay_row", [
    ("never", "op25b → srs → hosted-domain → default REJECT"),
    ("authenticated", "op25b → srs → hosted-domain → proven-sender → default REJECT"),
    ("customers", "op25b → srs → hosted-domain → proven-sender → default REJECT"),
])
def test_the_mx_tables_read_as_the_docs_say(mx_relay, relay_row):
    config = settings(smtp={"mx_relay": mx_relay},
                      migration={"customer_networks": ["198.51.100.0/24"]},
                      antispam={"require_ptr": True})
    tables = mx.port_policy(FakeStore(), clock_at(), FakeResolver(), config).tables
    rows = {r["stage"]: r["checks"] for r in tables.rows()}
    assert rows["connect"] == "trusted-network → firewall"
    assert rows["client"] == "whitelist → blocklist → dnsbl → rdns"
    assert rows["relay"] == relay_row
    assert rows["mail"] == ("pop-before-smtp → sender-ownership" if mx_relay == "customers"
                            else "sender-ownership")
    assert rows["trap"] == "spamtrap"
    assert rows["rcpt"] == "recipients-per-hour → reflector → recipients"
    assert rows["data"] == "quota → hops → srs-bounces-only → dmarc"   # [authentication]: on


def test_the_submission_tables_have_no_antispam_and_a_default_reject_relay():
    tables = submission.port_policy(FakeStore(), clock_at(), FakeResolver(), settings()).tables
    rows = {r["stage"]: r["checks"] for r in tables.rows()}
    assert rows["client"] == "(none)" and rows["connect"] == "(none)" and rows["trap"] == "(none)"
    assert rows["mail"] == "pop-before-smtp → sender-ownership"
    assert rows["relay"] == "hosted-domain → proven-sender → default REJECT"
