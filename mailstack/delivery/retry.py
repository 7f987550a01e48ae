"""When to try again, and when to give up: pure functions of the attempt count and age.

Why pure: the schedule is policy an operator reads in the configuration, and tests check
it without a network or a clock.

Security: none of its own: no network and no I/O.  ``expired`` bounds how long a
recipient is retried (``max_queue_age``), so a dead destination cannot keep mail queued for
ever; how much mail may wait in the queue is not bounded here.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def next_attempt(now: datetime, attempts: int, schedule) -> datetime:
    """After the ``attempts``-th failure (1-based); the last interval repeats."""
    delays = tuple(schedule) or (3600,)
    return now + timedelta(seconds=delays[min(max(attempts, 1), len(delays)) - 1])


def expired(created_at: datetime, now: datetime, max_age: int) -> bool:
    return now - created_at >= timedelta(seconds=max_age)
