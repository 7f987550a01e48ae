"""spam_scan's own parts: reading rspamd's answer, our X-Spam-* fields, and removing the
ones a sender wrote (the scan itself runs against a real rspamd: tests/e2e/test_spam_scan.py)."""

from __future__ import annotations

import email

import pytest

from mailstack.message.spool import spooled
from mailstack.policy import spam_scan
from mailstack.policy.spam_scan import ScanFailed, SpamResult, parsed

# The shape rspamd 3.4 answers /checkv2 with (abridged from a real answer).
ANSWER = {"is_skipped": False, "score": 3.4, "required_score": 15.0, "action": "add header",
          "symbols": {"MISSING_MID": {"name": "MISSING_MID", "score": 2.5},
                      "MISSING_DATE": {"name": "MISSING_DATE", "score": 1.0},
                      "MIME_GOOD": {"name": "MIME_GOOD", "score": -0.1,
                                    "options": ["text/plain"]}},
          "messages": {}}


def test_an_answer_becomes_an_action_score_and_sorted_symbols():
    result = parsed(ANSWER)
    assert (result.action, result.score, result.required) == ("add header", 3.4, 15.0)
    assert [name for name, _ in result.symbols] == ["MIME_GOOD", "MISSING_DATE", "MISSING_MID"]
    assert result.spam


@pytest.mark.parametrize("answer", [{}, {"action": 5}, {"action": None}])
def test_an_answer_without_an_action_is_a_failure(answer):
    with pytest.raises(ScanFailed):
        parsed(answer)


def test_symbol_names_cannot_inject_header_lines():
    evil = dict(ANSWER, symbols={"A\r\nBcc: x@y.test": {"score": 1}}, action="no action\r\nX: y")
    header = parsed(evil).header
    assert header.count(b"\r\n") == header.count(b"\r\nX-Spam-") + 1
    assert b"ABcc" in header and b"\r\nBcc" not in header and b"\r\nX:" not in header


def test_our_fields_are_folded_and_read_back_by_a_mail_reader():
    many = {f"SYMBOL_NUMBER_{i}": {"score": i / 10} for i in range(30)}
    header = parsed(dict(ANSWER, symbols=many)).header
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    msg = email.message_from_bytes(header + b"\r\nbody\r\n")
    assert msg["X-Spam-Status"] == "Yes, score=3.40 required=15.00 action=add_header"
    assert msg["X-Spam-Score"] == "3.40"
    assert " ".join(msg["X-Spam-Symbols"].split()).count("SYMBOL_NUMBER_") == 30


def test_unchecked_is_one_field():
    assert SpamResult(None, unchecked="failed").header == b"X-Spam-Status: unchecked\r\n"


def test_fields_a_sender_wrote_are_removed_from_the_header_only():
    message = (b"X-Spam-Status: No, score=-100\r\nSubject: hi\r\nX-Spam-Score: -100\r\n"
               b"X-Spam-Symbols: A,\r\n B\r\nX-Spam-Flag: NO\r\nX-Spam: no\r\n\r\n"
               b"X-Spam-Status: quoted in the body stays\r\n")
    spool = spooled(message)
    spam_scan._strip_forged(spool)
    assert spool.read() == (b"Subject: hi\r\n\r\nX-Spam-Status: quoted in the body stays\r\n")
    spool.close()
