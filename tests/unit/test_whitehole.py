"""Whitehole requests (issue 21, item 3): the store on every backend, the per-client limit
on the injected clock, and the page (protocols/whitehole_page.py) rendered with a
``twisted.web`` request against the inline SQLite store.

The page's Security line: TLS only, limited per client before the body is read, bounded
body, another site's post refused, everything escaped (the bounce is hostile input), the
self-check page's CSP, and never the desk's did-you-mean suggestions.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from twisted.internet import task

from twisted.web.test.requesthelper import DummyChannel

from mailstack.protocols import http, http_body
from mailstack.protocols.rate_limit import PerClientRate
from mailstack.store import directory, rejections, whitehole_requests as requests, whitelist
from mailstack.store.errors import Conflict, NotFound
from tests.support import sessions
from tests.support.policy_doubles import settings
from tests.support.web import CLIENT_IP, WebRequest, render

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
SENDER_IP = "198.51.100.25"
HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def filing(ip=SENDER_IP, open_=True, outcome="eligible", **extra):
    values = dict(client_ip="203.0.113.5", ip=ip, contact="postmaster@sender.test",
                  reason="our customers' invoices", bounce="554 5.7.1 blocked " + HOSTILE,
                  verdict="dnsbl", outcome=outcome, findings={"dnsbl": [{"zone": "bl.test"}]},
                  open=open_)
    values.update(extra)
    return requests.Filing(**values)


# --- the store ------------------------------------------------------------------------------

def test_a_filed_request_keeps_what_was_sent_and_found(db):
    filed = db.run_sync(requests.file, filing(), NOW)
    assert filed.ref.startswith("WH-") and len(filed.ref) == 11
    again = db.run_sync(requests.get, filed.ref.lower().removeprefix("wh-"))
    assert again == filed
    assert (again.state, again.ip, again.created_at) == ("open", SENDER_IP, NOW)
    assert again.bounce.endswith(HOSTILE)                     # stored as sent, shown escaped
    assert json.loads(again.findings) == {"dnsbl": [{"zone": "bl.test"}]}
    answered = db.run_sync(requests.file, filing("192.0.2.1", open_=False,
                                                 outcome="no_refusal"), NOW + timedelta(1))
    assert answered.state == "answered"
    assert [r.ref for r in db.run_sync(requests.listing)] == [answered.ref, filed.ref]
    assert [r.ref for r in db.run_sync(requests.listing, "open")] == [filed.ref]
    with pytest.raises(NotFound):
        db.run_sync(requests.get, "WH-NOTTHERE")


def test_approval_whitelists_the_ip_naming_the_request_with_a_review_date(db):
    manual = db.run_sync(whitelist.add, "192.0.2.0/24", "TICKET-1", "desk", NOW)
    filed = db.run_sync(requests.file, filing(), NOW)
    request, entry = db.run_sync(requests.approve, filed.ref, by="carol", at=NOW,
                                 review_days=90, note="checked the listing")
    assert (request.state, request.decided_by, request.note) == ("approved", "carol",
                                                                 "checked the listing")
    assert entry.entry == f"{SENDER_IP}/32" and entry.request_ref == filed.ref
    entries = {e.entry: e for e in db.run_sync(whitelist.all_entries)}
    assert entries[f"{SENDER_IP}/32"].origin == f"request {filed.ref}"
    assert entries[f"{SENDER_IP}/32"].review_at == NOW + timedelta(days=90)
    assert filed.ref in entries[f"{SENDER_IP}/32"].reason
    assert (entries[manual.entry].origin, entries[manual.entry].review_at) == ("manual", None)
    with pytest.raises(Conflict):
        db.run_sync(requests.approve, filed.ref, by="carol", at=NOW, review_days=90)
    with pytest.raises(Conflict):
        db.run_sync(requests.deny, filed.ref, by="carol", at=NOW)


def test_a_request_the_page_answered_is_approved_only_by_force_and_can_be_denied(db):
    answered = db.run_sync(requests.file, filing(open_=False, outcome="not_dnsbl"), NOW)
    with pytest.raises(Conflict, match="answered on submission"):
        db.run_sync(requests.approve, answered.ref, by="carol", at=NOW, review_days=30)
    assert db.run_sync(whitelist.all_entries) == []
    denied = db.run_sync(requests.deny, answered.ref, by="carol", at=NOW, note="no")
    assert (denied.state, denied.decided_at) == ("denied", NOW)
    other = db.run_sync(requests.file, filing("192.0.2.9", open_=False), NOW)
    _, entry = db.run_sync(requests.approve, other.ref, by="c", at=NOW, review_days=7,
                           force=True)
    assert entry.review_at == NOW + timedelta(days=7)


# --- the limit --------------------------------------------------------------------------------

def test_the_limit_refuses_past_n_a_minute_and_says_when_to_come_back():
    clock = task.Clock()
    clock.advance(1000)
    limit = PerClientRate(clock, 10)
    assert [limit.admit("192.0.2.1") for _ in range(10)] == [0.0] * 10
    assert limit.admit("192.0.2.1") == 60
    assert limit.admit("192.0.2.2") == 0.0                    # another client is not limited
    clock.advance(59)
    assert limit.admit("192.0.2.1") == 1
    clock.advance(1)
    assert limit.admit("192.0.2.1") == 0.0
    assert limit.admit("2001:db8::1") == 0.0
    assert all(limit.admit(f"2001:db8::{n:x}") == 0.0 for n in range(2, 11))
    assert limit.admit("2001:db8::ffff") == 60                # one /64 is one client


def test_the_limits_table_stays_bounded_and_forgets_the_least_recent():
    clock = task.Clock()
    limit = PerClientRate(clock, 2, max_tracked=100)
    limit.admit("192.0.2.1")
    limit.admit("192.0.2.1")
    for n in range(5000):
        clock.advance(0.01)
        limit.admit(f"10.{n // 256}.{n % 256}.1")
        assert len(limit) <= 100
    assert limit.admit("192.0.2.1") == 0.0                    # forgotten, not grown


# --- the page ---------------------------------------------------------------------------------

@pytest.fixture
def stack(template, tmp_path):
    stack = sessions.Stack(template, tmp_path)
    stack.db.run_sync(directory.add_account, "alice@example.test", "x", stack.now())
    yield stack
    stack.close()


def resource(stack, per_minute=10):
    config = settings(client_setup={"hostname": "mail.example.test"},
                      whitehole={"requests_per_minute": per_minute})
    return http.ClientSetup(config, stack.db, stack.clock, None)


def post(stack, site, fields=None, *, secure=True, body=None, origin=None):
    form = {"bounce": "550 5.1.1 <alcie@example.test>: Recipient address rejected: "
                      "User unknown in virtual mailbox table",
            "ip": SENDER_IP, "contact": "postmaster@sender.test", "reason": "partner"}
    form.update(fields or {})
    request = WebRequest("/whitehole", method=b"POST", secure=secure,
                         body=body if body is not None else urlencode(form).encode())
    if origin:
        request.requestHeaders.setRawHeaders(b"origin", [origin])
    return render(site, request, stack.settle)


def refuse(stack, ip, check, reply, rcpt="alice@example.test"):
    stack.db.run_sync(rejections.record, rejections.Rejection(
        "R" + ip.replace(".", "")[-7:], stack.now() - timedelta(hours=1), "S1", "smtp", "rcpt",
        check, ip, None, "client.test", "bob@sender.test", rcpt, reply, "detail"))


def test_the_form_is_served_over_tls_only_with_the_strict_csp(stack):
    site = resource(stack)
    answer = render(site, WebRequest("/whitehole"))
    assert answer.code == 200 and '<form method="post" action="/whitehole">' in answer.text
    assert "default-src 'none'" in answer.header("content-security-policy")
    assert answer.header("cache-control") == "no-store" and "<script" not in answer.text
    plain = render(site, WebRequest("/whitehole", secure=False))
    assert plain.code == 403 and "https://mail.example.test/whitehole" in plain.text
    assert post(stack, site, secure=False).code == 403
    assert stack.db.run_sync(requests.listing) == []


def test_a_hostile_bounce_sent_back_for_correction_is_escaped(stack):
    answer = post(stack, resource(stack), {"bounce": HOSTILE, "ip": '"><script>x</script>'})
    assert answer.code == 400 and "IP address of your mail server" in answer.text
    assert "<script" not in answer.text and "<img" not in answer.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img" in answer.text
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in answer.text
    assert stack.db.run_sync(requests.listing) == []


def test_an_unknown_user_is_told_the_address_does_not_exist_never_a_suggestion(stack):
    refuse(stack, SENDER_IP, "recipients", "550 5.1.1 <alcie@example.test>: Recipient "
           "address rejected: User unknown in virtual mailbox table (ref RAAAAAAA)",
           rcpt="alcie@example.test")
    answer = post(stack, resource(stack), {"bounce": "Final-Recipient: rfc822; "
                  f"alcie@example.test\n<b>{HOSTILE}</b>\n550 5.1.1 <alcie@example.test>: "
                  "Recipient address rejected: User unknown in virtual mailbox table "
                  "(ref RAAAAAAA)"})
    assert answer.code == 200, answer.text
    assert "cannot succeed" in answer.text and "alcie@example.test does not exist" in answer.text
    assert "alice@" not in answer.text and "<script" not in answer.text
    (filed,) = stack.db.run_sync(requests.listing, "answered")
    assert filed.ref in answer.text and filed.outcome == "not_dnsbl"
    assert "did you mean alice@example.test" in filed.findings      # for the desk only


def test_an_ip_we_never_refused_is_answered_as_such(stack):
    refuse(stack, "192.0.2.99", "dnsbl", "554 5.7.1 Service unavailable; Client host "
           "[192.0.2.99] blocked using bl.test; see x (ref RBBBBBBB)")
    answer = post(stack, resource(stack))
    assert answer.code == 200
    assert f"no record of refusing mail from {SENDER_IP}" in answer.text
    assert "192.0.2.99" not in answer.text                    # nobody else's records
    (filed,) = stack.db.run_sync(requests.listing, "answered")
    assert filed.outcome == "no_refusal"


def test_over_the_limit_gets_429_with_retry_after_and_gets_are_not_counted(stack):
    site = resource(stack, per_minute=3)
    for _ in range(5):
        assert render(site, WebRequest("/whitehole")).code == 200
    assert [post(stack, site).code for _ in range(4)] == [200, 200, 200, 429]
    refused = post(stack, site)
    assert refused.code == 429 and refused.header("retry-after") == "60"
    assert len(stack.db.run_sync(requests.listing, None)) == 3
    stack.clock.advance(60)
    assert post(stack, site).code == 200


def test_an_oversized_body_or_another_sites_post_is_refused_unread(stack):
    site = resource(stack)
    assert post(stack, site, body=b"bounce=" + b"x" * (4 * 64 * 1024)).code == 413
    long_bounce = post(stack, site, {"bounce": "y" * (64 * 1024 + 1)})
    assert long_bounce.code == 400 and "too long" in long_bounce.text
    assert post(stack, site, origin=b"https://evil.example").code == 403
    assert stack.db.run_sync(requests.listing, None) == []


def test_the_listener_keeps_at_most_max_body_octets_of_any_request_body():
    request = http_body.BoundedRequest(DummyChannel())
    request.gotLength(10**9)                  # a declared 1 GB: no temporary file of it
    for _ in range(64):
        request.handleContentChunk(b"x" * 65536)
    request.content.seek(0, 2)
    assert request.content.tell() == http_body.MAX_BODY
    chunked = http_body.BoundedRequest(DummyChannel())
    chunked.gotLength(None)
    for _ in range(8):
        chunked.handleContentChunk(b"y" * 65536)
    chunked.content.seek(0)
    assert chunked.content.read() == b"y" * http_body.MAX_BODY
