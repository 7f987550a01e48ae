"""Login throttling by (source, account) and by source: guessing stops, owners stay in."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import task

from mailstack.realm import checker as checkers, throttle
from tests.unit.test_realm import realm  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc).timestamp()
ANN, BOB = "ann@example.test", "bob@example.test"
ATTACKER, HOME, CGNAT = "192.0.2.66", "198.51.100.7", "100.64.1.1"


def make(**settings) -> tuple[task.Clock, throttle.FailureThrottle]:
    clock = task.Clock()
    clock.advance(NOW)
    return clock, throttle.FailureThrottle(clock, **settings)


def test_a_repeated_stale_password_counts_once():
    _clock, t = make()
    delays = [t.failed(HOME, ANN, "last year's password") for _ in range(500)]
    assert set(delays) == {0.0}
    assert t.gate(HOME, ANN) == throttle.Gate(False, 0.0)


def test_distinct_guesses_slow_then_refuse_only_that_account_from_that_source():
    clock, t = make(pair_free=2, pair_refuse_after=6, base_delay=1, max_delay=4)
    delays = []
    for n in range(6):
        delays.append(t.gate(ATTACKER, ANN).delay)
        t.failed(ATTACKER, ANN, f"guess {n}")
    assert delays == [0, 0, 0, 1, 2, 4]
    assert t.gate(ATTACKER, ANN).refused
    assert t.gate(HOME, ANN) == throttle.Gate(False, 0.0)       # the owner, elsewhere
    assert t.gate(ATTACKER, BOB) == throttle.Gate(False, 0.0)   # a neighbour on its address
    clock.advance(t.window + 1)
    assert not t.gate(ATTACKER, ANN).refused


def test_a_success_from_the_attackers_address_does_not_reset_its_count():
    _clock, t = make(pair_refuse_after=5)
    for n in range(5):
        t.failed(ATTACKER, ANN, f"guess {n}")
    t.succeeded(ATTACKER, ANN)        # the owner polls from behind the same NAT
    assert t.gate(ATTACKER, ANN).refused


def test_spraying_refuses_the_source_but_not_accounts_that_logged_in_from_it():
    _clock, t = make(ip_free=3, ip_refuse_after=20, ip_max_delay=0.25, base_delay=0.1)
    t.succeeded(ATTACKER, BOB)
    delays = [t.failed(ATTACKER, f"user{n}@example.test", "123456") for n in range(20)]
    assert delays[:3] == [0, 0, 0] and 0 < delays[3] and max(delays) == 0.25
    assert t.gate(ATTACKER, "carol@example.test").reason == "source"
    assert not t.gate(ATTACKER, BOB).refused
    assert not t.gate(HOME, "carol@example.test").refused


def test_shared_networks_get_the_looser_limits():
    _clock, t = make(ip_refuse_after=20, shared_networks=("100.64.0.0/10",),
                     shared_ip_refuse_after=200)
    for n in range(50):
        t.failed(CGNAT, f"user{n}@example.test", "123456")
        t.failed(ATTACKER, f"user{n}@example.test", "123456")
    assert not t.gate(CGNAT, "carol@example.test").refused
    assert t.gate(ATTACKER, "carol@example.test").refused


def test_ipv6_is_throttled_per_64_and_mapped_ipv4_as_ipv4():
    _clock, t = make(pair_refuse_after=3)
    for n in range(3):
        t.failed(f"2001:db8:1:2::{n + 1}", ANN, f"guess {n}")
    assert t.gate("2001:db8:1:2:ffff::9", ANN).refused
    assert not t.gate("2001:db8:1:3::1", ANN).refused
    assert throttle.source_of("::ffff:192.0.2.66") == ATTACKER


def test_memory_stays_bounded_under_a_botnet():
    _clock, t = make(max_tracked=100, pair_refuse_after=4)
    for n in range(5000):
        t.failed(f"10.{n // 250}.{n % 250}.1", ANN, f"guess {n}")
        t.failed(ATTACKER, ANN, f"guess {n}")
    assert len(t._pairs) <= 100 and len(t._sources) <= 100
    assert max(len(e) for e in t._pairs._keys.values()) <= 4


def test_refused_attempts_check_no_password_and_the_owner_elsewhere_gets_in(realm):  # noqa: F811
    for n in range(realm.throttle.settings.pair_refuse_after):
        with pytest.raises(UnauthorizedLogin):
            realm.login(ANN.encode(), f"guess {n}".encode(), ip=ATTACKER)
    checks = realm.verifications
    with pytest.raises(checkers.TemporaryAuthFailure):
        realm.login(ANN.encode(), b"right", ip=ATTACKER)
    assert realm.verifications == checks
    assert realm.login(ANN.encode(), b"right", ip=HOME).address == ANN
    assert realm.events()[0].reason == "" and realm.events()[1].reason == "throttled"
