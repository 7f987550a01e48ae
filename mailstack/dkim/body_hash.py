"""The body hash of a DKIM signature (``bh=``), computed a piece at a time.

Why not dkimpy's: its ``sign()`` splits the whole message into lines and runs its
regular expressions over the whole body at once, twice for a dual signature.  On a 25 MB
message that is about 90 MB more memory and 1.8 s of calls that never release the GIL,
so the reactor thread would stall for hundreds of milliseconds at a time.  Here the body
is read from its spool in pieces of ``PIECE`` octets and canonicalised piece by piece (a
few hundred microseconds each), once for both signatures; dkimpy still signs the header
(``signer.py``) and a unit test keeps this equal to dkimpy's own canonicalisation.

Line ends are taken as the receiver will see them: the outbound client sends bare CR and
bare LF as CRLF (``dotstuff.py``), so they are CRLF here too, and a last line without one
gets one.

Standards: RFC 6376 §3.4.4 (relaxed body canonicalisation), §3.7 (the body hash),
RFC 8463 §3 (SHA-256 for Ed25519 too).
"""

from __future__ import annotations

import base64
import hashlib
import re

PIECE = 64 * 1024
_SPACE_AT_END = re.compile(rb"[\t ]+\n")
_SPACES = re.compile(rb"[\t ]+")


class RelaxedBodyHash:
    """``update`` with the body's octets in any pieces, then ``value()``: the base64 bh=."""

    def __init__(self):
        self._hash = hashlib.sha256()
        self._carry = b""          # a line not yet ended (no CR or LF in it), maybe a CR
        self._blank = 0            # empty lines held back: trailing ones are not hashed

    def update(self, piece: bytes) -> None:
        text = self._carry + piece
        held = b""
        if text.endswith(b"\r"):
            text, held = text[:-1], b"\r"          # its LF may start the next piece
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = text.rfind(b"\n") + 1
        self._carry = text[cut:] + held
        if cut:
            self._lines(text[:cut])

    def _lines(self, lines: bytes) -> None:
        """Whole lines, each ended by LF: WSP runs to one space, none before a line end."""
        canonical = _SPACES.sub(b" ", _SPACE_AT_END.sub(b"\n", lines))
        content = canonical.rstrip(b"\n")
        if not content:
            self._blank += len(canonical)
            return
        end = len(content) + 1
        self._hash.update((b"\n" * self._blank + canonical[:end]).replace(b"\n", b"\r\n"))
        self._blank = len(canonical) - end

    def value(self) -> bytes:
        if self._carry:
            self._lines(self._carry.rstrip(b"\r") + b"\n")
            self._carry = b""
        return base64.b64encode(self._hash.digest())


def of_pieces(pieces) -> bytes:
    found = RelaxedBodyHash()
    for piece in pieces:
        found.update(piece)
    return found.value()
