"""The POP3 maildrop lock, held as a lease.

Why a lease: RFC 1939 §8 gives the maildrop to one session at a time, but a process that dies
holding the lock must not lock its user out; so the lock expires after two idle timeouts and
a live session renews it.  A renewal is committed before the reply to the command that
caused it, so no second login slips in while it is being written.
"""

from __future__ import annotations

from datetime import timedelta

from mailstack import clock as clocks
from mailstack.store import maildrop


class MaildropLease:
    def __init__(self, parts, holder: str, log):
        self.parts, self.holder, self.log = parts, holder, log
        self.account_id = None
        self._renewed = None

    def _idle(self) -> timedelta:
        return timedelta(seconds=self.parts.config.pop3.idle_timeout)

    def take(self, account_id: int):
        """Deferred list of maildrop entries; fails with InUse/Conflict while another holds it."""
        now = clocks.now(self.parts.clock)

        def taken(drop):
            self.account_id, self._renewed = account_id, now
            return drop
        return self.parts.db.run(maildrop.open_maildrop, account_id, self.holder, now,
                                 now + 2 * self._idle()).addCallback(taken)

    def renew(self):
        """A Deferred when the lease was due for renewal (at most every half idle timeout)."""
        now = clocks.now(self.parts.clock)
        if self.account_id is None or now - self._renewed <= self._idle() / 2:
            return None
        self._renewed = now
        return self.parts.db.run(maildrop.refresh, self.account_id, self.holder,
                                 now + 2 * self._idle()).addCallbacks(self._renewed_as, (
            lambda f: self.log.warn("could not renew the maildrop lock: {e}", e=f.value)))

    def _renewed_as(self, held: bool) -> None:
        if not held:
            self.log.warn("maildrop lock lost (it expired and another session took it)")

    def close(self, delete_ids):
        """QUIT: the deletions and the release in one transaction; Deferred count deleted."""
        def closed(removed):
            self.account_id = None
            return removed
        return self.parts.db.run(maildrop.close_maildrop, self.account_id, self.holder,
                                 delete_ids).addCallback(closed)

    def release(self) -> None:
        """Without QUIT nothing is deleted (RFC 1939 §6); an unreleased lock simply expires."""
        account_id, self.account_id = self.account_id, None
        if account_id is not None:
            self.parts.db.run(maildrop.release, account_id, self.holder).addErrback(
                lambda f: self.log.warn("could not release the maildrop lock (it will expire)"))
