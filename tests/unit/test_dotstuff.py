"""The dot-stuffer: correct at every chunk boundary, never CR CR LF, always terminated."""

import pytest

from mailstack.dotstuff import DotStuffer, stuff


def chunked(message: bytes, size: int) -> bytes:
    s = DotStuffer()
    out = b"".join(s.feed(message[i:i + size]) for i in range(0, len(message), size))
    return out + s.finish()


def unstuff(wire: bytes) -> bytes:
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[:-5].split(b"\r\n")
    assert all(line != b"." for line in lines), "an early terminator"
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines) + b"\r\n"


def test_leading_dots_are_doubled_and_crlf_kept():
    assert stuff(b".a\r\nb\r\n..c\r\n") == b"..a\r\nb\r\n...c\r\n.\r\n"
    assert b"\r\r\n" not in stuff(b"x\r\ny\r\n")


def test_bare_lf_becomes_crlf_and_a_missing_final_newline_is_added():
    assert stuff(b"a\n.b") == b"a\r\n..b\r\n.\r\n"
    assert stuff(b"") == b".\r\n"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16384])
def test_every_chunk_boundary_gives_the_same_bytes(size):
    message = (b"Subject: x\r\n\r\n" + b"a" * 16370 + b"\r\n.\r\nRCPT TO:<evil@example>\r\n"
               + b".\r\n" + b"\n.\rz\r")
    assert chunked(message, size) == stuff(message)
    assert unstuff(stuff(message)).startswith(b"Subject: x\r\n\r\n")


def test_the_16k_boundary_attack_cannot_end_the_stream_early():
    evil = b"Subject: x\r\n\r\n" + b"a" * (16384 - 16) + b"\r\n.\r\n+OK injected\r\n"
    wire = chunked(evil, 16384)
    assert wire.count(b"\r\n.\r\n") == 1 and wire.endswith(b"\r\n.\r\n")


def test_a_bare_cr_becomes_crlf_and_the_line_it_makes_is_stuffed():
    """Issue 13: ``\r.\r\n`` must not reach a receiver that ends lines at a bare CR."""
    assert stuff(b"a\r.\r\nb\r\rc") == b"a\r\n..\r\nb\r\n\r\nc\r\n.\r\n"
    assert stuff(b"end\r") == b"end\r\n.\r\n"
    for size in (1, 2, 3):
        assert chunked(b"x\r.y\r\r\nz", size) == stuff(b"x\r.y\r\r\nz") == b"x\r\n..y\r\n\r\nz\r\n.\r\n"


# --- issue 16: edge cases of the stuffing RETR now does once per message -------------------

def reference(message: bytes) -> bytes:
    """What RFC 1939 §3 asks for, written the slow, obvious way: line ends made CRLF, a
    leading "." doubled, a CRLF added to a last line without one, ".\r\n" after."""
    lines = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    stuffed = (b"." + line if line.startswith(b".") else line for line in lines)
    return b"".join(line + b"\r\n" for line in stuffed) + b".\r\n"


@pytest.mark.parametrize("message", [
    b"", b"\r\n", b".", b".\r\n", b"..\r\n", b".first line\r\nsecond\r\n", b"no final crlf",
    b"a\r\n.", b"a\r\n.\r\n", b"a\r\n.b\r\n..c", b"x\r\n\r\n.\r\n\r\n.",
    b"mixed\nbare lf\r\n.after\rbare cr\r\n", b"\r", b"\n.", b"\r.\r\n",
])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 64 * 1024])
def test_edge_cases_match_the_rfc_at_every_chunk_size(message, size):
    assert stuff(message) == reference(message)
    assert chunked(message, size) == reference(message)


def test_a_crlf_split_between_chunks_stays_one_line_end_and_the_dot_after_it_is_stuffed():
    s = DotStuffer()
    assert s.feed(b"one\r") + s.feed(b"\n.two\r") + s.feed(b"\n") + s.finish() == \
        b"one\r\n..two\r\n.\r\n"


def test_the_whole_message_stuffer_makes_what_the_stateful_one_makes():
    """``stuff`` cuts lines its own way (issue 16); every mix of CR, LF and dots agrees."""
    import itertools
    import random
    for combo in itertools.product([b"a", b".", b"\r", b"\n", b"\r\n"], repeat=5):
        message = b"".join(combo)
        assert stuff(message) == chunked(message, 16384), message
    rng = random.Random(16)
    for _ in range(2000):
        message = bytes(rng.choice(b"a.\r\n\x0b\x0c\x1c") for _ in range(rng.randrange(40)))
        assert stuff(message) == chunked(message, 7), message
