"""Which DKIM keys are published and which sign at a moment; how a rotation is planned.

Why dated: a receiver verifies a signature with the key it finds in DNS *when the message
arrives*, so a new key must be published before it signs (DNS caches and secondaries need
time: ``[dkim] rotation_delay``), the old key keeps signing until then so no mail goes
unsigned, and the old record stays published for ``[dkim] keep_retired`` after it stops
signing, for mail still queued or in transit (RFC 6376 §3.1 and M3AAWG's key-rotation
practice).  Every question takes the moment as an argument (the injected clock, or
``--at``); nothing here reads a clock.

A key's life::

    published_at ---- signs_from ---------- retires_at ---- + keep_retired
       published          signing              retired          withdrawn

Selectors are the date of the key's creation, ``YYYYMMDD``, with ``e`` for Ed25519 and
``r`` for RSA (``20261203e``, ``20261203r``); a second key set on one day gets ``-2``,
``-3`` … before the letter.  ``--selector S`` replaces the date.

Standards: RFC 6376 §3.1 (selectors), RFC 8463 §4 (dual signing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailstack.dkim.keys import ALGORITHMS, ED25519

SUFFIX = {ED25519: "e", "rsa": "r"}


class ScheduleError(ValueError):
    """The domain's keys do not allow this step now (the message says why)."""


def signs(key, at: datetime) -> bool:
    return key.signs_from <= at and (key.retires_at is None or at < key.retires_at)


def published(key, at: datetime, keep: timedelta) -> bool:
    return key.published_at <= at and (key.retires_at is None or at < key.retires_at + keep)


def state(key, at: datetime, keep: timedelta) -> str:
    if key.published_at > at:
        return "unpublished"
    if signs(key, at):
        return "signing"
    if key.signs_from > at:
        return "published"          # in DNS, waiting to sign
    return "retired" if published(key, at, keep) else "withdrawn"


def choose(keys, at: datetime) -> list:
    """The keys that sign a message at ``at``: per algorithm, the newest that signs."""
    best = {}
    for key in keys:
        if signs(key, at) and (key.algorithm not in best
                               or key.signs_from > best[key.algorithm].signs_from):
            best[key.algorithm] = key
    return [best[a] for a in ALGORITHMS if a in best]


@dataclass(frozen=True)
class Plan:
    selectors: dict          # algorithm -> selector of the new key
    signs_from: datetime     # when the new keys start signing
    retire: tuple            # ids of the keys that stop signing then


def selectors(at: datetime, taken, base: str | None = None, algorithms=ALGORITHMS) -> dict:
    """The new keys' selectors (module doc); ScheduleError when ``base`` is taken."""
    stem = base or at.strftime("%Y%m%d")
    for n in range(1, 100):
        candidate = stem if n == 1 else f"{stem}-{n}"
        names = {a: candidate + SUFFIX[a] if len(algorithms) > 1 or not base else candidate
                 for a in algorithms}
        if not set(names.values()) & set(taken):
            return names
        if base:
            raise ScheduleError(f"selector {', '.join(sorted(names.values()))} already exists")
    raise ScheduleError("no free selector for today")


def first_keys(existing, at: datetime, base: str | None = None,
               algorithms=ALGORITHMS) -> Plan:
    """The domain's first keys (or keys for a new algorithm): they sign at once.

    Refused while a key of the same algorithm signs or will: that is a rotation."""
    live = [k for k in existing if k.algorithm in algorithms
            and (k.retires_at is None or k.retires_at > at)]
    if live:
        raise ScheduleError(f"{live[0].domain} already has {live[0].algorithm} key "
                            f"{live[0].selector}: use `mailstack dkim rotate`")
    return Plan(selectors(at, [k.selector for k in existing], base, algorithms), at, ())


def rotation(existing, at: datetime, delay: timedelta, base: str | None = None) -> Plan:
    """New keys published now and signing after ``delay``, when the current ones retire.

    Refused when nothing signs now (``keygen`` first) or a rotation is already waiting."""
    current = choose(existing, at)
    if not current:
        raise ScheduleError("no key signs now: `mailstack dkim keygen` first")
    waiting = [k for k in existing if k.signs_from > at]
    if waiting:
        raise ScheduleError(f"a rotation is already under way: {waiting[0].selector} signs "
                            f"from {waiting[0].signs_from.isoformat(timespec='seconds')}")
    algorithms = tuple(a for a in ALGORITHMS if any(k.algorithm == a for k in current))
    retire = tuple(k.id for k in existing if k.retires_at is None or k.retires_at > at + delay)
    return Plan(selectors(at, [k.selector for k in existing], base, algorithms), at + delay,
                retire)
