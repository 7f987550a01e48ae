"""Message analysis: section slices as imaptest expects them, envelopes, hostile input.

The expected sections are those of Dovecot's imaptest scripts (fetch-body,
fetch-body-mime, fetch-body-message-rfc822*, fetch-binary-mime sizes), with the messages
as imaptest appends them: the mbox text with LF turned into CRLF.
"""

from __future__ import annotations

import email
import email.policy
import random
import sys
import time
from email.message import EmailMessage

import pytest

from mailstack.message.envelope import parse_envelope
from mailstack.message.mime_tree import MAX_DEPTH, MAX_PARTS
from mailstack.message.structure import Part, analyse
from mailstack.protocols.imap_body import bodystructure


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


NESTED = crlf("""\
From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

Root MIME prologue

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/alternative; boundary="sub1"

Sub MIME prologue
--sub1
Content-Type: text/html

<p>Hello world</p>

--sub1
Content-Type: text/plain

Hello another world

--sub1--
Sub MIME epilogue

--foo bar--
Root MIME epilogue
""")
SUB_HEADER = ("From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n"
              'Content-Type: multipart/alternative; boundary="sub1"\n\n')
SUB_TEXT = ("Sub MIME prologue\n--sub1\nContent-Type: text/html\n\n<p>Hello world</p>\n\n"
            "--sub1\nContent-Type: text/plain\n\nHello another world\n\n--sub1--\n"
            "Sub MIME epilogue\n")

RFC822 = crlf("""\
From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
""")

RFC822_X2 = crlf("""\
From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: user2@domain.org
Date: Fri, 23 Mar 2007 11:22:33 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
""")

DIGEST = crlf("""\
From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/digest; boundary="foo"

prologue

--foo 

From: m1@example.com
Subject: m1

m1 body

--foo 
X-Mime: m2 header

From: m2@example.com
Subject: m2

m2 body

--foo--

epilogue
""")


def sections(raw: bytes, *specs):
    part = analyse(raw)
    return [part.section(raw, *spec) for spec in specs]


# -- imaptest fetch-body ------------------------------------------------------------------

SIMPLE = crlf("From: User1 <user1@domain.org>\nDate: Sat, 24 Mar 2007 23:00:00 +0200\n"
              "Subject: s1\n\nbody1\n\n")


def test_header_text_and_whole_message_of_a_plain_message():
    header, text, whole = sections(SIMPLE, ((), "HEADER"), ((), "TEXT"), ((), ""))
    assert header == SIMPLE[:SIMPLE.index(b"body1")]
    assert text == b"body1\r\n\r\n"
    assert whole == SIMPLE


@pytest.mark.parametrize("names, expected", [
    (("from",), "From: User1 <user1@domain.org>\n\n"),
    (("FROM", "from"), "From: User1 <user1@domain.org>\n\n"),
    (("from", "subject"), "From: User1 <user1@domain.org>\nSubject: s1\n\n"),
    (("xyz",), "\n"),
])
def test_header_fields_keep_named_lines_then_a_blank_line(names, expected):
    assert analyse(SIMPLE).section(SIMPLE, (), "HEADER.FIELDS", names) == crlf(expected)


def test_header_fields_not_drops_named_lines():
    got = analyse(SIMPLE).section(SIMPLE, (), "header.fields.not", ("date", "DATE"))
    assert got == crlf("From: User1 <user1@domain.org>\nSubject: s1\n\n")


def test_header_fields_keep_folded_continuation_lines():
    raw = crlf("Subject: one\n two\nX-A: a\nsubject: again\n\nbody\n")
    got = analyse(raw).section(raw, (), "HEADER.FIELDS", ("Subject",))
    assert got == crlf("Subject: one\n two\nsubject: again\n\n")


# -- imaptest fetch-body-mime / fetch-binary-mime -----------------------------------------

@pytest.mark.parametrize("path, text, fields, expected", [
    ((), "TEXT", (), NESTED.decode().split("\r\n\r\n", 1)[1].replace("\r\n", "\n")),
    ((1,), "", (), "hello\n"),
    ((1,), "MIME", (), "Content-Type: text/x-myown; charset=us-ascii\n\n"),
    ((2,), "", (), SUB_HEADER + SUB_TEXT),
    ((2,), "MIME", (), "Content-Type: message/rfc822\n\n"),
    ((2,), "HEADER", (), SUB_HEADER),
    ((2,), "HEADER.FIELDS", ("from", "subject", "X-foo"),
     "From: sub@domain.org\nSubject: submsg\n\n"),
    ((2,), "HEADER.FIELDS.NOT", ("from", "subject", "X-foo"),
     'Date: Sun, 12 Aug 2012 12:34:56 +0300\n'
     'Content-Type: multipart/alternative; boundary="sub1"\n\n'),
    ((2,), "TEXT", (), SUB_TEXT),
    ((2, 1), "MIME", (), "Content-Type: text/html\n\n"),
    ((2, 1), "", (), "<p>Hello world</p>\n"),
    ((2, 2), "MIME", (), "Content-Type: text/plain\n\n"),
    ((2, 2), "", (), "Hello another world\n"),
])
def test_sections_of_a_multipart_with_an_encapsulated_multipart(path, text, fields, expected):
    assert analyse(NESTED).section(NESTED, path, text, fields) == crlf(expected)


def test_sizes_match_imaptest_binary_size():
    part = analyse(NESTED)
    assert len(NESTED) == 602
    assert [len(part.section(NESTED, path)) for path in [(1,), (2,), (2, 1), (2, 2)]] == \
        [7, 298, 20, 21]
    assert part.children[1].body_size == 298 and part.children[1].message.body_size == 164


def test_folded_boundary_parameter_is_unfolded():
    part = analyse(NESTED)
    assert part.content_param("boundary") == "foo bar"
    assert [child.type + "/" + child.subtype for child in part.children] == \
        ["text/x-myown", "message/rfc822"]


# -- imaptest fetch-body-message-rfc822, -x2, -mime ---------------------------------------

@pytest.mark.parametrize("path, text, expected", [
    ((), "TEXT", RFC822.split(b"\r\n\r\n", 1)[1]),
    ((1,), "", RFC822.split(b"\r\n\r\n", 1)[1]),
    ((1, 1), "", b"Hello world\r\n"),
    ((1,), "HEADER", crlf("From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n"
                          "Subject: submsg\n\n")),
    ((1,), "TEXT", b"Hello world\r\n"),
])
def test_sections_of_a_message_that_is_a_message(path, text, expected):
    assert analyse(RFC822).section(RFC822, path, text) == expected


def test_header_fields_of_an_encapsulated_message():
    part = analyse(RFC822)
    assert part.section(RFC822, (1,), "HEADER.FIELDS", ("from", "subject", "X-foo")) == \
        crlf("From: sub@domain.org\nSubject: submsg\n\n")
    assert part.section(RFC822, (1,), "HEADER.FIELDS.NOT", ("from", "subject", "X-foo")) == \
        crlf("Date: Sun, 12 Aug 2012 12:34:56 +0300\n\n")


X2_MIDDLE = RFC822_X2[RFC822_X2.index(b"From: user2"):]
X2_INNER = RFC822_X2[RFC822_X2.index(b"From: sub"):]


@pytest.mark.parametrize("path, text, expected", [
    ((1,), "", X2_MIDDLE),
    ((1, 1), "", X2_INNER),
    ((1,), "HEADER", X2_MIDDLE[:X2_MIDDLE.index(b"From: sub")]),
    ((1,), "TEXT", X2_INNER),
    ((1, 1, 1), "", b"Hello world\r\n"),
    ((1, 1), "HEADER", X2_INNER[:X2_INNER.index(b"Hello")]),
    ((1, 1), "TEXT", b"Hello world\r\n"),
])
def test_sections_of_a_message_in_a_message_in_a_message(path, text, expected):
    assert analyse(RFC822_X2).section(RFC822_X2, path, text) == expected


@pytest.mark.parametrize("path, text, expected", [
    ((1, 1), "", "From: m1@example.com\nSubject: m1\n\nm1 body\n"),
    ((1, 1), "MIME", "\n"),
    ((1, 1), "HEADER", "From: m1@example.com\nSubject: m1\n\n"),
    ((1, 1), "TEXT", "m1 body\n"),
    ((1, 2), "", "From: m2@example.com\nSubject: m2\n\nm2 body\n"),
    ((1, 2), "MIME", "X-Mime: m2 header\n\n"),
    ((1, 2), "HEADER", "From: m2@example.com\nSubject: m2\n\n"),
    ((1, 2), "TEXT", "m2 body\n"),
    ((1,), "TEXT", "prologue\n\n--foo \n\nFrom: m1@example.com\nSubject: m1\n\nm1 body\n\n"
                   "--foo \nX-Mime: m2 header\n\nFrom: m2@example.com\nSubject: m2\n\n"
                   "m2 body\n\n--foo--\n\nepilogue\n"),
])
def test_multipart_digest_parts_default_to_message_rfc822(path, text, expected):
    assert analyse(DIGEST).section(DIGEST, path, text) == crlf(expected)


def test_digest_default_only_applies_without_content_type():
    raw = crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: a\n\nA\n"
               "--d\nContent-Type: text/plain\n\nB\n--d--\n")
    first, second = analyse(raw).children
    assert (first.type, first.subtype, first.message.envelope.subject) == \
        ("message", "rfc822", b"a")
    assert (second.type, second.subtype, second.message) == ("text", "plain", None)


# -- sections that do not exist ------------------------------------------------------------

@pytest.mark.parametrize("raw, path, text", [
    (SIMPLE, (2,), ""), (SIMPLE, (1, 1), ""), (SIMPLE, (0,), ""), (SIMPLE, (), "MIME"),
    (SIMPLE, (1,), "HEADER"), (SIMPLE, (1,), "TEXT"), (NESTED, (3,), ""),
    (NESTED, (1,), "HEADER"), (NESTED, (1, 1), ""), (NESTED, (2, 3), ""),
    (NESTED, (2, 1, 1), "MIME"),
])
def test_missing_sections_are_none(raw, path, text):
    assert analyse(raw).section(raw, path, text) is None


def test_a_plain_message_has_a_part_one_that_is_its_body():
    part = analyse(SIMPLE)
    assert part.section(SIMPLE, (1,)) == b"body1\r\n\r\n"
    assert part.section(SIMPLE, (1,), "MIME") == part.section(SIMPLE, (), "HEADER")


def test_unknown_section_text_is_a_programming_error():
    with pytest.raises(ValueError):
        analyse(SIMPLE).section(SIMPLE, (), "BODY")


# -- structure fields ----------------------------------------------------------------------

def test_no_mime_headers_means_text_plain_us_ascii_7bit():
    part = analyse(SIMPLE)
    assert (part.type, part.subtype, part.params, part.encoding) == \
        ("text", "plain", (("charset", "us-ascii"),), "7bit")
    assert (part.body_size, part.body_lines) == (9, 2)


def test_mime_fields_are_read():
    raw = crlf('Content-Type: Text/HTML; Charset="UTF-8" (comment); format=flowed\n'
               "Content-Transfer-Encoding: Quoted-Printable (qp)\n"
               "Content-ID: <id@x>\nContent-Description: =?utf-8?q?d=C3=A9?=\n"
               "Content-MD5: Q2hlY2s=\n"
               'Content-Disposition: attachment; filename="a b.html"; size=3\n'
               "Content-Language: en (English), de\n"
               "Content-Location: http://example.com/\n x.html\n\nabc")
    part = analyse(raw)
    assert (part.type, part.subtype, part.encoding) == ("text", "html", "quoted-printable")
    assert part.params == (("charset", "UTF-8"), ("format", "flowed"))
    assert (part.id, part.description, part.md5) == \
        ("<id@x>", "=?utf-8?q?d=C3=A9?=", "Q2hlY2s=")
    assert (part.disposition, part.disposition_params) == \
        ("attachment", (("filename", "a b.html"), ("size", "3")))
    assert part.language == ("en", "de")
    assert part.location == "http://example.com/ x.html"
    assert (part.body_size, part.body_lines) == (3, 1)


def test_unquoted_parameter_values_with_forbidden_characters_are_kept():
    raw = crlf("Content-Type: multipart/mixed; boundary=----=_Part_1/2\n\n"
               "------=_Part_1/2\n\nx\n------=_Part_1/2--\n")
    part = analyse(raw)
    assert part.content_param("boundary") == "----=_Part_1/2"
    assert part.section(raw, (1,)) == b"x"


def test_rfc2231_continuations_and_charsets():
    raw = crlf("Content-Type: application/octet-stream;\n"
               " name*0*=utf-8''%E2%82%AC; name*1=\" rate.txt\";\n"
               " title*=us-ascii'en'This%20is; plain*0=\"ab\"; plain*1=cd\n"
               "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9.txt\n\nx")
    part = analyse(raw)
    assert part.params == (("name*", "utf-8''%E2%82%AC%20rate.txt"),
                           ("title*", "us-ascii'en'This%20is"), ("plain", "abcd"))
    assert part.content_param("name") == "\u20ac rate.txt"
    assert part.content_param("title") == "This is"
    assert part.content_param("plain") == "abcd"
    assert part.disposition_param("filename") == "caf\u00e9.txt"


def test_rfc2231_boundary_and_broken_charsets():
    raw = crlf("Content-Type: multipart/mixed; boundary*=us-ascii''a%20b\n\n--a b\n\nx\n--a b--\n")
    assert analyse(raw).section(raw, (1,)) == b"x"
    for charset, data in [("no-such-charset", "%FF"), ("rot13", "a"), ("base64", "YQ=="),
                          ("utf-8\x00", "a"), ("utf-7", "+2AA-"), ("unicode_escape", "%5Cud800")]:
        raw = crlf(f"Content-Type: multipart/mixed; boundary*={charset}''{data}\n\n")
        analyse(raw).content_param("boundary").encode("utf-8")


def test_unreadable_content_type_gets_the_default():
    for value in ("garbage", "text/", "/plain", "multipart/mixed", "te xt/plain"):
        raw = crlf(f"Content-Type: {value}\n\nbody\n")
        assert (analyse(raw).type, analyse(raw).subtype) == ("text", "plain"), value


def test_missing_closing_boundary_ends_the_last_part_at_the_end():
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n")
    part = analyse(raw)
    assert part.section(raw, (1,)) == b"one"
    assert part.section(raw, (2,)) == b"two\r\n"


def test_an_outer_boundary_closes_inner_parts():
    raw = crlf("Content-Type: multipart/mixed; boundary=out\n\n--out\n"
               "Content-Type: multipart/alternative; boundary=in\n\n--in\n\ninner\n"
               "--out\n\nsecond\n--out--\n")
    part = analyse(raw)
    assert part.section(raw, (1, 1)) == b"inner"
    assert part.section(raw, (2,)) == b"second"


def test_nested_multipart_inside_rfc822_inside_multipart():
    raw = crlf("Content-Type: multipart/mixed; boundary=a\n\n--a\n\nfirst\n--a\n"
               "Content-Type: message/rfc822\n\nSubject: inner\n"
               "Content-Type: multipart/related; boundary=b\n\n--b\n"
               "Content-Type: multipart/alternative; boundary=c\n\n--c\n\nplain\n--c\n"
               "Content-Type: text/html\n\n<b>html</b>\n--c--\n--b\n"
               "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBO\n"
               "--b--\n--a--\n")
    part = analyse(raw)
    assert part.section(raw, (2, 1, 1)) == b"plain"
    assert part.section(raw, (2, 1, 2)) == b"<b>html</b>"
    assert part.section(raw, (2, 1, 2), "MIME") == b"Content-Type: text/html\r\n\r\n"
    assert part.section(raw, (2, 2)) == b"iVBO"
    assert part.children[1].message.envelope.subject == b"inner"
    assert part.children[1].message.children[1].encoding == "base64"


def test_bare_lf_line_ends():
    raw = NESTED.replace(b"\r\n", b"\n")
    part = analyse(raw)
    assert part.section(raw, (1,)) == b"hello\n"
    assert part.section(raw, (2, 2)) == b"Hello another world\n"
    assert part.section(raw, (2,), "HEADER.FIELDS", ("subject",)) == \
        b"Subject: submsg\n\r\n"
    assert part.content_param("boundary") == "foo bar"


def test_no_blank_line_means_all_header_and_an_empty_body():
    raw = b"Subject: hi\r\nFrom: a@b"
    part = analyse(raw)
    assert (part.body_start, part.end, part.body_lines) == (len(raw), len(raw), 0)
    assert part.envelope.subject == b"hi"
    assert part.section(raw, (), "TEXT") == b""
    assert part.section(raw, (), "HEADER.FIELDS", ("from",)) == b"From: a@b\r\n\r\n"


def test_message_without_header_starts_with_its_body():
    raw = b"\r\njust a body\r\n"
    part = analyse(raw)
    assert part.section(raw, (), "HEADER") == b"\r\n"
    assert part.section(raw, (1,)) == b"just a body\r\n"


def test_nul_bytes_in_header_and_body_survive_json():
    raw = b"Subject: a\x00b\xff\r\nContent-Type: text/plain; name=\"\x00\xe9\"\r\n\r\nbo\x00dy"
    part = analyse(raw)
    assert part.envelope.subject == b"a\x00b\xff"
    assert part.section(raw, (), "TEXT") == b"bo\x00dy"
    text = part.to_json()
    assert text.isascii() and "\x00" not in text
    assert Part.from_json(text) == part
    assert Part.from_json(text).content_param("name").encode("utf-8", "surrogateescape") == \
        b"\x00\xe9"


@pytest.mark.parametrize("raw", [SIMPLE, NESTED, RFC822, RFC822_X2, DIGEST, b""])
def test_json_round_trip(raw):
    part = analyse(raw)
    assert Part.from_json(part.to_json()) == part


def test_empty_message():
    part = analyse(b"")
    assert (part.header_start, part.body_start, part.end) == (0, 0, 0)
    assert part.section(b"", ()) == b"" and part.section(b"", (1,)) == b""


def test_multipart_without_any_boundary_line_has_no_children():
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\nno parts here\n")
    part = analyse(raw)
    assert part.is_multipart and part.children == ()
    assert part.section(raw, (1,)) is None


def test_encoded_message_rfc822_is_opaque():
    raw = crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdA==\n")
    part = analyse(raw)
    assert (part.type, part.subtype, part.message) == ("application", "octet-stream", None)


# -- envelope ------------------------------------------------------------------------------

def test_envelope_fields_are_raw_and_first_occurrence_wins():
    env = parse_envelope(crlf("Subject: =?utf-8?q?caf=C3=A9?=\n folded\nSubject: second\n"
                              "Message-ID: <m@x>\nIn-Reply-To: <r@x>\nDate: today\n\n"))
    assert env.subject == b"=?utf-8?q?caf=C3=A9?= folded"
    assert (env.message_id, env.in_reply_to, env.date) == (b"<m@x>", b"<r@x>", b"today")
    assert env.from_ is env.sender is env.reply_to is None


@pytest.mark.parametrize("value, expected", [
    (b"user@domain", [(None, None, b"user", b"domain")]),
    (b"user@domain (Real Name)", [(b"Real Name", None, b"user", b"domain")]),
    (b'"Doe, John" <j@x>', [(b"Doe, John", None, b"j", b"x")]),
    (b'"a \\"q\\"" Name <j@x> (ignored)', [(b'a "q" Name', None, b"j", b"x")]),
    (b"=?utf-8?q?J=C3=B6rg?= <j@x>", [(b"=?utf-8?q?J=C3=B6rg?=", None, b"j", b"x")]),
    (b"<@route:user@domain>", [(None, b"@route", b"user", b"domain")]),
    (b"<@a,@b:user@domain>", [(None, b"@a,@b", b"user", b"domain")]),
    (b'"john doe"@example.com', [(None, None, b'"john doe"', b"example.com")]),
    (b"john . doe @ example . com", [(None, None, b"john.doe", b"example.com")]),
    (b"localonly", [(None, None, b"localonly", None)]),
    (b"a@b, , c@d", [(None, None, b"a", b"b"), (None, None, b"c", b"d")]),
    (b"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
     [(None, None, b"group", None), (None, None, b"g1", b"d1.org"),
      (None, None, b"g2", b"d2.org"), (None, None, None, None),
      (None, None, b"group2", None), (None, None, b"g3", b"d3.org"),
      (None, None, None, None)]),
    (b"group:;, group2: (foo) ;", [(None, None, b"group", None), (None, None, None, None),
                                   (None, None, b"group2", None), (None, None, None, None)]),
    (b"undisclosed:", [(None, None, b"undisclosed", None), (None, None, None, None)]),
    (b"<>", None), (b"", None), (b"(only a comment)", None),
])
def test_addresses(value, expected):
    env = parse_envelope(b"To: " + value + b"\r\n\r\n")
    assert env.to == (tuple(expected) if expected else None)


def test_sender_and_reply_to_copy_from_when_absent_or_empty():
    env = parse_envelope(crlf("From: a@b\nSender: \nReply-To: <>\n\n"))
    assert env.sender == env.reply_to == env.from_ == ((None, None, b"a", b"b"),)


@pytest.mark.parametrize("value", [
    b"<", b">", b"@", b":", b";", b'"', b"(", b")", b"\\", b"[", b"a@[1.2", b"<<a@b>>",
    b"a:b:c;d;e", b"\x00\xff@\x80", b'"\\', b"(\\", b"<@:>", b"x <y", b"@@@,,,;;;:::",
])
def test_garbage_addresses_never_raise_nor_make_three_field_addresses(value):
    env = parse_envelope(b"From: " + value + b"\r\n\r\n")
    for address in env.from_ or ():
        assert len(address) == 4


def test_a_huge_address_field_is_read_up_to_a_limit():
    raw = b"To: " + b"a@b, " * 400_000 + b"\r\n\r\n"
    started = time.perf_counter()
    env = parse_envelope(raw)
    assert time.perf_counter() - started < 5
    assert 40_000 < len(env.to) < 60_000


# -- agreement with the standard library on well-formed mail ------------------------------

def _random_message(rng: random.Random, depth: int = 0) -> EmailMessage:
    message, roll = EmailMessage(), rng.random()
    if depth < 4 and roll < 0.35:
        message["Subject"] = f"level {depth}"
        message.make_mixed() if roll < 0.2 else message.make_alternative()
        for _ in range(rng.randrange(1, 4)):
            message.attach(_random_message(rng, depth + 1))
    elif depth < 4 and roll < 0.5:
        message["Content-Type"] = "message/rfc822"
        message.set_payload([_random_message(rng, depth + 1)])
    else:
        text = "\n".join(f"word {i}" for i in range(rng.randrange(1, 5)))
        message.set_content(text, subtype=rng.choice(["plain", "html"]))
    return message


def _leaves(message, path: tuple[int, ...], as_message: bool):
    """(section path, payload) of each leaf, numbered as RFC 3501 §6.4.5 says."""
    if message.get_content_maintype() == "multipart":
        for number, child in enumerate(message.get_payload(), 1):
            yield from _leaves(child, path + (number,), False)
    elif as_message:
        yield from _leaves(message, path + (1,), False)
    elif message.get_content_type() == "message/rfc822":
        yield from _leaves(message.get_payload()[0], path, True)
    else:
        yield path, message.get_payload().encode()


def test_leaf_sections_agree_with_the_standard_library():
    rng = random.Random(2046)
    for _ in range(300):
        raw = _random_message(rng).as_bytes(policy=email.policy.SMTP)
        part = analyse(raw)
        for path, payload in _leaves(email.message_from_bytes(raw), (), True):
            assert part.section(raw, path) == payload, path


# -- hostile input -------------------------------------------------------------------------

def _invariants(raw: bytes, part: Part, outer=None) -> None:
    lo, hi = (0, len(raw)) if outer is None else outer
    assert lo <= part.header_start <= part.body_start <= part.end <= hi
    for child in part.children:
        _invariants(raw, child, (part.body_start, part.end))
    if part.message is not None:
        assert part.message.header_start == part.body_start
        _invariants(raw, part.message, (part.body_start, part.end))


def _exercise(raw: bytes) -> Part:
    part = analyse(raw)
    _invariants(raw, part)
    assert Part.from_json(part.to_json()) == part
    bodystructure(part, True)
    for path in [(), (1,), (2,), (1, 1), (2, 1), (1, 2, 1)]:
        for text in ("", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            part.section(raw, path, text, ("subject", "content-type"))
    return part


def test_fuzz_random_bytes():
    rng = random.Random(12)
    alphabet = b"\r\n\r\n--:;= \"()<>@,b\x00\xffContent-Type multipart/mixed message/rfc822"
    for _ in range(400):
        size = rng.randrange(0, 400)
        _exercise(bytes(rng.choice(alphabet) for _ in range(size)))
        _exercise(rng.randbytes(size))


def test_fuzz_mutated_messages():
    rng = random.Random(3501)
    samples = [NESTED, RFC822_X2, DIGEST, NESTED.replace(b"\r\n", b"\n")]
    for _ in range(600):
        raw = bytearray(rng.choice(samples))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(raw))
            action = rng.randrange(3)
            if action == 0:
                del raw[at:at + rng.randrange(1, 40)]
            elif action == 1:
                raw[at:at] = rng.choice([b"\r\n", b"\n", b"--foo bar\r\n", b"--sub1--\n",
                                         b"--foo\r\n", b"\r\n\r\n", b'"', b"(", b"\x00"])
            else:
                raw[at] = rng.randrange(256)
        _exercise(bytes(raw))


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@pytest.mark.parametrize("name, raw", [
    ("50,000 parts", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                     + b"--b\r\n\r\nx\r\n" * 50_000 + b"--b--\r\n"),
    ("100,000 nested multiparts", b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(100_000))),
    ("100,000 nested messages", b"Content-Type: message/rfc822\r\n\r\n" * 100_000),
    ("100,000 nested same boundary", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                                     * 100_000),
    ("5,000,000 dash lines", b"Content-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\n"
                             + b"--x\n" * 5_000_000),
])
def test_hostile_structure_is_bounded_and_fast(name, raw):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + 500)    # recursion does not grow with input
    try:
        started = time.perf_counter()
        part = _exercise(raw)
        elapsed = time.perf_counter() - started
    finally:
        sys.setrecursionlimit(limit)
    assert elapsed < 10, name

    def count(p, depth=0):
        inner = [count(c, depth + 1) for c in p.children + ((p.message,) if p.message else ())]
        return 1 + sum(n for n, _ in inner), max([depth] + [d for _, d in inner])
    parts, depth = count(part)
    assert parts <= MAX_PARTS and depth <= MAX_DEPTH


def test_twenty_megabytes_analyse_well_under_a_second_per_megabyte():
    rng = random.Random(20)
    attachment = b"".join(b"%076x\r\n" % rng.getrandbits(300) for _ in range(200_000))
    text = b"".join(b"line %d of a typical text part -- with words\r\n" % i
                    for i in range(100_000))
    raw = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n"
           b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n'
           b"Content-Type: text/plain\r\n\r\n" + text + b"--XYZ\r\n"
           b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + attachment + b"--XYZ--\r\n")
    megabytes = len(raw) / 1e6
    started = time.perf_counter()
    part = analyse(raw)
    per_megabyte = (time.perf_counter() - started) / megabytes
    assert megabytes > 20 and per_megabyte < 0.1
    assert [child.body_lines for child in part.children] == [100_000, 200_000]


SPAN_MESSAGE = (b"From: a@example.test\r\nSubject: spans\r\nContent-Type: multipart/mixed; "
                b"boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n"
                b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n")


@pytest.mark.parametrize("path, text", [((), ""), ((), "HEADER"), ((), "TEXT"), ((1,), ""),
                                        ((1,), "MIME"), ((2,), ""), ((2,), "HEADER"),
                                        ((2,), "TEXT"), ((2, 1), ""), ((3,), ""), ((1,), "HEADER")])
def test_a_section_is_the_bytes_of_its_span(path, text):
    """A large message's sections are read by span alone (issue 13): span and section agree."""
    tree = analyse(SPAN_MESSAGE)
    span = tree.span(path, text)
    section = tree.section(SPAN_MESSAGE, path, text)
    assert (span is None) == (section is None)
    if span is not None:
        assert SPAN_MESSAGE[span[0]:span[1]] == section


def test_a_span_of_a_large_message_slices_like_its_bytes():
    from mailstack.protocols.imap_fetch import Span
    raw = bytes(range(256)) * 4
    span = Span(7, 100, 900)
    for piece in (slice(0, 10), slice(795, 900), slice(900, 1000), slice(10, 5)):
        part = span[piece]
        assert raw[part.start:part.end] == raw[100:900][piece] and part.message_id == 7
