"""The body hash computed a piece at a time equals dkimpy's own (RFC 6376 §3.4.4, relaxed).

Why: ``dkim/body_hash.py`` replaces dkimpy's whole-body canonicalisation to keep large
messages off the GIL and out of memory; a signature is worthless if its ``bh=`` differs
from what a verifier computes, whatever the line ends, white space, trailing empty lines
or piece boundaries.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re

from dkim.canonicalization import Relaxed

from mailstack.dkim.body_hash import of_pieces

PARTS = [b"a", b" ", b"\t", b"\r\n", b"\r\n", b"x  y", b"\n", b".", b"\t \r\n"]


def dkimpy_bh(body: bytes) -> bytes:
    """What dkimpy computes: lines split at CRLF or LF (its rfc822_parse), then relaxed."""
    lines = b"\r\n".join(re.split(b"\r?\n", body))
    return base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(lines)).digest())


def pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)]


def test_random_bodies_in_random_pieces_hash_as_dkimpy_hashes_them():
    rnd = random.Random(17)
    for _ in range(4000):
        body = b"".join(rnd.choice(PARTS) for _ in range(rnd.randint(0, 40))) + b"\r\n"
        assert of_pieces(pieces(body, rnd.randint(1, 9))) == dkimpy_bh(body), body


def test_empty_bodies_and_bodies_of_blank_lines_hash_as_the_empty_body():
    empty = base64.b64encode(hashlib.sha256(b"").digest())
    for body in (b"", b"\r\n", b"\r\n\r\n\r\n", b" \r\n\t\r\n"):
        assert of_pieces([body]) == empty == dkimpy_bh(body)


def test_bare_cr_and_a_last_line_without_crlf_are_hashed_as_they_will_be_sent():
    # The outbound client sends bare CR and LF as CRLF and ends the last line (dotstuff.py).
    assert of_pieces([b"one\rtwo\r", b"\nthree"]) == dkimpy_bh(b"one\r\ntwo\r\nthree\r\n")
    assert of_pieces([b"last line  "]) == dkimpy_bh(b"last line\r\n")


def test_a_large_body_in_64_kb_pieces():
    body = b"".join(b"line %d \t with  spaces  \r\n" % i for i in range(200000)) + b"\r\n" * 5
    assert of_pieces(pieces(body, 64 * 1024)) == dkimpy_bh(body)
