"""How the customer-facing HTTPS pages answer: the security headers every page carries, and
an answer that comes later, from work done off the reactor.

Why one place: the self-check page (``selfcheck.py``) and the whitehole request page
(``whitehole_page.py``) show what only the person asking may see, or take input from
strangers; both must send the same headers, and both answer after database work, when the
browser may already have gone (writing to a finished request raises in ``twisted.web``).

Standards: RFC 9110 §15 (status codes), W3C CSP Level 3 (``default-src 'none'``,
``form-action 'self'``, ``frame-ancestors 'none'``), RFC 9111 §5.2.2.5 (``no-store``).
Security: no page of ours may be framed, cached, sniffed or leak its address in a
Referer; a form posts only to our own pages.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import server

log = Logger(namespace="mailstack.http")

SECURITY_HEADERS = {
    b"cache-control": b"no-store",
    b"content-security-policy": b"default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


def send(request, code: int, content_type: bytes, body: bytes, headers=None) -> bytes:
    """Set the status and headers (ours, then ``headers``) and give back the body to write."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", content_type)
    for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
        request.setHeader(name, value)
    return body


def later(request, d, failed):
    """Answer ``request`` when ``d`` fires with (code, content type, body[, headers]);
    ``failed(failure)`` gives that tuple when it fails.  Nothing is written once the client
    has gone.  Returns what ``render_*`` returns for an answer to come."""
    finished = []
    request.notifyFinish().addBoth(finished.append)

    def reply(result):
        if not finished:
            request.write(send(request, *result))
            request.finish()

    d.addErrback(failed).addCallback(reply)
    d.addErrback(lambda failure: log.failure("writing a page's answer failed", failure))
    return server.NOT_DONE_YET
