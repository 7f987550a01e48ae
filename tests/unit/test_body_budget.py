"""The byte budget for storing message bodies: large stores take turns, small ones do not.

Why these tests: ten 25 MB messages finishing DATA together must be stored a few at a
time (issue 13, case 5), in the order they came, without delaying small mail and without
a store's failure keeping its share of the budget.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack.store.budget import ByteBudget

MB = 1024 * 1024


class Stores:
    """Stores that finish when the test says so."""

    def __init__(self):
        self.running: dict[str, defer.Deferred] = {}
        self.started: list[str] = []

    def store(self, name: str):
        self.started.append(name)
        self.running[name] = defer.Deferred()
        return self.running[name]

    def finish(self, name: str, failure: Exception | None = None):
        d = self.running.pop(name)
        d.errback(failure) if failure is not None else d.callback(name)


def test_large_stores_wait_for_room_and_run_in_their_order():
    budget, stores = ByteBudget(capacity=32 * MB), Stores()
    results = [budget.run(size * MB, stores.store, name)
               for name, size in (("a", 25), ("b", 25), ("c", 5), ("d", 3))]
    assert stores.started == ["a"]                  # b must wait; c and d come after b
    stores.finish("a")
    assert stores.started == ["a", "b", "c"]        # 25 + 5 fit; 3 more would not
    stores.finish("c")
    assert stores.started == ["a", "b", "c", "d"]
    stores.finish("b")
    stores.finish("d")
    assert [r.result for r in results] == ["a", "b", "c", "d"]
    assert budget.spent == 0


def test_a_body_larger_than_the_budget_runs_alone():
    budget, stores = ByteBudget(capacity=32 * MB), Stores()
    budget.run(40 * MB, stores.store, "huge")
    budget.run(2 * MB, stores.store, "next")
    assert stores.started == ["huge"]
    stores.finish("huge")
    assert stores.started == ["huge", "next"]


def test_small_bodies_do_not_wait():
    budget, stores = ByteBudget(capacity=32 * MB, small=MB), Stores()
    budget.run(32 * MB, stores.store, "large")
    budget.run(MB - 1, stores.store, "small")
    assert stores.started == ["large", "small"]


def test_a_failed_store_gives_its_share_back_and_keeps_its_failure():
    budget, stores = ByteBudget(capacity=32 * MB), Stores()
    failed = budget.run(30 * MB, stores.store, "fails")
    budget.run(30 * MB, stores.store, "next")
    stores.finish("fails", RuntimeError("disk"))
    assert stores.started == ["fails", "next"]
    assert isinstance(failed.result.value, RuntimeError)
    failed.addErrback(lambda f: None)


def test_a_store_that_raises_at_once_gives_its_share_back():
    budget = ByteBudget(capacity=32 * MB)

    def broken():
        raise ValueError("bad")

    d = budget.run(30 * MB, broken)
    assert budget.spent == 0
    d.addErrback(lambda f: f.trap(ValueError))
