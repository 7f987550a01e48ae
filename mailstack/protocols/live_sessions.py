"""Who is logged in now, on every node: ``mailstack who`` reads it, ``mailstack kick`` ends it.

Why here, beside the connection limits: admission already sees every connection and every
login of every protocol (``connection_limits.Ticket``); when a login is counted against
its account the session is recorded in the store (``store/live_sessions.py``) under this
node's name, and when the connection closes the row goes.  A kick is a flag on the rows:
each node polls for the flags on its own sessions every ``POLL_SECONDS`` and closes them,
so the command works whichever node the user is on (Dovecot's ``doveadm who``/``kick``).

A node clears its own rows when it starts (a crash leaves them behind) and when it stops,
as it does its POP3 locks (``pop3_lease``): the node name is the same.  So a row lost in
a power cut harms nothing, and rows are written without waiting for the disk, nor in
transactions of their own: they ride with the next write of any session, or go within
half a second (``GroupCommit.later``; a POP3 login's row shares the transaction of its
maildrop lock, a closed session's that of the next login's event; issue 16).

Security: only an operator's command sets a kick; the poll reads the rows of this node
only, so one node can never close another's sessions by mistake.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.repeating import Repeating
from mailstack.store import live_sessions
from mailstack.store.errors import StoreUnavailable

log = Logger(namespace="mailstack.sessions")


class LiveSessions(Repeating):
    """This node's logged-in connections, recorded for ``who`` and closed on a kick."""

    POLL_SECONDS = 2.0

    def __init__(self, db, clock, reactor, node: str):
        self.db, self.clock, self.reactor, self.node = db, clock, reactor, node
        self._tickets = {}          # row id -> connection_limits.Ticket
        self.timer, self.interval = reactor, self.POLL_SECONDS      # Repeating

    def clear_left_over(self) -> int:
        """At start, before any listener: the rows a crashed predecessor left."""
        return self.db.run_sync(live_sessions.clear_node, self.node)

    def opened(self, ticket, user: str) -> None:
        """``ticket``'s connection logged in as ``user`` (recorded in the background)."""
        d = self.db.group.later(live_sessions.open_session, self.node, ticket.protocol,
                                user, ticket.host, clocks.now(self.clock))
        d.addCallbacks(self._recorded, self._not_recorded, callbackArgs=(ticket,))

    def _recorded(self, row_id: int, ticket) -> None:
        if ticket.limits is None:           # it closed while the row was written
            self._forget(row_id)
            return
        ticket.row = row_id
        self._tickets[row_id] = ticket

    @staticmethod
    def _not_recorded(failure) -> None:
        log.warn("a login was not recorded for `mailstack who`: {error}",
                 error=failure.getErrorMessage())

    def closed(self, ticket) -> None:
        if ticket.row is not None:
            self._tickets.pop(ticket.row, None)
            self._forget(ticket.row)
            ticket.row = None

    def _forget(self, row_id: int) -> None:
        self.db.group.later(live_sessions.close_session, row_id).addErrback(self._not_recorded)

    def release_all(self) -> defer.Deferred:
        """At stop, before the database pool: this node's rows go."""
        return self.db.run(live_sessions.clear_node, self.node)

    @defer.inlineCallbacks
    def tick(self):
        """Close this node's sessions an operator kicked."""
        try:
            ids = yield self.db.read(live_sessions.kicked, self.node)
        except StoreUnavailable:
            return                          # the next poll asks again
        for row_id in ids:
            ticket = self._tickets.pop(row_id, None)
            if ticket is None:
                self._forget(row_id)        # its connection is already gone
                continue
            log.info("kicked: {user} ({protocol} from {ip})", user=ticket.user,
                     protocol=ticket.protocol, ip=ticket.host)
            ticket.kick()
