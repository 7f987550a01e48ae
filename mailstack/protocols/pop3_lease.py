"""The POP3 maildrop lock, held as a lease and recorded under this node's name.

Why a lease: RFC 1939 §8 gives the maildrop to one session at a time, but a process that dies
holding the lock must not lock its user out; so the lock expires after two idle timeouts and
a live session renews it.  A renewal is committed before the reply to the command that
caused it, so no second login slips in while it is being written.

Why the lease's writes are volatile (``Database.run_volatile``: committed, not waited on
the disk for): a lock row lost in a power cut harms nothing -- the session that held it
died with the server, and the restarting node frees what it held anyway.  QUIT's
deletions are durable as ever (``close`` with messages to delete).  Issue 16: on SQLite,
whose writers take turns, every flush of a login session held up every other writer.  They
go through the database's group commit (``store/group_commit.py``): a lock shares its
transaction with the session's who-row and with other sessions' writes of the moment,
and is still committed before the reply that depends on it.

Why a node name on each lock: the expiry alone left every user who was mid-poll at a crash
(or even a SIGTERM, whose releases were queued after the database pool had stopped) with
``-ERR [IN-USE]`` for 20 minutes after the restart.  So each lock records the node that
took it; a node that starts frees the locks recorded under its name (they can only be
leftovers of its previous life: it has no session yet), and a node that stops closes its
POP3 sessions and frees its locks before the database pool stops.

What a node is: the host (``socket.gethostname()``, not the public ``server.hostname``,
which all the servers of a cluster share) plus the absolute ``server.state_dir``.  It is
stable across restarts, which a per-process id would not be (a restarted process could
never recognise its predecessor's locks), and distinct for every server sharing one
PostgreSQL as long as each has its own host or state directory.  Two live processes must
never share a name, or one's start would free the other's live locks: each process holds
an exclusive ``flock`` on ``state_dir/pop3-node.lock`` for its lifetime (the kernel drops
it even on ``kill -9``).  A process that cannot take it (a second server on the same state
directory, an admin command beside a running server, an unwritable directory) uses a
per-process name instead, frees nothing at start, and its own locks merely expire after a
crash, as before.

Security: a node frees only rows with its own name, so a restart can never hand a
maildrop held by another live server to a second session.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.store import maildrop
from mailstack.store.errors import StoreUnavailable

GUARD_FILE = "pop3-node.lock"
NAME_LIMIT = 255     # mailbox_locks.node
log = Logger(namespace="mailstack.pop3")


@dataclass(frozen=True)
class Node:
    """The name this process records on its locks; ``stable`` when it survives a restart."""

    name: str
    stable: bool
    guard: object = field(default=None, repr=False, compare=False)   # the open, flocked file


def claim_node(state_dir: Path) -> Node:
    """The stable node name of host + state_dir if no live process holds it, else a per-process one."""
    host = socket.gethostname()
    guard = None
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        guard = open(state_dir / GUARD_FILE, "a")
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if guard is not None:
            guard.close()
        log.warn("POP3 locks: {dir} is in use by another process or not writable ({e}); "
                 "this process's locks will expire after a crash instead of being freed at "
                 "the restart", dir=str(state_dir), e=e.strerror or e)
        return Node(f"{host}:pid{os.getpid()}:{secrets.token_hex(4)}"[-NAME_LIMIT:], False)
    return Node(_stable_name(host, str(state_dir.resolve())), True, guard)


def _stable_name(host: str, path: str) -> str:
    name = f"{host}:{path}"
    if len(name) <= NAME_LIMIT:
        return name
    return f"{host[:NAME_LIMIT - 34]}:#{hashlib.sha256(path.encode()).hexdigest()[:32]}"


class MaildropLocks:
    """This process's side of the maildrop locks: its node name and its live leases."""

    def __init__(self, db, node: Node):
        self.db, self.node = db, node
        self.live: set[MaildropLease] = set()
        self.stopping = False

    def clear_left_over(self) -> int:
        """At start-up, before any listener: free what this node held when it died."""
        if not self.node.stable:
            return 0
        return self.db.run_sync(maildrop.release_node, self.node.name)

    def release_all(self):
        """At shutdown, before the pool stops: end the sessions, free the locks; a Deferred.

        The sessions are closed first (without QUIT nothing is deleted, RFC 1939 §6), so no
        session of ours goes on beside one another node may now open.
        """
        self.stopping = True
        for lease in list(self.live):
            lease.revoke()
        d = self.db.run(maildrop.release_node, self.node.name)
        d.addErrback(lambda f: log.warn("could not free the maildrop locks at shutdown "
                                        "(they are freed at the next start): {e}", e=f.value))
        return d.addBoth(self._unguard)

    def _unguard(self, result):
        if self.node.guard is not None:
            self.node.guard.close()    # the name is free for this node's next process
        return result


class MaildropLease:
    """One session's hold on one maildrop: taken at login, renewed, closed or released.

    ``idle_timeout`` (seconds, ``[pop3]``) sets the lease: two of them, renewed after half
    of one; the lock rows are written through ``locks.db``.
    """

    def __init__(self, locks: MaildropLocks, clock, idle_timeout: float, holder: str, log,
                 revoked=None):
        self.locks, self.db, self.clock = locks, locks.db, clock
        self.idle = timedelta(seconds=idle_timeout)
        self.holder, self.log = holder, log
        self.revoked = revoked      # called when shutdown takes the lock away
        self.account_id = None
        self._renew_at = None       # clock seconds from which a command renews the lease

    def take(self, account_id: int):
        """Deferred list of maildrop entries; fails with InUse/Conflict while another holds it."""
        if self.locks.stopping:
            return defer.fail(StoreUnavailable("shutting down"))
        now = clocks.now(self.clock)

        def taken(drop):
            if self.locks.stopping:   # shutdown began meanwhile: the next start frees the row
                raise StoreUnavailable("shutting down")
            self.account_id = account_id
            self._renew_at = clocks.to_seconds(now) + self.idle.total_seconds() / 2
            self.locks.live.add(self)
            return drop
        return self.db.group.run_volatile(maildrop.open_maildrop, account_id, self.holder, now,
                                          now + 2 * self.idle, self.locks.node.name
                                          ).addCallback(taken)

    def renew(self):
        """A Deferred when the lease was due for renewal (at most every half idle timeout).

        Called for every command (each RETR): the common answer, None, costs no datetime.
        """
        if self.account_id is None:
            return None
        seconds = self.clock.seconds()
        if seconds <= self._renew_at:
            return None
        self._renew_at = seconds + self.idle.total_seconds() / 2
        now = clocks.to_datetime(seconds)
        return self.db.group.run_volatile(maildrop.refresh, self.account_id, self.holder,
                                          now + 2 * self.idle).addCallbacks(self._renewed_as, (
            lambda f: self.log.warn("could not renew the maildrop lock: {e}", e=f.value)))

    def _renewed_as(self, held: bool) -> None:
        if not held:
            self.log.warn("maildrop lock lost (it expired and another session took it)")

    def close(self, delete_ids):
        """QUIT: the deletions and the release in one transaction; Deferred count deleted."""
        if self.account_id is None:     # revoked at shutdown: the maildrop is no longer ours
            return defer.fail(StoreUnavailable("maildrop lock released at shutdown"))

        def closed(removed):
            self._forget()
            return removed
        delete_ids = list(delete_ids)
        # Nothing to delete: the release alone, whose loss harms nothing (above).
        run = self.db.group.run if delete_ids else self.db.group.run_volatile
        return run(maildrop.close_maildrop, self.account_id, self.holder,
                   delete_ids).addCallback(closed)

    def release(self) -> None:
        """Without QUIT nothing is deleted (RFC 1939 §6); an unreleased lock simply expires."""
        account_id = self._forget()
        if account_id is not None:
            self.db.group.run_volatile(maildrop.release, account_id, self.holder).addErrback(
                lambda f: self.log.warn("could not release the maildrop lock (it will expire)"))

    def revoke(self) -> None:
        """Shutdown frees the lock in one statement for all; the session must end now."""
        if self._forget() is not None and self.revoked is not None:
            self.revoked()

    def _forget(self):
        account_id, self.account_id = self.account_id, None
        self.locks.live.discard(self)
        return account_id
