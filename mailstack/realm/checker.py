"""The one credentials checker behind every protocol's login.

Why ours: Twisted's in-memory and file checkers neither hash nor record.  This one looks the
account up in the store, verifies the password off the reactor thread, upgrades legacy
hashes on success, throttles failures (``realm/throttle.py``: by client and account and by
client, never by account alone, so guessing cannot lock the owner out), and records every
attempt -- success or failure, with protocol, client IP, TLS and mechanism -- before the
protocol may answer.

Verified credentials are cached briefly, keyed by an HMAC of the password and bound to the
stored hash (a password change invalidates the entry): POP clients polling every minute
would otherwise cost a full argon2 verification per poll.  Such a login is looked up and
recorded in one transaction (issue 16: a thread round trip and a transaction fewer per
login), carried by the database's group commit with other sessions' writes of the moment:
the cache is asked from the store's thread there (``vouches``, which only reads it).

Security: the password and its hash are never logged; a store outage is a temporary
failure (``TemporaryAuthFailure``), never "wrong password".
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from mailstack import addresses, clock as clocks
from mailstack.metrics import NO_METRICS
from mailstack.realm.credentials import AccountRef, ISessionCredentials, SessionCredentials
from mailstack.store import directory, logins
from mailstack.store.errors import StoreUnavailable

log = Logger(namespace="mailstack.realm")


class TemporaryAuthFailure(Exception):
    """Authentication could not be decided now (store down, source throttled)."""


class VerifiedCache:
    def __init__(self, clock, ttl: float):
        self.clock, self.ttl = clock, ttl
        self._key = os.urandom(32)
        self._entries: dict[int, tuple[bytes, str, float]] = {}

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def vouches(self, account_id: int, password: str, stored_hash: str) -> bool:
        """``hit`` without forgetting a stale entry: asked from a store thread."""
        entry = self._entries.get(account_id)
        if entry is None or self.ttl <= 0:
            return False
        mac, hash_then, expires = entry
        return (expires >= self.clock.seconds() and hash_then == stored_hash
                and hmac.compare_digest(mac, self._mac(password)))

    def hit(self, account_id: int, password: str, stored_hash: str) -> bool:
        """``vouches``, forgetting an entry that expired or whose hash was replaced."""
        entry = self._entries.get(account_id)
        if entry is not None and (entry[2] < self.clock.seconds() or entry[1] != stored_hash):
            self._entries.pop(account_id, None)
            return False
        return self.vouches(account_id, password, stored_hash)

    def remember(self, account_id: int, password: str, stored_hash: str) -> None:
        if self.ttl > 0:
            self._entries[account_id] = (self._mac(password), stored_hash,
                                         self.clock.seconds() + self.ttl)


@implementer(ICredentialsChecker)
class AccountChecker:
    credentialInterfaces = (ISessionCredentials,)

    def __init__(self, db, hasher, clock, throttle, *, reactor, cache_seconds: float = 300,
                 after_login=None, metrics=NO_METRICS):
        # after_login(credentials, AccountRef) -> Deferred: the migration warnings hook in
        # here (wired by service.py; the realm does not know about policy).
        self.after_login = after_login
        self.metrics = metrics       # every attempt counted by protocol and result
        self.db = db
        self.hasher = hasher
        self.clock = clock
        self.throttle = throttle
        self.reactor = reactor
        self.cache = VerifiedCache(clock, cache_seconds)

    @defer.inlineCallbacks
    def requestAvatarId(self, credentials: SessionCredentials):
        try:
            username, password = credentials.decoded()
            address = addresses.normalise(username)
        except (UnicodeDecodeError, addresses.AddressError):
            yield self._record(credentials, repr(credentials.username)[:80], None, False,
                               "bad-username")
            raise UnauthorizedLogin("bad username")
        gate = self.throttle.gate(credentials.client_ip, address)
        if gate.refused:
            yield self._record(credentials, address, None, False, "throttled")
            raise TemporaryAuthFailure("too many failures")
        if gate.delay:
            yield task.deferLater(self.reactor, gate.delay, lambda: None)
        # The common login (the password verified recently: the cache vouches for it) is
        # looked up and recorded in one transaction, shared with other sessions' writes
        # (store/group_commit.py); any other is looked up there and decided below.
        success = self._event(credentials, address, None, True, "")
        try:
            account, recorded = yield self.db.group.run(_cached_login, address, password,
                                                        self.cache, success)
        except StoreUnavailable:
            raise TemporaryAuthFailure("store unavailable")
        ok = recorded or (yield self._verify(account, password))
        if not ok:
            reason = "unknown-account" if account is None else (
                "disabled" if not account.enabled else "bad-password")
            yield self._record(credentials, address, account and account.id, False, reason)
            delay = self.throttle.failed(credentials.client_ip, address, password)
            if delay:
                yield task.deferLater(self.reactor, delay, lambda: None)
            raise UnauthorizedLogin(reason)
        self.throttle.succeeded(credentials.client_ip, address)
        if recorded:
            self._announce(success)
        else:
            yield self._record(credentials, address, account.id, True, "")
        ref = AccountRef(account.id, account.address, account.sends_as_any)
        if self.after_login is not None:
            try:
                yield self.after_login(credentials, ref)
            except Exception:
                log.failure("after-login hook failed for {user}", user=account.address)
        return ref

    def _verify(self, account, password: str):
        """True or False now (the cache's answer, most logins), else a Deferred of it."""
        if account is None or not account.enabled or not password:
            return False
        if self.cache.hit(account.id, password, account.password_hash):
            return True
        return self._verify_hash(account, password)

    @defer.inlineCallbacks
    def _verify_hash(self, account, password: str):
        ok, new_hash = yield self.hasher.verify_async(password, account.password_hash)
        if not ok:
            return False
        stored = account.password_hash
        if new_hash is not None:
            try:
                replaced = yield self.db.run(directory.replace_password_hash, account.id,
                                             stored, new_hash)
                if replaced:
                    stored = new_hash
                    log.info("upgraded password hash of {address}", address=account.address)
            except StoreUnavailable:
                pass  # the login stands; the upgrade happens next time
        self.cache.remember(account.id, password, stored)
        return True

    def _event(self, c: SessionCredentials, username: str, account_id, success: bool,
               reason: str) -> logins.LoginEvent:
        return logins.LoginEvent(
            at=clocks.now(self.clock), username=username[:320], protocol=c.protocol,
            client_ip=c.client_ip, tls=c.tls, mechanism=c.mechanism, success=success,
            account_id=account_id, reason=reason, client_name=c.client_name,
            port=getattr(c, "port", None))

    def _announce(self, e: logins.LoginEvent) -> None:
        """The log line and the metric of a login attempt."""
        log.info("login {outcome} user={user} protocol={protocol} ip={ip} tls={tls} "
                 "mechanism={mechanism}{why}", outcome="ok" if e.success else "failed",
                 user=e.username, protocol=e.protocol, ip=e.client_ip, tls=e.tls,
                 mechanism=e.mechanism, why=f" reason={e.reason}" if e.reason else "")
        self.metrics.login(e.protocol, "ok" if e.success else e.reason)

    @defer.inlineCallbacks
    def _record(self, c: SessionCredentials, username: str, account_id, success: bool, reason: str):
        event = self._event(c, username, account_id, success, reason)
        self._announce(event)
        try:
            # With the other sessions' writes of the moment: one flush for them all
            # (store/group_commit.py); still committed before the protocol answers.
            yield self.db.group.run(logins.record, event)
        except StoreUnavailable:
            if success:
                # An unrecorded login would open no POP-before-SMTP window and skew the
                # migration reports: refuse for now rather than lose the record.
                raise TemporaryAuthFailure("store unavailable")


def _cached_login(conn, address: str, password: str, cache: VerifiedCache,
                  success: logins.LoginEvent):
    """(account or None, recorded): the account, and its login recorded as ``success``
    when the cache vouches for the password (no hashing needed); a unit of work."""
    account = directory.get_account(conn, address)
    if (account is None or not account.enabled or not password
            or not cache.vouches(account.id, password, account.password_hash)):
        return account, False
    logins.record(conn, dataclasses.replace(success, account_id=account.id))
    return account, True
