"""DATA: receiving a message and answering for it (RFC 5321 §4.1.1.4, §4.5.2).

Why a module of its own: this is where "nothing acknowledged is lost" is kept.  The 250
goes out only from the store's callback (after COMMIT); a store outage is 451, never 550
(Twisted's answer); a message over SIZE or with an over-long line is read to its end and
then refused, so the session stays in step with the client.  ``SMTPSession`` mixes it in.

Memory (issue 13, case 5): the lines go to a spool (``message/spool.py``) as they arrive,
dot-unstuffed and CRLF-terminated, not into a list that is joined at the end; a message
that will be refused stops being kept at once, and so does one whose spool cannot be
written (a full or missing temporary directory): that one gets 451 at the end.  At the
end the policy is asked (``policy.data``: does the message fit its mailboxes?), then the
listener's intake (``smtp_intake``) stores it, the policy reads what it must from it
(``after_delivery``: a spam report) and the reflector answers; the spool is closed when
all have answered, whatever the answer; a transaction cut off mid-DATA closes it too
(``reset_body``, from the session's ``connectionLost``).

Cost (issue 16): a read of message lines, all CRLF-ended, is taken at once while nothing
waits in the session's queue (``message_lines``): found the end, checked the lengths,
unstuffed and spooled by a few operations in C, so a 64 KB message costs a few calls per
read instead of a call chain per line.  Anything unusual in a read (a bare CR or LF, an
over-long line, a queue that waits) goes line by line through ``data_line``, and so do the
end of data and the commands after it; both ways give the same octets and replies.

Standards: RFC 5321 §4.1.1.4, §4.5.2 (transparency), §4.5.3.1.7 (message size), RFC 1870.
Security: memory per message is bounded (a spool, no longer kept once the message will be
refused); the 250 only after COMMIT; a store or spool failure is 451, never 550.  Message
content is not inspected here (that is the policy's, at delivery).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet import defer

from mailstack import replies
from mailstack.delivery.sieve_delivery import Refused
from mailstack.message.spool import Spool
from mailstack.protocols.lines import OVERLONG
from mailstack.store.errors import StoreUnavailable

HEADER_LINE_LIMIT = 998       # RFC 5322 §2.1.1
BODY_LINE_LIMIT = 65536       # lenient for bodies, still bounded


class NormalisedLine(bytes):
    """A piece of a line cut at a bare LF or CR, already unstuffed where it should be: kept
    as a CRLF line as it is, never the end of DATA."""


class MessageReception:
    """The DATA command and the lines after it, up to the reply."""

    _spool = None

    def reset_body(self):
        self._drop_spool()
        self._body_size = 0
        self._too_big = False
        self._bad_line = False
        self._spool_failed = False
        self._in_headers = True
        self._bare_newlines = False

    def _drop_spool(self):
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def smtp_DATA(self, argument):
        if argument:
            return self.refuse(replies.ARGUMENT_ERROR)
        if self.envelope.sender is None:
            return self.refuse(replies.NEED_MAIL)
        if not self.envelope.recipients:
            return self.refuse(replies.NO_VALID_RECIPIENTS)
        self._drop_spool()
        self._spool = Spool(self.factory.spool_dir)
        self.in_data = self.bare_lf_ends_lines = True
        self._after_bare_lf = False
        self.reply(replies.START_DATA)

    def message_lines(self, lines: list) -> list:
        """A read of message lines taken at once (issue 16): the lines before the end of
        data are checked, unstuffed, counted and spooled by a few operations in C, not
        one Python call chain each (840 of them for a 64 KB message).  What this gives
        is what ``data_line`` gives line by line: the same octets in the spool, the same
        ``_body_size``, ``_too_big`` and ``_in_headers``.

        Only CRLF-ended lines come here (``lines.BoundedLineReceiver``: a read with a bare
        CR or LF, or the tail of a skipped over-long line, goes line by line), and only
        while the queue is idle, so each line would have run at once.  A read holding an
        over-long line is handed back whole: ``line_too_long`` answers it in its turn.
        The end of data (``.``, CRLF-ended on both sides: RFC 5321 §4.1.1.4) and the
        lines after it, pipelined commands (RFC 2920), are handed back to go line by line,
        so the 250 comes only from ``_end_of_data``, and what follows waits for it."""
        if not self.in_data or not self.queue_idle():
            return lines
        try:
            end = lines.index(b".")
        except ValueError:
            end = len(lines)
        if not end:
            return lines
        body = lines[:end]
        header_end = 0                  # body[:header_end] are header lines
        if self._in_headers:
            try:
                header_end = body.index(b"")
            except ValueError:
                header_end = end
            if header_end and max(map(len, body[:header_end])) > HEADER_LINE_LIMIT + 1:
                return lines
        if header_end < end:
            if max(map(len, body[header_end:] if header_end else body)) > BODY_LINE_LIMIT:
                return lines
            self._in_headers = False
        self.resetTimeout()
        body.append(b"")                # every line CRLF-ended
        data = b"\r\n".join(body)
        if data[:1] == b".":            # RFC 5321 §4.5.2 transparency
            data = data[1:]
        data = data.replace(b"\r\n.", b"\r\n")
        self._body_size += len(data)
        if self._body_size > self.max_size:
            self._too_big = True
            self._drop_spool()
        elif self._spool is not None:
            try:
                self._spool.add_lines(data)
            except OSError as e:
                self._spool_broke(e)
        return lines[end:]

    def data_line(self, line):
        if line.__class__ is not bytes:         # OVERLONG, or a line beside a bare LF
            if line is OVERLONG:
                self._bad_line = True
                self._drop_spool()      # refused at the end: nothing more is kept
                return None
            if line.__class__ is not NormalisedLine:
                return self._bare_line(line)
        elif line == b".":              # only CRLF.CRLF ends DATA (the smuggling split)
            return self._end_of_data()
        elif line[:1] == b".":
            line = line[1:]   # RFC 5321 §4.5.2 transparency
        if self._in_headers and not line:
            self._in_headers = False
        self._body_size += len(line) + 2
        if self._body_size > self.max_size:
            self._too_big = True
            self._drop_spool()
        elif self._spool is not None:
            try:                        # inline: this runs for every line of every message
                self._spool.add_line(line)
            except OSError as e:
                self._spool_broke(e)
        return None

    def _bare_line(self, line):
        """A line beside a bare LF, or holding a bare CR: each piece becomes a CRLF line
        (``[smtp] bare_newlines = "normalize"``), or the message is refused at its end.
        Only a line that began after a CRLF is unstuffed, and no piece ends DATA: a client
        that sends bare line ends does not stuff what follows them."""
        self._bare_newlines = True
        if self.settings.bare_newlines == "reject":
            self._drop_spool()
            return None
        first, *rest = bytes(line).split(b"\r")
        if getattr(line, "stuffed", True) and first[:1] == b".":
            first = first[1:]
        for piece in (first, *rest):
            self.data_line(NormalisedLine(piece))
        return None

    def _spool_broke(self, error: OSError):
        self.log.error("message spool failed: {error}", error=str(error))
        self._spool_failed = True
        self._drop_spool()

    def _end_of_data(self):
        envelope, spool = self.envelope, self._spool
        too_big, bad_line, failed = self._too_big, self._bad_line, self._spool_failed
        bare = self._bare_newlines and self.settings.bare_newlines == "reject"
        self._spool = None              # the store owns it from here
        self._reset_transaction()
        if too_big:
            self.log.info("message refused: over {limit} bytes", limit=self.max_size)
            return self.reply(replies.MESSAGE_TOO_BIG)
        if bad_line:
            self.log.info("message refused: over-long line")
            return self.reply(replies.DATA_LINE_TOO_LONG)
        if bare:
            self.log.info("message refused: bare LF or CR line ends")
            return self.reply(replies.BARE_NEWLINE)
        if failed:
            return self.reply(replies.STORE_UNAVAILABLE)
        self.messages += 1
        queue_id = f"{self.session_id}{self.messages:03d}"
        request = self.request("data", sender=envelope.sender,
                               authenticated_as=envelope.account,
                               recipients=tuple(envelope.recipients), size=spool.size,
                               message=spool, queue_id=queue_id)
        d = defer.maybeDeferred(self.policy.data, request)
        d.addCallback(self._deliver, request, envelope, spool, queue_id)
        d.addBoth(_closing, spool)
        return d.addCallbacks(self._answered, self._not_stored,
                              callbackArgs=(queue_id, spool.size, len(envelope.addresses)),
                              errbackArgs=(queue_id,))

    @defer.inlineCallbacks
    def _deliver(self, outcome, request, envelope, spool, queue_id):
        """Store what the policy accepted; the outcome passes on to the reply."""
        if outcome.reply is not None:
            return outcome
        intake = self.factory.intake
        stored = yield intake.store(self, envelope, spool, queue_id, outcome.undeliverable,
                                    outcome.authentication, outcome.forward, outcome.spam)
        if isinstance(stored, Refused):      # the one recipient's Sieve reject (RFC 5429)
            reply = yield self.policy.refused_by_recipient(request, stored.reply)
            return replace(outcome, reply=reply)
        yield self.policy.after_delivery(request, spool)
        yield intake.reflect(self, envelope)
        return outcome

    def _answered(self, outcome, queue_id, size, count):
        if outcome.reply is not None:
            self.log.info("message {id} refused: {reply}", id=queue_id, reply=str(outcome.reply))
            reply = outcome.reply
        else:
            self.log.info("message {id} stored: {size} bytes, {n} recipient(s)", id=queue_id,
                          size=size, n=count)
            reply = replies.QUEUED.format(id=queue_id)
            self.factory.metrics.accepted(self.factory.name)
        if not self.transport.disconnecting:
            self.reply(reply)

    def _not_stored(self, failure, queue_id):
        # Twisted answers a failed store with 550; a store outage must be temporary (451).
        if not failure.check(StoreUnavailable):
            self.log.failure("message {id} not stored", failure, id=queue_id)
        else:
            self.log.warn("message {id} not stored: store unavailable", id=queue_id)
        if not self.transport.disconnecting:
            self.reply(replies.STORE_UNAVAILABLE)


def _closing(result, spool):
    """Close the spool once the store has answered (COMMIT, refusal or failure)."""
    spool.close()
    return result
