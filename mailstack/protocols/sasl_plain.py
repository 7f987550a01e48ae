"""A SASL response read once for SMTP, POP3 and IMAP: base64, and PLAIN's message (RFC 4616).

Why: all three protocols carry SASL the same way -- one base64 line per response, ``*`` to
cancel (RFC 4954 §4, RFC 5034 §4, RFC 3501 §6.2.2) -- and PLAIN's message is
``authzid NUL authcid NUL passwd``.  A client may ask to act as another identity (the
authorization identity); we grant no such proxy rights, so a non-empty authzid that is not
the authenticating user fails the login (RFC 4616 §2: the server must check that the
authcid may act as the authzid) instead of logging in as the authcid.  Each protocol
keeps only its own replies: SMTP 501/535, POP3 ``-ERR``, IMAP ``BAD``/``NO``.

Standards: RFC 4616 (PLAIN), RFC 4648 §4 (base64), RFC 4422 §3.5 (aborting an exchange).
Security: base64 is decoded strictly (a character outside the alphabet makes the response
malformed, it is not skipped); the password is returned, never logged; a foreign authzid
is refused before the realm is asked, so it tests no password.
"""

from __future__ import annotations

import base64
import binascii


class Malformed(ValueError):
    """Not base64, or not ``authzid NUL authcid NUL passwd`` with an authcid: a syntax error."""


class ForeignAuthzid(Exception):
    """The client asked to act as someone else: an authentication failure, not a syntax one."""


def cancelled(response: bytes | str) -> bool:
    """``*``: the client gives up the exchange (RFC 4422 §3.5)."""
    return response.strip() in (b"*", "*")


def decode(response: bytes | str) -> bytes:
    """One SASL response line, base64-decoded strictly; Malformed when it is not base64."""
    try:
        return base64.b64decode(response.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("invalid base64") from None


def parse_plain(message: bytes) -> tuple[bytes, bytes]:
    """(authcid, password) of a decoded PLAIN message; Malformed, ForeignAuthzid."""
    try:
        authzid, user, password = message.split(b"\0")
    except ValueError:
        raise Malformed("not three NUL-separated fields") from None
    if not user:
        raise Malformed("empty authentication identity")
    if authzid and authzid.lower() != user.lower():
        raise ForeignAuthzid("authorization identity differs")
    return user, password


def read_plain(response: bytes | str) -> tuple[bytes, bytes]:
    """(authcid, password) of a PLAIN response as the client sent it (base64)."""
    return parse_plain(decode(response))
