"""The one source of business time.

Why: windows, sunsets, cutovers, block expiries, throttles and retries must all agree on
"now", and tests must be able to move it (``twisted.internet.task.Clock``).  Everything
that reads business time takes a ``clock`` -- any object with ``seconds()`` (an
``IReactorTime``) -- and converts through here.  Only ``service.py`` passes the reactor.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def seconds(self) -> float: ...


def now(clock: Clock) -> datetime:
    """Business time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.seconds(), tz=timezone.utc)


def to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def to_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class WallClock:
    """Real time for code that runs without a reactor (the admin CLI)."""

    def seconds(self) -> float:
        return time.time()


class FixedClock:
    """A moment that does not move: "what is in force at DATE" questions."""

    def __init__(self, moment: datetime):
        self._seconds = to_seconds(moment)

    def seconds(self) -> float:
        return self._seconds
