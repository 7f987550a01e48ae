"""``mailstack dns records``' sender-authentication records: DKIM, SPF, DMARC, MTA-STS, TLS-RPT.

Why with dnspython's zone parser: an operator pastes the output into a zone; what a parser
cannot load is no record at all.  Each record is then read back as DNS would serve it and
compared with what the server does (the keys it signs with, its host names, its listeners).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dns.rdatatype
import dns.zone

from mailstack import config as configs
from mailstack.dkim import keys, rotation, schedule
from mailstack.policy import client_settings, sender_records
from mailstack.store import dkim_keys

AT = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
PAIRS = rotation.make_pairs()


def config(**sections):
    raw = {"server": {"hostname": "out.example.net"}, "client_setup": {"hostname": "mail.example.net"},
           "domains": {"hosted": ["example.test"]},
           "listeners": [{"protocol": "smtp", "port": 25, "address": "93.184.216.34"},
                         {"protocol": "submission", "port": 587, "address": "2a00:1450:4001::1"},
                         {"protocol": "imap", "port": 143, "address": "93.184.216.99"},
                         {"protocol": "smtp", "port": 2525, "address": "127.0.0.1"}]}
    raw.update(sections)
    return configs.from_dict(raw)


def zone(lines):
    return dns.zone.from_text("\n".join(lines) + "\n", origin="example.test.", relativize=False,
                              check_origin=False)


def txt(z, name) -> list[str]:
    """Each TXT record at ``name``, its strings joined as a verifier joins them."""
    found = z.get_rdataset(name, dns.rdatatype.TXT)
    return sorted(b"".join(r.strings).decode() for r in found) if found else []


def test_the_records_load_in_a_zone_parser_and_say_what_the_server_does(db):
    db.run_sync(rotation.keygen, "example.test", AT, PAIRS)
    listed = db.read_sync(dkim_keys.listing, "example.test")
    z = zone(client_settings.zone_records(config(), "example.test", AT, None, listed))
    for key in listed:
        name = f"{key.selector}._domainkey.example.test."
        assert txt(z, name) == [keys.txt_value(key.algorithm, key.public_key)]
        (record,) = z.get_rdataset(name, dns.rdatatype.TXT)
        assert all(len(s) <= 255 for s in record.strings)
    rsa_record = [r for r in z.get_rdataset(f"{listed[1].selector}._domainkey.example.test.",
                                            dns.rdatatype.TXT)][0]
    assert len(rsa_record.strings) >= 2                         # a 2048-bit key needs two
    # SPF: our MX, the host we greet with, the public addresses of the SMTP listeners only.
    assert txt(z, "example.test.") == [
        "v=spf1 mx a:out.example.net ip4:93.184.216.34 ip6:2a00:1450:4001::1 -all"]
    (mx,) = z.get_rdataset("example.test.", dns.rdatatype.MX)
    assert mx.exchange.to_text() == "mail.example.net."
    assert txt(z, "_dmarc.example.test.") == ["v=DMARC1; p=none"]
    policy = sender_records.mta_sts_policy(config())
    assert "mx: mail.example.net\r\n" in policy and "mode: testing\r\n" in policy
    assert txt(z, "_mta-sts.example.test.") == [f"v=STSv1; id={sender_records.mta_sts_id(policy)}"]
    assert txt(z, "_smtp._tls.example.test.") == ["v=TLSRPTv1; rua=mailto:postmaster@example.test"]


def test_dmarc_mta_sts_and_tls_rpt_follow_the_configuration():
    c = config(dns_records={"dmarc_policy": "reject", "dmarc_rua": "mailto:dmarc@{domain}",
                            "mta_sts_mode": "enforce", "tls_rpt_rua": "mailto:tls@example.net",
                            "spf_extra": ["include:relay.example.net"], "ttl": 300})
    z = zone(client_settings.zone_records(c, "example.test", AT))
    assert txt(z, "_dmarc.example.test.") == ["v=DMARC1; p=reject; rua=mailto:dmarc@example.test"]
    assert txt(z, "example.test.")[0].endswith(" include:relay.example.net -all")
    assert txt(z, "_smtp._tls.example.test.") == ["v=TLSRPTv1; rua=mailto:tls@example.net"]
    assert z.get_rdataset("_dmarc.example.test.", dns.rdatatype.TXT).ttl == 300
    testing = sender_records.mta_sts_id(sender_records.mta_sts_policy(config()))
    assert txt(z, "_mta-sts.example.test.") != [f"v=STSv1; id={testing}"]    # the policy changed
    off = config(dns_records={"mta_sts_mode": "none", "tls_rpt_rua": ""})
    z = zone(client_settings.zone_records(off, "example.test", AT))
    assert txt(z, "_mta-sts.example.test.") == txt(z, "_smtp._tls.example.test.") == []


def test_a_key_is_in_dns_from_its_publication_until_it_has_been_retired_long_enough(db):
    db.run_sync(rotation.keygen, "example.test", AT, PAIRS)
    later = AT + timedelta(days=1)
    db.run_sync(rotation.rotate, "example.test", later, timedelta(days=3), rotation.make_pairs())
    c = config()
    keep = timedelta(seconds=c.dkim.keep_retired)

    def selectors(at):
        listed = db.read_sync(dkim_keys.listing, "example.test")
        z = zone(client_settings.zone_records(c, "example.test", at, None, listed))
        return sorted(str(name).split(".")[0] for name, _ in z.iterate_rdatasets(dns.rdatatype.TXT)
                      if "_domainkey" in str(name))

    day = AT.strftime("%Y%m%d")
    new_day = later.strftime("%Y%m%d")
    assert selectors(AT) == [f"{day}e", f"{day}r"]
    both = sorted([f"{day}e", f"{day}r", f"{new_day}e", f"{new_day}r"])
    assert selectors(later) == both                               # the new ones, before they sign
    retired = later + timedelta(days=3)
    assert selectors(retired + keep - timedelta(seconds=1)) == both
    assert selectors(retired + keep) == [f"{new_day}e", f"{new_day}r"]
    assert schedule.state(db.read_sync(dkim_keys.listing, "example.test")[0], retired + keep,
                          keep) == "withdrawn"
