"""The one worker pool of the store and the hasher: idempotent start and stop, results
back in the reactor."""

from twisted.internet import reactor

from mailstack.threads import WorkerPool
from tests.support.reactor import call


def test_work_runs_in_a_pool_thread_and_its_result_comes_back():
    pool = WorkerPool("mailstack-test", 2, reactor)
    pool.start()
    pool.start()                      # a second start is a no-op
    try:
        assert call(pool.run, lambda a, b=0: a + b, 2, b=3) == 5
    finally:
        pool.stop()
        pool.stop()                   # and so is a second stop


def test_a_pool_never_started_can_be_stopped():
    WorkerPool("mailstack-test", 1, reactor).stop()
