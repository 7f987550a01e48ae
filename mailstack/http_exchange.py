"""One HTTP/1.1 request and its response over a connection of its own: what mailstack's
clients of rspamd need of HTTP (the scan, ``policy/rspamd_client.py``; the learns,
``spam/controller.py``), and nothing else.

Why not ``twisted.web.client.Agent``: per request it builds a pool key, an endpoint, a
``Request``, a ``Response``, a body producer, an ``HTTP11ClientProtocol`` with its
parser and transport proxies, and chains a dozen Deferreds; for a 4 KB message and a
1.5 KB answer that was about 1 ms of CPU, more than all the rest of our side of a scan.
Here: one ``connectTCP``, one protocol object, the request head written at once, the
body from the spool, one buffer for the answer.

- The body is the message's spool (``message/spool.py``: ``pieces``; or plain bytes), written in pieces of
  ``PIECE`` octets; a message of one piece is written at once, a larger one through a
  streaming producer the transport pauses when its buffer is full (backpressure), so a
  50 MB message never sits in memory whole.
- The answer: status line, header fields (at most ``MAX_HEAD`` octets), then a body of
  ``Content-Length`` octets, or ``chunked`` (RFC 9112 §7.1), or up to the close; at most
  ``MAX_ANSWER`` octets, past which the exchange fails.
- One timer bounds the whole exchange -- connect, send, answer: when it fires, the
  connection is aborted and the Deferred fails with ``defer.TimeoutError``; cancelling
  the Deferred does the same with ``CancelledError``.  Nothing blocks the reactor.

Standards: RFC 9112 (HTTP/1.1 message syntax, chunked transfer coding), RFC 9110.
Security: the peer is our own service (``[spam] url``, ``controller_url``), yet its answer is bounded in size
and time and parsed strictly (a malformed status line, length or chunk size fails the
exchange); the request head is built by the caller from values it has cleaned.
"""

from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

PIECE = 64 * 1024           # octets of the body handed to the connection at a time
MAX_HEAD = 16 * 1024        # octets of the answer's status line and header fields
MAX_ANSWER = 1024 * 1024    # octets of the answer's body read at most
HEX = b"0123456789abcdefABCDEF"


class ExchangeFailed(Exception):
    """The peer's answer was cut off, too large or not HTTP (the reason is the message)."""


def exchange(reactor, host: str, port: int, head: bytes, spool, timeout: float):
    """A Deferred firing with (status, body) of the answer to ``head`` (request line and
    header fields, ending in the empty line) followed by the octets of ``spool`` (a
    message spool, or bytes)."""
    if isinstance(spool, (bytes, bytearray)):
        spool = _Octets(bytes(spool))
    ex = _Exchange(head, spool)
    ex.finished = defer.Deferred(lambda d: ex.abort(defer.CancelledError()))
    ex.timer = reactor.callLater(timeout, ex.abort, defer.TimeoutError(
        f"no answer from {host}:{port} within {timeout} s"))
    ex.connector = reactor.connectTCP(host, port, _Once(ex), timeout=timeout)
    return ex.finished


class _Octets:
    """Bytes with the two things ``_Exchange`` asks of a spool."""

    def __init__(self, octets: bytes):
        self.octets, self.size = octets, len(octets)

    def pieces(self, size: int):
        for at in range(0, self.size, size):
            yield self.octets[at:at + size]


class _Once(protocol.ClientFactory):
    noisy = False           # no "Starting factory" log line per scan

    def __init__(self, ex):
        self.ex = ex

    def buildProtocol(self, addr):
        return self.ex

    def clientConnectionFailed(self, connector, reason):
        self.ex.fail(reason)


class _Exchange(protocol.Protocol):
    finished = timer = connector = None

    def __init__(self, head: bytes, spool):
        self.head, self.spool = head, spool
        self.buffer = bytearray()
        self.status = self.length = None
        self.chunked = False
        self.body_start = 0

    # --- the request -------------------------------------------------------------------

    def connectionMade(self):
        self.transport.write(self.head)
        try:
            if self.spool.size <= PIECE:
                self.transport.writeSequence(list(self.spool.pieces(PIECE)))
            else:
                body = _Body(self, self.spool.pieces(PIECE))
                self.transport.registerProducer(body, True)
                body.resumeProducing()
        except Exception:           # the spool went away (the session ended)
            self.fail(Failure())

    # --- the answer --------------------------------------------------------------------

    def dataReceived(self, data: bytes):
        if self.finished.called:
            return
        self.buffer += data
        try:
            if self.status is None and not self._read_head():
                return
            body = self._read_body()
        except ExchangeFailed:
            self.fail(Failure())
            return
        if body is not None:
            self.succeed(body)

    def connectionLost(self, reason):
        if self.finished is None or self.finished.called:
            return
        if self.status is not None and self.length is None and not self.chunked:
            self.succeed(bytes(self.buffer[self.body_start:]))     # a body up to the close
        else:
            self.fail(Failure(ExchangeFailed("answer cut off")))

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                raise ExchangeFailed("answer header too large")
            return False
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ExchangeFailed("answer is not HTTP")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                if not value.isdigit():
                    raise ExchangeFailed("bad Content-Length")
                self.length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = value.lower().endswith(b"chunked")
        if self.chunked:
            self.length = None
        if self.length is not None and self.length > MAX_ANSWER:
            raise ExchangeFailed("answer too large")
        self.status, self.body_start = int(code), end + 4
        return True

    def _read_body(self):
        """The whole body once it is here, else None."""
        start = self.body_start
        if len(self.buffer) - start > MAX_ANSWER + MAX_HEAD:
            raise ExchangeFailed("answer too large")
        if self.chunked:
            return _dechunked(self.buffer, start)
        if self.length is not None and len(self.buffer) - start >= self.length:
            return bytes(self.buffer[start:start + self.length])
        return None

    # --- the end -----------------------------------------------------------------------

    def succeed(self, body: bytes):
        self._stop_timer()
        self.finished.callback((self.status, body))
        if self.transport is not None:
            self.transport.loseConnection()

    def fail(self, failure):
        if self.finished.called:
            return
        self._stop_timer()
        if self.transport is not None:
            self.transport.abortConnection()
        self.finished.errback(failure)

    def abort(self, error: Exception):
        """The timer fired, or the caller cancelled: drop the connection, fail."""
        if self.finished.called:
            return
        connecting = self.transport is None and self.connector is not None
        self.fail(Failure(error))           # first: stopping a connect reports a failure
        if connecting:
            self.connector.stopConnecting()

    def _stop_timer(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()


@implementer(IPushProducer)
class _Body:
    """The body of a message larger than one piece, written as the transport takes it."""

    def __init__(self, ex: _Exchange, pieces):
        self.ex, self.pieces, self.paused = ex, pieces, False

    def resumeProducing(self):
        self.paused = False
        transport = self.ex.transport
        try:
            for piece in self.pieces:
                transport.write(piece)
                if self.paused:             # the transport's buffer is full
                    return
        except Exception:
            self.ex.fail(Failure())
            return
        transport.unregisterProducer()

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.paused = True
        self.pieces = iter(())


def _dechunked(buffer: bytearray, at: int):
    """The body of a chunked answer starting at ``at`` once its last chunk is here, else
    None (RFC 9112 §7.1; extensions and trailer fields are read and ignored)."""
    parts, size = [], 0
    while True:
        eol = buffer.find(b"\r\n", at)
        if eol < 0:
            return None
        digits = bytes(buffer[at:eol]).split(b";", 1)[0].strip()
        if not digits or len(digits) > 8 or digits.strip(HEX):
            raise ExchangeFailed("bad chunk size")
        length = int(digits, 16)
        size += length
        if size > MAX_ANSWER:
            raise ExchangeFailed("answer too large")
        at = eol + 2
        if length == 0:
            if buffer[at:at + 2] == b"\r\n" or buffer.find(b"\r\n\r\n", at) >= 0:
                return b"".join(parts)
            return None
        if len(buffer) < at + length + 2:
            return None
        parts.append(bytes(buffer[at:at + length]))
        at += length + 2
