"""Throttling of failed logins, per client IP and per account.

Why: password guessing over POP3/IMAP/SMTP AUTH is constant background noise at an ISP.
Each distinct wrong password from an IP (or against an account) within the window adds
delay before the failure is answered, doubling up to a cap; past a limit the source is
refused temporarily without a password check at all.  Repeats of the *same* wrong
password -- a household's old phone still polling with last year's password -- count once,
so they never escalate to a lock-out of the account's owner on a fresh device.

Time: failures are counted on the injected business clock (ARCHITECTURE C5).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import defaultdict


class FailureThrottle:
    def __init__(self, clock, *, window: float = 900.0, free: int = 3,
                 base_delay: float = 0.5, max_delay: float = 8.0, refuse_after: int = 30):
        self.clock = clock
        self.window = window
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.refuse_after = refuse_after
        self._key = os.urandom(32)
        self._failures: dict[str, dict[bytes, float]] = defaultdict(dict)

    def _fingerprint(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()[:16]

    def _count(self, key: str) -> int:
        now = self.clock.seconds()
        entries = self._failures.get(key)
        if not entries:
            return 0
        for fp in [fp for fp, at in entries.items() if now - at > self.window]:
            del entries[fp]
        if not entries:
            del self._failures[key]
        return len(entries)

    def refused(self, client_ip: str, username: str) -> bool:
        """Too many distinct failures: answer temporarily without checking the password."""
        return max(self._count(f"ip:{client_ip}"),
                   self._count(f"user:{username}")) >= self.refuse_after

    def failed(self, client_ip: str, username: str, password: str) -> float:
        """Record a failure; return how long to delay the answer, in seconds."""
        fp = self._fingerprint(password)
        now = self.clock.seconds()
        for key in (f"ip:{client_ip}", f"user:{username}"):
            self._failures[key][fp] = now
        excess = max(self._count(f"ip:{client_ip}"), self._count(f"user:{username}")) - self.free
        if excess <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * (2 ** (excess - 1)))

    def succeeded(self, client_ip: str, username: str) -> None:
        self._failures.pop(f"user:{username}", None)
