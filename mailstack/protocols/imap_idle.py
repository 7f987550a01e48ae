"""IDLE (RFC 2177): changes to the selected folder pushed while the client waits.

Why ours: the session is woken by ``FolderWatch`` (store/watch.py) on a commit in this
process, a PostgreSQL NOTIFY from another one, or a changed modseq seen by polling; each
wake reads only what changed since the modseq the view holds.  Wakes never overlap, and
``DONE`` is answered only after a running announcement has been written, so no untagged
EXPUNGE can arrive in the middle of the client's next command.

Security: an idling session holds one line of input (line mode, bounded as any command)
and does no work while nothing changes; wakes never overlap, so a folder that changes fast
costs one announcement at a time per session; the idle timeout still runs, so a client
that goes silent is closed (RFC 2177 §3 asks clients to renew IDLE within 29 minutes).  Not
here: how many sessions may idle (``connection_limits``).
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack.protocols.imap_replies import bad


class IdleCommands:
    idling = False
    _announcing = None        # the Deferred of a running announcement
    _wake_again = False

    async def cmd_IDLE(self, command):
        done = self._read_line()
        self.send(b"+ idling")
        self.idling = True
        if self.view is not None:
            self.view.dirty = True      # anything that changed since the last command
            self.idle_wake()
        line = await done
        self.idling = False
        if self._announcing is not None:
            await self._announcing
        if line.strip().upper() != b"DONE":
            raise bad(b"Expected DONE")
        return b"IDLE terminated"

    def idle_wake(self):
        if self._announcing is not None:
            self._wake_again = True
            return
        self._wake_again = False
        d = defer.ensureDeferred(self.announce(expunge=True))
        self._announcing = d
        d.addErrback(lambda f: self.log.warn("IDLE update failed: {e}", e=f.value))
        d.addBoth(self._announced)

    def _announced(self, _):
        self._announcing = None
        if self._wake_again and self.idling and self.view is not None:
            self.idle_wake()

    def stop_idle(self):
        self.idling = False
