"""Throttling of failed logins by (client, account) and by client, never by account alone.

Why: password guessing over POP3/IMAP/SMTP AUTH is constant background noise at an ISP,
but a throttle keyed by the account alone hands the attacker a lock-out of its owner (30
guesses used to refuse the owner everywhere for 15 minutes; one a minute, for ever), and
one keyed by the IP alone refuses every customer behind a CGNAT address.  So:

* ``(source, account)`` -- the guesser's own key.  Past ``pair_free`` distinct wrong
  passwords every attempt on it waits ``base_delay`` doubling up to ``max_delay`` *before*
  the check (a client that hangs up early gains nothing); past ``pair_refuse_after`` it is
  refused without a password check until its failures age out of ``window``.  A success
  does not wipe it: an owner polling from the attacker's address must not reset its count.
* ``source`` -- distinct failures across all accounts (password spraying).  Past
  ``ip_free`` a wrong password is answered after a short delay (at most ``ip_max_delay``);
  past ``ip_refuse_after`` the source is refused, *except* for accounts that logged in from
  it successfully within ``remember_success`` (the CGNAT neighbours keep polling).
  Addresses in ``shared_networks`` (CGNAT pools, big NATs) get ``shared_ip_free`` and
  ``shared_ip_refuse_after`` instead.
* Nothing is keyed by the account alone: a correct password from a source with no failures
  of its own is always let through at once.
* A repeated wrong password counts once (Dovecot's auth penalty does the same): a phone
  polling every minute with last year's password is one mistake, never a lock-out.  Only a
  keyed HMAC of failed passwords is kept (``realm/failures.py``), never the password.

Sources: an IPv4 address as is; IPv6 per /64 (one customer's prefix); IPv4-mapped IPv6 as
IPv4.  Standards: RFC 4954 §4 and RFC 5530 (temporary failure, ``[UNAVAILABLE]``/
``[SYS/TEMP]``/454 4.7.0, as the protocols render ``TemporaryAuthFailure``), RFC 6177 (/64).

Time: failures are counted on the injected business clock (ARCHITECTURE C5); the delays
themselves are network pacing and run on the reactor (``realm/checker.py``).

Security: memory is bounded per key and in keys (``max_tracked``); refused attempts check
no password, so they cost no hashing and reveal nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import NamedTuple

from mailstack.realm.failures import Fingerprints, RecentFailures, RecentSuccesses


@dataclass(frozen=True)
class ThrottleSettings:
    window: float = 900.0               # seconds a failure is remembered
    pair_free: int = 3                  # distinct failures per (source, account) without delay
    pair_refuse_after: int = 10         # ... after which that pair is refused
    base_delay: float = 0.5             # first delay; doubles per further failure
    max_delay: float = 8.0              # cap of the (source, account) delay
    ip_free: int = 10                   # distinct failures per source without delay
    ip_refuse_after: int = 100          # ... after which the source is refused (see above)
    ip_max_delay: float = 2.0           # cap of the per-source delay: "a short delay"
    shared_networks: tuple[str, ...] = ()   # CIDRs of CGNAT pools and other shared sources
    shared_ip_free: int = 100
    shared_ip_refuse_after: int = 2000
    remember_success: float = 30 * 86400.0  # a successful (source, account) is exempt from
    max_tracked: int = 100_000              # the source refusal this long; keys kept per table


class Gate(NamedTuple):
    refused: bool
    delay: float            # seconds to wait before checking the password
    reason: str = ""        # "account-from-source" | "source" when refused


def backoff(excess: int, base: float, cap: float) -> float:
    """0 for no excess, then base, 2·base, 4·base … up to cap."""
    if excess <= 0:
        return 0.0
    return min(cap, base * (2 ** min(excess - 1, 32)))


def source_of(client_ip: str) -> str:
    """The throttled unit: the IPv4 address, or the IPv6 /64 (RFC 6177)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class FailureThrottle:
    def __init__(self, clock, settings: ThrottleSettings | None = None, **overrides):
        s = replace(settings or ThrottleSettings(), **overrides)
        self.clock, self.settings, self.window = clock, s, s.window
        self._shared = tuple(ipaddress.ip_network(n, strict=False) for n in s.shared_networks)
        self._fingerprints = Fingerprints()
        most = max(s.ip_refuse_after, s.shared_ip_refuse_after)
        self._pairs = RecentFailures(clock, window=s.window, per_key=s.pair_refuse_after,
                                     max_keys=s.max_tracked)
        self._sources = RecentFailures(clock, window=s.window, per_key=most,
                                       max_keys=s.max_tracked)
        self._good = RecentSuccesses(clock, remember=s.remember_success, max_keys=s.max_tracked)

    def _limits(self, client_ip: str) -> tuple[int, int]:
        """(free, refuse_after) per source: looser for shared addresses."""
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            address = None
        if address is not None and any(address in net for net in self._shared
                                       if net.version == address.version):
            return self.settings.shared_ip_free, self.settings.shared_ip_refuse_after
        return self.settings.ip_free, self.settings.ip_refuse_after

    def gate(self, client_ip: str, username: str) -> Gate:
        """Before the password check: refuse, or let through after ``delay`` seconds."""
        s, source = self.settings, source_of(client_ip)
        pair_failures = self._pairs.count((source, username))
        if pair_failures >= s.pair_refuse_after:
            return Gate(True, 0.0, "account-from-source")
        _free, refuse_after = self._limits(client_ip)
        if (self._sources.count(source) >= refuse_after
                and (source, username) not in self._good):
            return Gate(True, 0.0, "source")
        return Gate(False, backoff(pair_failures - s.pair_free, s.base_delay, s.max_delay))

    def refused(self, client_ip: str, username: str) -> bool:
        return self.gate(client_ip, username).refused

    def failed(self, client_ip: str, username: str, password: str) -> float:
        """Record a failure; return how long to delay its answer, in seconds."""
        source = source_of(client_ip)
        fingerprint = self._fingerprints.of(username, password)
        self._pairs.add((source, username), fingerprint)
        source_failures = self._sources.add(source, fingerprint)
        free, _refuse_after = self._limits(client_ip)
        return backoff(source_failures - free, self.settings.base_delay,
                       self.settings.ip_max_delay)

    def succeeded(self, client_ip: str, username: str) -> None:
        self._good.add((source_of(client_ip), username))
