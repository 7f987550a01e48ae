"""rspamd's HTTP protocol: one ``POST /checkv2`` per message, the answer as a dict.

Why our own few lines over ``twisted.web.client`` and not ``rspamc`` or a library: rspamc
is a process per message, and the Python clients for rspamd are synchronous (requests)
or asyncio; the protocol is plain HTTP/1.1 with the message as the body and the envelope
in request headers (``IP``, ``Helo``, ``Hostname``, ``From``, one ``Rcpt`` per recipient,
``Queue-Id``), answered by a JSON object (``action``, ``score``, ``required_score``,
``symbols``).  ``Agent`` runs over a persistent connection pool, which keeps a connection
open between messages where rspamd allows it; rspamd 3.4's normal worker answers
``Connection: close``, so there each scan is one loopback connection (measured: about
1.5 ms of our CPU per 4 KB message in all, docs/spam.md).

The message goes from its spool as the connection takes it (``SpoolProducer``: a piece
of 64 KB at a time, paused when the socket's buffer is full; a message of one piece is
written at once), never joined in memory;
the answer is read up to ``MAX_ANSWER`` octets and the whole exchange -- connect, send,
answer -- is bounded by one timeout (``Deferred.addTimeout`` cancels it: the connection
is aborted).  Nothing here blocks the reactor.

Standards: RFC 9112 (HTTP/1.1); rspamd's protocol (https://rspamd.com/doc/developers/protocol.html).
Security: rspamd is our own host (a loopback or private address in ``[spam] url``); what it
answers is parsed as JSON of bounded size and only typed fields are used; envelope values
put in request headers are the ones our SMTP parser accepted (no CR or LF can reach them).
"""

from __future__ import annotations

import json

from twisted.internet import defer, protocol, task
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from mailstack.policy.spam_scan import ScanFailed

PIECE = 64 * 1024           # octets of the message handed to the connection at a time
MAX_ANSWER = 1024 * 1024    # octets of rspamd's JSON answer read at most


@implementer(IBodyProducer)
class SpoolProducer:
    """A message spool as an HTTP request body (``message/spool.py``: ``pieces``)."""

    def __init__(self, spool, cooperator=task):
        self.length = spool.size
        self._pieces = spool.pieces(PIECE)
        self._cooperator = cooperator
        self._task = None

    def startProducing(self, consumer):
        if self.length <= PIECE:            # most mail: one write, no cooperative task
            for piece in self._pieces:
                consumer.write(piece)
            return defer.succeed(None)

        def write():
            for piece in self._pieces:
                consumer.write(piece)
                yield None
        self._task = self._cooperator.cooperate(write())
        d = self._task.whenDone()
        d.addCallback(lambda _: None)
        return d

    def pauseProducing(self):
        self._task.pause()

    def resumeProducing(self):
        self._task.resume()

    def stopProducing(self):
        if self._task is not None:
            try:
                self._task.stop()
            except task.TaskFinished:
                pass


class _BoundedAnswer(protocol.Protocol):
    """Collects a response body of at most ``MAX_ANSWER`` octets."""

    def __init__(self, finished: defer.Deferred):
        self.finished, self.parts, self.size = finished, [], 0

    def dataReceived(self, data: bytes):
        self.size += len(data)
        if self.size > MAX_ANSWER:
            self.transport.stopProducing()
            if not self.finished.called:
                self.finished.errback(ScanFailed("answer too large"))
            return
        self.parts.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(ResponseDone):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(ScanFailed("answer cut off"))


def _read_bounded(response) -> defer.Deferred:
    def cancel(d):
        answer.transport.stopProducing()
    finished = defer.Deferred(cancel)
    answer = _BoundedAnswer(finished)
    response.deliverBody(answer)
    return finished


class RspamdClient:
    """Asks one rspamd (``base_url``, e.g. ``http://127.0.0.1:11333``) about messages."""

    def __init__(self, reactor, base_url: str, timeout: float):
        self.reactor, self.timeout = reactor, timeout
        self.url = base_url.rstrip("/").encode("ascii") + b"/checkv2"
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 16
        self.agent = Agent(reactor, connectTimeout=timeout, pool=self.pool)

    def check(self, spool, envelope: dict) -> defer.Deferred:
        """rspamd's answer (a dict) about the message in ``spool``; fails with ScanFailed
        (or a connection error, or ``defer.TimeoutError`` after ``timeout`` seconds)."""
        d = self._check(spool, envelope)
        return d.addTimeout(self.timeout, self.reactor)

    @defer.inlineCallbacks
    def _check(self, spool, envelope: dict):
        headers = Headers({b"Content-Type": [b"message/rfc822"]})
        for name, value in envelope.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            headers.setRawHeaders(name.encode("ascii"),
                                  [_header_value(v) for v in values if v])
        response = yield self.agent.request(b"POST", self.url, headers, SpoolProducer(spool))
        body = yield _read_bounded(response)
        if response.code != 200:
            raise ScanFailed(f"HTTP {response.code}")
        try:
            answer = json.loads(body)
        except ValueError:
            raise ScanFailed("answer is not JSON") from None
        if not isinstance(answer, dict) or "action" not in answer:
            raise ScanFailed("answer has no action")
        return answer

    def close(self) -> defer.Deferred:
        """Close the idle connections (the service stops; tests end)."""
        return self.pool.closeCachedConnections()


def _header_value(value: str) -> bytes:
    """An envelope value as a header value: printable ASCII or UTF-8, no CR or LF."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8", "replace")[:1000]
