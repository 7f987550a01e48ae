"""imap_framing: the IMAP byte stream cut into commands, literals and lines, in bounded memory.

Each test feeds bytes as a network would (often one byte at a time, so every chunk boundary
is tried) and reads the events the session would act on.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport

from mailstack.message.spool import Spool
from mailstack.protocols import imap
from mailstack.protocols.imap_literals import MAX_COMMAND
from mailstack.protocols.imap_framing import (
    Command, Discarded, Framing, Line, LiteralRequest, TooLong,
)


def events(framing: Framing) -> list:
    """Every event ready now (the session's drain loop, minus the acting on them)."""
    out = []
    while (event := framing.next_event()) is not None:
        out.append(event)
    return out


def byte_by_byte(framing: Framing, data: bytes) -> list:
    out = []
    for i in range(len(data)):
        framing.feed(data[i:i + 1])
        out += events(framing)
    return out


def events_after(framing: Framing, data: bytes) -> list:
    framing.feed(data)
    return events(framing)


def drive(framing: Framing, data: bytes, answer) -> list:
    """Feed ``data`` and take every event, answering each LiteralRequest with ``answer``."""
    framing.feed(data)
    out = []
    while (event := framing.next_event()) is not None:
        out.append(event)
        if isinstance(event, LiteralRequest):
            answer(framing, event)
    return out


def accept(framing, request):
    framing.accept_literal()


def test_pipelined_commands_fed_one_byte_at_a_time_come_out_whole_and_in_order():
    framing = Framing(1000)
    got = byte_by_byte(framing, b"a NOOP\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS)\n")
    assert got == [Command(b"a NOOP"), Command(b"b SELECT INBOX"),
                   Command(b"c FETCH 1:* (FLAGS)")]          # a bare LF ends a line too
    assert framing.buffered == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_every_chunking_of_the_same_stream_gives_the_same_events(chunk):
    stream = b"a LOGIN {3}\r\nann {2+}\r\npw\r\nb NOOP\r\n"
    framing = Framing(1000)
    got = []
    for i in range(0, len(stream), chunk):
        got += drive(framing, stream[i:i + chunk], accept)
    assert got == [LiteralRequest(b"a LOGIN {3}\r\n", 3, True),
                   LiteralRequest(b"a LOGIN {3}\r\nann {2+}\r\n", 2, False),
                   Command(b"a LOGIN {3}\r\nann {2+}\r\npw"), Command(b"b NOOP")]


def test_a_synchronising_literal_is_asked_for_and_nothing_moves_until_it_is_answered():
    framing = Framing(1000)
    got = byte_by_byte(framing, b"a LOGIN {4}\r\n")
    assert got == [LiteralRequest(b"a LOGIN {4}\r\n", 4, True)]
    framing.feed(b"a\r\nb pw\r\nb NOOP\r\n")                 # a client that did not wait
    assert framing.next_event() is None and framing.next_event() is None
    framing.accept_literal()
    # The literal's CRLF is data, not the end of the command.
    assert events(framing) == [Command(b"a LOGIN {4}\r\na\r\nb pw"), Command(b"b NOOP")]


def test_a_rejected_synchronising_literal_is_never_read_and_the_next_command_is():
    framing = Framing(1000)
    assert events_after(framing, b"a APPEND Drafts {5000}\r\n") == [
        LiteralRequest(b"a APPEND Drafts {5000}\r\n", 5000, True)]
    framing.reject_literal()                                  # the session answers NO
    assert byte_by_byte(framing, b"b NOOP\r\n") == [Command(b"b NOOP")]


def test_a_non_synchronising_literal_arrives_without_asking_and_a_zero_length_one_too():
    framing = Framing(1000)
    got = byte_by_byte(framing, b"a CREATE {0+}\r\n")
    assert got == [LiteralRequest(b"a CREATE {0+}\r\n", 0, False)]
    framing.accept_literal()
    assert byte_by_byte(framing, b"\r\n") == [Command(b"a CREATE {0+}\r\n")]


def test_a_refused_non_synchronising_literal_is_discarded_with_the_rest_of_its_command():
    """MULTIAPPEND-style: after the refused literal come more text, another {N+} literal
    (also skipped), then the end of the command; the next command is read as usual."""
    framing = Framing(1000)
    stream = (b"a APPEND Drafts {10+}\r\n0123456789 (\\Seen) {5+}\r\nab\r\nc\r\n"
              b"b APPEND Drafts {3+}\r\nxyz\r\n")

    def refuse_a_accept_b(framing, request):
        if request.head.startswith(b"a "):
            framing.discard_literal()
        else:
            framing.accept_literal()
    got = []
    for i in range(len(stream)):
        got += drive(framing, stream[i:i + 1], refuse_a_accept_b)
        assert framing.buffered <= len(b"b APPEND Drafts {3+}\r\n")   # a line, no literal
    assert got == [LiteralRequest(b"a APPEND Drafts {10+}\r\n", 10, False),
                   Discarded(b"a APPEND Drafts {10+}\r\n"),
                   LiteralRequest(b"b APPEND Drafts {3+}\r\n", 3, False),
                   Command(b"b APPEND Drafts {3+}\r\nxyz")]
    framing.feed(b"c APPEND Drafts {1000+}\r\n")
    assert events(framing) == [LiteralRequest(b"c APPEND Drafts {1000+}\r\n", 1000, False)]
    framing.discard_literal()
    assert events_after(framing, b"q" * 1000) == [] and framing.buffered == 0


def test_a_discarded_command_that_goes_on_with_a_synchronising_literal_ends_there():
    """The client waits for a "+" that never comes: the command is answered at once."""
    framing = Framing(1000)
    framing.feed(b"a APPEND Drafts {4+}\r\nabcd {7}\r\n")
    assert events(framing) == [LiteralRequest(b"a APPEND Drafts {4+}\r\n", 4, False)]
    framing.discard_literal()
    assert events(framing) == [Discarded(b"a APPEND Drafts {4+}\r\n")]
    assert events_after(framing, b"b NOOP\r\n") == [Command(b"b NOOP")]


@pytest.mark.parametrize("marker", [b"{-1}", b"{+5}", b"{5_0}", b"{ 5}", b"{12345678901}",
                                    b"{5++}", b"{5}x", b"{}"])
def test_what_only_looks_like_a_literal_marker_ends_the_command(marker):
    """The grammar answers BAD; framing must not wait for octets nobody will send."""
    framing = Framing(1000)
    line = b"a LOGIN " + marker
    assert byte_by_byte(framing, line + b"\r\nb NOOP\r\n") == [Command(line), Command(b"b NOOP")]


def test_an_over_long_line_is_too_long_once_it_passes_the_bound_and_the_next_command_is_read():
    framing = Framing(100)
    got = []
    for n in range(50):                                       # 5,000 octets, no line end yet
        framing.feed(b"x" * 100 if n else b"a NOOP " + b"x" * 93)
        got += events(framing)
        assert framing.buffered <= 100 + 100                  # never more than bound + chunk
    assert len(got) == 1 and isinstance(got[0], TooLong)     # answered once, at once
    assert got[0].head.startswith(b"a NOOP x") and len(got[0].head) <= 128
    assert events_after(framing, b"xxx\r\nb NOOP\r\n") == [Command(b"b NOOP")]


def test_a_complete_over_long_line_in_one_chunk_is_too_long_too():
    framing = Framing(100)
    got = events_after(framing, b"a NOOP " + b"y" * 200 + b"\r\nb NOOP\r\n")
    assert [type(e) for e in got] == [TooLong, Command] and got[1] == Command(b"b NOOP")
    assert got[0].head.startswith(b"a NOOP ") and len(got[0].head) <= 128


def test_literals_in_memory_count_toward_the_bound_and_one_in_a_sink_does_not():
    framing = Framing(100)
    framing.feed(b"a LOGIN {80}\r\n" + b"u" * 80 + b" password\r\nb NOOP\r\n")
    assert events(framing) == [LiteralRequest(b"a LOGIN {80}\r\n", 80, True)]
    framing.accept_literal()
    got = events(framing)
    assert [type(e) for e in got] == [TooLong, Command] and got[0].head.startswith(b"a LOGIN")
    framing.feed(b"c APPEND Drafts {500}\r\n")
    assert events(framing) == [LiteralRequest(b"c APPEND Drafts {500}\r\n", 500, True)]
    sink = Spool()
    framing.accept_literal(sink)                      # bounded by APPENDLIMIT instead
    got = byte_by_byte(framing, b"m" * 500 + b" \r\n")
    assert got == [Command(b"c APPEND Drafts {500}\r\n ")]
    assert got[0].spooled == {len(b"c APPEND Drafts {500}\r\n"): sink}
    assert sink.read() == b"m" * 500 and not sink.closed        # the server's to close
    got[0].close()
    assert sink.closed


class FailingSink(Spool):
    """A spool whose disk fills up after ``room`` octets."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.room:
            raise OSError(28, "No space left on device")
        super().write(data)


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_a_sink_that_fails_discards_the_rest_of_its_command_and_the_next_is_read(chunk):
    framing = Framing(100)
    stream = b"a APPEND Drafts {300}\r\n" + b"m" * 300 + b"\r\nb NOOP\r\n"
    sink = FailingSink(room=120)
    got = []
    for i in range(0, len(stream), chunk):
        framing.feed(stream[i:i + chunk])
        while (event := framing.next_event()) is not None:
            got.append(event)
            if isinstance(event, LiteralRequest):
                framing.accept_literal(sink)
    assert got == [LiteralRequest(b"a APPEND Drafts {300}\r\n", 300, True),
                   Discarded(b"a APPEND Drafts {300}\r\n", failed=True), Command(b"b NOOP")]
    assert sink.closed


def test_a_sink_is_closed_when_its_command_is_abandoned():
    """Cut off mid-literal (reset, as on a lost connection), or too long after it."""
    framing = Framing(100)
    framing.feed(b"a APPEND Drafts {300}\r\n" + b"m" * 100)
    assert len(events(framing)) == 1
    sink = Spool()
    framing.accept_literal(sink)
    assert events(framing) == [] and sink.size == 100
    framing.reset()
    assert sink.closed
    framing.feed(b"b APPEND Drafts {3}\r\n")
    assert len(events(framing)) == 1
    sink = Spool()
    framing.accept_literal(sink)
    got = events_after(framing, b"xyz " + b"y" * 200 + b"\r\n")
    assert [type(e) for e in got] == [TooLong] and sink.closed


def test_line_mode_hands_over_raw_lines_then_commands_resume():
    framing = Framing(1000)
    framing.line_mode = True                                  # IDLE, or a SASL response
    assert byte_by_byte(framing, b"DONE\r\n") == [Line(b"DONE")]
    assert byte_by_byte(framing, b"{5}\n") == [Line(b"{5}")]   # no literal in line mode
    framing.line_mode = False
    assert byte_by_byte(framing, b"a NOOP\r\n") == [Command(b"a NOOP")]


def test_line_mode_lines_are_bounded_too():
    framing = Framing(100)
    framing.line_mode = True
    got = events_after(framing, b"A" * 150)
    assert [type(e) for e in got] == [TooLong]
    assert events_after(framing, b"AAA\r\n*\r\n") == [Line(b"*")]


def test_reset_forgets_pipelined_commands_and_a_literal_half_read():
    framing = Framing(1000)
    framing.feed(b"a STARTTLS\r\nb LOGIN ann pw\r\n")
    assert framing.next_event() == Command(b"a STARTTLS")
    framing.reset()                                           # RFC 3501 §6.2.1
    assert framing.buffered == 0 and framing.next_event() is None
    framing.feed(b"c LOGIN {5}\r\n")
    assert events(framing) == [LiteralRequest(b"c LOGIN {5}\r\n", 5, True)]
    framing.accept_literal()
    framing.feed(b"ab")
    framing.reset()
    assert events_after(framing, b"d NOOP\r\n") == [Command(b"d NOOP")]
    framing.feed(b"e APPEND x {9+}\r\n")
    assert events(framing) == [LiteralRequest(b"e APPEND x {9+}\r\n", 9, False)]
    framing.discard_literal()
    framing.reset()                                           # a discard in progress, too
    assert events_after(framing, b"f NOOP\r\n") == [Command(b"f NOOP")]


def test_skipping_a_huge_refused_literal_keeps_at_most_one_chunk():
    framing = Framing(1000)
    framing.feed(b"a APPEND Drafts {60000000+}\r\n")
    head = b"a APPEND Drafts {60000000+}\r\n"
    assert events(framing) == [LiteralRequest(head, 60_000_000, False)]
    framing.discard_literal()
    chunk = b"z" * 65536
    fed = 0
    while fed < 60_000_000:
        piece = chunk[:60_000_000 - fed]
        framing.feed(piece)
        fed += len(piece)
        assert events(framing) == [] and framing.buffered == 0
    assert events_after(framing, b"\r\nb NOOP\r\n") == [Discarded(head), Command(b"b NOOP")]


def test_a_busy_session_stops_reading_at_the_bound_and_answers_every_pipelined_command_after():
    """While a command runs, nobody takes events: the session must pause the socket once
    ``framing.buffered`` passes ``read_limit`` (so it holds at most one chunk more), and
    resume and answer everything once the command is done."""
    login = defer.Deferred()
    server, transport = fake_session(login)
    server.dataReceived(b"a LOGIN ann pw\r\n")                # waits on the portal: busy
    chunk = b"b NOOP\r\n" * 8192                               # 64 KB
    sent = 0
    while transport.producerState != "paused":                 # a real socket stops here
        server.dataReceived(chunk)
        sent += 8192
        assert server.framing.buffered <= server.read_limit + len(chunk)
        assert sent < 100 * 8192, "the session never paused reading"
    assert transport.value().count(b"\r\n") == 1                # only the greeting so far
    login.errback(UnauthorizedLogin())
    assert transport.producerState == "producing"
    replies = transport.value().split(b"\r\n")
    assert replies[1].startswith(b"a NO [AUTHENTICATIONFAILED]")
    assert replies[2:-1] == [b"b OK NOOP completed"] * sent
    assert server.framing.buffered == 0


def test_a_literal_that_would_take_a_command_past_the_bound_gets_no_continuation():
    """The bound is on the whole command (imap_framing: "a command line (with its
    non-APPEND literals) by max_command"), not on each literal: a client must not be
    invited to send a second near-limit literal only to have the command refused, and the
    session must not hold twice the bound."""
    server, transport = fake_session(defer.Deferred())
    half = MAX_COMMAND // 2 + 1000
    server.dataReceived(b"a LOGIN {%d}\r\n" % half)
    assert transport.value().endswith(b"+ Ready for literal data\r\n")
    transport.clear()
    server.dataReceived(b"u" * half + b" {%d}\r\n" % half)
    assert transport.value().startswith(b"a BAD [TOOBIG]"), transport.value()
    server.dataReceived(b"b NOOP\r\n")
    assert transport.value().endswith(b"b OK NOOP completed\r\n")


def fake_session(login_result):
    """An IMAPServer on a StringTransport, with just what a login attempt touches."""
    portal = SimpleNamespace(login=lambda *args: login_result)
    settings = SimpleNamespace(idle_timeout=1800, login_timeout=60, max_append_size=1 << 20,
                               min_literal_rate=500)
    factory = imap.IMAPFactory(
        SimpleNamespace(tls="implicit", name="imaps", port=993), settings=settings, db=None,
        clock=task.Clock(), portal=portal, tls_options=None,
        tls_requirement=SimpleNamespace(allows_plaintext=lambda: True), watch=None,
        spool_dir=None, limits=None)
    server = imap.IMAPServer(factory)
    transport = StringTransport()
    server.makeConnection(transport)
    return server, transport
