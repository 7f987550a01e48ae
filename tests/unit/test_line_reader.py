"""The bounded, in-order line reader (protocols/lines.py) on a StringTransport.

What it promises (its docstring): an over-long line is answered once and skipped to its
CRLF while the lines after it in the same read are still parsed; in a message a bare LF
ends a line too (``BareLine``, ``LineAfterBareLF``; RFC 5321 §2.3.8, §4.5.2), across
reads as well; replies are strictly in order even when a command waits; no command runs
while the client leaves replies unread, and the socket is not read once MAX_QUEUED lines
wait (issue 13).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.testing import StringTransport

from mailstack.protocols.lines import (OVERLONG, BareLine, BoundedLineReceiver,
                                       InOrderLineReceiver, LineAfterBareLF)


class Lines(BoundedLineReceiver):
    """Records what the reader hands over."""

    MAX_LENGTH = 10

    def __init__(self):
        self.lines, self.too_long = [], []

    def lineReceived(self, line):
        self.lines.append(line)

    def line_too_long(self, start):
        self.too_long.append(start)


def reader(**attrs) -> Lines:
    r = Lines()
    r.__dict__.update(attrs)
    r.makeConnection(StringTransport())
    return r


def kinds(lines):
    return [(type(l).__name__, bytes(l)) for l in lines]


def test_an_over_long_line_is_reported_once_and_the_next_lines_still_parsed():
    r = reader()
    r.dataReceived(b"short\r\n" + b"x" * 50 + b"\r\nafter\r\n")
    assert r.lines == [b"short", b"after"] and r.too_long == [b"x" * 50]


def test_an_over_long_line_across_reads_is_reported_once_and_skipped_to_its_crlf():
    r = reader()
    r.dataReceived(b"y" * 11)
    r.dataReceived(b"y" * 100)
    r.dataReceived(b"tail\r\nnext\r\n")
    assert r.too_long == [b"y" * 11] and r.lines == [b"next"]
    assert r._buffer == b""        # what was skipped was never kept


def test_an_over_long_line_closes_the_connection_by_default():
    class Plain(BoundedLineReceiver):
        MAX_LENGTH = 10

        def lineReceived(self, line):
            self.fail = line
    r = Plain()
    transport = StringTransport()
    r.makeConnection(transport)
    transport.registerProducer(r, True)     # as the sessions register themselves
    r.dataReceived(b"z" * 20 + b"\r\nQUIT\r\n")
    assert transport.disconnecting and not hasattr(r, "fail")
    assert transport.producer is None       # let go first, or TLS would hold the socket


def test_without_bare_lf_mode_a_bare_lf_is_part_of_the_line():
    r = reader()
    r.dataReceived(b"a\nb\r\n")
    assert r.lines == [b"a\nb"]


def test_in_a_message_a_bare_lf_ends_a_line_and_marks_its_neighbours():
    r = reader(bare_lf_ends_lines=True)
    r.dataReceived(b"one\ntwo\r\nthree\r\n")
    assert kinds(r.lines) == [("BareLine", b"one"), ("LineAfterBareLF", b"two"),
                              ("bytes", b"three")]
    assert r.lines[0].stuffed is True and r.lines[1].stuffed is False


def test_crlf_lines_in_a_message_stay_plain_bytes():
    r = reader(bare_lf_ends_lines=True)
    r.dataReceived(b"one\r\ntwo\r\n")
    assert kinds(r.lines) == [("bytes", b"one"), ("bytes", b"two")]


def test_a_bare_lf_in_the_unfinished_tail_and_across_reads():
    r = reader(bare_lf_ends_lines=True)
    r.dataReceived(b"a\nb\nc")              # no CRLF yet: "a", "b" end in bare LFs
    assert kinds(r.lines) == [("BareLine", b"a"), ("LineAfterBareLF", b"b")]
    r.dataReceived(b"d\r\ne\r\n")          # "cd" began after a bare LF
    assert kinds(r.lines[2:]) == [("LineAfterBareLF", b"cd"), ("bytes", b"e")]


def test_a_bare_cr_marks_its_line_but_a_crlf_split_between_reads_does_not():
    r = reader(bare_lf_ends_lines=True)
    r.dataReceived(b"le\rft\r\nplain\r")    # the last CR may be half of a CRLF
    r.dataReceived(b"\nnext\r\n")
    assert kinds(r.lines) == [("LineWithBareCR", b"le\rft"), ("bytes", b"plain"),
                              ("bytes", b"next")]
    assert r.lines[0].stuffed is True


def test_a_dot_ended_by_a_bare_lf_is_a_bare_line_not_the_end_marker():
    r = reader(bare_lf_ends_lines=True)
    r.dataReceived(b".\nmore\r\n")
    assert isinstance(r.lines[0], BareLine) and r.lines[0] == b"."


# --- the in-order queue and back-pressure --------------------------------------------------

class Queue(InOrderLineReceiver):
    """Answers each line with ``ok <line>``; a line in ``held`` waits on a Deferred."""

    MAX_QUEUED = 4

    def __init__(self):
        self.held, self.run, self.failures = {}, [], []

    def connectionMade(self):
        self.start_queue()

    def resetTimeout(self):
        pass

    def process_line(self, line):
        self.run.append(line)
        if line is OVERLONG:
            self.transport.write(b"too long\r\n")
            return None
        if line in self.held:
            return self.held[line].addCallback(
                lambda _: self.transport.write(b"ok " + line + b"\r\n"))
        self.transport.write(b"ok " + line + b"\r\n")

    def command_failed(self, failure):
        self.failures.append(failure)
        self.transport.write(b"failed\r\n")


def queue(**held):
    q = Queue()
    q.held = {name.encode(): d for name, d in held.items()}
    transport = StringTransport()
    q.makeConnection(transport)
    return q, transport


def test_replies_stay_in_order_while_a_command_waits():
    wait = defer.Deferred()
    q, transport = queue(slow=wait)
    q.dataReceived(b"first\r\nslow\r\nlast\r\n")
    assert transport.value() == b"ok first\r\n" and q.run == [b"first", b"slow"]
    wait.callback(None)
    assert transport.value() == b"ok first\r\nok slow\r\nok last\r\n"


def test_an_over_long_command_is_answered_in_its_turn():
    q, transport = queue()
    q.dataReceived(b"a\r\n" + b"x" * 5000 + b"\r\nb\r\n")
    assert transport.value() == b"ok a\r\ntoo long\r\nok b\r\n"


def test_a_failed_command_is_reported_and_the_queue_goes_on():
    wait = defer.Deferred()
    q, transport = queue(slow=wait)
    q.dataReceived(b"slow\r\nnext\r\n")
    wait.errback(RuntimeError("store down"))
    assert transport.value() == b"failed\r\nok next\r\n"
    assert q.failures[0].check(RuntimeError)


def test_no_command_runs_while_the_client_leaves_replies_unread():
    q, transport = queue()
    q.pauseProducing()                   # the transport's write buffer is full
    q.dataReceived(b"one\r\ntwo\r\n")
    assert q.run == [] and transport.value() == b""
    q.resumeProducing()                  # the client has read
    assert transport.value() == b"ok one\r\nok two\r\n"


def test_the_socket_is_not_read_past_max_queued_and_is_read_again_when_drained():
    q, transport = queue()
    q.pauseProducing()
    q.dataReceived(b"".join(b"n%d\r\n" % i for i in range(Queue.MAX_QUEUED)))
    assert transport.producerState == "producing"
    q.dataReceived(b"one-more\r\n")
    assert transport.producerState == "paused"
    q.resumeProducing()
    assert len(q.run) == Queue.MAX_QUEUED + 1
    assert transport.producerState == "producing"


def test_writable_waits_until_the_client_reads():
    q, transport = queue()
    assert q.writable().called
    q.pauseProducing()
    waiting = q.writable()
    assert not waiting.called
    q.resumeProducing()
    assert waiting.called


def test_stop_producing_releases_writers():
    q, transport = queue()
    q.pauseProducing()
    waiting = q.writable()
    q.stopProducing()
    assert waiting.called


def test_nothing_runs_after_the_connection_is_closing():
    q, transport = queue()
    transport.loseConnection()
    q.dataReceived(b"late\r\n")
    assert q.run == []
