"""Sieve's test commands on real messages (sieve/conditions.py, sieve/message_view.py,
sieve/body.py): header, address, envelope, exists, size, true/false, allof/anyof/not,
body, hasflag and mailboxexists, with the edge cases RFC 5228 §5 spells out.

Each test runs a script ``if <test> { fileinto "hit"; }`` and looks at where the message
went: the interpreter end to end, from sievelib's tree to the outcome.
"""

from __future__ import annotations

import pytest

from mailstack.sieve.actions import FileInto, Keep
from tests.support.sieve import HEADER, message, run, script

REQUIRE = 'require ["fileinto", "envelope", "body", "imap4flags", "mailbox"];\n'


def hit(test: str, view=None, **options) -> bool:
    outcome = run(f'{REQUIRE}if {test} {{ fileinto "hit"; }}', view, **options)
    assert outcome.error is None, outcome.error
    return outcome.actions == (FileInto("hit"),)


# header (RFC 5228 §5.7) ---------------------------------------------------------------

@pytest.mark.parametrize("test, expected", [
    ('header :is "X-Caffeine" ""', False),              # §5.7's own example
    ('header :contains "X-Caffeine" ""', True),
    ('header :contains "X-Decaf" ""', False),           # a missing field matches nothing
    ('header :is "x-caffeine" "c8h10n4o2"', True),      # names and (default) values casemapped
    ('header :is :comparator "i;octet" "X-Caffeine" "c8h10n4o2"', False),
    ('header "subject" "I have a present for you"', True),   # :is is the default
    ('header :contains ["From", "Subject"] "present"', True),
    ('header :contains "Subject" ["anvil", "present"]', True),
    ('header :matches "Subject" "I have*"', True),
    ('header :matches "Subject" "have*"', False),
    ('not header :matches "Cc" "?*"', False),
    ('not header :matches "Bcc" "?*"', True),           # absent or empty, as §5.7 shows
])
def test_header(test, expected):
    assert hit(test) is expected


def test_header_decodes_encoded_words_and_unfolds():
    view = message("Subject: =?utf-8?q?caf=C3=A9?=\r\n =?iso-8859-1?b?6XTp?= time\r\n"
                   "X-Long: one\r\n\ttwo\r\n")
    assert hit('header :is "Subject" "caféété time"', view)
    assert hit('header :is "X-Long" "one\ttwo"', view)


def test_header_reads_raw_utf8():
    view = message("Subject: Grüße aus Köln\r\n")
    assert hit('header :contains "Subject" "Grüße"', view)


def test_header_trims_leading_and_trailing_whitespace():
    assert hit('header :is "X-Pad" "padded"', message("X-Pad:   padded  \r\n"))


def test_header_tests_every_occurrence():
    view = message("Received: from a.example\r\nReceived: from b.example\r\n")
    assert hit('header :is "Received" "from b.example"', view)
    assert not hit('header :is "Received" "from c.example"', view)


def test_header_broken_encoded_word_is_compared_as_written():
    view = message("Subject: =?utf-8?b?!!!?= hi\r\n")
    assert hit('header :contains "Subject" "hi"', view)


# address (RFC 5228 §5.1, §2.7.4) ------------------------------------------------------

@pytest.mark.parametrize("test, expected", [
    ('address :is "from" "coyote@desert.example.org"', True),
    ('address :all :is "from" "COYOTE@DESERT.EXAMPLE.ORG"', True),
    ('address :localpart :is "from" "coyote"', True),
    ('address :domain :is "from" "desert.example.org"', True),
    ('address :domain :matches "from" "*.example.org"', True),
    ('address :is "from" "Wile E. Coyote"', False),            # never the display name
    ('address :contains "from" "Wile"', False),
    ('address :domain :is "cc" "bunny.example.net"', True),    # inside a group
    ('address :contains "cc" "friends"', False),               # never the group's name
    ('address :is ["to", "cc"] "elmer@fudd.example.net"', True),
    ('address :is "bcc" "x@y.example"', False),                # a missing field
])
def test_address(test, expected):
    assert hit(test) is expected


def test_address_without_domain_matches_only_all():
    view = message("To: postmaster\r\n")
    assert hit('address :all :is "to" "postmaster"', view)
    assert not hit('address :localpart :is "to" "postmaster"', view)
    assert not hit('address :domain :contains "to" ""', view)


def test_address_undisclosed_recipients_group_has_no_address():
    view = message("To: undisclosed-recipients:;\r\n")
    assert not hit('address :contains "to" ""', view)
    assert hit('header :contains "to" "undisclosed"', view)


def test_address_quoted_local_part_and_source_route():
    view = message('To: "john doe"@example.com, <@relay.example:jane@example.com>\r\n')
    assert hit('address :localpart :is "to" "john doe"', view)
    assert hit('address :is "to" "jane@example.com"', view)


def test_address_on_a_field_without_addresses_fails_the_script():
    compiled = script(f'{REQUIRE}if address :is "subject" "x" {{ discard; }}')
    assert "subject" in compiled.error
    assert compiled.run(message()).actions == (Keep(),)


# envelope (RFC 5228 §5.4) -------------------------------------------------------------

@pytest.mark.parametrize("test, expected", [
    ('envelope :is "from" "coyote@desert.example.org"', True),
    ('envelope :domain :is "from" "desert.example.org"', True),
    ('envelope :localpart :is "to" "roadrunner"', True),
    ('envelope :is "TO" "ROADRUNNER@ACME.EXAMPLE.COM"', True),
    ('envelope :is ["from", "to"] "roadrunner@acme.example.com"', True),
    ('envelope :is "from" ""', False),
])
def test_envelope(test, expected):
    assert hit(test) is expected


def test_envelope_null_sender_is_the_empty_string_whatever_the_part():
    view = message(envelope_from="")
    assert hit('envelope :is "from" ""', view)
    assert hit('envelope :localpart :is "from" ""', view)
    assert hit('envelope :domain :is "from" ""', view)


def test_envelope_unknown_part_fails_the_script():
    assert "auth" in script(f'{REQUIRE}if envelope "auth" "x" {{ discard; }}').error


def test_envelope_to_is_the_recipient_of_this_delivery():
    view = message().for_recipient("other@acme.example.com")
    assert hit('envelope :is "to" "other@acme.example.com"', view)
    assert hit('header :contains "subject" "present"', view)      # the header is shared


# exists, size, true, false, allof, anyof, not (RFC 5228 §5.2-§5.10) ---------------------

@pytest.mark.parametrize("test, expected", [
    ('exists "From"', True),
    ('exists ["From", "Date", "x-caffeine"]', True),
    ('exists ["From", "X-Missing"]', False),                   # all of them must exist
    ('not exists ["From","Date"]', False),
    ('true', True),
    ('false', False),
    ('not true', False),
    ('allof (true, true)', True),
    ('allof (false, true)', False),
    ('anyof (false, false)', False),
    ('anyof (false, true)', True),
    ('anyof (not exists "X-None", false)', True),
    ('allof (anyof (false, true), not allof (true, false))', True),
])
def test_logic_and_exists(test, expected):
    assert hit(test) is expected


def test_size_over_and_under_are_strict():
    view = message()
    size = view.size
    assert hit(f"size :over {size - 1}", view) and not hit(f"size :over {size}", view)
    assert hit(f"size :under {size + 1}", view) and not hit(f"size :under {size}", view)


def test_size_quantifiers():
    big = message(body="x" * 2048)
    assert hit("size :over 1K", big) and hit("size :under 1M", big)
    assert not hit("size :over 1G", big)


# body (RFC 5173) ------------------------------------------------------------------------

MULTIPART = (
    "From: a@b.example\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n",
    "This is a multi-part message in MIME format.\r\n\r\n"
    "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
    "--inner\r\nContent-Type: text/plain; charset=\"iso-8859-1\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nHello caf=E9\r\n"
    "--inner\r\nContent-Type: text/html; charset=\"us-ascii\"\r\n\r\n"
    "<html><body>Hello <b>bold</b> &amp; world</body></html>\r\n"
    "--inner--\r\n\r\n"
    "--outer\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: Someone Else\r\nSubject: hello request\r\n\r\nPlease say Hello\r\n"
    "--outer\r\nContent-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nc2VjcmV0IHBheWxvYWQ=\r\n"
    "--outer--\r\n\r\nThis is the end of the outer MIME multipart.\r\n",
)


@pytest.mark.parametrize("test, expected", [
    ('body :raw :contains "caf=E9"', True),                 # :raw keeps the encoding
    ('body :raw :contains "café"', False),
    ('body :content "text/plain" :contains "café"', True),  # decoded, charset converted
    ('body :content "text" :contains "café"', True),
    ('body :content "text/html" :contains "<b>bold</b>"', True),
    ('body :text :contains "<b>"', False),                  # :text drops the markup
    ('body :text :contains "hello bold & world"', True),
    ('body :content "multipart" :contains "MIME format"', True),   # prologue, epilogue
    ('body :content "multipart" :contains "Hello"', False),
    ('body :content "message/rfc822" :contains "hello request"', True),  # its header
    ('body :content "message/rfc822" :contains "Please say"', False),
    ('body :content "text" :contains "Please say Hello"', True),  # the nested text part
    ('body :content "application/octet-stream" :contains "secret payload"', True),
    ('body :content "audio/mp3" :contains ""', False),
    ('body :content "" :contains "secret"', True),          # "" is every type
    ('body :content "/plain" :contains ""', False),         # malformed types match none
    ('body :content "text/plain/x" :contains ""', False),
    ('body :contains "secret payload"', False),              # :text is the default
])
def test_body_transforms(test, expected):
    assert hit(test, message(*MULTIPART)) is expected


def test_body_of_a_message_without_a_blank_line_is_never_matched():
    assert not hit('body :raw :contains ""', message(body=None))
    assert hit('body :raw :contains ""', message(body=""))


def test_body_reads_at_most_the_limit(monkeypatch):
    from mailstack.sieve import message_view
    monkeypatch.setattr(message_view, "BODY_LIMIT", 100)
    view = message(body="a" * 200 + "needle")
    assert not hit('body :raw :contains "needle"', view)


def test_body_is_read_once_per_message():
    calls = []
    from mailstack.sieve.message_view import MessageView
    view = MessageView(HEADER.encode(), size=10,
                       body=lambda limit: calls.append(limit) or b"some text\r\n")
    assert hit('allof (body :raw :contains "some", body :text :contains "text", '
               'body :raw :contains "text")', view)
    assert len(calls) == 1


# hasflag, mailboxexists ----------------------------------------------------------------

def test_hasflag_sees_the_internal_variable():
    outcome = run(f'{REQUIRE}addflag ["A", "\\\\Seen"];\n'
                  'if hasflag :is "b A" { fileinto "hit"; }\n'
                  'if hasflag :contains "see" { fileinto "seen"; }')
    assert [action.mailbox for action in outcome.actions] == ["hit", "seen"]


def test_hasflag_with_a_variable_is_a_runtime_error():
    outcome = run(f'{REQUIRE}if hasflag "MyVar" "x" {{ discard; }}')
    assert outcome.actions == (Keep(),) and "variables" in outcome.error


def test_mailboxexists_asks_the_account_folders():
    assert hit('mailboxexists "Lists"', mailboxes={"Lists", "Work"})
    assert not hit('mailboxexists ["Lists", "Nope"]', mailboxes={"Lists"})
    assert hit('mailboxexists "INBOX"')


def test_plain_address_shortcut_agrees_with_the_full_parser():
    import random

    from mailstack.message.address_list import parse_addresses
    from mailstack.sieve.message_view import _PLAIN_ADDRESS, _address, _addresses
    chance, shortcut = random.Random(5322), 0
    forms = ["a@b.example", "Jo Bloggs <jo@b.example>", " <x.y@z> ", "Wile E. <c@d>", "é <é@é>"]
    for _ in range(20_000):
        value = chance.choice(forms)
        for _ in range(chance.randint(0, 2)):          # mutate: insert a special character
            at = chance.randint(0, len(value))
            value = value[:at] + chance.choice('@<>"(),;:\\[] \t.') + value[at:]
        value = value.encode("utf-8")
        if _PLAIN_ADDRESS.fullmatch(value) is None:
            continue
        shortcut += 1
        full = [_address(mailbox, host)
                for _, _, mailbox, host in parse_addresses(value, groups=False)]
        assert _addresses(value) == full, value
    assert shortcut > 200
