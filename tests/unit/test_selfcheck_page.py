"""The "is my mail program set up right?" page (protocols/selfcheck.py) rendered with a
``twisted.web`` request against the inline SQLite store and the real realm.

Standards: RFC 7617 (Basic authentication: a 401 carries the challenge), RFC 9110
§15.5.2/§15.5.4 (401, 403).  The module's Security line: credentials only under TLS, only
the account's own rows, everything escaped, no script, never cached.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from mailstack.protocols import http, selfcheck
from mailstack.store import directory, logins, spam_settings, submissions
from tests.support import sessions
from tests.support.policy_doubles import settings
from tests.support.web import WebRequest, render

ANN, BOB = "ann@example.test", "bob@example.test"
PASSWORD = "correct horse"
SUNSET = sessions.START + timedelta(days=20)
CUTOVER = sessions.START + timedelta(days=30)
HELP = "https://help.example.test/mail?a=1&b=<2>"
LEGACY_IP, MODERN_IP = "198.51.100.7", "203.0.113.9"


@pytest.fixture
def stack(template, tmp_path):
    stack = sessions.Stack(template, tmp_path, tls_cutover=CUTOVER)
    selfcheck.register_avatars(stack.realm)
    stack.ann = stack.add_account(ANN, PASSWORD)
    stack.bob = stack.add_account(BOB, PASSWORD)
    yield stack
    stack.close()


def page(stack, *, user=ANN, password=PASSWORD, secure=True, path="/check", **sections):
    sections.setdefault("auth", {"tls_cutover": CUTOVER})
    sections.setdefault("submission", {"help_url": HELP})
    sections.setdefault("pop_before_smtp", {"enabled": True, "sunset": SUNSET})
    sections.setdefault("client_setup", {"hostname": "mail.example.test"})
    resource = http.ClientSetup(settings(**sections), stack.db, stack.clock, stack.portal)

    def settle():            # the realm delays an answer to a wrong password (throttle)
        for _ in range(3):
            stack.settle()
            stack.clock.advance(60)
    request = WebRequest(path, secure=secure, user=user, password=password)
    return render(resource, request, settle)


def login(stack, account_id, address, ip, *, tls, protocol="pop3", mechanism="USER",
          ago=timedelta(hours=1), success=True):
    event = logins.LoginEvent(stack.now() - ago, address, protocol, ip, tls, mechanism,
                              success, account_id)
    stack.db.run_sync(logins.record, event)


def send(stack, account_id, address, ip, *, method, tls, ago=timedelta(minutes=30)):
    entry = submissions.Submission(stack.now() - ago, account_id, address, ip, method, tls, 1,
                                   "Q1")
    stack.db.run_sync(submissions.record, entry)


def rows(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("<tr><td>")]


def test_plain_http_is_refused_and_the_password_never_checked(stack):
    answer = page(stack, secure=False, password="wrong")
    assert answer.code == 403
    assert "https://mail.example.test/check" in answer.text
    assert answer.header("cache-control") == "no-store"
    assert stack.db.read_sync(logins.recent, account_id=stack.ann) == []


def test_plain_http_names_a_non_default_https_port(stack):
    answer = page(stack, secure=False, client_setup={"hostname": "mail.example.test",
                                                       "https_port": 8443})
    assert "https://mail.example.test:8443/check" in answer.text


def test_no_credentials_get_the_basic_challenge(stack):
    answer = page(stack, user="", password="")
    assert answer.code == 401
    assert answer.header("www-authenticate") == 'Basic realm="mail settings check"'


def test_a_wrong_password_gets_401_and_is_recorded_as_an_http_basic_failure(stack):
    answer = page(stack, password="wrong")
    assert answer.code == 401
    assert answer.header("www-authenticate") == 'Basic realm="mail settings check"'
    assert ANN not in answer.text and "<table" not in answer.text
    (event,) = stack.db.read_sync(logins.recent, account_id=stack.ann)
    assert (event.protocol, event.mechanism, event.tls, event.success) == (
        "http", "BASIC", True, False)


def test_nothing_seen_yet(stack):
    answer = page(stack)
    assert answer.code == 200
    assert "Verdict: nothing to judge yet." in answer.text
    assert "<p>No logins.</p>" in answer.text and "<p>No messages sent.</p>" in answer.text


def test_legacy_user_is_told_what_to_fix_and_by_when(stack):
    login(stack, stack.ann, ANN, LEGACY_IP, tls=False)
    send(stack, stack.ann, ANN, LEGACY_IP, method="pop-before-smtp", tls=False)
    answer = page(stack)
    assert answer.code == 200 and answer.header("content-type") == "text/html; charset=utf-8"
    assert answer.header("content-security-policy") == ("default-src 'none'; form-action 'self'; "
                                                          "frame-ancestors 'none'")
    assert answer.header("cache-control") == "no-store"
    assert "<script" not in answer.text.lower()
    text = answer.text
    assert "Verdict: not ready for the change yet." in text
    assert f"<li>{selfcheck.CLEARTEXT}</li>" in text
    assert f"<li>{selfcheck.POP_BEFORE_SMTP}</li>" in text
    assert "POP before SMTP stops working on 2026-12-15 12:00 UTC." in text
    assert "Passwords without encryption are refused from 2026-12-25 12:00 UTC." in text
    escaped = "https://help.example.test/mail?a=1&amp;b=&lt;2&gt;"
    assert f'<a href="{escaped}">{escaped}</a>' in text and HELP not in text
    login_row, send_row = rows(text)
    assert login_row == (f"<tr><td>2026-11-25 11:00 UTC</td><td>POP3</td><td>{LEGACY_IP}</td>"
                         f"<td>no</td><td>USER</td><td>{selfcheck.CLEARTEXT}</td></tr>")
    assert send_row == (f"<tr><td>2026-11-25 11:30 UTC</td><td>{LEGACY_IP}</td>"
                        f"<td>POP before SMTP</td><td>no</td><td>{selfcheck.POP_BEFORE_SMTP}</td></tr>")


def test_dates_appear_only_when_configured(stack):
    login(stack, stack.ann, ANN, LEGACY_IP, tls=False)
    answer = page(stack, auth={}, pop_before_smtp={"enabled": True})
    assert selfcheck.CLEARTEXT in answer.text
    assert "are refused from" not in answer.text and "stops working" not in answer.text


def test_cleartext_auth_send_is_a_cleartext_fix_not_pop_before_smtp(stack):
    send(stack, stack.ann, ANN, LEGACY_IP, method="auth", tls=False)
    text = page(stack).text
    assert f"<li>{selfcheck.CLEARTEXT}</li>" in text
    assert selfcheck.POP_BEFORE_SMTP not in text


def test_modern_user_is_ready_and_sees_only_their_own_mail_rows(stack):
    login(stack, stack.ann, ANN, MODERN_IP, tls=True, protocol="imap", mechanism="PLAIN")
    send(stack, stack.ann, ANN, MODERN_IP, method="auth", tls=True)
    login(stack, stack.bob, BOB, LEGACY_IP, tls=False)                      # someone else
    send(stack, stack.bob, BOB, LEGACY_IP, method="pop-before-smtp", tls=False)
    login(stack, stack.ann, ANN, LEGACY_IP, tls=False, success=False)       # failed: not shown
    login(stack, stack.ann, ANN, LEGACY_IP, tls=False, ago=timedelta(days=31))  # too old
    text = page(stack).text
    assert "Verdict: ready for the change." in text
    assert LEGACY_IP not in text and selfcheck.CLEARTEXT not in text
    assert [r.rsplit("<td>", 1)[1] for r in rows(text)] == ["ready</td></tr>"] * 2
    assert "<td>IMAP</td>" in text and "<td>SMTP authentication</td><td>yes</td>" in text
    assert "<td>HTTP</td>" not in text        # the page's own login is not a mail program
    assert 'href="/apple/mail.mobileconfig?emailaddress=ann%40example.test"' in text


def test_a_store_outage_is_503_with_retry_after(stack):
    from mailstack.store import selfcheck as store
    stack.pool.failing.add(store.recent_activity)
    answer = page(stack)
    assert answer.code == 503 and answer.header("retry-after") == "60"
    assert "Traceback" not in answer.text


def test_verdict_words():
    class Event:
        def __init__(self, tls, method="auth"):
            self.tls, self.method = tls, method
    assert selfcheck.login_verdict(Event(True)) == selfcheck.READY
    assert selfcheck.login_verdict(Event(False)) == selfcheck.CLEARTEXT
    assert selfcheck.send_verdict(Event(True, "pop-before-smtp")) == selfcheck.POP_BEFORE_SMTP
    assert selfcheck.send_verdict(Event(False)) == selfcheck.CLEARTEXT
    assert selfcheck.send_verdict(Event(True)) == selfcheck.READY


def test_values_from_the_store_are_html_escaped(stack):
    """A mechanism name is what the client sent: it reaches the page escaped."""
    login(stack, stack.ann, ANN, MODERN_IP, tls=True, mechanism="<script>x</script>")
    text = page(stack).text
    assert "<td>&lt;script&gt;x&lt;/script&gt;</td>" in text and "<script" not in text


# --- the SPAM Blocker form (issue 18) ---------------------------------------------------


def form_token(text: str) -> str:
    match = re.search(r'name="token" value="([0-9a-f]{64})"', text)
    assert match, "the page has no form token"
    return match.group(1)


def post(stack, body: bytes, *, user=ANN, password=PASSWORD, secure=True, headers=()):
    resource = http.ClientSetup(settings(client_setup={"hostname": "mail.example.test"}),
                                stack.db, stack.clock, stack.portal)
    request = WebRequest("/check", method=b"POST", body=body, secure=secure, user=user,
                         password=password)
    for name, value in headers:
        request.requestHeaders.setRawHeaders(name, [value])

    def settle():
        for _ in range(3):
            stack.settle()
            stack.clock.advance(60)
    return render(resource, request, settle)


def blocker_of(stack, account_id):
    return stack.db.run_sync(spam_settings.settings, account_id)


def test_the_page_shows_spam_blocker_off_with_a_form_to_switch_it(stack):
    text = page(stack).text
    assert "SPAM Blocker is <strong>off</strong>" in text
    assert '<form method="post" action="/check">' in text
    assert 'name="blocker" value="on">' in text            # not checked
    assert form_token(text) != form_token(page(stack, user=BOB).text)


def test_the_form_switches_the_blocker_and_the_tag_and_the_page_shows_it(stack):
    token = form_token(page(stack).text)
    answer = post(stack, f"token={token}&blocker=on&tag_subject=on".encode())
    assert answer.code == 303 and answer.header("location") == "/check?saved=1"
    assert blocker_of(stack, stack.ann) == spam_settings.Settings(True, True)
    assert blocker_of(stack, stack.bob) == spam_settings.Settings(False, False)
    text = page(stack, path="/check?saved=1").text
    assert "SPAM Blocker is <strong>on</strong>" in text and "Settings saved." in text
    assert 'name="tag_subject" value="on" checked>' in text
    assert post(stack, f"token={token}".encode()).code == 303       # both boxes cleared
    assert blocker_of(stack, stack.ann) == spam_settings.Settings(False, False)


def test_a_post_without_the_pages_token_changes_nothing(stack):
    bob_token = form_token(page(stack, user=BOB).text)
    for body in (b"blocker=on", b"token=" + b"0" * 64 + b"&blocker=on",
                 f"token={bob_token}&blocker=on".encode()):
        answer = post(stack, body)
        assert answer.code == 403 and "reload the page" in answer.text
    assert blocker_of(stack, stack.ann) == spam_settings.Settings(False, False)


def test_cross_site_request_forgery_is_refused_before_the_login(stack):
    token = form_token(page(stack).text)
    body = f"token={token}&blocker=on".encode()
    for header in ((b"origin", b"https://evil.example"), (b"sec-fetch-site", b"cross-site")):
        answer = post(stack, body, headers=[header])
        assert answer.code == 403 and "its own page" in answer.text
    same = post(stack, body, headers=[(b"origin", b"https://mail.example.test"),
                                      (b"sec-fetch-site", b"same-origin")])
    assert same.code == 303
    assert blocker_of(stack, stack.ann).blocker


def test_the_form_needs_tls_and_the_password(stack):
    token = form_token(page(stack).text)
    body = f"token={token}&blocker=on".encode()
    assert post(stack, body, secure=False).code == 403
    assert post(stack, body, password="wrong").code == 401
    assert not blocker_of(stack, stack.ann).blocker


def test_a_new_password_expires_the_form(stack):
    token = form_token(page(stack).text)
    stack.db.run_sync(directory.set_password_hash, ANN, stack.hasher.hash("a new password"))
    answer = post(stack, f"token={token}&blocker=on".encode(), password="a new password")
    assert answer.code == 403
