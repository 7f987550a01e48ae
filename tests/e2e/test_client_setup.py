"""Autoconfig and Autodiscover over HTTPS, fetched with curl and Python's HTTP client, and
checked against the published formats; the answers follow the TLS cutover."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.e2e
HTTPS = [{"name": "https", "protocol": "http", "port": 0, "tls": "implicit"}]
RESPONSE_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
OUTLOOK_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
POX_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


@pytest.fixture
def web(make_server):
    cutover = datetime.now(timezone.utc) + timedelta(days=30)
    server = make_server(listeners=HTTPS, auth={"tls_cutover": cutover},
                         client_setup={"hostname": "mail.example.test", "display_name": "Example Mail"})
    server.base = f"https://127.0.0.1:{server.port('https')}"
    return server


def curl(web, certs, path, *extra):
    done = subprocess.run(["curl", "-sS", "--cacert", str(certs.ca), "-w", "\n%{http_code}",
                           *extra, web.base + path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def servers(root):
    provider = root.find("emailProvider")
    return [(s.tag, s.get("type"), s.findtext("port"), s.findtext("socketType"),
             s.findtext("authentication"), s.findtext("username"), s.findtext("hostname"))
            for s in provider if s.tag in ("incomingServer", "outgoingServer")]


def test_thunderbird_autoconfig_before_and_after_the_cutover(web, certs):
    code, body = curl(web, certs, "/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    assert code == 200
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    assert root.find("emailProvider").get("id") == "example.test"
    assert root.findtext("emailProvider/domain") == "example.test"
    listed = servers(root)
    assert ("incomingServer", "imap", "993", "SSL", "password-cleartext", "%EMAILADDRESS%",
            "mail.example.test") in listed
    assert ("incomingServer", "pop3", "995", "SSL", "password-cleartext", "%EMAILADDRESS%",
            "mail.example.test") in listed
    assert {(t, p, s) for _, t, p, s, *_ in listed if t == "smtp"} == {("smtp", "465", "SSL"),
                                                                          ("smtp", "587", "STARTTLS")}
    assert ("incomingServer", "imap", "143", "STARTTLS") in [l[:4] for l in listed]
    web.advance(31 * 86400)
    code, body = curl(web, certs, "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    assert code == 200
    assert {(t, p, s) for _, t, p, s, *_ in servers(ET.fromstring(body))} == {
        ("imap", "993", "SSL"), ("pop3", "995", "SSL"), ("smtp", "465", "SSL")}


def test_python_fetches_autoconfig_from_the_well_known_path(web):
    url = web.base + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ann%40example.test"
    with urllib.request.urlopen(url, context=web.context, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "application/xml"
        root = ET.fromstring(response.read())
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    assert [s[1:4] for s in servers(root) if s[3] == "SSL"] == [
        ("imap", "993", "SSL"), ("pop3", "995", "SSL"), ("smtp", "465", "SSL")]


def test_the_sending_settings_follow_the_smtp_auth_flag(make_server, certs):
    """While only POP-before-SMTP is on, a client told to log in to SMTP could not send."""
    legacy = make_server(listeners=HTTPS, submission={"smtp_auth": False},
                         pop_before_smtp={"enabled": True, "window": 600,
                                          "sunset": datetime.now(timezone.utc) + timedelta(days=30)},
                         client_setup={"hostname": "mail.example.test"})
    legacy.base = f"https://127.0.0.1:{legacy.port('https')}"
    code, body = curl(legacy, certs, "/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    assert code == 200
    listed = servers(ET.fromstring(body))
    # A username on every server, even one that asks no password: Thunderbird for Android
    # (K-9) refuses the whole answer when an outgoing server lacks it (issue 15, item 8).
    assert {(t, a, u) for _, t, _, _, a, u, _ in listed if t == "smtp"} == {
        ("smtp", "smtp-after-pop", "%EMAILADDRESS%")}
    assert all(u == "%EMAILADDRESS%" for *_, u, _ in listed)
    assert {a for _, t, _, _, a, _, _ in listed if t != "smtp"} == {"password-cleartext"}
    request = urllib.request.Request(
        legacy.base + "/autodiscover/autodiscover.xml", method="POST",
        data=POX_REQUEST.format(address="ann@example.test").encode(), headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, context=legacy.context, timeout=10) as response:
        account = ET.fromstring(response.read()).find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    protocols = {p.findtext(OUTLOOK_NS + "Type"): p for p in account.findall(OUTLOOK_NS + "Protocol")}
    assert [protocols["SMTP"].findtext(OUTLOOK_NS + k) for k in ("AuthRequired", "SMTPLast")] == ["off", "on"]
    assert [protocols["IMAP"].findtext(OUTLOOK_NS + k) for k in ("AuthRequired", "SMTPLast")] == ["on", None]
    legacy.advance(31 * 86400)     # the sunset: POP-before-SMTP is over, nothing else is on
    listed = servers(ET.fromstring(curl(legacy, certs, "/mail/config-v1.1.xml?emailaddress=ann%40example.test")[1]))
    assert {(a, u) for _, t, _, _, a, u, _ in listed if t == "smtp"} == {
        ("client-IP-address", "%EMAILADDRESS%")}


def test_autoconfig_for_a_domain_we_do_not_host_is_404(web, certs):
    assert curl(web, certs, "/mail/config-v1.1.xml?emailaddress=ann%40elsewhere.test")[0] == 404


def test_outlook_pox_autodiscover_with_any_path_casing(web):
    request = urllib.request.Request(
        web.base + "/AutoDiscover/AutoDiscover.xml", method="POST",
        data=POX_REQUEST.format(address="Ann@Example.test").encode(),
        headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, context=web.context, timeout=10) as response:
        assert response.status == 200
        root = ET.fromstring(response.read())
    assert root.tag == RESPONSE_NS + "Autodiscover"
    account = root.find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    assert account.findtext(OUTLOOK_NS + "AccountType") == "email"
    assert account.findtext(OUTLOOK_NS + "Action") == "settings"
    protocols = {p.findtext(OUTLOOK_NS + "Type"): p for p in account.findall(OUTLOOK_NS + "Protocol")}
    assert set(protocols) == {"IMAP", "POP3", "SMTP"}
    smtp = protocols["SMTP"]
    assert [smtp.findtext(OUTLOOK_NS + k) for k in ("Server", "Port", "SSL", "SPA", "AuthRequired", "LoginName")] == [
        "mail.example.test", "465", "on", "off", "on", "ann@example.test"]
    assert protocols["IMAP"].findtext(OUTLOOK_NS + "Port") == "993"


@pytest.mark.parametrize("body, code", [
    (b"<not xml", "600"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "600"),
    (POX_REQUEST.format(address="ann@elsewhere.test").encode(), "500"),
])
def test_autodiscover_errors_are_the_documented_error_response(web, certs, body, code):
    status, text = curl(web, certs, "/autodiscover/autodiscover.xml", "-X", "POST",
                        "-H", "Content-Type: text/xml", "--data-binary", body.decode())
    assert status == 200
    error = ET.fromstring(text).find(f"{RESPONSE_NS}Response/{RESPONSE_NS}Error")
    assert error.findtext(RESPONSE_NS + "ErrorCode") == code and error.get("Time")
    assert "Traceback" not in text


def test_autodiscover_json_points_newer_outlook_to_the_xml_endpoint(web, certs):
    code, body = curl(web, certs, "/autodiscover/autodiscover.json?Email=ann%40example.test&Protocol=AutodiscoverV1")
    assert code == 200
    assert json.loads(body) == {"Protocol": "AutodiscoverV1",
                                "Url": "https://autodiscover.example.test/autodiscover/autodiscover.xml"}
    code, body = curl(web, certs, "/autodiscover/autodiscover.json/v1.0/ann@example.test?Protocol=AutodiscoverV1")
    assert code == 200 and json.loads(body)["Protocol"] == "AutodiscoverV1"
    code, body = curl(web, certs, "/autodiscover/autodiscover.json?Email=x%40elsewhere.test&Protocol=AutodiscoverV1")
    assert code == 404 and json.loads(body)["ErrorCode"] == "MailboxNotFound"


def test_dns_records_follow_the_cutover(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text('[server]\nhostname = "mx1.example.test"\n[auth]\ntls_cutover = 2027-06-01\n'
                      '[domains]\nhosted = ["example.test"]\n')

    def records(at):
        done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), "dns",
                               "records", "example.test", "--at", at],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        # The sender-authentication TXT records have tests of their own (test_dkim_signing.py,
        # unit/test_sender_records.py); here: what follows the cutover.
        return [line.split("\t") for line in done.stdout.splitlines()
                if not line.startswith(";") and line.split("\t")[3] != "TXT"]

    before = records("2027-05-01")
    assert all(r[1:3] == ["3600", "IN"] for r in before)
    host = "mx1.example.test."
    expected = {
        ("example.test.", "MX", f"10 {host}"),
        ("_submissions._tcp.example.test.", "SRV", f"0 1 465 {host}"),
        ("_imaps._tcp.example.test.", "SRV", f"0 1 993 {host}"),
        ("_pop3s._tcp.example.test.", "SRV", f"20 1 995 {host}"),
        ("autoconfig.example.test.", "CNAME", host),
        ("autodiscover.example.test.", "CNAME", host),
        ("_autodiscover._tcp.example.test.", "SRV", f"0 0 443 {host}"),
    }
    # Implicit TLS before STARTTLS (RFC 8314 §5.1), IMAP before POP3 (RFC 6186 §3.4).
    starttls = {("_submission._tcp.example.test.", "SRV", f"10 1 587 {host}"),
                ("_imap._tcp.example.test.", "SRV", f"10 1 143 {host}"),
                ("_pop3._tcp.example.test.", "SRV", f"30 1 110 {host}")}
    assert {(r[0], r[3], r[4]) for r in before} == expected | starttls
    after = records("2027-06-02")
    assert {(r[0], r[3], r[4]) for r in after} == expected | {
        (name, "SRV", "0 0 0 .") for name, _, _ in starttls}


def test_apple_devices_get_a_mail_profile_for_a_hosted_address(web, certs):
    """iPhone and Mac users install a configuration profile (issue 15, item 11)."""
    import plistlib

    done = subprocess.run(["curl", "-sS", "--cacert", str(certs.ca), "-D", "-", "-o", "-",
                           web.base + "/apple/mail.mobileconfig?emailaddress=ann%40example.test"],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert b"content-type: application/x-apple-aspen-config" in head.lower()
    profile = plistlib.loads(body)
    assert (profile["PayloadType"], profile["PayloadVersion"]) == ("Configuration", 1)
    (mail,) = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == mail["IncomingMailServerUsername"] == "ann@example.test"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"],
            mail["IncomingMailServerUseSSL"]) == ("mail.example.test", 993, True)
    assert (mail["OutgoingMailServerPortNumber"], mail["OutgoingMailServerUseSSL"],
            mail["OutgoingMailServerAuthentication"]) == (465, True, "EmailAuthPassword")
    assert mail["OutgoingPasswordSameAsIncomingPassword"] is True
    assert "Password" not in {k.removeprefix("Incoming").removeprefix("Outgoing") for k in mail}
    again = plistlib.loads(curl(web, certs, "/apple/mail.mobileconfig?emailaddress=ann%40example.test")[1].encode())
    assert again["PayloadUUID"] == profile["PayloadUUID"]      # reinstalling replaces it
    assert curl(web, certs, "/apple/mail.mobileconfig?emailaddress=ann%40elsewhere.test")[0] == 404
