"""One command at a time over IMAP's framing, with back-pressure both ways: the part of the
IMAP and ManageSieve sessions that moves bytes, shared.

Why a mixin of its own: both sessions read commands (with their literals) through
``imap_framing`` and run them one at a time, and both must stop doing work when the client
stops reading -- a client that pipelines a thousand FETCHes and reads nothing would
otherwise fill our memory with replies -- and stop reading when its unread commands pile
up past ``read_limit``.  The rules are the same for both, so they live here once:

- writes paused (the transport's buffer is full, or TLS still shaking hands): no command
  runs until it drains (``pauseProducing``/``resumeProducing``: we are the transport's
  producer); reading goes on, since pausing it would stall a TLS handshake whose bytes
  arrive through the same socket;
- more than ``read_limit`` octets received and not yet run: the socket is not read until
  the session has caught up;
- one command at a time (``_busy``): only a line the running command waits for
  (``on_line``: an AUTHENTICATE response, IDLE's DONE) is taken while it runs.

The session supplies ``framing``, ``read_limit`` and ``_handle(event)``, sets ``_busy``
while a command runs and calls ``_drain`` when it is done.

Standards: RFC 9051 §5.5 (pipelining), RFC 5804 §1.2 (ManageSieve's IMAP-like syntax).
Security: what a client sends unread is bounded (``read_limit`` plus one read), and what we
write it unread is bounded by the transport's buffer: a client that stops reading stops
our work for it, not our work for everyone else.
"""

from __future__ import annotations

from twisted.internet import defer


class FramedFlow:
    """Back-pressure and the drain loop; see the module docstring for what a session gives."""

    on_line = None               # the running command's handler of the client's next line
    read_limit = 256 * 1024      # unread input kept before the socket is paused

    def start_flow(self) -> None:
        self._busy = self._draining = self._reading_paused = self._writes_paused = False
        self._write_waiters: list[defer.Deferred] = []

    # --- we are the transport's producer ---------------------------------------------------
    def pauseProducing(self):
        self._writes_paused = True

    def resumeProducing(self):
        self._writes_paused = False
        self._release_writers()
        self._drain()

    def stopProducing(self):
        self._writes_paused = True

    def writable(self) -> defer.Deferred:
        """Fires once the client has read what we wrote (a long FETCH waits on it)."""
        if not self._writes_paused or self.transport.disconnecting:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._write_waiters.append(waiter)
        return waiter

    def _release_writers(self) -> None:
        """Wake whoever waits in ``writable`` (also when the connection is lost: a writer
        waiting on a gone client sees it gone and stops)."""
        waiters, self._write_waiters = self._write_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # --- input -------------------------------------------------------------------------------
    def take(self, data: bytes) -> None:
        """``dataReceived``'s part: frame the bytes, run what can run, pause if behind."""
        self.framing.feed(data)
        self._drain()
        if self.framing.buffered > self.read_limit and not self._reading_paused:
            self._reading_paused = True
            self.transport.pauseProducing()

    def _drain(self):
        if self._draining:
            return
        self._draining = True
        try:
            while not ((self._busy and self.on_line is None) or self._writes_paused
                       or self.transport.disconnecting):
                event = self.framing.next_event()
                if event is None:
                    break
                self._handle(event)
        finally:
            self._draining = False
        if (self._reading_paused and not self._busy and not self._writes_paused
                and self.framing.buffered <= self.read_limit):
            self._reading_paused = False
            self.transport.resumeProducing()

    def _command_done(self, result=None):
        """The running command has answered: take the next one."""
        self._busy = False
        if not self._draining:
            self._drain()
        return result
