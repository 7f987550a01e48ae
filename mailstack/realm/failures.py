"""Recent failed logins, remembered as keyed fingerprints in bounded memory.

Why: the throttle (``realm/throttle.py``) must count *distinct* wrong passwords per key --
a phone retrying last year's password every minute is one mistake, not sixty guesses
(Dovecot's auth penalty ignores repeats the same way) -- without ever holding a password.
Each failure is kept as a truncated HMAC-SHA256 under a per-process random key, with the
time it was last seen on the injected business clock (ARCHITECTURE C5).

Memory is bounded whatever the attacker does: at most ``per_key`` fingerprints per key
(the oldest is dropped first: past the refusal threshold more would change nothing) and at
most ``max_keys`` keys, the least recently touched evicted first.

Security: no password, hash or reversible form of one is stored; the HMAC key never leaves
the process and changes on every start, so fingerprints cannot be tested offline.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict


class Fingerprints:
    """One process-wide HMAC key: the same (account, password) gives the same fingerprint."""

    def __init__(self):
        self._key = os.urandom(32)

    def of(self, *parts: str) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            data = part.encode("utf-8", "surrogateescape")
            mac.update(len(data).to_bytes(4, "big") + data)   # unambiguous concatenation
        return mac.digest()[:16]


class RecentFailures:
    """key → {fingerprint: last seen}, forgetting entries older than ``window`` seconds."""

    def __init__(self, clock, *, window: float, per_key: int, max_keys: int):
        self.clock = clock
        self.window = window
        self.per_key = max(1, per_key)
        self.max_keys = max(1, max_keys)
        self._keys: OrderedDict[object, OrderedDict[bytes, float]] = OrderedDict()

    def add(self, key, fingerprint: bytes) -> int:
        """Record one failure (a repeat only refreshes its time); return the distinct count."""
        entries = self._keys.get(key)
        if entries is None:
            entries = self._keys[key] = OrderedDict()
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        entries.pop(fingerprint, None)
        entries[fingerprint] = self.clock.seconds()
        while len(entries) > self.per_key:
            entries.popitem(last=False)
        return self.count(key)

    def count(self, key) -> int:
        """Distinct failures for ``key`` within the window."""
        entries = self._keys.get(key)
        if entries is None:
            return 0
        oldest_kept = self.clock.seconds() - self.window
        while entries and next(iter(entries.values())) < oldest_kept:
            entries.popitem(last=False)                  # insertion order is time order
        if not entries:
            del self._keys[key]
            return 0
        return len(entries)

    def forget(self, key) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class RecentSuccesses:
    """key → time of the last successful login, bounded like ``RecentFailures``."""

    def __init__(self, clock, *, remember: float, max_keys: int):
        self.clock = clock
        self.remember = remember
        self.max_keys = max(1, max_keys)
        self._keys: OrderedDict[object, float] = OrderedDict()

    def add(self, key) -> None:
        self._keys.pop(key, None)
        self._keys[key] = self.clock.seconds()
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def __contains__(self, key) -> bool:
        at = self._keys.get(key)
        if at is None:
            return False
        if self.clock.seconds() - at > self.remember:
            del self._keys[key]
            return False
        return True
