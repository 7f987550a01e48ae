"""Credentials that carry the session facts a login event must record.

Why: ``Portal.login`` passes only the credentials to the checker.  Protocol, client IP,
TLS and mechanism travel on the credentials object so the one checker can record the
login event for every protocol (TWISTED-NOTES, "portal.login carries no session facts").
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from twisted.cred.credentials import IUsernamePassword
from zope.interface import Attribute, implementer


class ISessionCredentials(IUsernamePassword):
    """A username and password plus the facts of the session that sent them."""

    protocol = Attribute("smtp, pop3 or imap")
    client_ip = Attribute("the client's IP address as text")
    tls = Attribute("whether the password travelled under TLS")
    mechanism = Attribute("USER, PLAIN, LOGIN ...")


@implementer(ISessionCredentials)
@dataclass
class SessionCredentials:
    username: bytes | str
    password: bytes | str
    protocol: str
    client_ip: str
    tls: bool
    mechanism: str
    client_name: str | None = None
    port: int | None = None

    def checkPassword(self, password) -> bool:
        mine = self.password.encode() if isinstance(self.password, str) else self.password
        theirs = password.encode() if isinstance(password, str) else password
        return hmac.compare_digest(mine, theirs)

    def decoded(self) -> tuple[str, str]:
        """(username, password) as text; raises UnicodeDecodeError for non-UTF-8 input."""
        user = self.username.decode("utf-8") if isinstance(self.username, bytes) else self.username
        pw = self.password.decode("utf-8") if isinstance(self.password, bytes) else self.password
        return user, pw


@dataclass(frozen=True)
class AccountRef:
    """The avatar id the checker hands the realm: who logged in.

    ``sends_as_any``: the account's sender rule "any" as it stood at this login, so that
    submission need not read it again for every message (issue 16); a rule withdrawn
    meanwhile applies from the next login (``policy/sender_rules.py``)."""

    id: int
    address: str
    sends_as_any: bool = False
