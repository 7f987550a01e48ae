"""The retry schedule and expiry are pure functions of attempts and age."""

from datetime import datetime, timedelta, timezone

from mailstack.delivery import bounce, retry

T0 = datetime(2026, 11, 25, tzinfo=timezone.utc)


def test_each_failure_waits_longer_and_the_last_interval_repeats():
    schedule = (300, 900, 3600)
    waits = [(retry.next_attempt(T0, n, schedule) - T0).total_seconds() for n in (1, 2, 3, 4, 9)]
    assert waits == [300, 900, 3600, 3600, 3600]


def test_expiry_at_the_maximum_age():
    assert not retry.expired(T0, T0 + timedelta(days=5) - timedelta(seconds=1), 5 * 86400)
    assert retry.expired(T0, T0 + timedelta(days=5), 5 * 86400)


def test_bounce_status_comes_from_the_reply_or_says_expired():
    assert bounce.status_of("550 5.1.1 no such user", False) == "5.1.1"
    assert bounce.status_of("451 4.3.0 busy", True) == "4.4.7"
    assert bounce.status_of("connection refused", False) == "5.0.0"
