"""IDLE (RFC 2177): changes to the selected folder pushed while the client waits.

Why ours: Twisted's IDLE only relays what a mailbox object announces to its listeners, and
ends on any line, not only ``DONE``.  Here the session registers with the process's
``FolderWatch`` (store/watch.py), which wakes it on a commit in this process, a PostgreSQL
NOTIFY from another one, or a changed modseq seen by polling; each wake reads only what
changed since the folder's modseq the session holds.  Wakes never overlap, and ``DONE`` is
answered only after a running announcement has been written, so no untagged EXPUNGE can
arrive in the middle of the client's next command.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.mail import imap4

P = imap4.IMAP4Server


class IdleState:
    _unwatch = None
    _announcing = None        # the Deferred of a running announcement
    _wake_again = False

    def do_IDLE(self, tag):
        self.sendContinuationRequest(b"idling")
        self.idle_tag, self.parseState = tag, "idle"
        self.log.debug("IDLE")
        if self.state == "select" and self.mbox is not None:
            folder = self.mbox
            self._unwatch = self.parts.watch.watch(folder.folder.id,
                                                   lambda: folder.folder.modseq, self._idle_wake)
            self._idle_wake()      # anything that changed since the last command

    auth_IDLE = select_IDLE = (do_IDLE,)

    def _idle_wake(self):
        if self._announcing is not None:
            self._wake_again = True
            return
        self._wake_again = False
        d = self.announce_changes()
        self._announcing = d

        def done(result):
            self._announcing = None
            if self._wake_again and self._unwatch is not None:
                self._idle_wake()
            return result

        d.addBoth(done)
        d.addErrback(lambda f: self.log.warn("IDLE update failed: {e}", e=f.value))

    def parse_idle(self, line):
        self._stop_watching()
        tag, self.parseState = self.idle_tag, "command"
        running = self._announcing or defer.succeed(None)
        if line.strip().upper() == b"DONE":
            running.addBoth(lambda _: self.sendPositiveResponse(tag, b"IDLE terminated"))
        else:
            running.addBoth(lambda _: self.sendBadResponse(tag, b"Expected DONE"))

    def _stop_watching(self):
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def connectionLost(self, reason):
        self._stop_watching()
        super().connectionLost(reason)
