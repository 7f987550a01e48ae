"""rspamd's controller worker: ``POST /learnspam`` and ``/learnham`` with a message.

Why the controller and not the normal worker: rspamd serves learning (and ``/stat``) only
on its controller (port 11334 by default); the normal worker (``/checkv2``) has no learn
endpoint.  Why the scan's own HTTP exchange (``http_exchange.py``), not ``rspamc``: a
learn is rare (a customer moving mail), so one connection per learn is fine, but it must
never block the reactor or start a process per message.

The answer is read up to ``http_exchange.MAX_ANSWER`` octets and the whole exchange is
bounded by one timeout (the connection is aborted).  What rspamd's
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
from urllib.parse import urlsplit

from twisted.internet import defer

from mailstack.http_exchange import exchange

PATHS = {"spam": b"/learnspam", "ham": b"/learnham"}


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
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.base = base_url.rstrip("/")
        self._head = (b" HTTP/1.1\r\nHost: " + parts.netloc.encode("ascii")
                      + b"\r\nConnection: close\r\nContent-Type: message/rfc822\r\n")
        if password:
            self._head += b"Password: " + _header_value(password) + b"\r\n"

    def learn(self, direction: str, body: bytes) -> defer.Deferred:
        """(HTTP status, error text) of ``POST /learnspam`` or ``/learnham``; fails on a
        connection error, a broken answer (``ExchangeFailed``), or ``defer.TimeoutError``
        after ``timeout``."""
        head = (b"POST " + PATHS[direction] + self._head
                + b"Content-Length: %d\r\n\r\n" % len(body))
        d = exchange(self.reactor, self.host, self.port, head, body, self.timeout)
        d.addCallback(lambda answer: (answer[0], error_text(answer[1])))
        return d

    def __repr__(self) -> str:          # the password never shows in a log line
        return f"Controller({self.base!r})"


def _header_value(text: str) -> bytes:
    """A configured value as a header value: no CR or LF can end the field early."""
    return text.replace("\r", "").replace("\n", "").encode("utf-8")
