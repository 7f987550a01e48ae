"""The learner: teaches rspamd what the customers moved into \\Junk or out of it.

Why a service of its own and not a call in the IMAP command: the customer's OK must not
wait for rspamd, and a learn rspamd cannot take now (down, restarting, slow) must be
tried again later, not lost.  The IMAP COPY or MOVE writes the learn in its transaction
(``store/spam_learning.py``) and, after the commit, ``kick``s the learner, which drains the
due rows at once (no polling delay on the common path); a repeating timer on the injected
clock (every ``[spam] learn_retry_interval`` seconds) takes the retries and the rows a
stopped process left, and forgets old rows once an hour.

Each row is claimed with a lease, so several processes sharing one PostgreSQL never learn
one row twice; learns go one at a time (they are rare).  What rspamd's controller answers
(``outcome``): 2xx -> learned; 208, or an error saying "already learned" -> done; another
4xx (too few tokens, "already in class", empty body) -> done, never learned, the reason
kept; 401/403 (a wrong password), 5xx, a refused connection or a timeout -> tried again,
the delay doubling from the retry interval up to an hour, the error kept for ``mailstack
spam status``; after ``GIVE_UP`` the row is marked failed and its body dropped.

Standards: rspamd's controller protocol (https://rspamd.com/doc/workers/controller.html).
Security: the controller's password lives in ``spam/controller.py`` only and is never
logged; what is logged of a failure is the status and rspamd's short error text.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.http_exchange import ExchangeFailed
from mailstack.metrics import NO_METRICS
from mailstack.repeating import Repeating
from mailstack.store import spam_learning as queue

log = Logger(namespace="mailstack.spam.learning")
MAX_DELAY = 3600.0                  # seconds between retries at most
GIVE_UP = timedelta(days=3)         # a learn not taken by then is marked failed
PURGE_EVERY = 3600.0                # seconds between purges of old rows
RETRY_CODES = (401, 403, 408, 429)  # 4xx that another try (or the operator) may mend


def outcome(code: int, error: str) -> tuple[str, str]:
    """(result, note) for the controller's answer: result is ``learned``,
    ``already_learned``, ``refused`` (done, never learned) or ``retry``."""
    if code == 208 or "already learned" in error.lower():
        return "already_learned", error or "already learned"
    if 200 <= code < 300:
        return "learned", ""
    if 400 <= code < 500 and code not in RETRY_CODES:
        return "refused", f"HTTP {code}: {error}".rstrip(": ")
    return "retry", f"HTTP {code}: {error}".rstrip(": ")


def retry_delay(interval: float, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped."""
    return min(interval * 2 ** max(attempts - 1, 0), max(interval, MAX_DELAY))


class Learner(Repeating):
    """``kick()`` after a commit that queued learns; runs its timer from start to stop."""

    tick_at_start = True

    def __init__(self, db, clock, controller, settings, metrics=NO_METRICS):
        self.db, self.clock, self.controller, self.metrics = db, clock, controller, metrics
        self.timer, self.interval = clock, settings.learn_retry_interval
        self.max_size, self.keep_days = settings.max_learn_size, settings.learn_keep_days
        self.lease = timedelta(seconds=controller.timeout + 60)
        self._draining = self._again = False
        self._purged_at = None

    def recording(self) -> queue.Recording:
        """What an IMAP COPY or MOVE hands the store to queue its learns."""
        return queue.Recording(clocks.now(self.clock), self.max_size)

    def kick(self) -> None:
        if self._draining:
            self._again = True
            return
        self._draining = True
        self._drain()

    def tick(self):
        self.kick()
        now = self.clock.seconds()
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            before = clocks.now(self.clock) - timedelta(days=self.keep_days)
            self.db.run(queue.purge, before).addErrback(
                lambda f: log.failure("spam learn purge failed", f))

    @defer.inlineCallbacks
    def _drain(self):
        try:
            while True:
                self._again = False
                now = clocks.now(self.clock)
                row = yield self.db.run(queue.claim_next, now, now + self.lease)
                if row is not None:
                    yield self._learn(row)
                elif not self._again:
                    break
        except Exception:
            log.failure("spam learning stopped; the timer tries again")
        finally:
            self._draining = False

    @defer.inlineCallbacks
    def _learn(self, row: queue.Claimed):
        try:
            code, error = yield self.controller.learn(row.direction, row.body)
            result, note = outcome(code, error)
        except Exception as e:   # refused, reset, timed out, a broken answer
            result, note = "retry", _why(e)
        now = clocks.now(self.clock)
        if result != "retry":
            status = queue.REFUSED if result == "refused" else queue.LEARNED
            yield self.db.run(queue.finish, row.id, now, status, note)
        elif now - row.created_at >= GIVE_UP:
            result = "failed"
            yield self.db.run(queue.finish, row.id, now, queue.FAILED, note)
        else:
            delay = retry_delay(self.interval, row.attempts)
            yield self.db.run(queue.retry, row.id, now, note, now + timedelta(seconds=delay))
            log.warn("spam learn ({direction}) failed ({why}): retry in {delay:.0f} s",
                     direction=row.direction, why=note, delay=delay)
        self.metrics.spam_learn(result)


def _why(error: Exception) -> str:
    if isinstance(error, (defer.TimeoutError, defer.CancelledError)):
        return "timed out"
    if isinstance(error, ExchangeFailed):              # a broken or oversized answer
        return str(error)
    return type(error).__name__
