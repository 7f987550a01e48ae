"""The dated migration phases: what is in force at a moment (``policy.phases``) and the
outbound port 25 block for customer networks (``policy.op25b``), with a fixed or injected
clock and no server.  Each boundary is checked on both sides: a phase starts at its moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from twisted.internet import task

from mailstack import clock as clocks, config as configs, replies
from mailstack.policy import op25b, phases
from mailstack.policy.decision import DUNNO, Verdict
from mailstack.policy.request import SMTPRequest

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
SUNSET, CUTOVER = T0 + timedelta(days=30), T0 + timedelta(days=60)
DOMAINS_FROM, ALL_FROM = T0 + timedelta(days=10), T0 + timedelta(days=40)
SECOND = timedelta(seconds=1)
HELP = "https://help.example.test/smtp-auth"


def settings(**sections):
    raw = {"pop_before_smtp": {"enabled": True, "window": 600, "sunset": SUNSET},
           "auth": {"tls_cutover": CUTOVER}, "submission": {"help_url": HELP},
           "migration": {"customer_networks": ["192.0.2.0/24", "2001:db8::/32"],
                         "op25b_domains": ["Mobile.example"], "op25b_domains_from": DOMAINS_FROM,
                         "op25b_all_from": ALL_FROM}}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return configs.from_dict(raw)


# --- policy.phases.in_force: what "mailstack policy show --at" reports --------------------

@pytest.mark.parametrize("at, pop_before_smtp, tls_required", [
    (T0, "open", False),
    (SUNSET - SECOND, "open", False),
    (SUNSET, "ended", False),
    (CUTOVER - SECOND, "ended", False),
    (CUTOVER, "ended", True),
])
def test_the_phase_in_force_changes_exactly_at_each_date(at, pop_before_smtp, tls_required):
    found = phases.in_force(settings(), at)
    assert (found.pop_before_smtp, found.tls_required) == (pop_before_smtp, tls_required)
    assert (found.at, found.sunset, found.tls_cutover, found.window_seconds) == (
        at, SUNSET, CUTOVER, 600)


def test_without_dates_nothing_ends_and_plaintext_stays_allowed():
    config = configs.from_dict({"pop_before_smtp": {"enabled": True}})
    found = phases.in_force(config, T0 + timedelta(days=10_000))
    assert (found.pop_before_smtp, found.tls_required) == ("open", False)
    rows = {r["setting"]: r["in force"] for r in found.rows()}
    assert rows["pop-before-smtp sunset"] == rows["tls cutover"] == "not set"


def test_a_disabled_window_is_off_whatever_the_date():
    config = settings(pop_before_smtp={"enabled": False})
    assert phases.in_force(config, T0).pop_before_smtp == "off"
    assert phases.in_force(config, SUNSET + SECOND).pop_before_smtp == "off"


def test_the_rows_say_what_is_in_force():
    rows = {r["setting"]: r["in force"]
            for r in phases.in_force(settings(submission={"smtp_auth": False}), CUTOVER).rows()}
    assert rows["moment"] == CUTOVER.isoformat()
    assert rows["smtp auth"] == "off"
    assert rows["pop-before-smtp"].startswith("ended: legacy clients get 530 5.7.0")
    assert rows["pop-before-smtp sunset"] == SUNSET.isoformat()
    assert rows["password without tls"] == "refused on every protocol"
    assert rows["tls cutover"] == CUTOVER.isoformat()
    open_rows = {r["setting"]: r["in force"] for r in phases.in_force(settings(), T0).rows()}
    assert open_rows["smtp auth"] == "on"
    assert open_rows["pop-before-smtp"] == "on: 600 s window after a login"
    assert open_rows["password without tls"] == "accepted and recorded"


# --- policy.op25b: outbound port 25 blocking for the ISP's customer networks -------------

@pytest.mark.parametrize("at, phase", [
    (T0, "none"),
    (DOMAINS_FROM - SECOND, "none"),
    (DOMAINS_FROM, "domains"),
    (ALL_FROM - SECOND, "domains"),
    (ALL_FROM, "all"),
])
def test_op25b_phase_by_date(at, phase):
    assert op25b.Phases(settings().migration).phase(at) == phase


def test_the_domain_phase_needs_domains_and_the_all_phase_needs_only_its_date():
    no_domains = settings(migration={"op25b_domains": []}).migration
    assert op25b.Phases(no_domains).phase(DOMAINS_FROM) == "none"
    assert op25b.Phases(no_domains).phase(ALL_FROM) == "all"
    undated = configs.from_dict({"migration": {"customer_networks": ["192.0.2.0/24"],
                                               "op25b_domains": ["mobile.example"]}}).migration
    assert op25b.Phases(undated).phase(T0 + timedelta(days=10_000)) == "none"


@pytest.mark.parametrize("ip, customer", [
    ("192.0.2.1", True), ("192.0.2.255", True), ("192.0.3.1", False),
    ("2001:db8::25", True), ("2001:db9::25", False), ("127.0.0.1", False),
])
def test_customer_networks(ip, customer):
    assert op25b.Phases(settings().migration).is_customer(ip) is customer


@pytest.mark.parametrize("at, ip, domain, blocked", [
    (T0, "192.0.2.9", "mobile.example", False),                 # before any phase
    (DOMAINS_FROM, "192.0.2.9", "mobile.example", True),        # listed domain (any case)
    (DOMAINS_FROM, "192.0.2.9", "MOBILE.EXAMPLE", True),
    (DOMAINS_FROM, "192.0.2.9", "other.example", False),        # not listed: still allowed
    (DOMAINS_FROM, "198.51.100.9", "mobile.example", False),    # not a customer: never
    (ALL_FROM, "192.0.2.9", "other.example", True),             # the final phase: everything
    (ALL_FROM, "198.51.100.9", "other.example", False),
])
def test_op25b_blocks(at, ip, domain, blocked):
    assert op25b.Phases(settings().migration).blocks(ip, domain, at) is blocked


def rcpt(ip, recipient, hosted=False):
    return SMTPRequest(stage="rcpt", session="s1", client_ip=ip, port="smtp", recipient=recipient,
                       route=SimpleNamespace(hosted=hosted))


def test_the_check_refuses_with_the_help_url_and_leaves_our_own_domains_alone():
    clock = task.Clock()
    clock.advance(clocks.to_seconds(ALL_FROM))
    check = op25b.OutboundPort25Blocked(settings().migration, clock, HELP)
    refused = check.check(rcpt("192.0.2.9", "x@remote.example"))
    assert refused.verdict is Verdict.REJECT
    assert refused.reply == replies.OP25B.format(url=HELP) and HELP in refused.reply.text
    assert check.check(rcpt("192.0.2.9", "ann@example.test", hosted=True)) is DUNNO
    assert check.check(rcpt("198.51.100.9", "x@remote.example")) is DUNNO
    assert check.check(SMTPRequest(stage="rcpt", session="s1", client_ip="192.0.2.9",
                                   port="smtp", recipient="x@remote.example")) is DUNNO


def test_the_check_follows_the_injected_clock():
    clock = task.Clock()
    clock.advance(clocks.to_seconds(DOMAINS_FROM - SECOND))
    check = op25b.OutboundPort25Blocked(settings().migration, clock, HELP)
    assert check.check(rcpt("192.0.2.9", "x@mobile.example")) is DUNNO
    clock.advance(1)
    assert check.check(rcpt("192.0.2.9", "x@mobile.example")).verdict is Verdict.REJECT
