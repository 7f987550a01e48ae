"""The Sender Rewriting Scheme: the envelope sender of mail we forward, and its way back.

Why: a message for an alias that forwards to another provider leaves from our servers with
its sender unchanged, and the destination's SPF check of that sender's domain fails
(RFC 7208 §1.1.1: SPF breaks forwarding).  SRS gives the forwarded copy a sender in our
own domain that still leads back to the original one: ``SRS0=HHHH=TT=domain=local@ours``,
where ``TT`` is the day (base32, 1024 days round) and ``HHHH`` an HMAC over the day,
domain and local part, so nobody can make us relay by writing such addresses, and they
expire.  A sender that is already an SRS0 address of another forwarder becomes SRS1,
which names that forwarder (``SRS1=HHHH=forwarder==HHH=TT=domain=local@ours``), so a
bounce goes back the way the message came.

The format is Mail::SRS's ``Guarded`` scheme, as postsrsd and pysrs write it (HMAC-SHA1,
base64, 4 characters; base32 days; ``=`` separators), and the tests check it against
Mail::SRS itself.  Why our own ~110 lines of code and not pysrs: pysrs 1.0.3 (2018,
unmaintained) calls ``base64.encodestring``, gone since Python 3.9, so it cannot make a
hash on 3.11; it reads ``time.time()`` itself (no injected clock, C5); and it checks
hashes with ``assert``, which ``python -O`` removes -- a forged address would then pass.
There is no other maintained library on PyPI.

The null sender is never rewritten (a bounce stays a bounce), nor a sender of our own SRS
domain (postsrsd's rule: it already leads back to us).  Local parts are lower-cased at
RCPT (``addresses``), so the hash is compared without case, as Mail::SRS allows for MTAs
that "smash case" (RFC 5321 §2.4).

Standards: draft-mengwong-sender-rewrite / Mail::SRS (Shevek, 2004); RFC 7208 §1.1.1,
RFC 5321 §4.5.3.1 (an SRS local part may exceed 64 octets; MTAs accept longer ones).
Security: HMAC-SHA1 with a secret of ours (``[forwarding] srs_secrets`` or generated into
the database: ``store/srs_secrets.py``), compared in constant time; the first secret signs,
every one verifies (rotation); a timestamp older than ``max_age_days`` or in the future
is refused; a secret never appears in a repr, a log line or an exception text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

SRS0, SRS1, SEP = "SRS0", "SRS1", "="
HASH_LENGTH = 4                      # Mail::SRS's and postsrsd's default
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
DAY = 86400
SLOTS = 32 * 32                      # two base32 characters of days: the timestamp wraps
MAX_ADDRESS = 254                    # RFC 5321 §4.5.3.1.3 (path without the brackets)


class SRSError(ValueError):
    """Not a valid SRS address of ours; the text says why (for our log, not the client)."""


def is_srs_local(local: str) -> bool:
    """Whether a local part has the SRS0 or SRS1 form (``SRS0=``/``SRS1=``, any case)."""
    tag = local[:5].upper()
    return tag in (SRS0 + SEP, SRS1 + SEP)


def unwrap(address: str) -> str:
    """Where an SRS address points, without checking its hash or its day: for a bounce of
    mail we queued ourselves with that sender (``delivery/bounce.py``), never for an
    address a client gave (``SRS.reverse`` checks those)."""
    local, _, _domain = address.rpartition("@")
    if local[:5].upper() == SRS1 + SEP:
        parts = local[5:].split(SEP, 2)
        if len(parts) != 3 or not parts[1]:
            raise SRSError("malformed SRS1 address")
        return f"{SRS0}{parts[2]}@{parts[1]}"
    parts = local[5:].split(SEP, 3)
    if local[:5].upper() != SRS0 + SEP or len(parts) != 4 or not all(parts[2:]):
        raise SRSError("malformed SRS0 address")
    return f"{parts[3]}@{parts[2]}"


class SRS:
    """Rewrites senders into ``domain`` and reverses such addresses, keyed by ``secrets``."""

    def __init__(self, domain: str, secrets, max_age_days: int = 21):
        if not secrets or not all(secrets):
            raise ValueError("SRS needs at least one non-empty secret")
        self.domain = domain.lower()
        self._keys = tuple(s.encode() if isinstance(s, str) else bytes(s) for s in secrets)
        self.max_age_days = max_age_days

    def __repr__(self) -> str:         # never the secrets
        return f"SRS(domain={self.domain!r}, secrets={len(self._keys)}, " \
               f"max_age_days={self.max_age_days})"

    # --- forward ---------------------------------------------------------------------------

    def forward(self, sender: str, at: datetime) -> str:
        """The envelope sender of a copy we forward: the null sender and senders of our
        own domain as they are; else SRS0, or SRS1 for another forwarder's SRS address.
        A rewritten address longer than a path may be is not made: the sender stays as it
        was (as postsrsd does), and SPF may fail for that one message."""
        if not sender:
            return sender
        local, _, domain = sender.rpartition("@")
        if domain.lower() == self.domain:
            return sender
        if local[:5].upper() == SRS1 + SEP:
            parts = local[5:].split(SEP, 2)
            if len(parts) == 3 and parts[1]:
                rewritten = self._srs1(parts[1], parts[2])
            else:
                rewritten = self._srs0(local, domain, at)
        elif local[:5].upper() == SRS0 + SEP:
            rewritten = self._srs1(domain, local[4:])
        else:
            rewritten = self._srs0(local, domain, at)
        return rewritten if len(rewritten) <= MAX_ADDRESS else sender

    def _srs0(self, local: str, domain: str, at: datetime) -> str:
        stamp = timestamp(at)
        return (SEP.join((SRS0, self._hash(stamp, domain, local), stamp, domain, local))
                + "@" + self.domain)

    def _srs1(self, forwarder: str, rest: str) -> str:
        """``rest``: the other forwarder's SRS0 local part without its ``SRS0`` tag
        (``=HHH=TT=domain=local``: the separator kept, hence ``==`` in SRS1)."""
        return (SEP.join((SRS1, self._hash(forwarder, rest), forwarder)) + SEP + rest
                + "@" + self.domain)

    # --- reverse ---------------------------------------------------------------------------

    def is_ours(self, address: str) -> bool:
        """An address of the SRS form in our SRS domain (valid or not)."""
        local, _, domain = address.rpartition("@")
        return domain.lower() == self.domain and is_srs_local(local)

    def reverse(self, address: str, at: datetime) -> str:
        """The address an SRS address of ours stands for, or ``SRSError`` (forged hash,
        expired or future day, malformed).  SRS1 gives the first forwarder's SRS0 address."""
        if not self.is_ours(address):
            raise SRSError("not an SRS address of ours")
        local = address.rpartition("@")[0]
        if local[:5].upper() == SRS1 + SEP:
            parts = local[5:].split(SEP, 2)
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise SRSError("malformed SRS1 address")
            given, forwarder, rest = parts          # rest: "=HHH=TT=domain=local"
            self._check(given, forwarder, rest)
            return f"{SRS0}{rest}@{forwarder}"
        parts = local[5:].split(SEP, 3)
        if len(parts) != 4 or not all(parts):
            raise SRSError("malformed SRS0 address")
        given, stamp, domain, original = parts
        if not self._fresh(stamp, at):
            raise SRSError("SRS timestamp expired or invalid")
        self._check(given, stamp, domain, original)
        return f"{original}@{domain}"

    def _check(self, given: str, *data: str) -> None:
        wanted = given.lower().encode()
        for key in self._keys:
            made = _mac(key, data)[:len(given)].lower().encode()
            if len(given) >= HASH_LENGTH and hmac.compare_digest(made, wanted):
                return
        raise SRSError("SRS hash does not match")

    def _fresh(self, stamp: str, at: datetime) -> bool:
        """Mail::SRS's check: a day of the last ``max_age_days`` in the 1024-day round."""
        stamp = stamp.upper()
        if len(stamp) != 2 or any(c not in BASE32 for c in stamp):
            return False
        then = BASE32.index(stamp[0]) * 32 + BASE32.index(stamp[1])
        now = day_of(at) % SLOTS
        while now < then:
            now += SLOTS
        return now - then <= self.max_age_days

    def _hash(self, *data: str) -> str:
        return _mac(self._keys[0], data)[:HASH_LENGTH]


def _mac(key: bytes, data) -> str:
    """HMAC-SHA1 over the lower-cased data, base64 (Mail::SRS ``hash_create``)."""
    mac = hmac.new(key, b"", hashlib.sha1)
    for item in data:
        mac.update(item.lower().encode("utf-8"))
    return base64.b64encode(mac.digest()).decode("ascii")


def day_of(at: datetime) -> int:
    return int(at.timestamp()) // DAY


def timestamp(at: datetime) -> str:
    """Two base32 characters of the day number (Mail::SRS ``timestamp_create``)."""
    day = day_of(at)
    return BASE32[(day >> 5) & 31] + BASE32[day & 31]
