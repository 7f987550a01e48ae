"""FETCH items through parse_command: simple items, macros, sections, labels, partials."""

from __future__ import annotations

import time

import pytest

from mailstack.protocols.imap_fetch_items import FetchItem, Section
from mailstack.protocols.imap_parser import parse_command
from mailstack.protocols.imap_tokens import ParseError


def bad(raw: bytes) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_command(raw)
    return caught.value


def items(raw: bytes) -> tuple:
    return parse_command(b"a FETCH 1 " + raw).items


@pytest.mark.parametrize("raw, names", [
    (b"all", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]),
    (b"FAST", ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]),
    (b"full", ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]),
    (b"uid", ["UID"]),
    (b"(flags uid internaldate rfc822.size envelope body bodystructure rfc822 rfc822.header "
     b"rfc822.text)", ["FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY",
                       "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]),
])
def test_fetch_simple_items_and_macros(raw, names):
    assert [i.name for i in items(raw)] == names
    assert all(i.section is None and i.label() == i.name.encode() for i in items(raw))


@pytest.mark.parametrize("raw, section, label", [
    (b"BODY[]", Section((), ""), b"BODY[]"),
    (b"body[header]", Section((), "HEADER"), b"BODY[HEADER]"),
    (b"BODY[TEXT]", Section((), "TEXT"), b"BODY[TEXT]"),
    (b"BODY[1]", Section((1,), ""), b"BODY[1]"),
    (b"BODY[2.1.mime]", Section((2, 1), "MIME"), b"BODY[2.1.MIME]"),
    (b"BODY[1.1.HEADER]", Section((1, 1), "HEADER"), b"BODY[1.1.HEADER]"),
    (b"BODY[2.text]", Section((2,), "TEXT"), b"BODY[2.TEXT]"),
    (b"BODY[HEADER.FIELDS (From To)]", Section((), "HEADER.FIELDS", ("From", "To")),
     b"BODY[HEADER.FIELDS (From To)]"),
    (b"BODY[1.header.fields.not (date X-foo)]", Section((1,), "HEADER.FIELDS.NOT",
                                                        ("date", "X-foo")),
     b"BODY[1.HEADER.FIELDS.NOT (date X-foo)]"),
    (b'BODY[HEADER.FIELDS ("Subject" {4}\r\nDate)]', Section((), "HEADER.FIELDS",
                                                           ("Subject", "Date")),
     b"BODY[HEADER.FIELDS (Subject Date)]"),
    (b'BODY[HEADER.FIELDS ("X(y)")]', Section((), "HEADER.FIELDS", ("X(y)",)),
     b'BODY[HEADER.FIELDS ("X(y)")]'),
])
def test_fetch_sections_and_their_response_labels(raw, section, label):
    (item,) = items(raw)
    assert (item.name, item.section, item.peek, item.label()) == ("BODY[]", section, False, label)
    (peeked,) = items(raw.replace(b"BODY[", b"BODY.PEEK[").replace(b"body[", b"body.peek["))
    assert peeked.peek and peeked.label() == label


def test_fetch_partial_label_shows_only_the_origin():
    (item,) = items(b"BODY.PEEK[TEXT]<5.3>")
    assert item == FetchItem("BODY[]", Section((), "TEXT"), True, (5, 3))
    assert item.label() == b"BODY[TEXT]<5>"
    assert items(b"BODY[]<0.4294967295>")[0].partial == (0, 4294967295)


@pytest.mark.parametrize("raw", [
    b"BINARY[1]", b"BINARY.PEEK[1]", b"BINARY.SIZE[1]", b"(binary.size[1] binary.peek[1])",
    b"MODSEQ[1]", b"(FLAGS MODSEQ.X)", b"FOO", b"(ALL)", b"(FLAGS FAST)", b"()", b"(FLAGS", b"BODY[",
    b"BODY[0]", b"BODY[1.0]", b"BODY[01]", b"BODY[MIME]", b"BODY[1.]", b"BODY[.TEXT]",
    b"BODY[HEADER.FIELDS]", b"BODY[HEADER.FIELDS ()]", b"BODY[HEADER.FIELDS (a:b)]",
    b"BODY[TEXT.MIME]", b"BODY[1.FOO]", b"BODY[]<5>", b"BODY[]<5.0>", b"BODY[]<-1.2>",
    b"BODY.PEEK", b"BODY[] <0.1>", b"(FLAGS  UID)", b"(FLAGS )", b"BODY[1." + b"1." * 100 + b"1]",
    b"RFC822.PEEK", b"BODY[]<0.1", b"X-GM-MSGID",
])
def test_fetch_malformed_items_are_bad(raw):
    bad(b"a FETCH 1 " + raw)


def test_fetch_changedsince_and_uid_fetch():
    command = parse_command(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    assert command.uid and command.changed_since == 12345
    assert command.sequence.ranges == ((1, None),)
    vanished = parse_command(b"a UID FETCH 1:* (FLAGS MODSEQ) (VANISHED CHANGEDSINCE 7)")
    assert (vanished.changed_since, vanished.vanished) == (7, True)
    assert [i.name for i in vanished.items] == ["FLAGS", "MODSEQ"]
    for raw in (b"a FETCH 1 FLAGS (VANISHED)", b"a FETCH 1 FLAGS (CHANGEDSINCE)",
                b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)",
                b"a FETCH 1 FLAGS (CHANGEDSINCE 1 FOO)", b"a FETCH 1", b"a FETCH",
                b"a FETCH 1:x FLAGS", b"a FETCH 1 FLAGS extra"):
        bad(raw)


def test_fetch_of_1730_ranges_in_8kb_is_fast():
    """Twisted's parseIdList took 0.78 s for this; the bound is generous for slow CI."""
    ranges = b",".join(b"%d" % (i * 2 + 1) for i in range(1730))
    raw = b"a UID FETCH " + ranges + b" (UID FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)])"
    assert 7000 < len(raw) < 9000
    best = min(_timed(raw) for _ in range(5))
    assert len(parse_command(raw).sequence.ranges) == 1730
    assert best < 0.1


def _timed(raw: bytes) -> float:
    started = time.perf_counter()
    parse_command(raw)
    return time.perf_counter() - started


def test_a_64kb_command_of_hostile_shapes_parses_or_fails_quickly():
    shapes = [b"a SEARCH " + b"OR SEEN " * 8000 + b"SEEN", b"a LOGIN " + b"x" * 65536 + b" y",
              b'a LOGIN "' + b"\\\\" * 32768 + b'" y', b"a FETCH " + b"1," * 32767 + b"1 UID",
              b"a FETCH 1 (" + b"UID " * 16000 + b"UID)"]
    for raw in shapes:
        started = time.perf_counter()
        try:
            parse_command(raw)
        except ParseError:
            pass
        assert time.perf_counter() - started < 0.5
