"""Deadlines that a trickle of input cannot push back (issue 13, case 4).

Why: an idle timeout is reset by every line, so one line every 8 s kept any session open
for ever.  Two limits are not reset by activity:

- ``Deadline``: a fixed time to reach a state -- a POP3 or IMAP client must log in within
  ``login_timeout`` of connecting, however busy it keeps the connection.
- ``RateDeadline``: data the client has promised (SMTP DATA, an IMAP literal) must arrive
  at ``min_rate`` bytes a second on average, after ``grace`` seconds: Postfix's
  ``smtpd_min_data_rate`` (500 bytes/s) applied the same way, so a slow but real link is
  never cut while a trickle is.

Both run on the injected business clock (ARCHITECTURE C5) and cost one delayed call each.

Security: against slow-drip clients (slowloris): input now and then keeps neither a
session that has not logged in nor a trickling DATA or literal alive, and each limit costs
one delayed call, whatever the client sends.  Not here: how many connections a client may
hold (``connection_limits``) and how long a silent one may stay (the idle timeouts).
"""

from __future__ import annotations


class Deadline:
    """Calls ``expired`` ``seconds`` from now unless cancelled first."""

    def __init__(self, clock, seconds: float, expired):
        self._call = clock.callLater(seconds, expired)

    def cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class RateDeadline:
    """Calls ``expired`` when the time since it started exceeds ``grace + received /
    min_rate``: each byte that arrives buys ``1 / min_rate`` seconds more."""

    def __init__(self, clock, grace: float, min_rate: float, expired):
        self.clock, self.grace, self.min_rate, self.expired = clock, grace, min_rate, expired
        self.received = 0
        self.started = clock.seconds()
        self._call = clock.callLater(grace, self._check)

    def add(self, count: int) -> None:
        self.received += count

    def _check(self) -> None:
        allowed = self.grace + self.received / self.min_rate
        left = allowed - (self.clock.seconds() - self.started)
        if left > 0:
            self._call = self.clock.callLater(left, self._check)
        else:
            self._call = None
            self.expired()

    def cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
