"""POP3's TRANSACTION state: the maildrop listed, read and marked (RFC 1939 §5, §6).

Why a module of its own: the session (``pop3``) reads lines and dispatches them by state;
this is everything once the maildrop is open -- STAT, LIST, UIDL, RETR, TOP, DELE, RSET --
and QUIT, whose UPDATE state deletes what was marked and answers only after the COMMIT.
``POP3Session`` mixes it in.  Messages are numbered from the snapshot taken at login, so a
number means the same message for the whole session; deleted ones leave LIST and UIDL.

RETR of a small message is served from the session's read-ahead (``pop3_read_ahead``:
the next messages, read while the current ones are sent and dot-stuffed as they are read),
in one write when it is there already; a message over STREAM_OVER is read and sent a range
at a time as the client reads (``streaming``), never whole (issue 13), dot-stuffed by one
``DotStuffer`` across all its pieces, so a line starting with a dot is stuffed wherever a
piece boundary falls.

Standards: RFC 1939 §5 (TRANSACTION), §6 (UPDATE), §7 (TOP, UIDL).
Security: a message number is checked against the snapshot before use; the reply of a
large message is written no faster than the client reads it.
"""

from __future__ import annotations

from operator import attrgetter

from twisted.internet import defer

from mailstack import replies
from mailstack.dotstuff import DotStuffer
from mailstack.protocols.streaming import CHUNK, stored_ranges, write_paced
from mailstack.store import maildrop
from mailstack.store.body_ranges import STREAM_OVER
from mailstack.store.errors import StoreUnavailable

_SIZE = attrgetter("size")


class TransactionCommands:
    """The commands of the TRANSACTION state, and QUIT's UPDATE."""

    def _message(self, argument):
        """(number, Entry) for a message argument, or None after sending the -ERR."""
        if not argument.isdigit():
            self.err(replies.POP_BAD_ARGUMENT)
            return None
        number = int(argument)
        if not 1 <= number <= len(self.drop):
            self.err(replies.POP_NO_SUCH_MESSAGE)
            return None
        if number in self.deleted:
            self.err(replies.POP_DELETED)
            return None
        return number, self.drop[number - 1]

    def _live(self):
        return [(n, e) for n, e in enumerate(self.drop, 1) if n not in self.deleted]

    def trans_STAT(self, argument):
        # Summed in C over the snapshot, less what is marked (``deleted`` holds valid numbers).
        size = sum(map(_SIZE, self.drop)) - sum(self.drop[n - 1].size for n in self.deleted)
        self.ok(f"{len(self.drop) - len(self.deleted)} {size}")

    def trans_LIST(self, argument):
        if argument:
            found = self._message(argument)
            return found and self.ok(f"{found[0]} {found[1].size}")
        live = self._live()
        self.multiline(f"{len(live)} messages", [f"{n} {e.size}" for n, e in live])

    def trans_UIDL(self, argument):
        if argument:
            found = self._message(argument)
            return found and self.ok(f"{found[0]} {found[1].guid}")
        self.multiline("unique-id listing follows", [f"{n} {e.guid}" for n, e in self._live()])

    def trans_DELE(self, argument):
        found = self._message(argument)
        if found:
            self.deleted.add(found[0])
            self.read_ahead.forget(found[1].id)
            self.ok(f"message {found[0]} deleted")

    def trans_RSET(self, argument):
        self.deleted.clear()
        self.trans_STAT("")

    def trans_RETR(self, argument):
        found = self._message(argument)
        if not found:
            return None
        number, entry = found
        if entry.size > STREAM_OVER:
            return defer.Deferred.fromCoroutine(self._send_by_ranges(entry))
        wire = self.read_ahead.take(entry.id)
        if wire is None or len(wire) > CHUNK:
            return defer.Deferred.fromCoroutine(self._send_read(number, entry, wire))
        # The common case: answered now, in one write (no Deferred for the queue to wait on).
        self.transport.writeSequence((b"+OK %d octets\r\n" % entry.size, wire))
        self.read_ahead.refill(self.drop, self.deleted, number)
        return None

    async def _send_read(self, number, entry, wire):
        """RETR of a message not read ahead yet, or too large to be written at once."""
        if wire is None:
            wire = await self.read_ahead.fetch(self.drop, self.deleted, entry)
            if wire is None:
                return self.err(replies.POP_NO_SUCH_MESSAGE)
        self.ok(f"{entry.size} octets")
        self.read_ahead.refill(self.drop, self.deleted, number)
        await write_paced(self, wire)      # a message of 256 KB is not written at once

    def trans_TOP(self, argument):
        number, _, lines = argument.partition(" ")
        if not lines.strip().isdigit():
            return self.err(replies.POP_BAD_ARGUMENT)
        found = self._message(number)
        return found and defer.Deferred.fromCoroutine(self._send_top(found[1], int(lines)))

    async def _send_top(self, entry, top_lines):
        """TOP reads the one message (the read-ahead holds what RETR sends, stuffed)."""
        found = await self.db.read(maildrop.bodies, self.account.id, [entry.id])
        message = found.get(entry.id)
        if message is None:
            return self.err(replies.POP_NO_SUCH_MESSAGE)
        message = _top(message, top_lines)
        self.ok(f"{len(message)} octets")
        stuffer = DotStuffer()      # by pieces: a large message is not copied whole again
        if await write_paced(self, message, stuffer.feed):
            self.transport.write(stuffer.finish())

    async def _send_by_ranges(self, entry):
        """RETR of a large message: read and sent a RANGE at a time as the client reads,
        never whole (issue 13).  If it vanishes meanwhile (expunged over IMAP), the
        multi-line reply cannot be ended honestly: the connection is closed."""
        stuffer, started = DotStuffer(), False
        async for octets in stored_ranges(self.db, entry.id, 0, entry.size):
            if octets is None:
                if not started:
                    return self.err(replies.POP_NO_SUCH_MESSAGE)
                self.log.info("message vanished during RETR; closing")
                return self.close_connection()
            if not started:
                self.ok(f"{entry.size} octets")
                started = True
            if not await write_paced(self, octets, stuffer.feed):
                return None
        self.transport.write(stuffer.finish())

    @defer.inlineCallbacks
    def trans_QUIT(self, argument):
        # Twisted answers +OK before its sync() has committed; we answer after the COMMIT.
        self.quitting = True
        doomed = [self.drop[n - 1].id for n in sorted(self.deleted)]
        try:
            removed = yield self.lease.close(doomed)
        except StoreUnavailable:
            self.log.warn("QUIT: store unavailable, nothing deleted")
            self.err(replies.POP_SYS_TEMP)
            self._release()   # now: a TLS close can linger until the client answers
            self.close_connection()
            return
        self.log.info("QUIT: {n} messages deleted", n=removed)
        self.ok(f"{removed} messages deleted, signing off")
        self.close_connection()


def _top(message: bytes, lines: int) -> bytes:
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        return message
    body_lines = body.split(b"\r\n")
    if body.endswith(b"\r\n"):
        body_lines.pop()                # the CRLF ends the last line; no line follows it
    if lines >= len(body_lines):
        return message                  # the whole body: exactly what RETR sends
    return head + sep + b"".join(line + b"\r\n" for line in body_lines[:lines])
