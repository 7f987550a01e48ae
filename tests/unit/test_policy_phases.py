"""What ``mailstack policy show`` reports, and the settings it reads: port-25 relaying
(issue 14) is reported as the tables run it, and "customers" needs customer networks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstack import config
from mailstack.policy import client_settings, complaints, phases, tls_required
from mailstack.store import complaints as stored_complaints

from tests.support.policy_doubles import START, FakeStore, clock_at, fired, settings


def shown(at=START, **sections):
    return {r["setting"]: r["in force"] for r in phases.in_force(settings(**sections), at).rows()}


@pytest.mark.parametrize("mx_relay, says", [
    ("never", "nobody"),
    ("authenticated", "customers who log in with SMTP AUTH"),
    ("customers", "customers who log in with SMTP AUTH, and customer networks with a live "
                  "POP-before-SMTP window"),
])
def test_policy_show_says_who_port_25_relays_for(mx_relay, says):
    rows = shown(smtp={"mx_relay": mx_relay}, migration={"customer_networks": ["192.0.2.0/24"]})
    assert rows["port 25 relays for"] == says


def test_customers_without_customer_networks_is_refused_at_load():
    with pytest.raises(config.ConfigError, match=r'smtp.mx_relay: "customers" needs'):
        settings(smtp={"mx_relay": "customers"})
    with pytest.raises(config.ConfigError, match="smtp.mx_relay"):
        settings(smtp={"mx_relay": "open"})


@pytest.mark.parametrize("days, pbs, tls", [
    (0, "on: 600 s window after a login", "accepted and recorded"),
    (31, "ended: legacy clients get 530 5.7.0 with the help URL", "accepted and recorded"),
    (61, "ended: legacy clients get 530 5.7.0 with the help URL", "refused on every protocol"),
])
def test_the_phases_by_date(days, pbs, tls):
    rows = shown(START + timedelta(days=days),
                 pop_before_smtp={"enabled": True, "sunset": START + timedelta(days=30)},
                 auth={"tls_cutover": START + timedelta(days=60)})
    assert (rows["pop-before-smtp"], rows["password without tls"]) == (pbs, tls)
    assert shown()["pop-before-smtp"] == "off" and shown()["tls cutover"] == "not set"


def test_the_tls_gate_moves_with_the_clock():
    clock = clock_at(START - timedelta(seconds=1))
    gate = tls_required.TLSRequirement(clock, START)
    assert gate.allows_plaintext()
    clock.advance(1)
    assert not gate.allows_plaintext()
    assert tls_required.TLSRequirement(clock).allows_plaintext()


@pytest.mark.parametrize("days, smtp_auth, pbs, offered, sending", [
    (0, True, False, True, "password-cleartext"),
    (0, False, True, True, "smtp-after-pop"),
    (61, False, False, False, "client-IP-address"),
])
def test_client_settings_follow_the_phases(days, smtp_auth, pbs, offered, sending):
    config_ = settings(submission={"smtp_auth": smtp_auth},
                       pop_before_smtp={"enabled": pbs},
                       auth={"tls_cutover": START + timedelta(days=60)})
    services = client_settings.services(config_, START + timedelta(days=days))
    assert [s.offered for s in services if s.socket == "STARTTLS"] == [offered] * 3
    assert {s.auth for s in services if s.kind == "smtp"} == {sending}
    records = client_settings.zone_records(config_, "example.test", START)
    assert records[0] == "example.test.\t3600\tIN\tMX\t10 mail.example.test."


def test_complaints_block_at_the_threshold_once():
    store = FakeStore()
    antispam = settings(antispam={"complaint_threshold": 2}).antispam
    from mailstack.policy.blocklist import Blocker
    blocker = Blocker(antispam)
    results = []
    for n in range(3):
        complaint = stored_complaints.Complaint("203.0.113.9", START + timedelta(hours=n),
                                                "desk", "spam", "")
        results.append(fired(store.run(complaints.register, complaint, antispam, blocker)))
    assert [(count, block is not None) for count, block in results] == [
        (1, False), (2, True), (3, False)]


@pytest.mark.parametrize("received, trusted, ip", [
    (b"from a (b [203.0.113.9])\r\n\tby mx.test (mailstack) with ESMTP", (), "203.0.113.9"),
    (b"from a ([203.0.113.9])\r\n\tby mx.test (mailstack) with ESMTPSA", (), None),  # customer
    (b"from a (b [10.0.0.5])\r\n\tby mx.test (mailstack) with SMTP", ("10.0.0.0/8",), None),
    (b"from a (b [203.0.113.9])\r\n\tby other.test (mailstack) with ESMTP", (), None),
])
def test_the_originating_ip_of_a_report(received, trusted, ip):
    message = b"Received: " + received + b" id 1\r\n\r\nbody"
    assert complaints.originating_ip(message, "mx.test", trusted) == ip


def test_policy_show_tables_prints_what_each_port_runs():
    from mailstack.cli.policy import stage_tables
    rows = stage_tables(settings(smtp={"mx_relay": "authenticated"}), START)
    relay = {r["port"]: r["checks"] for r in rows if r["stage"] == "relay"}
    assert relay == {"25": "op25b → srs → hosted-domain → proven-sender → default REJECT",
                     "587/465": "hosted-domain → proven-sender → default REJECT"}
    assert len(rows) == 14


@pytest.mark.parametrize("spam, outbound", [
    ({}, False),
    ({"enabled": True}, False),
    ({"enabled": True, "submission": True}, True),
    ({"enabled": False, "submission": True}, False),
])
def test_submission_scans_its_content_only_when_both_switches_are_on(spam, outbound):
    from mailstack.cli.policy import stage_tables
    rows = stage_tables(settings(spam=spam), START)
    data = {r["port"]: r["checks"] for r in rows if r["stage"] == "data"}
    assert ("spam-outbound" in data["587/465"]) is outbound
    assert "spam-outbound" not in data["25"]
