"""twisted.web requests for unit tests of the HTTP listener's resources (protocols/http.py,
protocols/selfcheck.py): a ``DummyRequest`` with what those resources read -- the path, the
query arguments, a POST body, TLS or not, Basic credentials, the Host name -- and a
``render`` that drives a resource to its finished answer.

Why not ``DummyRequest`` alone: it has no ``path``, ``content``, ``isSecure`` or
``getUser``/``getPassword``.  No socket: the resource runs against the inline store of
``tests/support/sessions.py``, so its Deferreds have fired when ``render`` returns.
"""

from __future__ import annotations

import dataclasses
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

from twisted.internet.address import IPv4Address
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

CLIENT_IP = "192.0.2.10"


class WebRequest(DummyRequest):
    def __init__(self, target: str, *, method: bytes = b"GET", body: bytes = b"",
                 secure: bool = True, user: str = "", password: str = "",
                 host: bytes = b"mail.example.test"):
        parts = urlsplit(target)
        super().__init__(parts.path.encode().split(b"/")[1:])
        self.method = method
        self.path = parts.path.encode("latin-1")
        self.uri = target.encode("latin-1")
        self.args = {k.encode(): [v.encode() for v in vs]
                     for k, vs in parse_qs(parts.query, keep_blank_values=True).items()}
        self.content = BytesIO(body)
        self.secure, self.user, self.password = secure, user, password
        self.client = IPv4Address("TCP", CLIENT_IP, 50000)
        self._host = host

    def isSecure(self):
        return self.secure

    def getUser(self):
        return self.user.encode()

    def getPassword(self):
        return self.password.encode()

    def getRequestHostname(self):
        return self._host


@dataclasses.dataclass
class Answer:
    code: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def render(resource, request: WebRequest, settle=lambda: None) -> Answer:
    """The answer ``resource`` gives ``request``, once everything it waits on has run."""
    if request.method == b"POST":
        result = resource.render_POST(request)
    else:
        result = resource.render_GET(request)
    settle()
    if result is server.NOT_DONE_YET:
        assert request.finished == 1, "the resource never finished its answer"
        body = b"".join(request.written)
    else:
        body = result
    headers = {name.decode().lower(): values[-1].decode()
               for name, values in request.responseHeaders.getAllRawHeaders()}
    return Answer(request.responseCode or 200, headers, body)
