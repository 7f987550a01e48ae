"""SASL PLAIN's message (RFC 4616), read once for SMTP, POP3 and IMAP.

Why: ``authzid NUL authcid NUL passwd``.  A client may ask to act as another identity
(the authorization identity); we grant no such proxy rights, so a non-empty authzid that
is not the authenticating user fails the login (RFC 4616 §2: the server must check that
the authcid may act as the authzid) instead of logging in as the authcid.
Security: the password is returned, never logged.
"""

from __future__ import annotations


class ForeignAuthzid(ValueError):
    """The client asked to act as someone else: an authentication failure, not a syntax one."""


def parse_plain(message: bytes) -> tuple[bytes, bytes]:
    """(authcid, password); ValueError when malformed, ForeignAuthzid when proxying."""
    authzid, user, password = message.split(b"\0")      # ValueError unless exactly three
    if not user:
        raise ValueError("empty authentication identity")
    if authzid and authzid.lower() != user.lower():
        raise ForeignAuthzid("authorization identity differs")
    return user, password
