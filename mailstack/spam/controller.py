"""rspamd's controller worker: ``POST /learnspam`` and ``/learnham`` with a message.

Why the controller and not the normal worker: rspamd serves learning (and ``/stat``) only
on its controller (port 11334 by default); the normal worker (``/checkv2``) has no learn
endpoint.  Why ``twisted.web``'s ``Agent`` and our own few lines, not ``rspamc``: a learn
is rare (a customer moving mail), so one connection per learn is fine, but it must never
block the reactor or start a process per message.

The answer is read up to ``MAX_ANSWER`` octets and the whole exchange is bounded by one
timeout (``Deferred.addTimeout`` cancels it and aborts the connection).  What rspamd's
status codes mean for the queue is ``spam/learning.py``'s ``outcome``.

Standards: RFC 9112 (HTTP/1.1); rspamd's controller protocol
(https://rspamd.com/doc/workers/controller.html: the ``Password`` request header).
Security: the password goes only in the request header to the configured controller (an
address of ours: the message and the password travel unencrypted, so loopback or a
private network) and is never logged; rspamd's answer is bounded and only its status code
and a short, cleaned error text are kept.
"""

from __future__ import annotations

import json
import re
from io import BytesIO

from twisted.internet import defer, protocol
from twisted.web.client import Agent, FileBodyProducer, ResponseDone
from twisted.web.http_headers import Headers

MAX_ANSWER = 64 * 1024      # octets of the controller's answer read at most
PATHS = {"spam": b"/learnspam", "ham": b"/learnham"}


class AnswerFailed(Exception):
    """The controller's answer was cut off or too large."""


class _BoundedAnswer(protocol.Protocol):
    def __init__(self, finished: defer.Deferred):
        self.finished, self.parts, self.size = finished, [], 0

    def dataReceived(self, data: bytes):
        self.size += len(data)
        if self.size > MAX_ANSWER:
            self.transport.stopProducing()
            if not self.finished.called:
                self.finished.errback(AnswerFailed("answer too large"))
            return
        self.parts.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(ResponseDone):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(AnswerFailed("answer cut off"))


def _read_bounded(response) -> defer.Deferred:
    def cancel(d):
        answer.transport.stopProducing()
    finished = defer.Deferred(cancel)
    answer = _BoundedAnswer(finished)
    response.deliverBody(answer)
    return finished


def error_text(answer: bytes) -> str:
    """rspamd's ``{"error": "..."}`` as short printable text ("" for none)."""
    try:
        found = json.loads(answer)
    except ValueError:
        found = None
    text = found.get("error", "") if isinstance(found, dict) else answer.decode("utf-8",
                                                                                  "replace")
    return re.sub(r"[^\x20-\x7e]", "", str(text))[:200]


class Controller:
    """Learns messages on one rspamd controller (``base_url``, e.g. http://127.0.0.1:11334)."""

    def __init__(self, reactor, base_url: str, password: str, timeout: float):
        self.reactor, self.timeout = reactor, timeout
        self.base = base_url.rstrip("/").encode("ascii")
        self._password = password
        self.agent = Agent(reactor, connectTimeout=timeout)

    def learn(self, direction: str, body: bytes) -> defer.Deferred:
        """(HTTP status, error text) of ``POST /learnspam`` or ``/learnham``; fails on a
        connection error, a broken answer, or ``defer.TimeoutError`` after ``timeout``."""
        return self._learn(direction, body).addTimeout(self.timeout, self.reactor)

    @defer.inlineCallbacks
    def _learn(self, direction: str, body: bytes):
        headers = Headers({b"Content-Type": [b"message/rfc822"]})
        if self._password:
            headers.setRawHeaders(b"Password", [self._password.encode("utf-8")])
        response = yield self.agent.request(b"POST", self.base + PATHS[direction], headers,
                                            FileBodyProducer(BytesIO(body)))
        answer = yield _read_bounded(response)
        return response.code, error_text(answer)

    def __repr__(self) -> str:          # the password never shows in a log line
        return f"Controller({self.base.decode()!r})"
