"""The shared realm: verification off the reactor, login events, hash upgrades, throttling."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from passlib.hash import md5_crypt
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor, task

from mailstack.realm import checker as checkers, hashing, throttle
from mailstack.realm.credentials import AccountRef, SessionCredentials
from mailstack.store import directory, logins
from mailstack.store.db import Database
from tests.support.reactor import call

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


class Realm:
    def __init__(self, db_url):
        self.clock = task.Clock()
        self.clock.advance(NOW.timestamp())
        self.db = Database(db_url, reactor=reactor, threads=2)
        self.hasher = hashing.PasswordHasher(hashing.make_context(), reactor=reactor)
        self.verifications = 0
        real_verify = self.hasher.verify

        def counting_verify(password, stored):
            self.verifications += 1
            return real_verify(password, stored)

        self.hasher.verify = counting_verify
        self.db.start()
        self.hasher.start()
        self.throttle = throttle.FailureThrottle(self.clock, base_delay=0.01, max_delay=0.05)
        self.checker = checkers.AccountChecker(self.db, self.hasher, self.clock, self.throttle,
                                               reactor=reactor, cache_seconds=300)

    def login(self, user, password, ip="127.0.0.3", tls=True):
        creds = SessionCredentials(user, password, "pop3", ip, tls, "USER")
        return call(self.checker.requestAvatarId, creds)

    def events(self):
        return self.db.run_sync(logins.recent)

    def stop(self):
        self.hasher.stop()
        self.db.stop()


@pytest.fixture
def realm(db_url):
    r = Realm(db_url)
    r.db.run_sync(directory.add_domain, "example.test", NOW)
    r.db.run_sync(directory.add_account, "ann@example.test", r.hasher.hash("right"), NOW)
    yield r
    r.stop()


def test_good_password_logs_in_and_is_recorded_with_session_facts(realm):
    ref = realm.login(b"Ann@Example.test", b"right", ip="127.0.0.9", tls=False)
    assert isinstance(ref, AccountRef) and ref.address == "ann@example.test"
    [event] = realm.events()
    assert (event.success, event.protocol, event.client_ip, event.tls, event.mechanism) == (
        True, "pop3", "127.0.0.9", False, "USER")
    assert event.at == NOW


@pytest.mark.parametrize("user, password, reason", [
    (b"ann@example.test", b"wrong", "bad-password"),
    (b"nobody@example.test", b"right", "unknown-account"),
    (b"\xff\xfe@example.test", b"right", "bad-username"),
    (b"ann@example.test", b"", "bad-password"),
])
def test_failed_login_is_refused_and_recorded(realm, user, password, reason):
    with pytest.raises(UnauthorizedLogin):
        realm.login(user, password)
    [event] = realm.events()
    assert not event.success and event.reason == reason


def test_disabled_account_cannot_log_in(realm):
    realm.db.run_sync(directory.set_enabled, "ann@example.test", False)
    with pytest.raises(UnauthorizedLogin):
        realm.login(b"ann@example.test", b"right")
    assert realm.events()[0].reason == "disabled"


def test_legacy_hash_is_replaced_by_argon2_on_login(realm):
    realm.db.run_sync(directory.add_account, "old@example.test", md5_crypt.hash("legacy"), NOW)
    realm.login(b"old@example.test", b"legacy")
    stored = realm.db.run_sync(directory.get_account, "old@example.test").password_hash
    assert stored.startswith("$argon2")
    realm.login(b"old@example.test", b"legacy")  # and the new hash verifies


def test_overlong_password_against_bcrypt_is_a_failed_login_not_a_crash(realm):
    import bcrypt
    stored = bcrypt.hashpw(b"short", bcrypt.gensalt(4)).decode()
    realm.db.run_sync(directory.add_account, "bc@example.test", stored, NOW)
    with pytest.raises(UnauthorizedLogin):
        realm.login(b"bc@example.test", b"x" * 100)


def test_repeated_login_is_served_from_the_cache_until_the_password_changes(realm):
    realm.login(b"ann@example.test", b"right")
    realm.login(b"ann@example.test", b"right")
    assert realm.verifications == 1
    realm.db.run_sync(directory.set_password_hash, "ann@example.test", realm.hasher.hash("new"))
    with pytest.raises(UnauthorizedLogin):
        realm.login(b"ann@example.test", b"right")
    realm.login(b"ann@example.test", b"new")


def test_a_cached_login_is_looked_up_and_recorded_in_one_transaction(realm):
    realm.login(b"ann@example.test", b"right", ip="127.0.0.7")
    transactions = []
    real_run, real_read = realm.db.run, realm.db.read
    realm.db.run = lambda fn, *a: (transactions.append(fn.__name__), real_run(fn, *a))[1]
    realm.db.read = lambda fn, *a: (transactions.append(fn.__name__), real_read(fn, *a))[1]
    ref = realm.login(b"ann@example.test", b"right", ip="127.0.0.8")
    assert transactions == ["_cached_login"]     # not a read, then a write
    assert ref.address == "ann@example.test" and realm.verifications == 1
    newest = realm.events()[0]
    assert (newest.success, newest.client_ip, newest.account_id) == (True, "127.0.0.8", ref.id)


def test_a_cached_password_does_not_open_a_disabled_account(realm):
    realm.login(b"ann@example.test", b"right")
    realm.db.run_sync(directory.set_enabled, "ann@example.test", False)
    with pytest.raises(UnauthorizedLogin):
        realm.login(b"ann@example.test", b"right")
    assert realm.events()[0].reason == "disabled"


def test_store_outage_is_a_temporary_failure(tmp_path):
    r = Realm(f"sqlite:///{tmp_path}/x.db")  # tables never created: every query fails
    try:
        with pytest.raises(checkers.TemporaryAuthFailure):
            r.login(b"ann@example.test", b"right")
    finally:
        r.stop()

