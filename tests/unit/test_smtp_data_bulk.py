"""DATA taken a read at a time (issue 16): ``smtp_data.MessageReception.message_lines``.

What it promises: the same octets in the spool, the same replies in the same order and
the same session state as the line-by-line path (``data_line`` per line), for any way the
client's bytes are cut into reads.  So each conversation here runs twice over the same
reads, once as shipped and once with the bulk step switched off, and the two must match:
dot-stuffing (RFC 5321 §4.5.2) at read boundaries, the end of data split across reads,
commands pipelined after it (RFC 2920), bare LF and CR in both ``bare_newlines``
settings (RFC 5321 §2.3.8: a ``.`` after a bare LF is content), over-long header and
body lines, a message over SIZE (RFC 1870), a policy that answers late and a client that
leaves replies unread (the queue is not idle: line by line).
"""

from __future__ import annotations

import random

import pytest

from mailstack import replies
from mailstack.message.spool import FLUSH, Spool
from mailstack.protocols.lines import BoundedLineReceiver
from mailstack.protocols.smtp_data import BODY_LINE_LIMIT, HEADER_LINE_LIMIT
from tests.support.policy_doubles import FakePolicy
from tests.unit.test_esmtp_session import Intake, connect


def session(bulk: bool, hold: bool = False, **smtp):
    policy = FakePolicy()
    if hold:
        policy.hold = {"data"}
    s, transport, _ = connect(policy, Intake(), **smtp)
    s.session_id = "S"                       # queue ids in the 250s are compared
    if not bulk:                             # the line-by-line path: every line via data_line
        s.message_lines = BoundedLineReceiver.message_lines.__get__(s)
    calls = []
    data_line = s.data_line
    s.data_line = lambda line: calls.append(line) or data_line(line)
    s.data_line_calls = calls
    return s, transport, policy


def run(bulk, reads, events=(), hold=False, **smtp):
    """Feed ``reads``; before read i, ``events[i]`` may fire the held policy answer or
    pause/resume the client's reading of replies.  Returns everything observable."""
    s, transport, policy = session(bulk, hold, **smtp)
    steps = []                               # what is seen after each read
    for i, data in enumerate(reads):
        for event in events[i] if i < len(events) else ():
            if event == "fire" and "data" in policy.held and not policy.held["data"].called:
                policy.held["data"].callback(None)
            elif event == "pause":
                s.pauseProducing()
            elif event == "resume":
                s.resumeProducing()
        s.dataReceived(data)
        steps.append((transport.value(), s.in_data, s._body_size, s._in_headers, s._too_big,
                      s._bad_line, s._bare_newlines, s._buffer, s._after_bare_lf,
                      s._skipping_overlong, None if s._spool is None else s._spool.size,
                      len(s._pending), s._busy))
    s.resumeProducing()
    while "data" in policy.held and not policy.held["data"].called:
        policy.held["data"].callback(None)
    stored = [(sender, addresses, body) for sender, addresses, body, *_ in
              s.factory.intake.stored]
    state = (s.in_data, s._body_size, s._in_headers, s._too_big, s._bad_line,
             s._bare_newlines, s._buffer, s._after_bare_lf, s._skipping_overlong,
             None if s._spool is None else s._spool.read(b""))
    return transport.value(), stored, state, transport.disconnecting, steps, s.data_line_calls


def same(reads, **kw):
    """Run both ways; assert they agree; return the bulk run."""
    bulk, lines = run(True, reads, **kw), run(False, reads, **kw)
    assert bulk[:5] == lines[:5]
    return bulk


def cut(data: bytes, points) -> list:
    points = sorted(set(p for p in points if 0 < p < len(data)))
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


ENVELOPE = b"EHLO c.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<ann@example.test>\r\nDATA\r\n"


def reply(*rs) -> bytes:
    return b"".join(r.smtp() + b"\r\n" for r in rs)


def message(*lines, end=b"\r\n") -> bytes:
    return b"".join(line + end for line in lines)


# --- what the bulk path stores, checked against the RFC directly --------------------------

def test_a_whole_message_in_one_read_is_stored_unstuffed_with_one_data_line_call():
    """The client waits for the 354 (RFC 2920 §3.1: DATA ends a group), so the message
    comes in reads of its own; lines in the read that held DATA go line by line."""
    content = message(b"Subject: hi", b"", b"..dot", b"body", b"...", b".x", b"")
    out, stored, state, closed, _, calls = same([ENVELOPE, content + b".\r\nQUIT\r\n"])
    assert stored == [("s@remote.test", ["ann@example.test"],
                       message(b"Subject: hi", b"", b".dot", b"body", b"..", b"x", b""))]
    assert out.endswith(b"250 2.0.0 Ok: queued as S001\r\n221 2.0.0 Bye\r\n") and closed
    assert calls == [b"."]                   # only the end of data went line by line


def test_a_message_of_many_reads_costs_one_call_per_read_not_per_line():
    s, transport, _ = session(bulk=True)
    s.dataReceived(ENVELOPE)
    body = message(*[b"line %d" % i for i in range(840)])
    for i in range(0, len(body), 16384):
        s.dataReceived(body[i:i + 16384])
    s.dataReceived(b".\r\n")
    assert s.data_line_calls == [b"."]
    assert s.factory.intake.stored[0][2] == body


def test_a_first_line_stuffed_after_a_read_boundary_is_unstuffed():
    reads = [ENVELOPE + b"Subject: a\r\n\r\nx\r", b"\n..y\r\n.", b".z\r\n", b".\r\n"]
    stored = same(reads)[1]
    assert stored[0][2] == b"Subject: a\r\n\r\nx\r\n.y\r\n.z\r\n"


def test_commands_pipelined_after_the_end_wait_for_the_250():
    reads = [ENVELOPE, b"a\r\n.\r\nMAIL FROM:<t@remote.test>\r\nRCPT TO:<ann@example.test>\r\n"
             b"DATA\r\n", b"b\r\n.\r\nQUIT\r\n"]
    out, stored, _, closed, _, calls = same(reads, hold=True)   # the policy answers at the end
    codes = [line[:3] for line in out.decode().splitlines()]
    assert codes[-7:] == ["354", "250", "250", "250", "354", "250", "221"] and closed
    assert out.count(b"queued as") == 2
    assert [body for *_, body in stored] == [b"a\r\n", b"b\r\n"]


def test_a_dot_after_a_bare_lf_is_content_not_the_end():
    wire = [ENVELOPE, b"a\n.\r\nMAIL FROM:<evil@remote.test>\r\n.\r\n"]
    out, stored, *_ = same(wire)
    assert stored[0][2] == b"a\r\n.\r\nMAIL FROM:<evil@remote.test>\r\n"
    out, stored, *_ = same(wire, bare_newlines="reject")
    assert stored == [] and out.endswith(reply(replies.BARE_NEWLINE))


@pytest.mark.parametrize("where", ["header", "body"])
def test_an_over_long_line_is_refused_at_the_end_in_one_read_or_many(where):
    long = (b"X: " + b"h" * HEADER_LINE_LIMIT if where == "header"
            else b"b" * (BODY_LINE_LIMIT + 1))
    lines = [b"Subject: s", long, b"", b"ok"] if where == "header" else \
        [b"Subject: s", b"", b"ok", long, b"after"]
    wire = ENVELOPE + message(*lines) + b".\r\nNOOP\r\n"
    for reads in ([wire], cut(wire, range(0, len(wire), 1000))):
        out, stored, *_ = same(reads)
        assert stored == [] and out.endswith(reply(replies.DATA_LINE_TOO_LONG, replies.OK))


def test_a_line_at_the_limit_is_taken():
    header = b"X: " + b"h" * (HEADER_LINE_LIMIT - 3)
    body = b"." + b"b" * (BODY_LINE_LIMIT - 1)    # the body limit counts the stuffed dot
    out, stored, _, _, _, calls = same([ENVELOPE, message(header, b"", body) + b".\r\n"])
    assert stored[0][2] == message(header, b"", body[1:]) and calls == [b"."]


def test_a_message_over_size_is_read_to_its_end_then_refused():
    wire = ENVELOPE + message(b"Subject: big", b"", *[b"y" * 70] * 40) + b".\r\nNOOP\r\n"
    for reads in ([wire], cut(wire, range(0, len(wire), 333))):
        out, stored, state, *_ = same(reads, max_message_size=1000)
        assert stored == [] and out.endswith(reply(replies.MESSAGE_TOO_BIG, replies.OK))


def test_the_end_marker_split_across_reads():
    wire = ENVELOPE + b"a\r\n.\r\nNOOP\r\n"
    at = wire.index(b"\r\n.\r\n")
    for points in ([at + 1], [at + 2], [at + 3], [at + 4], [at + 1, at + 2, at + 3, at + 4]):
        out, stored, *_ = same(cut(wire, points))
        assert stored[0][2] == b"a\r\n" and out.endswith(reply(replies.OK))


# --- the property: for any reads, the bulk path and the line path agree -------------------

PIECES = [
    b"Subject: hello", b"From: a@b", b"", b"", b"plain text", b".", b"..", b"...",
    b".stuffed", b"..double", b"x" * 200, b"\t folded", b"X: " + b"h" * (HEADER_LINE_LIMIT - 3),
    b"X: " + b"h" * (HEADER_LINE_LIMIT - 2), b"X: " + b"h" * (HEADER_LINE_LIMIT - 1),
    b".X: " + b"h" * (HEADER_LINE_LIMIT - 3), b"X: " + b"h" * HEADER_LINE_LIMIT, b"y" * 5000,
    b"b" * BODY_LINE_LIMIT, b"." + b"b" * BODY_LINE_LIMIT, b"b" * (BODY_LINE_LIMIT + 1),
    b"bare\nlf", b".\n.", b"bare\rcr", b"\r", b"\n", b"ends in cr\r", b"NOOP", b"QUIT",
]
COMMANDS = [b"NOOP", b"RSET", b"MAIL FROM:<t@remote.test>", b"RCPT TO:<bob@example.test>",
            b"DATA", b"VRFY x", b"."]


def conversation(rng: random.Random) -> bytes:
    out = [ENVELOPE]
    for n in range(rng.randint(1, 3)):
        if n:
            out.append(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<ann@example.test>\r\nDATA\r\n")
        weights = [1] * len(PIECES)
        weights[:3] = [3, 3, 3]
        weights[4] = 12
        size = rng.choice([0, 1, 5, 30, 300])
        lines = rng.choices(PIECES, weights, k=size)
        if rng.random() < 0.7:                 # mostly clean: the bulk path's case
            lines = [l for l in lines if b"\r" not in l and b"\n" not in l
                     and len(l) <= BODY_LINE_LIMIT]
        out.append(message(*lines))
        out.append(b".\r\n")
        out.append(message(*rng.choices(COMMANDS, k=rng.randint(0, 3))))
    if rng.random() < 0.3:
        out.append(b"QUIT\r\n")
    return b"".join(out)


def chunkings(rng: random.Random, wire: bytes):
    yield [wire]
    if len(wire) < 3000:
        yield [wire[i:i + 1] for i in range(len(wire))]
    yield cut(wire, rng.sample(range(1, len(wire)), min(len(wire) - 1, rng.randint(1, 40))))
    marks = [i for i in range(len(wire)) if wire.startswith(b"\r\n.", i)]
    yield cut(wire, [m + rng.randint(0, 3) for m in marks])       # at dots and line ends
    yield cut(wire, range(rng.randint(1, 5000), len(wire), rng.randint(500, 20000)))


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("bare_newlines", ["normalize", "reject"])
def test_any_reads_give_the_same_replies_spool_and_state_as_line_by_line(seed, bare_newlines):
    rng = random.Random(seed)
    wire = conversation(rng)
    max_size = rng.choice([25 * 1024 * 1024, 2000, 70000])
    for reads in chunkings(rng, wire):
        events = [rng.choices(["fire", "pause", "resume", None], [3, 1, 2, 6],
                              k=rng.randint(0, 2)) for _ in reads]
        same(reads, hold=rng.random() < 0.5, max_message_size=max_size,
             bare_newlines=bare_newlines)
        same(reads, events=events, hold=True, max_message_size=max_size,
             bare_newlines=bare_newlines)


# --- Spool.add_lines ---------------------------------------------------------------------

def test_spool_keeps_the_order_of_lines_and_joined_reads_across_flushes():
    spool = Spool()
    expected = []
    rng = random.Random(5)
    for i in range(400):
        if rng.random() < 0.5:
            line = b"l%d" % i * rng.randint(0, 50)
            spool.add_line(line)
            expected.append(line + b"\r\n")
        else:
            data = b"".join(b"p%d\r\n" % i for _ in range(rng.randint(1, FLUSH // 200)))
            spool.add_lines(data)
            expected.append(data)
        assert spool.size == sum(map(len, expected))
    assert spool.read(b"H: x\r\n") == b"H: x\r\n" + b"".join(expected)
    spool.close()
