"""IMAP rendering: strings, lists, ENVELOPE, BODY and BODYSTRUCTURE.

Expected envelopes are imaptest's fetch-envelope answers; structures follow RFC 3501
§7.4.2 and imaptest's fetch-bodystructure (which compares strings case-insensitively).
"""

from __future__ import annotations

import pytest

from mailstack.message.structure import Part, analyse
from mailstack.protocols.imap_body import bodystructure, envelope
from mailstack.protocols.imap_format import (NIL, Atom, astring, literal, nstring, quoted,
                                             render)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# -- strings and lists ---------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (b"plain", b'"plain"'),
    (b"", b'""'),
    (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
    (b"line\r\nbreak", b"{11}\r\nline\r\nbreak"),
    (b"lf\nonly", b"{7}\r\nlf\nonly"),
    (b"nul\x00", b"{4}\r\nnul\x00"),
    (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
    (b"x" * 1025, b"{1025}\r\n" + b"x" * 1025),
])
def test_quoted_falls_back_to_a_literal(value, expected):
    assert quoted(value) == expected


@pytest.mark.parametrize("value, expected", [
    (b"INBOX", b"INBOX"), (b"a]b", b"a]b"), (b"two words", b'"two words"'),
    (b"", b'""'), (b"NIL", b'"NIL"'), (b"nil", b'"nil"'), (b"a(b", b'"a(b"'),
    (b"50%", b'"50%"'), (b"a*", b'"a*"'), (b"{3}", b'"{3}"'), (b'q"', b'"q\\""'),
    (b"\xff", b"{1}\r\n\xff"),
])
def test_astring_is_an_atom_only_when_it_can_be(value, expected):
    assert astring(value) == expected


def test_nstring_literal_and_nil():
    assert nstring(None) == NIL == b"NIL"
    assert nstring(b"x") == b'"x"'
    assert literal(b"") == b"{0}\r\n"


def test_render_nested_lists():
    value = [None, 7, b"a b", "caf\u00e9", Atom(b"\\Seen"), [], [[b"x"], None]]
    assert render(value) == b'(NIL 7 "a b" {5}\r\ncaf\xc3\xa9 \\Seen () (("x") NIL))'


@pytest.mark.parametrize("value", [True, 1.5, object(), {b"a": 1}])
def test_render_refuses_what_imap_cannot_say(value):
    with pytest.raises(TypeError):
        render(value)


def test_a_value_with_crlf_cannot_end_the_response_line():
    wire = render([b"subject\r\n* 1 EXPUNGE", b"ok"])
    assert wire == b"({20}\r\nsubject\r\n* 1 EXPUNGE \"ok\")"


# -- ENVELOPE: imaptest fetch-envelope -----------------------------------------------------

DATE = "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
ENVELOPES = [
    ("Message-ID: <msg@id>\nIn-Reply-To: <reply@to.id>\n" + DATE
     + "Subject: subject header\nFrom: From Real <fromuser@fromdomain.org>\n"
     "To: To Real <touser@todomain.org>\nCc: Cc Real <ccuser@ccdomain.org>\n"
     "Bcc: Bcc Real <bccuser@bccdomain.org>\n"
     "Sender: Sender Real <senderuser@senderdomain.org>\n"
     "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n\nbody\n\n",
     '("Thu, 15 Feb 2007 01:02:03 +0200" "subject header" '
     '(("From Real" NIL "fromuser" "fromdomain.org")) '
     '(("Sender Real" NIL "senderuser" "senderdomain.org")) '
     '(("ReplyTo Real" NIL "replytouser" "replytodomain.org")) '
     '(("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) '
     '(("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>")'),
    (DATE + "From: user@domain\n\nbody\n\n",
     '("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) '
     '((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL)'),
    (DATE + "From: user@domain (Real Name)\n"
     "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
     "Cc: group:;, group2: (foo) ;\n\nbody\n\n",
     '("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) '
     '(("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) '
     '((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)'
     '(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) '
     '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) '
     'NIL NIL NIL)'),
    (DATE + "From: user@domain (Real Name)\nSender: \nReply-To: \n\nbody\n\n",
     '("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) '
     '(("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) '
     'NIL NIL NIL NIL NIL)'),
    (DATE + "From: <@route:user@domain>\n\nbody\n",
     '("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) '
     '((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) '
     'NIL NIL NIL NIL NIL)'),
]


@pytest.mark.parametrize("message, expected", ENVELOPES)
def test_envelope_as_imaptest_expects(message, expected):
    assert envelope(analyse(crlf(message)).envelope) == expected.encode()


def test_envelope_with_8bit_and_line_breaks_uses_literals():
    raw = b"Subject: caf\xc3\xa9\r\nFrom: \"A\xff\" <a@b>\r\n\r\n"
    assert envelope(analyse(raw).envelope) == (
        b'(NIL {5}\r\ncaf\xc3\xa9 (({2}\r\nA\xff NIL "a" "b")) (({2}\r\nA\xff NIL "a" "b")) '
        b'(({2}\r\nA\xff NIL "a" "b")) NIL NIL NIL NIL NIL)')


# -- BODY and BODYSTRUCTURE ----------------------------------------------------------------

IMAPTEST_BODYSTRUCTURE = crlf("""\
From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar--
""")


def test_body_as_imaptest_expects():
    expected = b'(("TEXT" "x-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED")'
    got = bodystructure(analyse(IMAPTEST_BODYSTRUCTURE), extended=False)
    assert got.upper() == expected.upper()
    assert got == b'(("TEXT" "X-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED")'


def test_bodystructure_adds_extension_data():
    got = bodystructure(analyse(IMAPTEST_BODYSTRUCTURE), extended=True)
    assert got == (b'(("TEXT" "X-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1 '
                   b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "foo bar") NIL NIL NIL)')


NESTED = crlf("""\
From: user@domain.org
Content-Type: multipart/mixed; boundary="foo bar"

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar
Content-Type: message/rfc822

From: sub@domain.org
Subject: submsg
Content-Type: multipart/alternative; boundary="sub1"

--sub1
Content-Type: text/html

<p>Hello world</p>

--sub1
Content-Type: text/plain

Hello another world

--sub1--

--foo bar--
""")
SUB_ENVELOPE = (b'(NIL "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
                b'((NIL NIL "sub" "domain.org")) NIL NIL NIL NIL NIL)')


def test_message_rfc822_carries_envelope_structure_and_lines():
    size = analyse(NESTED).children[1].body_size
    assert bodystructure(analyse(NESTED), extended=False) == (
        b'(("TEXT" "X-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" %d ' % size + SUB_ENVELOPE
        + b' (("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 1)'
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 21 1) "ALTERNATIVE") 15)'
        b' "MIXED")')


def test_bodystructure_of_message_rfc822_is_extended_all_the_way_down():
    got = bodystructure(analyse(NESTED), extended=True)
    assert b'"7BIT" 21 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "sub1") NIL NIL NIL) 15 ' \
           b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "foo bar") NIL NIL NIL)' in got


def test_single_part_extension_fields():
    raw = crlf("Content-Type: application/pdf; name=\"r.pdf\"\nContent-ID: <c@x>\n"
               "Content-Description: report\nContent-Transfer-Encoding: base64\n"
               "Content-MD5: Q2hlY2s=\nContent-Disposition: attachment; filename=r.pdf\n"
               "Content-Language: en, de\nContent-Location: http://x/r.pdf\n\nJVBERi0=\n")
    assert bodystructure(analyse(raw), extended=True) == (
        b'("APPLICATION" "PDF" ("NAME" "r.pdf") "<c@x>" "report" "BASE64" 10 "Q2hlY2s=" '
        b'("ATTACHMENT" ("FILENAME" "r.pdf")) ("en" "de") "http://x/r.pdf")')
    assert bodystructure(analyse(raw), extended=False) == (
        b'("APPLICATION" "PDF" ("NAME" "r.pdf") "<c@x>" "report" "BASE64" 10)')


def test_a_single_language_is_a_string_and_a_bare_disposition_has_nil_params():
    raw = crlf("Content-Language: fr\nContent-Disposition: inline\n\nbonjour\n")
    assert bodystructure(analyse(raw), extended=True) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 9 1 NIL ("INLINE" NIL) '
        b'"fr" NIL)')


def test_a_message_without_mime_headers():
    raw = crlf("Subject: plain\n\nline one\nline two\n")
    assert bodystructure(analyse(raw), extended=False) == \
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2)'


def test_multipart_with_no_parts_reports_one_empty_text_part():
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\nnothing\n")
    assert bodystructure(analyse(raw), extended=False) == \
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0) "MIXED")'
    assert bodystructure(analyse(raw), extended=True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL) '
        b'"MIXED" ("BOUNDARY" "b") NIL NIL NIL)')


def test_digest_parts_render_as_messages():
    raw = crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: a\n\nA\n--d--\n")
    assert bodystructure(analyse(raw), extended=False) == (
        b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 15 (NIL "a" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1) 3) "DIGEST")')


def test_message_global_renders_like_message_rfc822():
    raw = crlf("Content-Type: message/global\n\nSubject: caf\n\nx\n")
    assert bodystructure(analyse(raw), extended=False) == (
        b'("MESSAGE" "GLOBAL" NIL NIL NIL "7BIT" 19 (NIL "caf" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1) 3)')


def test_rfc2231_parameters_pass_through_in_ascii():
    raw = crlf("Content-Type: text/plain; charset=utf-8\n"
               "Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC;"
               " filename*1=.txt\n\nx")
    got = bodystructure(analyse(raw), extended=True)
    assert b'("ATTACHMENT" ("FILENAME*" "utf-8\'\'%E2%82%AC.txt"))' in got


def test_structure_survives_the_database_round_trip():
    part = analyse(NESTED)
    again = Part.from_json(part.to_json())
    assert bodystructure(again, True) == bodystructure(part, True)
    assert envelope(again.envelope) == envelope(part.envelope)
