"""POP-before-SMTP: a successful POP login from an IP lets that IP send for a while.

Why it still exists: legacy customers' mail programs were set up in the 2000s to "check
mail before sending".  The window is read from the shared login records, so a POP login
served by one process opens the window on every process that shares the database.  After
the sunset the same client gets a 530 that tells the user what to change, instead of a
bare refusal; clients with no recent POP login get the plain 530.

Standards: RFC 4954 §6 (530 5.7.0).  Security: a failed login opens nothing (only
successful login events count), and the window is per IP, never per network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.policy.decision import DUNNO, Decision, Verdict, reject
from mailstack.realm.credentials import AccountRef
from mailstack.store import logins


@dataclass(frozen=True)
class WindowLogin:
    """Who opened the window, and whether their password travelled under TLS."""

    account: AccountRef
    protocol: str
    tls: bool


class PopBeforeSMTP:
    name = "pop-before-smtp"

    def _refuse(self, why, reply):
        return reject(self.name, why, reply) if self.required else DUNNO

    def __init__(self, db, clock, config, help_url: str, *, required: bool = True,
                 applies_to=None):
        self.db, self.clock, self.config, self.help_url = db, clock, config, help_url
        # On port 25 the window is optional (the MX takes mail for us from anyone) and
        # applies only to the ISP's customer networks (OP25B's "before the phase").
        self.required = required
        self.applies_to = applies_to

    def sunset_passed(self) -> bool:
        sunset = self.config.sunset
        return sunset is not None and clocks.now(self.clock) >= sunset

    @defer.inlineCallbacks
    def check(self, request):
        if request.authenticated_as:
            return DUNNO
        if self.applies_to is not None and not self.applies_to(request.client_ip):
            return DUNNO
        if not self.config.enabled:
            return self._refuse("no authentication", replies.AUTH_REQUIRED)
        since = clocks.now(self.clock) - timedelta(seconds=self.config.window)
        login = yield self.db.read(logins.last_success_from, request.client_ip, since,
                                   self.config.protocols)
        if login is None:
            return self._refuse("no login window", replies.AUTH_REQUIRED)
        if self.sunset_passed():
            return self._refuse(f"window of {login.username} after the sunset",
                                replies.POP_BEFORE_SMTP_ENDED.format(url=self.help_url))
        return Decision(Verdict.PERMIT, self.name, f"window of {login.username}",
                        subject=WindowLogin(AccountRef(login.account_id, login.username),
                                            login.protocol, login.tls))
