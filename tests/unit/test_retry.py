"""The retry schedule and expiry are pure functions of attempts and age."""

from datetime import datetime, timedelta, timezone

import pytest

from mailstack.config_sections import DeliveryConfig
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


DEFAULT = DeliveryConfig()


def test_the_first_failure_is_attempt_one_and_nonsense_counts_clamp_to_it():
    schedule = (300, 900)
    for attempts in (-3, 0, 1):
        assert retry.next_attempt(T0, attempts, schedule) == T0 + timedelta(seconds=300)


def test_an_empty_schedule_retries_hourly():
    assert retry.next_attempt(T0, 1, ()) - T0 == timedelta(hours=1)
    assert retry.next_attempt(T0, 7, []) - T0 == timedelta(hours=1)


def test_any_sequence_is_a_schedule():
    assert retry.next_attempt(T0, 2, [60, 120]) - T0 == timedelta(seconds=120)
    assert retry.next_attempt(T0, 2, iter([60, 120])) - T0 == timedelta(seconds=120)


def test_the_default_schedule_walked_to_expiry():
    """Every attempt of a destination that never answers, on the shipped defaults: waits of
    5 min, 15 min, 30 min, 1 h, 2 h, then every 4 h, until 5 days, then the bounce."""
    assert DEFAULT.retry_schedule == (300, 900, 1800, 3600, 7200, 14400)
    created = now = T0
    attempts, waits = 0, []
    while not retry.expired(created, now, DEFAULT.max_queue_age):
        attempts += 1                                    # this attempt failed (4xx)
        later = retry.next_attempt(now, attempts, DEFAULT.retry_schedule)
        waits.append(int((later - now).total_seconds()))
        now = later
    assert waits[:7] == [300, 900, 1800, 3600, 7200, 14400, 14400]
    assert set(waits[6:]) == {14400}
    assert attempts == 35     # the first five waits: 13 800 s; then 30 of 4 h pass 432 000 s (5 d)
    assert now - created >= timedelta(days=5) > now - created - timedelta(seconds=14400)


def test_expiry_counts_age_not_attempts_and_a_clock_step_back_is_not_age():
    assert not retry.expired(T0, T0 - timedelta(hours=1), 60)
    assert retry.expired(T0, T0 + timedelta(seconds=60), 60)
    assert not retry.expired(T0, T0 + timedelta(seconds=59, microseconds=999_999), 60)


@pytest.mark.parametrize("reply, expired, status", [
    ("550 5.1.1 <x@remote.test>: no such user", False, "5.1.1"),
    ("554 5.7.1 relay denied", True, "5.7.1"),          # a permanent reply speaks for itself
    ("550 mailbox unavailable", False, "5.0.0"),         # no enhanced code: the generic one
    ("451 4.3.0 busy", True, "4.4.7"),                   # retried until too old
    ("451 4.3.0 busy", False, "5.0.0"),
    ("cannot connect to mx.remote.test:25 (ConnectionRefusedError)", True, "4.4.7"),
])
def test_bounce_status(reply, expired, status):
    assert bounce.status_of(reply, expired) == status
