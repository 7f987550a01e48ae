"""Deadlines a trickle cannot push back (protocols/deadlines.py), on a test clock."""

from __future__ import annotations

from twisted.internet import task

from mailstack.protocols.deadlines import Deadline, RateDeadline


def test_a_deadline_fires_once_unless_cancelled():
    clock, fired = task.Clock(), []
    Deadline(clock, 60, lambda: fired.append(clock.seconds()))
    cancelled = Deadline(clock, 30, lambda: fired.append("no"))
    cancelled.cancel()
    clock.advance(59)
    assert fired == []
    clock.advance(1)
    assert fired == [60]
    cancelled.cancel()                  # twice is harmless


def test_data_at_the_minimum_rate_keeps_the_deadline_away():
    clock, fired = task.Clock(), []
    deadline = RateDeadline(clock, grace=300, min_rate=500, expired=lambda: fired.append(1))
    for _ in range(100):               # 1,000 bytes a second for 100 s after the grace
        clock.advance(4)
        deadline.add(4000)
    clock.advance(10)
    assert fired == []
    deadline.cancel()
    clock.advance(10_000)
    assert fired == []


def test_a_trickle_expires_soon_after_the_grace():
    clock, fired = task.Clock(), []
    deadline = RateDeadline(clock, grace=300, min_rate=500, expired=lambda: fired.append(clock.seconds()))
    for _ in range(60):                # 10 bytes every 8 s
        deadline.add(10)
        clock.advance(8)
    assert fired and 300 <= fired[0] <= 310
