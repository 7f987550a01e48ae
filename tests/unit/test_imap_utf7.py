"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest

from mailstack.protocols import imap_utf7
from mailstack.protocols.imap_tokens import ParseError


@pytest.mark.parametrize("name, wire", [
    ("INBOX", b"INBOX"),
    ("&", b"&-"),
    ("Tom & Jerry", b"Tom &- Jerry"),
    ("pää", b"p&AOQA5A-"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),     # RFC 3501 §5.1.3
    ("x😀y", b"x&2D3eAA-y"),                                            # a surrogate pair
    ("", b""),
])
def test_round_trip(name, wire):
    assert imap_utf7.encode(name) == wire
    assert imap_utf7.decode(wire) == name


@pytest.mark.parametrize("wire", [
    b"&AOQ",            # run not terminated
    b"&A-",             # not a whole UTF-16 unit
    b"&AOQA-",          # odd number of octets
    b"&AOR-",           # padding bits not zero
    b"&AGE-",           # printable ASCII ("a") encoded
    b"&2D0-",           # a lone high surrogate
    b"&AAA-",           # NUL
    b"a\x01b",          # a control character on the wire
    "pä".encode(),      # raw 8-bit
    b"a&b",             # & not followed by a run
])
def test_malformed_names_are_refused(wire):
    with pytest.raises(imap_utf7.BadMailboxName):
        imap_utf7.decode(wire)


def test_bad_mailbox_name_is_a_parse_error_and_a_value_error():
    assert issubclass(imap_utf7.BadMailboxName, ParseError)
    assert issubclass(imap_utf7.BadMailboxName, ValueError)


def test_adjacent_runs_decode():
    assert imap_utf7.decode(b"&AOQ-&AOQ-") == "ää"
