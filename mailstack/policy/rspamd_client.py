"""rspamd's HTTP protocol: one ``POST /checkv2`` per message, the answer as a dict.

Why our own HTTP/1.1 exchange (``http_exchange.py``) and not ``twisted.web``'s ``Agent``,
``rspamc`` or a library: rspamc is a process per message, the Python clients for rspamd
are synchronous (requests) or asyncio, and ``Agent`` (a connection pool, an endpoint, a
request and response object, a body producer, a parser and several Deferred chains per
request) cost about 1 ms of CPU per scan, most of our side of it.  The protocol is plain
HTTP/1.1 with the message as the body and the envelope in request headers (``IP``,
``Helo``, ``Hostname``, ``From``, one ``Rcpt`` per recipient, ``Queue-Id``, and ``User``
for a customer who logged in), answered by a JSON object (``action``, ``score``,
``required_score``, ``symbols``).  One connection per message: rspamd 3.4's normal worker
answers ``Connection: close`` even when asked ``Connection: keep-alive`` (measured), so
there is nothing to keep; a loopback connect costs tens of microseconds.

Standards: RFC 9112 (HTTP/1.1); rspamd's protocol (https://rspamd.com/doc/developers/protocol.html).
Security: rspamd is our own host (a loopback or private address in ``[spam] url``); what it
answers is parsed as JSON of bounded size (``MAX_ANSWER``) and only typed fields are used;
envelope values put in request headers are the ones our SMTP parser accepted, and CR and
LF are replaced all the same (no header can be injected); one timeout bounds the whole
exchange and aborts the connection.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from twisted.internet import defer

from mailstack.http_exchange import ExchangeFailed, exchange
from mailstack.policy.spam_scan import ScanFailed


class RspamdClient:
    """Asks one rspamd (``base_url``, e.g. ``http://127.0.0.1:11333``) about messages;
    ``in_flight`` and ``peak`` count the scans under way (the overlap of sessions)."""

    def __init__(self, reactor, base_url: str, timeout: float):
        self.reactor, self.timeout = reactor, timeout
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        authority = parts.netloc.encode("ascii")
        self._start = (b"POST /checkv2 HTTP/1.1\r\nHost: " + authority
                       + b"\r\nConnection: close\r\nContent-Type: message/rfc822\r\n")
        self.in_flight = self.peak = 0

    def check(self, spool, envelope: dict) -> defer.Deferred:
        """rspamd's answer (a dict) about the message in ``spool``; fails with ScanFailed
        (or a connection error, or ``defer.TimeoutError`` after ``timeout`` seconds)."""
        head = self._start + _headers(envelope) + b"Content-Length: %d\r\n\r\n" % spool.size
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        d = exchange(self.reactor, self.host, self.port, head, spool, self.timeout)
        d.addBoth(self._done)
        d.addCallbacks(_answer, _failed)
        return d

    def _done(self, result):
        self.in_flight -= 1
        return result

    def close(self) -> defer.Deferred:
        """Nothing is kept open between scans (the service stops; tests end)."""
        return defer.succeed(None)


def _failed(failure):
    failure.trap(ExchangeFailed)
    raise ScanFailed(str(failure.value))


def _answer(response) -> dict:
    status, body = response
    if status != 200:
        raise ScanFailed(f"HTTP {status}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise ScanFailed("answer is not JSON") from None
    if not isinstance(answer, dict) or "action" not in answer:
        raise ScanFailed("answer has no action")
    return answer


def _headers(envelope: dict) -> bytes:
    """The envelope as request header lines (``Rcpt`` once per recipient)."""
    lines = []
    for name, value in envelope.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        lines.extend(b"%s: %s\r\n" % (name.encode("ascii"), _header_value(v))
                     for v in values if v)
    return b"".join(lines)


def _header_value(value: str) -> bytes:
    """An envelope value as a header value: printable ASCII or UTF-8, no CR or LF."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.encode("utf-8", "replace")[:1000]
