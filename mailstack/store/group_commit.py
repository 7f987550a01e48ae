"""Group commit: the small writes of many sessions in one transaction, each answered after it.

Why (issue 16): a login wrote its own transactions one after the other -- the login event
(durable: it opens the POP-before-SMTP window and must survive a power cut), the ``mailstack
who`` row, the POP3 maildrop lock, the release at QUIT, the who-row gone at the close.  Each
transaction is a thread round trip, a pooled connection, a BEGIN and a COMMIT, and on
SQLite a durable COMMIT is a flush of the WAL that every other writer waits behind.  Ten
POP3 clients logging in at once spent more CPU on that than on POP3.  So the units of work
queue here, and one transaction carries every unit queued while the previous one ran (the
classic group commit of databases): ten logins cost one flush, not ten.

The promise is unchanged: each unit's Deferred fires only after the COMMIT of the
transaction that carried it, with the unit's own result, so a reply sent from it is as
durable as before.  A transaction is durable (``Database.run``) when any of its units is;
volatile units (``Database.run_volatile``: their loss in a power cut harms nothing) ride
along for free.  One unit that fails (a lock held, a row gone) must not fail the others:
its error undoes the transaction, and each unit of it is then run again in a transaction of
its own, so each gets its own answer.  A store outage fails them all at once (running each
again would only wait for the outage once per unit).

No added latency: a unit that someone waits for starts a transaction at once when none is
running; it waits only behind one already running (SQLite has one writer anyway).
``later`` is for a write nobody waits for and whose delay harms nothing (the who-rows): it
rides with the next transaction, or goes after ``LINGER`` seconds, so a POP3 login's
who-row and lock share one transaction, and a closed session's who-row goes with the next
login's event.

Standards: none (a store mechanism).  Ordering: units run in the order they were queued;
on SQLite one transaction at a time; on PostgreSQL up to the pool's threads at once (it
writes in parallel), so units that depend on each other must wait for each other's
Deferred, as they did before.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from mailstack.store.errors import StoreUnavailable

LINGER = 0.5          # seconds a ``later`` unit waits for a transaction to ride with
MOST = 64             # units per transaction at most (bounds its time and the rerun)


class _Unit:
    __slots__ = ("fn", "args", "durable", "eager", "prepare", "done")

    def __init__(self, fn, args, durable: bool, eager: bool, prepare=None):
        self.fn, self.args, self.durable, self.eager = fn, args, durable, eager
        self.prepare = prepare      # work before the transaction, its result fn's first
        self.done = defer.Deferred()

    def call(self) -> tuple:
        """(fn, args) with what ``prepare()`` gave in front of the args."""
        if self.prepare is None:
            return self.fn, self.args
        return self.fn, (self.prepare(), *self.args)


def _together(conn, units) -> list:
    """One transaction, every unit in order; the list of their results."""
    return [fn(conn, *args) for fn, args in units]


class GroupCommit:
    """The write units of one ``Database``, carried by as few transactions as can be.

    ``parallel`` is how many transactions may run at once (1 on SQLite); ``reactor`` runs
    the ``later`` timer.
    """

    def __init__(self, db, reactor, *, parallel: int = 1, linger: float = LINGER,
                 most: int = MOST):
        self.db, self.reactor = db, reactor
        self.parallel, self.linger, self.most = parallel, linger, most
        self._queued: list[_Unit] = []
        self._running = 0
        self._timer = None

    def run(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """``fn(conn, *args)`` in a durable transaction; its result after the COMMIT."""
        return self._queue(_Unit(fn, args, True, True))

    def run_prepared(self, prepare: Callable[[], Any], fn: Callable[..., Any],
                     *args: Any) -> defer.Deferred:
        """Like ``run`` for ``fn(conn, prepare(), *args)``: ``prepare()``, work that needs
        no database (the analysis of a delivered message), runs in the store's thread
        before the transaction, outside SQLite's writer lock (``Database.run_prepared``)."""
        return self._queue(_Unit(fn, args, True, True, prepare))

    def run_volatile(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Like ``run`` for a write whose loss in a power cut harms nothing
        (``Database.run_volatile``); durable anyway if it shares a durable transaction."""
        return self._queue(_Unit(fn, args, False, True))

    def later(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """A volatile write nobody waits for: with the next transaction, at most ``linger``
        seconds from now.  Its Deferred still fires after the COMMIT."""
        unit = _Unit(fn, args, False, False)
        self._queued.append(unit)
        if self._timer is None:
            self._timer = self.reactor.callLater(self.linger, self._lingered)
        return unit.done

    def _queue(self, unit: _Unit) -> defer.Deferred:
        self._queued.append(unit)
        if self._running < self.parallel:
            self._start()
        return unit.done

    def _lingered(self) -> None:
        self._timer = None
        if not self._queued:
            return
        if self._running < self.parallel:
            self._start()
        else:       # all busy: ride with what the next end starts, or go next time
            self._timer = self.reactor.callLater(self.linger, self._lingered)

    def _start(self) -> None:
        units, self._queued = self._queued[:self.most], self._queued[self.most:]
        if not self._queued and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._running += 1
        durable = any(u.durable for u in units)
        run = self.db.run if durable else self.db.run_volatile
        if any(u.prepare is not None for u in units):      # durable: only ``run_prepared``
            d = self.db.run_prepared(lambda: [u.call() for u in units], _together)
        elif len(units) == 1:
            d = run(units[0].fn, *units[0].args)
            d.addCallback(lambda value: [value])
        else:
            d = run(_together, [(u.fn, u.args) for u in units])
        d.addBoth(self._ended, units)

    def _ended(self, result, units: list[_Unit]) -> None:
        if isinstance(result, Failure) and len(units) > 1 and not result.check(StoreUnavailable):
            # One unit's error undid the others: each again alone, in order, for its own
            # answer; what was queued meanwhile waits, as it would behind one transaction.
            alone = defer.succeed(None)
            for unit in units:
                alone.addCallback(self._alone, unit)
            alone.addCallback(self._finished)
            return
        for unit, value in zip(units, [result] * len(units) if isinstance(result, Failure)
                               else result):
            _answer(value, unit)
        self._finished(None)

    def _alone(self, _ignored, unit: _Unit) -> defer.Deferred:
        if unit.prepare is not None:
            d = self.db.run_prepared(unit.prepare, unit.fn, *unit.args)
        else:
            run = self.db.run if unit.durable else self.db.run_volatile
            d = run(unit.fn, *unit.args)
        return d.addBoth(_answer, unit)

    def _finished(self, _ignored) -> None:
        self._running -= 1
        while self._running < self.parallel and any(u.eager for u in self._queued):
            self._start()


def _answer(result, unit: _Unit) -> None:
    if isinstance(result, Failure):
        unit.done.errback(result)
    else:
        unit.done.callback(result)
