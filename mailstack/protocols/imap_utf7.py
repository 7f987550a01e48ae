"""Modified UTF-7, the wire form of IMAP mailbox names (RFC 3501 §5.1.3).

Why ours: the new IMAP layer must not depend on Twisted's codec (``imap4-utf-7``), and it
must be strict where the codec is not sure to be: a name that does not decode is refused,
so two spellings never reach the store as different folders by accident.

The form: printable US-ASCII (0x20-0x7E) stands for itself, except ``&``, written
``&-``; every other run of characters is ``&``, their UTF-16BE in base64 with ``,``
for ``/`` and no padding, then ``-``.  We refuse 8-bit bytes and controls on the wire,
an unterminated or badly padded run, printable ASCII or a lone surrogate inside a run,
and control characters after decoding.  Adjacent runs (``&AOQ-&AOQ-``) are accepted:
they decode unambiguously and some clients write them.

Standards: RFC 3501 §5.1.3, RFC 2152 (UTF-7, for the base64 runs).
Security: linear in the name's length; errors never echo the name.
"""

from __future__ import annotations

import base64
import binascii
import re

from mailstack.protocols.imap_tokens import ParseError

_PIECE = re.compile(rb"([\x20-\x25\x27-\x7e]+)|&([A-Za-z0-9+,]*)-|(.)", re.DOTALL)
_PRINTABLE = re.compile(r"[\x20-\x7e]")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


class BadMailboxName(ParseError):
    """A mailbox name that is not valid modified UTF-7.

    A ParseError (and so a ValueError); the server may answer it ``NO [CANNOT]`` as it
    did before (``replies.IMAP_BAD_MAILBOX_NAME``) by catching it before ParseError.
    """


def decode(raw: bytes) -> str:
    """The mailbox name ``raw`` stands for; BadMailboxName if it is malformed."""
    out = []
    for direct, run, other in _PIECE.findall(raw):
        if direct:
            out.append(direct.decode("ascii"))
        elif other:
            raise BadMailboxName("Mailbox name is not modified UTF-7")
        else:
            out.append(_decode_run(run))
    name = "".join(out)
    if _FORBIDDEN.search(name):
        raise BadMailboxName("Control characters in mailbox name")
    return name


def _decode_run(run: bytes) -> str:
    if not run:
        return "&"
    padded = run.replace(b",", b"/") + b"=" * (-len(run) % 4)
    try:                                            # odd byte counts and lone
        data = base64.b64decode(padded, validate=True)      # surrogates fail here
        text = data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError):
        raise BadMailboxName("Bad base64 in mailbox name") from None
    if base64.b64encode(data).rstrip(b"=") != run.replace(b",", b"/") or _PRINTABLE.search(text):
        raise BadMailboxName("Mailbox name is not in canonical modified UTF-7")
    return text


def encode(name: str) -> bytes:
    """``name`` in modified UTF-7, ready to be sent (quoted or as a literal)."""
    out = []
    for direct, run in re.findall(r"([\x20-\x7e]+)|([^\x20-\x7e]+)", name):
        if direct:
            out.append(direct.replace("&", "&-").encode("ascii"))
        else:
            data = base64.b64encode(run.encode("utf-16-be")).rstrip(b"=")
            out.append(b"&" + data.replace(b"/", b",") + b"-")
    return b"".join(out)
