"""The HTTP listener's client-setup answers (protocols/http.py, protocols/apple_profile.py)
rendered with ``twisted.web`` requests against the inline SQLite store: what Thunderbird,
Outlook and Apple devices are told, and for whom.

Standards: Thunderbird autoconfig ``clientConfig`` 1.1; Outlook POX Autodiscover (request
schema 2006, response schema 2006a, error codes 500 and 600) and the AutodiscoverV1 JSON
redirect; Apple Configuration Profile Reference (``com.apple.mail.managed``); RFC 8314
(implicit TLS first).  docs/dns-and-autoconfig.md says what each client is given.
"""

from __future__ import annotations

import json
import plistlib
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from twisted.internet import defer

from mailstack.protocols import apple_profile, http
from mailstack.store import directory
from tests.support import sessions
from tests.support.policy_doubles import settings
from tests.support.web import WebRequest, render

RESPONSE_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
OUTLOOK_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
POX_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>{address}</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request></Autodiscover>"""
CUTOVER = sessions.START + timedelta(days=30)


@pytest.fixture
def stack(template, tmp_path):
    stack = sessions.Stack(template, tmp_path, tls_cutover=CUTOVER)
    yield stack
    stack.close()


def site(stack, **sections):
    sections.setdefault("auth", {"tls_cutover": CUTOVER})
    sections.setdefault("client_setup", {"hostname": "mail.example.test",
                                         "display_name": "Example Mail"})
    return http.ClientSetup(settings(**sections), stack.db, stack.clock, stack.portal)


def get(resource, stack, target, **kwargs):
    return render(resource, WebRequest(target, **kwargs), stack.settle)


def post(resource, stack, target, body: bytes):
    return render(resource, WebRequest(target, method=b"POST", body=body), stack.settle)


def servers(body: bytes):
    provider = ET.fromstring(body).find("emailProvider")
    return [(s.tag, s.get("type"), s.findtext("port"), s.findtext("socketType"),
             s.findtext("authentication"), s.findtext("username"), s.findtext("hostname"))
            for s in provider if s.tag in ("incomingServer", "outgoingServer")]


def pox_protocols(body: bytes) -> dict:
    account = ET.fromstring(body).find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    return {p.findtext(OUTLOOK_NS + "Type"): {c.tag[len(OUTLOOK_NS):]: c.text for c in p}
            for p in account.findall(OUTLOOK_NS + "Protocol")}


def pox_error(body: bytes) -> tuple[str, str]:
    error = ET.fromstring(body).find(f"{RESPONSE_NS}Response/{RESPONSE_NS}Error")
    assert error.get("Time") and error.get("Id")
    return error.findtext(RESPONSE_NS + "ErrorCode"), error.findtext(RESPONSE_NS + "Message")


# --- Thunderbird autoconfig -----------------------------------------------------------------

@pytest.mark.parametrize("path", http.AUTOCONFIG_PATHS)
def test_autoconfig_lists_implicit_tls_and_starttls_before_the_cutover(stack, path):
    answer = get(site(stack), stack, path + "?emailaddress=Ann%40Example.TEST")
    assert answer.code == 200 and answer.header("content-type").startswith("application/xml")
    root = ET.fromstring(answer.body)
    assert (root.tag, root.get("version")) == ("clientConfig", "1.1")
    assert root.find("emailProvider").get("id") == "example.test"
    assert root.findtext("emailProvider/displayName") == "Example Mail"
    listed = servers(answer.body)
    assert [s[1:4] for s in listed] == [
        ("imap", "993", "SSL"), ("pop3", "995", "SSL"), ("smtp", "465", "SSL"),
        ("imap", "143", "STARTTLS"), ("pop3", "110", "STARTTLS"), ("smtp", "587", "STARTTLS")]
    assert all(s[0] == ("outgoingServer" if s[1] == "smtp" else "incomingServer") for s in listed)
    assert {s[4:] for s in listed} == {("password-cleartext", "%EMAILADDRESS%",
                                        "mail.example.test")}


def test_autoconfig_after_the_cutover_offers_implicit_tls_only(stack):
    stack.clock.advance((CUTOVER - sessions.START).total_seconds() + 1)
    answer = get(site(stack), stack, "/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    assert [s[1:4] for s in servers(answer.body)] == [
        ("imap", "993", "SSL"), ("pop3", "995", "SSL"), ("smtp", "465", "SSL")]


def test_autoconfig_without_an_address_takes_the_domain_from_the_host_name(stack):
    """Thunderbird asks autoconfig.<domain>/mail/config-v1.1.xml, often with no address."""
    answer = get(site(stack), stack, "/mail/config-v1.1.xml", host=b"autoconfig.example.test")
    assert answer.code == 200
    assert ET.fromstring(answer.body).findtext("emailProvider/domain") == "example.test"
    assert get(site(stack), stack, "/mail/config-v1.1.xml",
               host=b"autoconfig.elsewhere.test").code == 404


def test_smtp_after_pop_still_names_a_username_for_k9(stack):
    """Only POP-before-SMTP on: the outgoing server says so, and still carries a username,
    without which Thunderbird for Android rejects the answer (issue 15, item 8)."""
    legacy = site(stack, submission={"smtp_auth": False},
                  pop_before_smtp={"enabled": True, "sunset": CUTOVER})
    listed = servers(get(legacy, stack, "/mail/config-v1.1.xml?emailaddress=ann%40example.test").body)
    assert {(s[1], s[4], s[5]) for s in listed if s[1] == "smtp"} == {
        ("smtp", "smtp-after-pop", "%EMAILADDRESS%")}


@pytest.mark.parametrize("address", ["ann%40elsewhere.test", "not-an-address", ""])
def test_autoconfig_for_a_domain_not_hosted_or_no_address_is_404(stack, address):
    answer = get(site(stack), stack, f"/mail/config-v1.1.xml?emailaddress={address}",
                 host=b"")
    assert (answer.code, answer.body) == (404, b"no such domain here\n")


def test_unknown_paths_are_404_for_get_and_post(stack):
    assert get(site(stack), stack, "/index.html").code == 404
    assert post(site(stack), stack, "/mail/config-v1.1.xml", b"").code == 404


# --- Outlook POX Autodiscover and the JSON redirect --------------------------------------

def test_pox_autodiscover_gives_one_block_per_protocol_the_preferred_one(stack):
    answer = post(site(stack), stack, "/AutoDiscover/AutoDiscover.xml",
                  POX_REQUEST.format(address="Ann@Example.test").encode())
    assert answer.code == 200 and answer.header("content-type").startswith("text/xml")
    root = ET.fromstring(answer.body)
    assert root.tag == RESPONSE_NS + "Autodiscover"
    protocols = pox_protocols(answer.body)
    assert set(protocols) == {"IMAP", "POP3", "SMTP"}
    smtp = protocols["SMTP"]
    assert (smtp["Server"], smtp["Port"], smtp["SSL"], smtp["Encryption"], smtp["SPA"],
            smtp["AuthRequired"], smtp["LoginName"]) == (
        "mail.example.test", "465", "on", "SSL", "off", "on", "ann@example.test")
    assert "SMTPLast" not in smtp
    assert (protocols["IMAP"]["Port"], protocols["POP3"]["Port"]) == ("993", "995")


def test_pox_for_pop_before_smtp_asks_outlook_to_read_mail_first(stack):
    legacy = site(stack, submission={"smtp_auth": False},
                  pop_before_smtp={"enabled": True, "sunset": CUTOVER})
    protocols = pox_protocols(post(legacy, stack, "/autodiscover/autodiscover.xml",
                                   POX_REQUEST.format(address="ann@example.test").encode()).body)
    assert (protocols["SMTP"]["AuthRequired"], protocols["SMTP"]["SMTPLast"]) == ("off", "on")
    assert (protocols["IMAP"]["AuthRequired"], protocols["IMAP"].get("SMTPLast")) == ("on", None)


def test_pox_accepts_a_request_without_the_namespace(stack):
    body = b"<Autodiscover><Request><EMailAddress>ann@example.test</EMailAddress></Request></Autodiscover>"
    assert set(pox_protocols(post(site(stack), stack, "/autodiscover/autodiscover.xml", body).body)) \
        == {"IMAP", "POP3", "SMTP"}


@pytest.mark.parametrize("body", [
    b"<not xml",
    b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
    b'<!entity a "x"><x/>',
    b"<Autodiscover><Request><EMailAddress> </EMailAddress></Request></Autodiscover>",
    b"<Autodiscover/>",
    POX_REQUEST.format(address="no address at all").encode(),
    POX_REQUEST.format(address="x" * http.MAX_BODY + "@example.test").encode(),
])
def test_bad_pox_requests_get_error_600(stack, body):
    answer = post(site(stack), stack, "/autodiscover/autodiscover.xml", body)
    assert answer.code == 200
    assert pox_error(answer.body) == ("600", "Invalid Request")


def test_pox_for_an_unknown_domain_gets_error_500(stack):
    answer = post(site(stack), stack, "/autodiscover/autodiscover.xml",
                  POX_REQUEST.format(address="ann@elsewhere.test").encode())
    assert pox_error(answer.body) == ("500", "The e-mail address cannot be found.")
    assert b"Traceback" not in answer.body


def test_pox_error_time_is_business_time(stack):
    body = post(site(stack), stack, "/autodiscover/autodiscover.xml", b"<x").body
    time = ET.fromstring(body).find(f"{RESPONSE_NS}Response/{RESPONSE_NS}Error").get("Time")
    assert time == sessions.START.strftime("%H:%M:%S.%f")


@pytest.mark.parametrize("target", [
    "/autodiscover/autodiscover.json?Email=ann%40example.test&Protocol=AutodiscoverV1",
    "/autodiscover/autodiscover.json?email=ann%40example.test",
    "/autodiscover/autodiscover.json/v1.0/ann%40example.test?Protocol=AutodiscoverV1",
])
def test_autodiscover_json_redirects_newer_outlook_to_the_xml_endpoint(stack, target):
    answer = get(site(stack), stack, target)
    assert answer.code == 200 and answer.header("content-type") == "application/json"
    assert json.loads(answer.body) == {
        "Protocol": "AutodiscoverV1",
        "Url": "https://autodiscover.example.test/autodiscover/autodiscover.xml"}


def test_autodiscover_json_names_a_non_default_https_port(stack):
    other = site(stack, client_setup={"https_port": 8443})
    answer = get(other, stack, "/autodiscover/autodiscover.json?Email=ann%40example.test")
    assert json.loads(answer.body)["Url"] == \
        "https://autodiscover.example.test:8443/autodiscover/autodiscover.xml"


def test_autodiscover_json_refuses_unknown_domains_and_other_protocols(stack):
    missing = get(site(stack), stack, "/autodiscover/autodiscover.json?Email=x%40elsewhere.test")
    assert missing.code == 404 and json.loads(missing.body)["ErrorCode"] == "MailboxNotFound"
    other = get(site(stack), stack,
                "/autodiscover/autodiscover.json?Email=ann%40example.test&Protocol=ActiveSync")
    assert other.code == 400 and json.loads(other.body)["ErrorCode"] == "ProtocolNotSupported"


def test_a_store_outage_is_a_plain_500_without_a_traceback(stack):
    stack.pool.failing.add(directory.is_hosted)
    answer = get(site(stack), stack, "/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    assert answer.code == 500
    assert answer.body == b"temporary problem, try again later\n"


def test_an_answer_to_a_client_that_went_away_is_not_written(stack):
    """The store answers after the connection was lost: nothing is written to it."""
    held = defer.Deferred()
    stack.pool.run = lambda fn, *args, **kwargs: held
    request = WebRequest("/mail/config-v1.1.xml?emailaddress=ann%40example.test")
    site(stack).render_GET(request)
    request.processingFailed(Exception("connection lost"))
    held.callback(True)
    assert request.written == [] and request.responseCode is None


# --- Apple profile -------------------------------------------------------------------------

def test_apple_profile_sets_up_imap_and_smtp_over_implicit_tls(stack):
    answer = get(site(stack), stack, http.APPLE_PATH + "?emailaddress=Ann%40example.test")
    assert answer.code == 200
    assert answer.header("content-type") == apple_profile.CONTENT_TYPE.decode()
    assert answer.header("content-disposition") == 'attachment; filename="mail.mobileconfig"'
    outer = plistlib.loads(answer.body)
    (mail,) = outer["PayloadContent"]
    assert outer["PayloadType"] == "Configuration"
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert (mail["EmailAddress"], mail["IncomingMailServerUsername"],
            mail["OutgoingMailServerUsername"]) == ("ann@example.test",) * 3
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"],
            mail["OutgoingMailServerPortNumber"]) == ("mail.example.test", 993, 465)
    assert mail["IncomingMailServerUseSSL"] and mail["OutgoingMailServerUseSSL"]
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert b"secret" not in answer.body and "Password" not in {
        k for k in mail if k.endswith("Password")}    # the device asks for it


def test_apple_profile_identifiers_are_stable_per_address(stack):
    """Installing it again replaces the profile instead of adding a second account."""
    def ids(address):
        outer = plistlib.loads(get(site(stack), stack,
                                   f"{http.APPLE_PATH}?emailaddress={address}").body)
        mail = outer["PayloadContent"][0]
        return outer["PayloadUUID"], outer["PayloadIdentifier"], mail["PayloadUUID"]
    ann, again, bob = ids("ann%40example.test"), ids("ann%40example.test"), ids("bob%40example.test")
    assert ann == again and set(ann).isdisjoint(bob) and ann[0] != ann[2]
    assert ann[1] == "test.example.mailstack.ann@example.test"


def test_apple_profile_for_pop_before_smtp_sends_without_a_password(stack):
    legacy = site(stack, submission={"smtp_auth": False},
                  pop_before_smtp={"enabled": True, "sunset": CUTOVER})
    mail = plistlib.loads(get(legacy, stack, http.APPLE_PATH + "?emailaddress=ann%40example.test")
                          .body)["PayloadContent"][0]
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthNone"
    assert mail["OutgoingPasswordSameAsIncomingPassword"] is False


def test_apple_profile_only_for_hosted_domains(stack):
    assert get(site(stack), stack, http.APPLE_PATH + "?emailaddress=ann%40elsewhere.test").code == 404
    assert get(site(stack), stack, http.APPLE_PATH).code == 404


def test_the_site_shows_no_tracebacks(stack):
    factory = http.build_factory(settings(), stack.db, stack.clock, stack.portal)
    assert factory.displayTracebacks is False
    assert isinstance(factory.resource, http.ClientSetup)
