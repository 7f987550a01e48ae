"""POP3, IMAP and ManageSieve sessions on a ``StringTransport``: each protocol built with its explicit
dependencies against a real SQLite store, on simulated time, with no socket and no thread.

Why no thread: ``Database.run`` hands each unit of work to a thread pool and fires its
Deferred back in the reactor, so a test would have to spin a reactor and wait.  Here the
store's pools (and the password hasher's) are an ``InlinePool``: the very same function --
``Database.run_sync``/``read_sync``, one real SQLite transaction -- runs at once in the
test's thread and the Deferred has fired when ``run`` returns.  So when ``dataReceived``
returns, every command it started has answered: no waiting, no timing, each test a few
milliseconds.  What the threads add (the reactor is never blocked) is the e2e tests'
business.

The schema is migrated once per test module (``migrated_template``) and each test works on
a copy of that file (``Stack``), so tests share no rows.  Business time is a
``task.Clock`` at ``START``; commits are announced to the folder watch when ``settle``
runs, as the reactor would run them after the commit (``CommitQueue``).
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime, timezone
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from mailstack import clock as clocks
from mailstack.config_sections import (AuthThrottleConfig, IMAPConfig, LimitsConfig,
                                       ListenerConfig, POP3Config, SieveConfig)
from mailstack.policy.tls_required import TLSRequirement
from mailstack.protocols import imap, managesieve, pop3
from mailstack.protocols.connection_limits import ConnectionLimits
from mailstack.protocols.pop3_lease import MaildropLocks, Node
from mailstack.realm import checker as checkers, hashing, portal as portals, throttle
from mailstack.store import directory, mailboxes, migrations
from mailstack.store.db import Database, make_engine
from mailstack.store.errors import StoreUnavailable
from mailstack.store.watch import FolderWatch

DOMAIN = "example.test"
START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TEMPLATE = "template.db"
CLIENT_IP = "192.0.2.10"
TLS_OPTIONS = object()     # stands for loaded certificates: only handed to startTLS


def migrated_template(tmp_path_factory) -> Path:
    """An SQLite file at the current schema, made once for a test module."""
    path = tmp_path_factory.mktemp("schema") / TEMPLATE
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()     # the last connection checkpoints the WAL into the file
    return path


class InlinePool:
    """Stands in for a ``threads.WorkerPool``: runs the work now, in this thread.

    ``failing`` holds store functions that fail as if the database were down (the function
    ``Database.run`` hands over is ``run_sync``/``read_sync``; the store's own is next).
    """

    def __init__(self):
        self.failing: set = set()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, fn, *args, **kwargs):
        if args and args[0] in self.failing:
            return defer.fail(StoreUnavailable("database unavailable (test)"))
        return defer.maybeDeferred(fn, *args, **kwargs)


class CommitQueue:
    """Stands in for the reactor ``Database`` calls back after a commit: the calls wait
    until ``flush``, as they would wait for the reactor thread."""

    def __init__(self):
        self.calls = []

    def callFromThread(self, fn, *args, **kwargs):
        self.calls.append((fn, args, kwargs))

    def flush(self) -> None:
        while self.calls:
            fn, args, kwargs = self.calls.pop(0)
            fn(*args, **kwargs)


class TLSStringTransport(StringTransport):
    """A ``StringTransport`` that can be told it is (or has become) TLS."""

    tls_started_with = None

    def startTLS(self, options):
        self.tls_started_with = options
        directlyProvides(self, ISSLTransport)

    def make_tls(self):
        directlyProvides(self, ISSLTransport)
        return self


class Stack:
    """The store, realm and shared objects one test's sessions are built from."""

    def __init__(self, template: Path, tmp_path: Path, *, tls_cutover: datetime | None = None):
        path = tmp_path / "mailstack.db"
        shutil.copyfile(template, path)
        self.clock = task.Clock()
        self.clock.advance(clocks.to_seconds(START))
        self.commits = CommitQueue()
        self.db = Database(f"sqlite:///{path}", reactor=self.commits, threads=1)
        self.pool = InlinePool()
        self.db.pool = self.db.write_pool = self.pool
        self.hasher = hashing.PasswordHasher(hashing.make_context("md5_crypt"))  # fast to verify
        self.hasher.pool = InlinePool()
        self.realm, self.portal = self._portal()
        self.tls_requirement = TLSRequirement(self.clock, tls_cutover)
        self.limits = ConnectionLimits(LimitsConfig())
        self.locks = MaildropLocks(self.db, Node("test-node", False))
        self.watch = FolderWatch(self.db, self.clock, IMAPConfig().idle_poll)
        self.db.commit_listeners.append(self.watch.changed)
        self.spool_dir = tmp_path / "spool"
        self.spool_dir.mkdir()
        self.db.run_sync(directory.add_domain, DOMAIN, self.now())
        pop3.register_avatars(self.realm)
        imap.register_avatars(self.realm, self.db, self.clock)
        managesieve.register_avatars(self.realm)

    def _portal(self):
        limits = dataclasses.asdict(AuthThrottleConfig())
        checker = checkers.AccountChecker(self.db, self.hasher, self.clock,
                                          throttle.FailureThrottle(self.clock, **limits),
                                          reactor=self.clock)
        realm = portals.MailRealm()
        return realm, portals.make_portal(realm, checker)

    def close(self) -> None:
        self.db.stop()

    def now(self) -> datetime:
        return clocks.now(self.clock)

    def settle(self) -> None:
        """Run what the reactor would run now: commit notices, calls due at this moment."""
        self.commits.flush()
        self.clock.advance(0)
        self.commits.flush()

    # --- the store, as a test sets it up and checks it --------------------------------
    def add_account(self, address: str, password: str) -> int:
        return self.db.run_sync(directory.add_account, address, self.hasher.hash(password),
                                self.now())

    def deliver(self, account_id: int, *messages: bytes) -> None:
        for message in messages:
            self.db.run_sync(mailboxes.deliver, [account_id], message, self.now())
        self.commits.calls.clear()      # delivered before any session watched

    def inbox(self, account_id: int) -> list:
        """The INBOX's messages as stored (MessageInfo, in UID order)."""
        return self.db.read_sync(lambda conn: mailboxes.list_messages(
            conn, mailboxes.require_folder(conn, account_id, mailboxes.INBOX).id))

    # --- sessions ------------------------------------------------------------------------
    def pop3(self, tls: str = "starttls", *, certificates: bool = True) -> "Client":
        listener = ListenerConfig(protocol="pop3", port=110, tls=tls, name="pop3")
        factory = pop3.POP3Factory(
            listener, settings=POP3Config(), db=self.db, clock=self.clock, portal=self.portal,
            tls_options=TLS_OPTIONS if certificates else None,
            tls_requirement=self.tls_requirement, locks=self.locks, limits=self.limits)
        return Client(self, factory, listener)

    def imap(self, tls: str = "starttls", *, certificates: bool = True) -> "Client":
        listener = ListenerConfig(protocol="imap", port=143, tls=tls, name="imap")
        factory = imap.IMAPFactory(
            listener, settings=IMAPConfig(), db=self.db, clock=self.clock, portal=self.portal,
            tls_options=TLS_OPTIONS if certificates else None,
            tls_requirement=self.tls_requirement, watch=self.watch, spool_dir=self.spool_dir,
            limits=self.limits)
        return Client(self, factory, listener)

    def sieve(self, tls: str = "starttls", *, certificates: bool = True,
              settings: SieveConfig = SieveConfig()) -> "Client":
        listener = ListenerConfig(protocol="sieve", port=4190, tls=tls, name="sieve")
        factory = managesieve.ManageSieveFactory(
            listener, settings=settings, db=self.db, clock=self.clock, portal=self.portal,
            tls_options=TLS_OPTIONS if certificates else None,
            tls_requirement=self.tls_requirement, limits=self.limits)
        return Client(self, factory, listener)


class Client:
    """One session on a transport: ``send`` lines, ``take`` what the server wrote."""

    def __init__(self, stack: Stack, factory, listener: ListenerConfig):
        self.stack = stack
        peer = IPv4Address("TCP", CLIENT_IP, 40000)
        self.transport = TLSStringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", listener.port), peerAddress=peer)
        if listener.tls == "implicit":
            self.transport.make_tls()
        self.protocol = factory.buildProtocol(peer)
        self.protocol.makeConnection(self.transport)
        stack.settle()
        self.greeting = self.take()

    def take(self) -> bytes:
        out = self.transport.value()
        self.transport.clear()
        return out

    def send_raw(self, data: bytes) -> bytes:
        self.protocol.dataReceived(data)
        self.stack.settle()
        return self.take()

    def send(self, *lines: str | bytes) -> bytes:
        """Each line (CRLF added) in one read, as a pipelining client sends them."""
        data = b"".join((l if isinstance(l, bytes) else l.encode()) + b"\r\n" for l in lines)
        return self.send_raw(data)

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def drop(self) -> None:
        """The client goes away without a word."""
        self.protocol.connectionLost(None)
        self.stack.settle()
