"""Outbound port 25 blocking for customer networks, phase by phase, and the router rules."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.e2e
PW = "op25b-pw"
HELP = "https://help.example.test/op25b"
CUSTOMER, OUTSIDER = "127.0.0.70", "127.0.0.5"
DAY = 86400


@pytest.fixture
def mx(make_server):
    now = datetime.now(timezone.utc)
    server = make_server(
        listeners=[{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}],
        smtp={"mx_relay": "authenticated"}, submission={"help_url": HELP},
        migration={"customer_networks": ["127.0.0.64/26"], "op25b_domains": ["mobile.test"],
                   "op25b_domains_from": now + timedelta(days=10),
                   "op25b_all_from": now + timedelta(days=20), "mx_hosts": ["192.0.2.25"]})
    server.add_account("ann@example.test", PW)
    return server


def rcpt_on_25(server, ip, recipient, login=True):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(ip, 0)) as c:
        c.starttls(context=server.context)
        c.ehlo("customer-pc")
        if login:
            c.login("ann@example.test", PW)
        c.mail("ann@example.test")
        return c.rcpt(recipient)


def test_phases(mx):
    assert rcpt_on_25(mx, CUSTOMER, "x@mobile.test")[0] == 250           # before: AUTH relays
    mx.advance(11 * DAY)
    code, text = rcpt_on_25(mx, CUSTOMER, "x@mobile.test")
    assert code == 554 and text.startswith(b"5.7.1 Sending on port 25 is blocked") and HELP.encode() in text
    assert rcpt_on_25(mx, CUSTOMER, "y@other.test")[0] == 250            # other domains: not yet
    mx.advance(10 * DAY)
    assert rcpt_on_25(mx, CUSTOMER, "y@other.test")[0] == 554             # all
    assert rcpt_on_25(mx, CUSTOMER, "ann@example.test", login=False)[0] == 250   # mail to us: fine
    assert rcpt_on_25(mx, OUTSIDER, "y@other.test")[0] == 250             # not a customer network


def test_router_rules_follow_the_phase(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text('[migration]\ncustomer_networks = ["198.51.100.0/24"]\nmx_hosts = ["192.0.2.25"]\n'
                      'op25b_domains = ["mobile.test"]\nop25b_domains_from = 2027-01-01\n'
                      'op25b_all_from = 2027-04-01\n')

    def export(at):
        done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), "op25b",
                               "export", "--at", at], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "phase none" in export("2026-12-01") and "drop" not in export("2026-12-01")
    assert "phase domains" in export("2027-02-01") and "drop" not in export("2027-02-01")
    rules = export("2027-04-02")
    assert "elements = { 198.51.100.0/24 }" in rules and "elements = { 192.0.2.25 }" in rules
    assert "ip saddr @mailstack_customers ip daddr != @mailstack_mx tcp dport 25 drop" in rules
