"""``mailstack dns records`` publishes ManageSieve as ``_sieve._tcp`` (RFC 5804 §1.8) where a
``sieve`` listener runs, before and after the TLS cutover; autoconfig's list has no
ManageSieve (its formats have no element for it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dns.rdatatype
import dns.zone

from mailstack import config as configs
from mailstack.policy import client_settings

AT = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
IMAP = {"protocol": "imap", "port": 993, "tls": "implicit"}
SIEVE = {"protocol": "sieve", "port": 4190, "tls": "starttls"}


def config(*listeners):
    return configs.from_dict({"client_setup": {"hostname": "mail.example.net"},
                              "auth": {"tls_cutover": AT + timedelta(days=1)},
                              "listeners": list(listeners)})


def sieve_srv(config_, at):
    lines = client_settings.zone_records(config_, "example.test", at)
    z = dns.zone.from_text("\n".join(lines) + "\n", origin="example.test.", relativize=False,
                           check_origin=False)
    found = z.get_rdataset("_sieve._tcp.example.test.", dns.rdatatype.SRV)
    return [(r.priority, r.port, r.target.to_text()) for r in found] if found else []


def test_a_sieve_listener_is_published_and_stays_after_the_cutover():
    c = config(IMAP, SIEVE)
    assert sieve_srv(c, AT) == [(0, 4190, "mail.example.net.")]
    assert sieve_srv(c, AT + timedelta(days=2)) == [(0, 4190, "mail.example.net.")]
    assert all(s.kind != "sieve" for s in client_settings.services(c, AT))


def test_no_sieve_listener_no_record():
    assert sieve_srv(config(IMAP), AT) == []
