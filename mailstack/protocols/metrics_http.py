"""The Prometheus scrape endpoint: ``GET /metrics`` on a listener of its own.

Why a listener of its own (``protocol = "metrics"``, loopback unless configured): the
numbers say how busy the server is and which checks refuse whom; they are for the
operator's Prometheus, not for the customers who reach the autoconfig pages, so they are
never served on the public HTTP listener.  Being a listener like the others, it is bound
before privileges drop, counts in the start-up check (a busy port is exit 3) and takes
``tls = "implicit"`` when Prometheus scrapes across a network.

Why not ``prometheus_client.twisted.MetricsResource``: it renders synchronously, with no
hook to read the queue from the database first.  Here each scrape first asks for a fresh
measurement (``measure``: a Deferred, run off the reactor thread by the store; scrapes that
arrive meanwhile share it) and then renders the registry; a measurement that fails or
takes longer than ``MEASURE_TIMEOUT`` leaves the last values, so the counters are still
served while the database is down.

Standards: the Prometheus text exposition format 0.0.4; HTTP/1.1 (RFC 9110).
Security: read-only, one path, GET only; no request data reaches the output; errors get no
traceback.  It has no authentication: keep it on loopback or a management network (or put
TLS and a firewall in front of it), as Postfix's and Dovecot's exporters expect.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import pages, resource, server

from mailstack.metrics import CONTENT_TYPE

log = Logger(namespace="mailstack.metrics")
MEASURE_TIMEOUT = 5.0     # seconds; Prometheus's default scrape timeout is 10


class MetricsPage(resource.Resource):
    isLeaf = True

    def __init__(self, metrics, measure, reactor):
        """``measure()`` returns a Deferred that fires once the gauges it sets are fresh."""
        super().__init__()
        self.metrics, self.measure, self.reactor = metrics, measure, reactor
        self._waiting: list[defer.Deferred] = []

    def render_GET(self, request):
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = self._fresh()
        d.addCallback(lambda _: self._write(request, finished))
        d.addErrback(lambda f: log.failure("metrics scrape failed", f))
        return server.NOT_DONE_YET

    def _fresh(self):
        """A Deferred that fires (never fails) once a measurement has ended; scrapes that
        arrive while one runs wait for it instead of starting their own."""
        waiter = defer.Deferred()
        self._waiting.append(waiter)
        if len(self._waiting) == 1:
            d = defer.maybeDeferred(self.measure)
            d.addTimeout(MEASURE_TIMEOUT, self.reactor)
            d.addErrback(lambda f: log.warn("metrics: queue not measured: {error}",
                                            error=f.getErrorMessage()))
            d.addBoth(self._measured)
        return waiter

    def _measured(self, _):
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def _write(self, request, finished):
        if finished:                      # the scraper went away while we measured
            return
        request.setHeader(b"Content-Type", CONTENT_TYPE.encode())
        request.write(self.metrics.exposition())
        request.finish()


class Root(resource.Resource):
    """``/metrics`` only; everything else is 404."""

    def __init__(self, page: MetricsPage):
        super().__init__()
        self.putChild(b"metrics", page)

    def getChild(self, path, request):
        return pages.notFound()


def build_factory(metrics, measure, reactor):
    """The site of a metrics listener."""
    site = server.Site(Root(MetricsPage(metrics, measure, reactor)))
    site.displayTracebacks = False
    site.noisy = False
    site.log = lambda request: None       # no access-log line for every scrape
    return site
