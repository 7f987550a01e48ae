"""The header read once (message/head.py) stands in for the three parsers it replaces.

Why these tests: the stored search headers, MIME structure and ENVELOPE must be the same
octets whether the header was read by ``read_head`` or by the general parsers (the email
package for search, ``first_fields`` for structure and envelope).  Each case is computed
both ways and compared: hand-written headers that sit on the edge of "plain", and a few
thousand random ones built from the pieces broken mail is made of.
"""

from __future__ import annotations

import random
from email.header import decode_header, make_header

import pytest

from mailstack.message.head import read_head
from mailstack.message.structure import analyse
from mailstack.store import mailboxes
from mailstack.store.search_facts import _decoded, search_facts

BODY = b"Hello there,\r\nthis is the body.\r\n"

EDGES = [
    b"From: loadgen <sender@remote.test>\r\nTo: rcpt@example.test\r\nSubject: x 1\r\n"
    b"Message-ID: <1.2@loadgen.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
    b"Subject: =?utf-8?q?caf=C3=A9?= and =?iso-8859-1?b?Y2Fm6Q==?=\r\nTo: a@b\r\n\r\n",
    b"Subject: caf\xc3\xa9 raw UTF-8\r\nFrom: \"J\xc3\xb6rg\" <j@x.test>\r\n\r\n",
    b"To: \"a  b\"  <a@b>,\r\n\t(comment) c@d, group: e@f, g@h;\r\nCc: undisclosed:;\r\n\r\n",
    b"Date: \r\n Mon, 1 Dec 2025 23:30 -0800\r\nDATE: Tue, 2 Dec 2025 00:00 +0000\r\n\r\n",
    b"Date:\r\nSubject:\r\nFrom:\r\n\r\n",
    b"Content-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n\r\n--b1\r\n"
    b"Content-Type: text/plain\r\n\r\npart one\r\n--b1--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nFrom: inner@x\r\nSubject: inner\r\n\r\nbody\r\n",
    b"From: a@b\r\n --not-a-boundary: x\r\n--b: y\r\n\r\n",
    b"X-Weird: \x01\x0b\x0c\x1c\x1f end\r\nSubject: a\x1cb\x1dc\r\n\r\n",
    b"Subject: =?bogus?x?abc?= and =? ?=\r\n\r\n",
    b"Subject: =?utf-8?B?invalid base64?=\r\n\r\n",
    b"Reply-To: <>\r\nSender: \r\nBcc: @route,@r2:user@host\r\n\r\n",
    # Not plain: each must give None, and the general parsers.
    b"From sender@host Mon Dec  1\r\nSubject: unix from\r\n\r\n",
    b"Subject: bare LF\nTo: a@b\r\n\r\n",
    b"Subject: bare CR\rTo: a@b\r\n\r\n",
    b" continuation first\r\nSubject: x\r\n\r\n",
    b"Subject : space before colon\r\n\r\n",
    b"no colon here\r\nSubject: x\r\n\r\n",
    b":no name\r\nSubject: x\r\n\r\n",
    b"\r\nSubject: starts with a blank line\r\n\r\n",
    b"Subject: no blank line at all\r\n",
    b"Subject: LF only\n\nbody\n",
    b"Subj\xc3\xa9ct: non-ASCII name\r\n\r\n",
]


def _reference(message: bytes):
    """The facts as the general parsers compute them."""
    headers, sent_at = search_facts(message)
    return headers, sent_at, analyse(message).to_json()


def _one_pass(message: bytes):
    head = read_head(message)
    headers, sent_at = search_facts(message, head)
    return headers, sent_at, analyse(message, head).to_json()


@pytest.mark.parametrize("header", EDGES)
def test_one_pass_gives_what_the_general_parsers_give(header):
    message = header + BODY
    assert _one_pass(message) == _reference(message)
    assert mailboxes.facts_of(message) == mailboxes.MessageFacts(
        *_reference(message)[:2], mailboxes.body_text(message, analyse(message)),
        analyse(message).to_json())


def test_plain_headers_are_read_once_and_others_are_not():
    assert read_head(EDGES[0] + BODY) is not None
    assert read_head(EDGES[2] + BODY) is not None          # raw UTF-8 values are plain
    for header in EDGES[EDGES.index(b"From sender@host Mon Dec  1\r\nSubject: unix from"
                                    b"\r\n\r\n"):]:
        assert read_head(header + BODY) is None, header


def test_an_address_field_is_parsed_once_for_envelope_and_search():
    head = read_head(EDGES[0] + BODY)
    analyse(EDGES[0] + BODY, head)
    search_facts(EDGES[0] + BODY, head)
    assert sorted(head._parsed) == [b"loadgen <sender@remote.test>", b"rcpt@example.test"]


_NAMES = ["From", "To", "cc", "BCC", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
          "In-Reply-To", "Content-Type", "Content-Transfer-Encoding", "X-Mailer",
          "Content-Disposition", "MIME-Version", "date", "FROM", "X-a:b"]
_PIECES = [b"a@b.test", b"<x@y>", b"\"Q  uoted\\\" name\"", b"(comment (nested))", b",", b";",
           b":", b" ", b"  ", b"\t", b"=?utf-8?q?=C3=A9t=C3=A9?=", b"=?iso-8859-1?B?6Q==?=",
           b"=?", b"?=", b"\xc3\xa9", b"\xff", b"\x00", b"\x1c", b"\x0b", b"group:", b"@r:",
           b"text/plain; charset=\"utf-8\"", b"multipart/mixed; boundary=zz",
           b"Mon, 1 Dec 2025 23:30:00 -0800", b"31 Feb 99", b"word", b"<>", b"\\", b"\""]
_BREAKS = [b"\r\n", b"\r\n", b"\r\n", b"\r\n ", b"\r\n\t", b"\n", b"\r", b"\r\n\r\n "]


def _random_header(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(_NAMES).encode()
        if rng.random() < 0.03:
            name = rng.choice([b"From ", b"", b" X", b"X Y", b"X\xc3\xa9"]) + name
        value = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.3:
            value += rng.choice(_BREAKS) + b"".join(rng.choice(_PIECES)
                                                    for _ in range(rng.randint(0, 3)))
        lines.append(name + rng.choice([b": ", b":", b":\t", b" : "]) + value)
    if rng.random() < 0.05:
        lines.insert(rng.randint(0, len(lines)), rng.choice([b"garbage", b" lead", b""]))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_random_headers_give_the_same_facts_either_way():
    rng = random.Random(16)
    plain = 0
    for _ in range(3000):
        message = _random_header(rng) + BODY
        plain += read_head(message) is not None
        assert _one_pass(message) == _reference(message), message
    assert plain > 600           # the one pass was taken often enough to be tested


def test_decoded_asks_the_email_package_only_for_encoded_words():
    for value in ["plain", "", " x  y ", "caf\ufffd", "a =? b", "=?utf-8?q?x?=",
                  "=?utf-8?q?caf=C3=A9?= =?bad?q?x?="]:
        try:
            expected = str(make_header(decode_header(value)))
        except (ValueError, LookupError, UnicodeError):
            expected = value
        assert _decoded(value) == expected


def test_a_bad_encoded_word_is_searched_as_written():
    """It raised HeaderParseError, which failed the whole delivery: a 451 for ever."""
    message = b"Subject: =?utf-8?B?not base64?=\r\nTo: a@b\r\n\r\nbody\r\n"
    facts = mailboxes.facts_of(message)
    assert facts.search_headers == "subject: =?utf-8?b?not base64?=\nto: a@b\n"
