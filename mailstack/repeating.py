"""A service that does one thing every few seconds while it runs: the polls of ``who``/
``kick`` and of protocol traces, and the process's memory trim.

Why not Twisted's ``TimerService``: its ``stopService`` waits for a call in flight, so a
poll waiting on an unreachable database would hold up the server's shutdown.  Here stopping
stops the repetition at once; a call in flight ends on its own.  A leaf: Twisted only.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

log = Logger(namespace="mailstack.repeating")


class Repeating(service.Service):
    """Calls ``tick()`` every ``interval`` seconds of ``timer`` (a reactor or a test clock)
    from ``startService`` to ``stopService``; at once on start if ``tick_at_start``."""

    interval = 1.0
    tick_at_start = False
    timer = None
    _loop = None

    def tick(self):
        raise NotImplementedError

    def startService(self):
        super().startService()
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.timer
        self._loop.start(self.interval, now=self.tick_at_start).addErrback(
            lambda f: log.failure("{name} stopped repeating", f, name=type(self).__name__))

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
