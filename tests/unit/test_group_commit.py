"""Group commit: units queued while a transaction runs share the next one; each unit is
answered after the COMMIT that carried it, with its own result or error."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from mailstack.store import group_commit
from mailstack.store.errors import Conflict, StoreUnavailable
from mailstack.store.group_commit import GroupCommit


class Db:
    """Records each transaction asked for; the test ends it with ``commit``/``fail``."""

    def __init__(self):
        self.transactions = []      # [kind, fn, args, Deferred]

    def run(self, fn, *args):
        return self._begin("durable", fn, args)

    def run_volatile(self, fn, *args):
        return self._begin("volatile", fn, args)

    def run_prepared(self, prepare, fn, *args):
        """``Database.run_prepared``: ``prepare()`` before the transaction, in its thread."""
        return self._begin("prepared", lambda conn, *a: fn(conn, prepare(), *a), args)

    def _begin(self, kind, fn, args):
        d = defer.Deferred()
        self.transactions.append([kind, fn, args, d])
        return d

    def commit(self, index=0):
        """Run the transaction's work on a fake connection and end it."""
        kind, fn, args, d = self.transactions.pop(index)
        try:
            result = fn("conn", *args)
        except Exception as e:
            d.errback(e)
        else:
            d.callback(result)


def unit(name, log=None):
    def fn(conn, *args):
        if log is not None:
            log.append(name)
        return (name, args)
    fn.__name__ = name
    return fn


def failing(error):
    def fn(conn, *args):
        raise error
    return fn


def results(*ds):
    out = []
    for d in ds:
        d.addBoth(out.append)
    return out


@pytest.fixture
def db():
    return Db()


@pytest.fixture
def clock():
    return task.Clock()


def test_a_unit_starts_a_transaction_at_once_when_none_runs(db, clock):
    group = GroupCommit(db, clock)
    d = group.run(unit("a"), 1)
    assert [(t[0], t[1].__name__) for t in db.transactions] == [("durable", "a")]
    got = results(d)
    assert got == []                # not before the COMMIT
    db.commit()
    assert got == [("a", (1,))]


def test_units_queued_while_one_runs_share_the_next_transaction_in_order(db, clock):
    group = GroupCommit(db, clock)
    log = []
    first = group.run(unit("a", log))
    later = [group.run_volatile(unit("b", log), 2), group.run(unit("c", log), 3),
             group.run_volatile(unit("d", log), 4)]
    assert len(db.transactions) == 1          # SQLite: one writer, one transaction at a time
    got = results(first, *later)
    db.commit()
    assert got == [("a", ())]
    [(kind, fn, args, _)] = db.transactions
    assert kind == "durable"                  # one durable unit makes the transaction durable
    db.commit()
    assert log == ["a", "b", "c", "d"]
    assert got[1:] == [("b", (2,)), ("c", (3,)), ("d", (4,))]


def test_volatile_units_alone_stay_volatile(db, clock):
    group = GroupCommit(db, clock)
    group.run_volatile(unit("a"))
    group.run_volatile(unit("b"))
    group.run_volatile(unit("c"))
    db.commit()
    assert db.transactions[0][0] == "volatile"


def test_one_failing_unit_does_not_fail_the_others(db, clock):
    group = GroupCommit(db, clock)
    group.run(unit("first"))
    ds = [group.run(unit("a")), group.run(failing(Conflict("held"))), group.run(unit("b"))]
    got = results(*ds)
    db.commit()
    db.commit()                  # the shared transaction: undone by the Conflict
    assert got == []             # nobody answered from a transaction that did not commit
    queued = group.run(unit("queued"))
    for name in ["a", "fn", "b"]:        # each again, alone, in order
        [(kind, fn, args, _)] = db.transactions
        assert fn.__name__ == name
        db.commit()
    assert got[0] == ("a", ()) and got[2] == ("b", ())
    assert got[1].check(Conflict)
    assert [t[1].__name__ for t in db.transactions] == ["queued"]   # then what waited
    assert results(queued) == []


def test_a_store_outage_fails_every_unit_at_once(db, clock):
    group = GroupCommit(db, clock)
    group.run(unit("first"))
    ds = [group.run(unit("a")), group.run(failing(StoreUnavailable("down")))]
    got = results(*ds)
    db.commit()
    db.commit()
    assert db.transactions == []         # not run again one by one
    assert [f.check(StoreUnavailable) for f in got] == [StoreUnavailable, StoreUnavailable]


def test_a_later_unit_rides_with_the_next_transaction(db, clock):
    group = GroupCommit(db, clock)
    log = []
    row = group.later(unit("who-row", log))
    assert db.transactions == []          # nobody waits for it: no transaction of its own
    lock = group.run_volatile(unit("lock", log))
    got = results(row, lock)
    db.commit()
    assert log == ["who-row", "lock"] and got == [("who-row", ()), ("lock", ())]
    clock.advance(group_commit.LINGER)    # its timer was cancelled: nothing more
    assert db.transactions == []


def test_a_later_unit_goes_alone_after_the_linger(db, clock):
    group = GroupCommit(db, clock)
    got = results(group.later(unit("who-row")))
    clock.advance(group_commit.LINGER - 0.01)
    assert db.transactions == []
    clock.advance(0.01)
    assert len(db.transactions) == 1
    db.commit()
    assert got == [("who-row", ())]


def test_a_later_unit_does_not_start_a_transaction_when_a_running_one_ends(db, clock):
    group = GroupCommit(db, clock)
    group.run(unit("a"))
    group.later(unit("who-row"))
    db.commit()
    assert db.transactions == []          # still waiting for company, or for its timer
    clock.advance(group_commit.LINGER)
    assert len(db.transactions) == 1


def test_a_later_unit_whose_linger_ends_during_a_transaction_still_goes(db, clock):
    group = GroupCommit(db, clock)
    group.run(unit("a"))
    got = results(group.later(unit("who-row")))
    clock.advance(group_commit.LINGER)    # "a" still runs: nothing can start now
    db.commit()
    clock.advance(group_commit.LINGER)
    db.commit()
    assert got == [("who-row", ())]


def test_transactions_are_bounded_in_units(db, clock):
    group = GroupCommit(db, clock, most=2)
    group.run(unit("first"))
    for name in "abc":
        group.run(unit(name))
    db.commit()
    assert len(db.transactions[0][2][0]) == 2     # a and b; c waits for the next
    db.commit()
    assert db.transactions[0][1].__name__ == "c"


def test_parallel_transactions_where_the_database_writes_in_parallel(db, clock):
    group = GroupCommit(db, clock, parallel=2)
    group.run(unit("a"))
    group.run(unit("b"))
    group.run(unit("c"))
    assert [t[1].__name__ for t in db.transactions] == ["a", "b"]


def test_on_a_real_database_each_unit_gets_its_own_result(tmp_path):
    from twisted.internet import reactor
    from sqlalchemy import text

    from mailstack.store.db import Database
    from tests.support.reactor import call

    database = Database(f"sqlite:///{tmp_path / 'g.db'}", reactor=reactor, threads=2)
    database.run_sync(lambda conn: conn.execute(text(
        "CREATE TABLE t (k INTEGER PRIMARY KEY)")))
    database.start()

    def insert(conn, k):
        conn.execute(text("INSERT INTO t (k) VALUES (:k)"), {"k": k})
        return k

    def many():
        ds = [database.group.run(insert, k) for k in (1, 2, 2, 3)]   # the second 2 conflicts
        return defer.DeferredList(ds, consumeErrors=True)
    try:
        got = call(many)
    finally:
        database.stop()
    assert [ok for ok, _ in got] == [True, True, False, True]
    assert got[2][1].check(Conflict)
    assert database.read_sync(lambda conn: [r[0] for r in conn.execute(
        text("SELECT k FROM t ORDER BY k"))]) == [1, 2, 3]


def prepared(name, log):
    """A prepare step that records when it ran and what it made."""
    def prepare():
        log.append(f"prepare {name}")
        return f"facts of {name}"
    return prepare


def test_prepared_units_share_one_transaction_each_with_its_own_prepared_result(db, clock):
    group, log = GroupCommit(db, clock), []
    first = group.run_prepared(prepared("m1", log), unit("store"), 1)
    second = group.run_prepared(prepared("m2", log), unit("store"), 2)
    third = group.run(unit("login"), 3)
    assert len(db.transactions) == 1                # m1 alone: nothing was queued before it
    db.commit()
    assert results(first) == [("store", ("facts of m1", 1))]
    assert [t[0] for t in db.transactions] == ["prepared"]   # m2 and the login, together
    db.commit()
    assert results(second, third) == [("store", ("facts of m2", 2)), ("login", (3,))]
    assert log == ["prepare m1", "prepare m2"]


def test_a_failing_prepared_unit_is_run_again_alone_and_prepared_again(db, clock):
    group, log = GroupCommit(db, clock), []
    blocker = group.run(unit("first"))
    bad = group.run_prepared(prepared("bad", log), failing(Conflict("full")))
    good = group.run_prepared(prepared("good", log), unit("store"), 7)
    db.commit()                                     # "first"; then bad and good together
    db.commit()                                     # fails: each again alone
    assert log == ["prepare bad", "prepare good"]
    db.commit()
    db.commit()
    assert log == ["prepare bad", "prepare good", "prepare bad", "prepare good"]
    got = results(blocker, bad, good)
    assert got[0] == ("first", ())
    assert got[1].check(Conflict) and got[2] == ("store", ("facts of good", 7))


def test_a_prepare_that_raises_fails_its_own_unit_only(db, clock):
    group, log = GroupCommit(db, clock), []

    def broken():
        raise ValueError("unreadable spool")
    blocker = group.run(unit("first"))
    bad = group.run_prepared(broken, unit("store"))
    good = group.run_prepared(prepared("good", log), unit("store"), 1)
    db.commit()
    db.commit()                                     # together: the prepare raises
    db.commit()
    db.commit()                                     # each alone
    got = results(blocker, bad, good)
    assert got[1].check(ValueError) and got[2] == ("store", ("facts of good", 1))
