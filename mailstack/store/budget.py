"""A byte budget: how many octets of message bodies the process stores at once.

Why: storing a message holds it in memory (once, read from its spool) plus what the
database driver copies, for as long as the transaction lasts.  Ten clients finishing a
25 MB DATA together would otherwise hold ten of those at once (issue 13, case 5).  Each
store of a large body first takes its size from the budget, waiting in turn (first come,
first served) while the budget is spent, and gives it back when the store has answered.
A body larger than the whole budget takes all of it, so it runs alone and still runs.

Small bodies (under SMALL) do not wait: they are most mail, cost little, and the store's
thread pool bounds how many run at once; a burst of large messages must not delay them.
The waiting costs no memory: a message waits in its spool, not in a ``bytes``.

All of this runs in the reactor thread; the store itself runs in the database's threads.
"""

from __future__ import annotations

import collections

from twisted.internet import defer

from mailstack.store import allocator

BUDGET = 32 * 1024 * 1024       # octets of message bodies being stored at once
SMALL = 1024 * 1024             # bodies below this size do not wait for the budget


class ByteBudget:
    def __init__(self, capacity: int = BUDGET, small: int = SMALL):
        self.capacity, self.small = capacity, small
        self.spent = 0
        self._waiting: collections.deque[tuple[int, defer.Deferred]] = collections.deque()

    def run(self, size: int, fn, *args, **kwargs) -> defer.Deferred:
        """``fn(*args, **kwargs)`` once ``size`` octets of the budget are free; its result."""
        if size < self.small:
            return defer.maybeDeferred(fn, *args, **kwargs)
        share = min(size, self.capacity)
        d = self._take(share)
        d.addCallback(lambda _: defer.maybeDeferred(fn, *args, **kwargs))
        d.addBoth(self._give_back, share)
        return d

    def _take(self, share: int) -> defer.Deferred:
        if not self._waiting and self.spent + share <= self.capacity:
            self.spent += share
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiting.append((share, d))
        return d

    def _give_back(self, result, share: int):
        self.spent -= share
        allocator.return_free_memory()     # what the store's thread used for it
        while self._waiting and self.spent + self._waiting[0][0] <= self.capacity:
            share, d = self._waiting.popleft()
            self.spent += share
            d.callback(None)
        return result
