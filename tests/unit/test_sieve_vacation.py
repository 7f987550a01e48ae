"""Vacation replies (sieve/vacation.py, sieve/vacation_reply.py): when RFC 5230 and RFC
3834 allow one, how often (:days per sender and handle), and what the reply looks like,
read back with the standard library's email parser.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from twisted.internet.task import Clock

from mailstack.sieve.actions import Vacation
from mailstack.sieve.vacation import Account, Reply, Silence, respond, why_not
from tests.support.sieve import HEADER, RECIPIENT, SENDER, message, run

ACCOUNT = Account(id=7, address=RECIPIENT, aliases=("rr@acme.example.com",))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def clock() -> Clock:
    moment = Clock()
    moment.advance(NOW.timestamp())
    return moment


def vacation(script: str = 'vacation "I am away until Monday.";') -> Vacation:
    return run('require "vacation";\n' + script).actions[0]


def answer(view=None, action=None, last=None, account=ACCOUNT):
    return respond(action or vacation(), view or message(), account,
                   last_replied=lambda *key: last, clock=clock(), hostname="mx.acme.example.com")


def reply_of(view=None, action=None):
    result = answer(view, action)
    assert isinstance(result, Reply), result
    return result, message_from_bytes(result.message, policy=policy.default)


# when (RFC 5230 §4.5, §4.6, RFC 3834 §2) -------------------------------------------------

def test_a_personal_message_is_answered():
    assert why_not(vacation(), message(), ACCOUNT) is None


@pytest.mark.parametrize("field", [
    "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated",
    "Auto-Submitted: auto-notified; owner-email=x@y.example", "Precedence: bulk",
    "Precedence: LIST", "Precedence: junk (comment)", "Auto-Submitted: auto-replied (vacation)", "List-Id: <coyotes.desert.example.org>",
    "List-Unsubscribe: <mailto:leave@desert.example.org>", "List-Post: NO",
    "X-Auto-Response-Suppress: OOF, AutoReply",
])
def test_automatic_and_list_mail_is_not_answered(field):
    assert isinstance(answer(message(HEADER + field + "\r\n")), Silence)


def test_auto_submitted_no_is_answered():
    assert isinstance(answer(message(HEADER + "Auto-Submitted: no\r\n")), Reply)
    assert isinstance(answer(message(HEADER + "Auto-Submitted: No (a person wrote it)\r\n")),
                      Reply)


def test_precedence_first_class_is_answered():
    assert isinstance(answer(message(HEADER + "Precedence: first-class\r\n")), Reply)


@pytest.mark.parametrize("sender", [
    "", "MAILER-DAEMON@desert.example.org", "owner-coyotes@desert.example.org",
    "coyotes-request@desert.example.org", "listserv@desert.example.org",
    "majordomo@desert.example.org", "no-reply@desert.example.org",
    "roadrunner@acme.example.com", "RR@acme.example.com", "MAILER-DAEMON",
])
def test_null_automated_and_own_senders_are_not_answered(sender):
    assert isinstance(answer(message(envelope_from=sender)), Silence)


def test_mail_not_addressed_to_the_account_is_not_answered():
    view = message(HEADER.replace("roadrunner@acme.example.com", "everyone@acme.example.com"))
    assert "To, Cc or Bcc" in answer(view).reason


@pytest.mark.parametrize("field", [
    "To: rr@acme.example.com", "Cc: RR@ACME.example.com", "Bcc: rr@acme.example.com",
    "Resent-To: rr@acme.example.com", "Resent-Cc: rr@acme.example.com",
])
def test_an_alias_in_a_recipient_field_is_personal(field):
    view = message(f"From: {SENDER}\r\n{field}\r\nSubject: hi\r\n")
    assert isinstance(answer(view), Reply)


def test_the_delivered_to_address_counts_as_the_accounts():
    view = message(f"From: {SENDER}\r\nTo: sales@acme.example.com\r\n",
                   envelope_to="sales@acme.example.com")
    assert isinstance(answer(view), Reply)


def test_addresses_argument_adds_the_users_other_addresses():
    view = message(f"From: {SENDER}\r\nTo: roadrunner@old.example.net\r\n")
    assert isinstance(answer(view), Silence)
    action = vacation('vacation :addresses ["RoadRunner@old.example.net"] "away";')
    assert isinstance(answer(view, action), Reply)


def test_an_address_in_from_only_is_not_personal():
    view = message(f"From: {RECIPIENT}\r\nTo: list@desert.example.org\r\n")
    assert isinstance(answer(view), Silence)


# how often (RFC 5230 §4.1, §4.2) ---------------------------------------------------------

def test_a_sender_answered_within_days_is_not_answered_again():
    action = vacation('vacation :days 3 "away";')
    assert isinstance(answer(action=action, last=NOW - timedelta(days=2, hours=23)), Silence)
    assert isinstance(answer(action=action, last=NOW - timedelta(days=3)), Reply)


def test_the_lookup_is_keyed_by_account_sender_and_handle():
    asked = []
    action = vacation('vacation :handle "ran-away" "away";')
    respond(action, message(envelope_from="Coyote@Desert.example.org"), ACCOUNT,
            last_replied=lambda *key: asked.append(key), clock=clock(), hostname="h")
    assert asked == [(7, "coyote@desert.example.org", "handle:ran-away")]


def test_the_reply_carries_what_delivery_records():
    result, _ = reply_of()
    assert (result.tracking.account, result.tracking.sender, result.tracking.at) == (
        7, SENDER, NOW)
    assert result.tracking.handle == vacation().handle
    assert (result.recipient, result.envelope_sender) == (SENDER, "")


# the reply (RFC 5230 §5, RFC 3834 §5) ------------------------------------------------------

def test_reply_header_fields():
    _, reply = reply_of()
    assert reply["From"] == RECIPIENT and reply["To"] == SENDER
    assert reply["Subject"] == "Auto: I have a present for you"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<1234@desert.example.org>"
    assert reply["References"] == "<1234@desert.example.org>"
    assert reply["Date"].datetime == NOW
    assert reply["Message-ID"].endswith("@mx.acme.example.com>")
    assert reply.get_content_type() == "text/plain"
    assert reply.get_content() == "I am away until Monday.\r\n"


def test_reply_lines_end_in_crlf():
    result, _ = reply_of()
    assert b"\r\n\r\n" in result.message and b"\n" not in result.message.replace(b"\r\n", b"")


def test_references_continue_the_thread():
    view = message(HEADER + "References: <1@x.example> <2@x.example>\r\n")
    assert reply_of(view)[1]["References"] == "<1@x.example> <2@x.example> <1234@desert.example.org>"
    view = message(HEADER + "In-Reply-To: <0@x.example>\r\n")
    assert reply_of(view)[1]["References"] == "<0@x.example> <1234@desert.example.org>"


def test_no_message_id_no_in_reply_to():
    view = message(HEADER.replace("Message-ID: <1234@desert.example.org>\r\n", ""))
    _, reply = reply_of(view)
    assert reply["In-Reply-To"] is None and reply["References"] is None


def test_subject_given_non_ascii_is_encoded_words():
    result, reply = reply_of(action=vacation('vacation :subject "Réponse : absent" "x";'))
    assert reply["Subject"] == "Réponse : absent"
    assert result.message.isascii() and b"=?utf-8?" in result.message


def test_subject_of_an_original_without_one_is_fixed():
    view = message(HEADER.replace("Subject: I have a present for you\r\n", ""))
    assert reply_of(view)[1]["Subject"] == "Automated reply"


def test_original_subject_with_encoded_words_and_injection_attempt():
    view = message(HEADER.replace("Subject: I have a present for you",
                                  "Subject: =?utf-8?q?caf=C3=A9=0D=0ABcc=3A_x=40evil?="))
    result, reply = reply_of(view)
    assert reply["Subject"] == "Auto: café Bcc: x@evil"
    assert reply["Bcc"] is None


def test_non_ascii_reason_is_quoted_printable_utf8():
    result, reply = reply_of(action=vacation('vacation "Je suis absent. Ça va ?";'))
    assert reply["Content-Transfer-Encoding"] == "quoted-printable"
    assert reply.get_content_charset() == "utf-8"
    assert reply.get_content() == "Je suis absent. Ça va ?\r\n"
    assert result.message.isascii()


def test_mime_reason_is_the_body_entity():
    action = vacation('vacation :mime text:\n'
                      'Content-Type: multipart/alternative; boundary=foo\n\n'
                      '--foo\n\nI am at the beach.\n'
                      '--foo\nContent-Type: text/html; charset=us-ascii\n\n'
                      '<p>I am at the <b>beach</b>.</p>\n--foo--\n.\n;')
    _, reply = reply_of(action=action)
    assert reply["MIME-Version"] == "1.0"
    assert reply.get_content_type() == "multipart/alternative"
    plain, rich = list(reply.iter_parts())
    assert plain.get_content() == "I am at the beach."     # the CRLF is the boundary's
    assert rich.get_content_type() == "text/html" and "<b>beach</b>" in rich.get_content()
    assert reply["Auto-Submitted"] == "auto-replied"


def test_from_is_used_only_when_it_is_the_accounts():
    own = vacation('vacation :from "Road Runner <rr@acme.example.com>" "x";')
    assert reply_of(action=own)[1]["From"].addresses[0].addr_spec == "rr@acme.example.com"
    assert reply_of(action=own)[1]["From"].addresses[0].display_name == "Road Runner"
    other = vacation('vacation :from "boss@acme.example.com" "x";')
    assert reply_of(action=other)[1]["From"] == RECIPIENT


def test_reply_comes_from_the_address_the_message_was_delivered_to():
    view = message(f"From: {SENDER}\r\nTo: rr@acme.example.com\r\n",
                   envelope_to="rr@acme.example.com")
    assert reply_of(view)[1]["From"] == "rr@acme.example.com"


def test_mime_reason_with_8bit_text_is_made_quoted_printable():
    action = vacation('vacation :mime text:\nContent-Type: text/plain; charset=utf-8\n\n'
                      'Je suis à la plage.\n.\n;')
    result, reply = reply_of(action=action)
    assert reply["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Je suis à la plage." in reply.get_content()
    assert result.message.isascii()


def test_mime_multipart_reason_with_8bit_parts_is_7bit():
    action = vacation('vacation :mime text:\nContent-Type: multipart/alternative; boundary=b\n'
                      '\n--b\nContent-Type: text/plain; charset=iso-8859-1\n\nà la plage\n'
                      '--b\nContent-Type: text/html\n\n<p>à la plage</p>\n--b--\n.\n;')
    result, reply = reply_of(action=action)
    plain, rich = list(reply.iter_parts())
    assert plain.get_content_charset() == "iso-8859-1" and plain.get_content() == "à la plage"
    assert rich.get_content_charset() == "utf-8" and "à la plage" in rich.get_content()
    assert result.message.isascii()
