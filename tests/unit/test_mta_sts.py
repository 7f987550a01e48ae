"""MTA-STS text (RFC 8461 §3.1-3.2), MX pattern matching (§4.1), the certificate check of
an outbound session (§4.2, RFC 8460's result types) and the TLS-RPT report (RFC 8460 §3-5)."""

from __future__ import annotations

import email
import gzip
import json
import time
from datetime import datetime, timezone

import pytest
from cryptography import x509
from OpenSSL import crypto
from twisted.internet import task

from mailstack import config as configs, mta_sts
from mailstack.delivery import tls_report
from mailstack.delivery.tls_check import TrustAnchors
from mailstack.policy import sender_records
from mailstack.store import outbound_tls
from mailstack.store.outbound_tls import CachedPolicy, Counted, Session
from tests.support.test_ca import TestCA

POLICY = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
          "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n")


def test_the_rfc_example_policy_parses():
    policy = mta_sts.parse_policy(POLICY)
    assert policy == mta_sts.Policy("enforce", 604800,
                                    ("mail.example.com", "*.example.net", "backupmx.example.com"))


def test_lf_line_ends_blank_lines_extensions_and_repeated_fields():
    text = ("version: STSv1\nmode:testing\n\nmx: MX.Example.COM\nmax_age: 86400\n"
            "mode: enforce\nmax_age: 1\nx_ext: any thing at all\n")
    assert mta_sts.parse_policy(text) == mta_sts.Policy("testing", 86400, ("mx.example.com",))


def test_max_age_is_capped_at_a_year_and_mode_none_needs_no_mx():
    assert mta_sts.parse_policy("version: STSv1\nmode: none\nmax_age: 9999999999\n") \
        == mta_sts.Policy("none", 31557600, ())


@pytest.mark.parametrize("text", [
    "mode: enforce\nmx: a.example\nmax_age: 1\n",                          # no version
    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
    "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmax_age: 1\n",                         # enforce, no mx
    "version: STSv1\nmode: testing\nmx: a.example\nmax_age: -1\n",
    "version: STSv1\nmode: testing\nmx: a.example\n",                      # no max_age
    "version: STSv1\nmode: testing\nmx: a..example\nmax_age: 1\n",
    "version: STSv1\nmode: testing\nmx: *.*.example\nmax_age: 1\n",
    "version: STSv1\nmode: testing\nmx: mail.bücher.example\nmax_age: 1\n",  # U-label
    "version: STSv1\nmode: testing\nmx: localhost\nmax_age: 1\n",
    "<html>version: STSv1</html>\n",
])
def test_what_is_not_a_policy_is_refused(text):
    with pytest.raises(mta_sts.StsSyntaxError):
        mta_sts.parse_policy(text)


@pytest.mark.parametrize("pattern,host,matches", [
    ("mail.example.com", "mail.example.com", True),
    ("mail.example.com", "MAIL.example.com.", True),
    ("mail.example.com", "mail2.example.com", False),
    ("*.example.com", "mx1.example.com", True),          # one label on the left
    ("*.example.com", "example.com", False),             # not the domain itself
    ("*.example.com", "a.mx.example.com", False),        # not two labels
    ("*.example.com", ".example.com", False),
    ("*.example.com", "mx1.example.com.evil.test", False),
    ("*.mail.example.com", "mx.mail.example.com", True),
])
def test_mx_patterns_match_as_rfc_8461_4_1_says(pattern, host, matches):
    assert mta_sts.mx_matches(pattern, host) is matches


def test_the_sts_record():
    assert mta_sts.record_id("v=STSv1; id=20160831085700Z;") == "20160831085700Z"
    assert mta_sts.record_id("v=STSv1;id=abc ; ext=1") == "abc"
    assert mta_sts.record_id("v=spf1 -all") is None
    for broken in ("v=STSv1", "v=STSv1; id=", "v=STSv1; id=" + "a" * 33, "v=STSv1; id=a-b"):
        with pytest.raises(mta_sts.StsSyntaxError):
            mta_sts.record_id(broken)
    assert mta_sts.only_record_id([b"v=spf1 -all", b"v=STSv1; id=1"]) == "1"
    assert mta_sts.only_record_id([b"v=STSv1; id=1", b"v=STSv1; id=2"]) is None   # §3.1


def test_the_policy_we_serve_parses_and_names_our_mx_hosts():
    config = configs.from_dict({"server": {"hostname": "mx.isp.test"}, "dns_records": {
        "mta_sts_mode": "enforce", "mta_sts_max_age": 86400,
        "mta_sts_mx": ["mx1.isp.test", "*.mx.isp.test"]}})
    served = sender_records.mta_sts_policy(config)
    assert mta_sts.parse_policy(served) == mta_sts.Policy(
        "enforce", 86400, ("mx1.isp.test", "*.mx.isp.test"))
    default = configs.from_dict({"server": {"hostname": "mx.isp.test"}})
    assert mta_sts.parse_policy(sender_records.mta_sts_policy(default)).mx == ("mx.isp.test",)


def test_dns_records_point_out_an_mx_host_the_policy_does_not_cover():
    config = configs.from_dict({"server": {"hostname": "mx.isp.test"},
                                "dns_records": {"mta_sts_mx": ["*.isp.test"]}})
    covered = sender_records.records(config, "isp.test", "mx2.isp.test", (), datetime.now(timezone.utc))
    assert not [l for l in covered if l.startswith("; warning")]
    elsewhere = sender_records.records(config, "isp.test", "mx.other.test", (),
                                       datetime.now(timezone.utc))
    assert [l for l in elsewhere if "mx.other.test is not in the MTA-STS policy" in l]


# --- the certificate of an outbound session ------------------------------------------------

@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


def chain(issued):
    cert = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
    return [crypto.X509.from_cryptography(cert)]


def anchors(ca, at=None):
    clock = task.Clock()
    clock.advance(at or time.time())
    return TrustAnchors(str(ca.ca_file), clock)


def test_a_certificate_for_the_mx_host_from_a_trusted_ca_passes(ca):
    assert anchors(ca).verify(chain(ca.issue("good", "mx.remote.test")), "mx.remote.test") is None
    wildcard = chain(ca.issue("wild", "*.remote.test"))
    assert anchors(ca).verify(wildcard, "mx.remote.test") is None
    assert anchors(ca).verify(wildcard, "a.mx.remote.test") == "certificate-host-mismatch"


def test_each_failure_has_its_rfc_8460_result_type(ca, tmp_path):
    assert anchors(ca).verify(chain(ca.issue("wrong", "other.example")),
                              "mx.remote.test") == "certificate-host-mismatch"
    assert anchors(ca).verify(chain(ca.issue("old", "mx.remote.test", expired=True)),
                              "mx.remote.test") == "certificate-expired"
    stranger = TestCA(tmp_path / "other", "another CA")
    assert anchors(ca).verify(chain(stranger.issue("s", "mx.remote.test")),
                              "mx.remote.test") == "certificate-not-trusted"
    assert anchors(ca).verify([], "mx.remote.test") == "validation-failure"


def test_validity_is_judged_at_the_business_clock(ca):
    good = chain(ca.issue("short", "mx.remote.test", valid_days=10))
    assert anchors(ca, time.time() + 20 * 86400).verify(good, "mx.remote.test") == \
        "certificate-expired"


# --- TLS-RPT --------------------------------------------------------------------------------

def test_the_rua_is_the_mailto_addresses_of_the_one_tlsrpt_record():
    assert tls_report.rua_addresses([b"v=TLSRPTv1; rua=mailto:tls@Example.NET,https://r.example/x"]) \
        == ["tls@example.net"]
    assert tls_report.rua_addresses([b"v=TLSRPTv1;rua=mailto:a%40b@example.net"]) == []
    assert tls_report.rua_addresses([b"v=TLSRPTv1; rua=mailto:a@x.test",
                                     b"v=TLSRPTv1; rua=mailto:b@x.test"]) == []
    assert tls_report.rua_addresses([b"v=spf1 -all"]) == []


def test_the_report_counts_sessions_per_policy_and_travels_gzipped():
    policy = CachedPolicy("remote.test", "abc", "testing", ("mx.remote.test",), 86400,
                          "version: STSv1\r\nmode: testing\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n",
                          datetime.now(timezone.utc), datetime.now(timezone.utc))
    counted = [Counted("sts", "abc", "", "", "", 3),
               Counted("sts", "abc", "certificate-host-mismatch", "mx.remote.test", "127.0.0.1", 2),
               Counted("sts", "", "sts-policy-fetch-error", "", "", 1)]
    report = tls_report.report_json("remote.test", "2026-12-02", counted, policy,
                                    organization="mx.isp.test", contact="postmaster@mx.isp.test",
                                    report_id="r1")
    assert report["date-range"] == {"start-datetime": "2026-12-02T00:00:00Z",
                                    "end-datetime": "2026-12-02T23:59:59Z"}
    judged, fetch = report["policies"]
    assert judged["policy"]["policy-string"] == ["version: STSv1", "mode: testing",
                                                 "mx: mx.remote.test", "max_age: 86400"]
    assert judged["summary"] == {"total-successful-session-count": 3,
                                 "total-failure-session-count": 2}
    assert judged["failure-details"] == [{"result-type": "certificate-host-mismatch",
                                          "failed-session-count": 2,
                                          "receiving-mx-hostname": "mx.remote.test",
                                          "receiving-ip": "127.0.0.1"}]
    assert "policy-string" not in fetch["policy"]
    assert fetch["failure-details"][0]["result-type"] == "sts-policy-fetch-error"
    raw = tls_report.report_message("mx.isp.test", "remote.test", "2026-12-02", report,
                                    ["tls@remote.test"], datetime.now(timezone.utc))
    message = email.message_from_bytes(raw)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    assert message["TLS-Report-Domain"] == "remote.test"
    assert message["TLS-Report-Submitter"] == "mx.isp.test"
    assert message["From"] == "TLS reports <postmaster@mx.isp.test>"
    part = [p for p in message.walk() if p.get_content_type() == "application/tlsrpt+gzip"][0]
    assert part.get_filename().startswith("mx.isp.test!remote.test!")
    assert part.get_filename().endswith(".json.gz")
    assert json.loads(gzip.decompress(part.get_payload(decode=True))) == report
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_sessions_add_up_per_day_and_a_policy_is_replaced_whole(db):
    mismatch = Session("remote.test", "sts", "abc", "certificate-host-mismatch", "mx.remote.test",
                       "192.0.2.1")
    ok = Session("remote.test", "sts", "abc")
    db.run_sync(outbound_tls.count, "2026-12-02", [ok, ok, mismatch])
    db.run_sync(outbound_tls.count, "2026-12-02", [ok, mismatch])
    db.run_sync(outbound_tls.count, "2026-12-03", [ok])
    assert db.read_sync(outbound_tls.counted, "remote.test", "2026-12-02") == [
        Counted("sts", "abc", "", "", "", 3),
        Counted("sts", "abc", "certificate-host-mismatch", "mx.remote.test", "192.0.2.1", 2)]
    assert db.read_sync(outbound_tls.days_before, "2026-12-03") == [("remote.test", "2026-12-02")]
    db.run_sync(outbound_tls.forget, "remote.test", "2026-12-02")
    assert db.read_sync(outbound_tls.days_before, "2026-12-04") == [("remote.test", "2026-12-03")]
    at = datetime(2026, 12, 2, tzinfo=timezone.utc)
    for policy_id in ("one", "two"):
        db.run_sync(outbound_tls.save_policy, CachedPolicy(
            "remote.test", policy_id, "enforce", ("mx.remote.test", "*.remote.test"), 60,
            "text", at, at))
    cached = db.read_sync(outbound_tls.cached_policy, "remote.test")
    assert (cached.policy_id, cached.mx, cached.expires_at) == (
        "two", ("mx.remote.test", "*.remote.test"), at)
