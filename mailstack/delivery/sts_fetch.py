"""One MTA-STS policy fetch: ``GET https://mta-sts.<domain>/.well-known/mta-sts.txt``.

Why its own module: RFC 8461 §3.3 asks more of this request than a plain HTTP client
does -- a certificate valid for the policy host (PKIX), no redirects, no HTTP caching, a
bounded time and size -- and each of those is a line here.  Twisted's ``Agent`` makes the
request (it follows no redirect unless wrapped in ``RedirectAgent``, and caches nothing);
the connection goes to an address our own resolver gave (``dns.Resolver``), so the
fetch sees the DNS the queue sees, and TLS checks the name, not the address.
``twisted.web`` is imported only when a fetch happens: a server that never meets an
MTA-STS domain does not load the web stack (issue 16).

Standards: RFC 8461 §3.3 (HTTPS, certificate for ``mta-sts.<domain>``, 3xx not followed,
status 200, ``text/plain``), RFC 8460 §4.3.2.2 (which failure is which result-type).
Security: the policy host's certificate is verified against the configured CAs or the
system store (TLS 1.2 at least) for the host name we asked; the body is read to at most
MAX_POLICY octets and the whole fetch is cancelled after ``timeout`` seconds (network
time), so a slow or endless server costs one connection for that long; a redirect is a
failure.  A fetch failure never raises: it is a ``FetchFailed`` with its TLS-RPT
result-type, and the caller falls back on its cached policy (RFC 8461 §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer, endpoints, protocol, ssl
from twisted.python.failure import Failure

from mailstack import dns

MAX_POLICY = 64 * 1024            # RFC 8461 §3.3 suggests 64 KB
PATH = "/.well-known/mta-sts.txt"


@dataclass(frozen=True)
class FetchFailed:
    result_type: str              # sts-policy-fetch-error | sts-webpki-invalid
    reason: str


class _Pinned:
    """An endpoint factory for Agent: the resolved address, TLS for the host name."""

    def __init__(self, reactor, address: str, port: int, creator, timeout: float):
        self.reactor, self.address, self.port = reactor, address, port
        self.creator, self.timeout = creator, timeout

    def endpointForURI(self, uri):
        cls = endpoints.TCP6ClientEndpoint if ":" in self.address else endpoints.TCP4ClientEndpoint
        tcp = cls(self.reactor, self.address, self.port, timeout=self.timeout)
        return endpoints.wrapClientTLS(self.creator, tcp)


class _Bounded(protocol.Protocol):
    """Reads a response body, giving up past MAX_POLICY octets; ``done`` fires with it, and
    cancelling ``done`` (the fetch's timeout) drops the connection."""

    def __init__(self):
        self.parts, self.size = [], 0
        self.done = defer.Deferred(lambda _: self.transport and self.transport.stopProducing())

    def dataReceived(self, data):
        self.size += len(data)
        if self.size > MAX_POLICY:
            self.transport.stopProducing()
            if not self.done.called:
                self.done.errback(Failure(ValueError("policy larger than 64 KB")))
            return
        self.parts.append(data)

    def connectionLost(self, reason):
        if self.done.called:
            return
        from twisted.web.client import ResponseDone, PotentialDataLoss
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


@defer.inlineCallbacks
def fetch(reactor, resolver: dns.Resolver, domain: str, trust, *, port: int, timeout: float):
    """The policy text (str), or a ``FetchFailed``.  ``trust``: ``tls_check.TrustAnchors``."""
    host = f"mta-sts.{domain}"
    found = yield resolver.addresses(host)
    if not isinstance(found, dns.Found):
        return FetchFailed("sts-policy-fetch-error", f"no address for {host}")
    from twisted.web.client import Agent
    creator = ssl.optionsForClientTLS(host, trust.twisted_root(), extraCertificateOptions={
        "raiseMinimumTo": ssl.TLSVersion.TLSv1_2})
    agent = Agent.usingEndpointFactory(
        reactor, _Pinned(reactor, found.value[0], port, creator, timeout))
    suffix = "" if port == 443 else f":{port}"
    d = agent.request(b"GET", f"https://{host}{suffix}{PATH}".encode("ascii"))
    d.addCallback(_body)
    d.addTimeout(timeout, reactor)
    try:
        status, content_type, body = yield d
    except Exception as e:      # TLS, connection, timeout, size: all mean "no fresh policy"
        return _failed(host, e)
    if status != 200:
        return FetchFailed("sts-policy-fetch-error", f"{host} answered HTTP {status}")
    if content_type.split(b";")[0].strip().lower() != b"text/plain":
        return FetchFailed("sts-policy-fetch-error", f"{host} served no text/plain")
    return body.decode("utf-8", "replace")


def _body(response):
    content_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
    if response.code != 200:
        response.deliverBody(protocol.Protocol())      # discard it; the connection closes
        return response.code, content_type, b""
    reader = _Bounded()
    response.deliverBody(reader)
    return reader.done.addCallback(lambda body: (response.code, content_type, body))


def _failed(host: str, error: Exception) -> FetchFailed:
    """A failed request as TLS-RPT names it: a certificate problem is sts-webpki-invalid."""
    from twisted.web.client import ResponseNeverReceived
    causes = error.reasons if isinstance(error, ResponseNeverReceived) else [Failure(error)]
    for cause in causes:
        if cause.check(ssl.SSL.Error, ssl.VerificationError):
            return FetchFailed("sts-webpki-invalid", f"{host}: certificate not valid")
    return FetchFailed("sts-policy-fetch-error", f"{host}: {type(error).__name__}")
