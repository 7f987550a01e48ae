"""Request bodies of the HTTP listener kept to ``MAX_BODY`` octets, whatever is sent.

Why: twisted.web's ``Request`` stores the whole body before any resource sees it -- in
memory up to 100,000 octets, beyond that in a temporary file, with no limit -- so a client
could fill the disk with one POST (the whitehole page takes posts without a login).  Every
page reads a bounded prefix of the body and refuses more (``whitehole_page.MAX_FORM``,
``selfcheck_spam.FORM_LIMIT``, ``http.MAX_BODY``), all below ``MAX_BODY``: keeping only
that much changes no answer.  The rest is read and dropped.

Standards: RFC 9112 §6 (message body).
Security: at most ``MAX_BODY`` octets per request are kept, in memory or a temporary file.
"""

from __future__ import annotations

from twisted.web import server

MAX_BODY = 256 * 1024


class BoundedRequest(server.Request):
    # twisted.web's Request keeps every chunk (``handleContentChunk``) in the file made
    # by ``gotLength``; we keep the first MAX_BODY octets and drop the rest.
    def gotLength(self, length):
        self._body_left = MAX_BODY
        super().gotLength(None if length is None else min(length, MAX_BODY))

    def handleContentChunk(self, data):
        if self._body_left > 0:
            kept = data[:self._body_left]
            self._body_left -= len(kept)
            super().handleContentChunk(kept)
