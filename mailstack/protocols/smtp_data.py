"""DATA: receiving a message and answering for it (RFC 5321 §4.1.1.4, §4.5.2).

Why a module of its own: this is where "nothing acknowledged is lost" is kept.  The 250
goes out only from the store's callback (after COMMIT); a store outage is 451, never 550
(Twisted's answer); a message over SIZE or with an over-long line is read to its end and
then refused, so the session stays in step with the client.  ``SMTPSession`` mixes it in.
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack import replies
from mailstack.protocols.lines import OVERLONG
from mailstack.store.errors import StoreUnavailable


class MessageReception:
    """The DATA command and the lines after it, up to the reply."""

    def reset_body(self):
        self._body = []
        self._body_size = 0
        self._too_big = False
        self._bad_line = False
        self._in_headers = True

    def smtp_DATA(self, argument):
        if argument:
            return self.refuse(replies.ARGUMENT_ERROR)
        if self.envelope.sender is None:
            return self.refuse(replies.NEED_MAIL)
        if not self.envelope.recipients:
            return self.refuse(replies.NO_VALID_RECIPIENTS)
        self.in_data = True
        self.reply(replies.START_DATA)

    def data_line(self, line):
        if line is OVERLONG:
            self._bad_line = True
            return None
        if line == b".":
            return self._end_of_data()
        if line[:1] == b".":
            line = line[1:]   # RFC 5321 §4.5.2 transparency
        if self._in_headers and not line:
            self._in_headers = False
        self._body_size += len(line) + 2
        if self._body_size > self.max_size:
            self._too_big, self._body = True, []
        elif not self._too_big:
            self._body.append(line)
        return None

    def _end_of_data(self):
        envelope, body = self.envelope, self._body
        too_big, bad_line = self._too_big, self._bad_line
        self._reset_transaction()
        if too_big:
            self.log.info("message refused: over {limit} bytes", limit=self.max_size)
            return self.reply(replies.MESSAGE_TOO_BIG)
        if bad_line:
            self.log.info("message refused: over-long line")
            return self.reply(replies.DATA_LINE_TOO_LONG)
        data = b"\r\n".join(body) + b"\r\n" if body else b""
        self.messages += 1
        queue_id = f"{self.session_id}{self.messages:03d}"
        d = defer.maybeDeferred(self.policy.deliver, self, envelope, data, queue_id)
        return d.addCallbacks(self._stored, self._not_stored,
                              callbackArgs=(queue_id, len(data), len(envelope.addresses)),
                              errbackArgs=(queue_id,))

    def _stored(self, _, queue_id, size, count):
        self.log.info("message {id} stored: {size} bytes, {n} recipient(s)", id=queue_id,
                      size=size, n=count)
        if not self.transport.disconnecting:
            self.reply(replies.QUEUED.format(id=queue_id))

    def _not_stored(self, failure, queue_id):
        # Twisted answers a failed store with 550; a store outage must be temporary (451).
        if failure.check(replies.Refused):
            self.log.info("message {id} refused: {reply}", id=queue_id, reply=str(failure.value.reply))
            return self.reply(failure.value.reply) if not self.transport.disconnecting else None
        if not failure.check(StoreUnavailable):
            self.log.failure("message {id} not stored", failure, id=queue_id)
        else:
            self.log.warn("message {id} not stored: store unavailable", id=queue_id)
        if not self.transport.disconnecting:
            self.reply(replies.STORE_UNAVAILABLE)
