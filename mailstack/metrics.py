"""What the server counts for Prometheus: mail in and out, logins, sessions, latencies.

Why: an operator needs to see a queue that grows, a login-failure spike or a slow disk
before the customers call (issue 15, item 17).  ``prometheus_client`` is the field's
standard library for this (the official Python client of the Prometheus project; Grafana,
Alertmanager and every hosted monitoring service read its text format), so we count with
it and serve its exposition format (``protocols/metrics_http.py``) rather than invent one.

How it stays cheap: each event is one counter increment (a dictionary lookup and an add
under the client's lock, no I/O) and never waits on anything, so counting from the reactor
thread blocks nothing; latencies are measured around work already running in a worker
thread.  Values that would need the database (the queue) are read when Prometheus scrapes,
off the reactor thread (``delivery/outbound.py``, ``OutboundQueue.measure``); the open
sessions are read from the connection limits' own counts at scrape time.

Each server has its own ``CollectorRegistry`` (not the library's global one), so tests can
build several and nothing registers twice.  Code that is given no metrics gets
``NO_METRICS``, which does nothing: unit tests and the CLI need no registry.

``prometheus_client`` is imported only when a ``Metrics`` is made: a server without a
``metrics`` listener does not load it (its 30 modules, issue 16).

Durations are measured with ``time.perf_counter``, only here: a duration on a clock that
never jumps, never business time (ARCHITECTURE C5; tests/unit/test_business_time.py).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A database transaction: most take a millisecond; SQLite's writer lock and a slow disk
# push them to seconds.
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# argon2 is tuned to ~40 ms (realm/hashing.py); legacy schemes are faster.
HASH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class NoMetrics:
    """Counts nothing: what every part is given unless the server serves metrics."""

    def accepted(self, listener: str) -> None:
        pass

    def refused(self, listener: str, check: str, verdict: str) -> None:
        pass

    def outbound(self, result: str) -> None:
        pass

    def login(self, protocol: str, result: str) -> None:
        pass

    def dnsbl(self, zone: str, result: str) -> None:
        pass

    def spam_scan(self, result: str) -> None:
        pass

    def spam_in_flight(self, now: int, peak: int) -> None:
        pass

    def spam_learn(self, result: str) -> None:
        pass

    def queue(self, recipients: int, oldest_age: float) -> None:
        pass

    def sessions_from(self, open_by_protocol: Callable[[], Mapping[str, int]]) -> None:
        pass

    def db_timer(self, kind: str):
        return contextlib.nullcontext()

    def hash_timer(self, operation: str):
        return contextlib.nullcontext()


NO_METRICS = NoMetrics()


class Metrics(NoMetrics):
    """The server's counters, gauges and histograms, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        from prometheus_client import (CollectorRegistry, Counter, GCCollector, Gauge,
                                       Histogram, ProcessCollector)

        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)        # open file descriptors, memory, CPU
        GCCollector(registry=r)
        self._accepted = Counter(
            "mailstack_messages_accepted", "Messages accepted over SMTP (250 after the COMMIT)",
            ["listener"], registry=r)
        self._refused = Counter(
            "mailstack_smtp_refused", "SMTP commands refused by a policy check",
            ["listener", "check", "verdict"], registry=r)
        self._outbound = Counter(
            "mailstack_outbound_recipients", "Outbound delivery attempts per recipient, by "
            "result: delivered, deferred (to retry) or bounced", ["result"], registry=r)
        self._logins = Counter(
            "mailstack_logins", "Login attempts by protocol and result (ok or the reason)",
            ["protocol", "result"], registry=r)
        self._dnsbl = Counter(
            "mailstack_dnsbl_lookups", "DNSBL lookups by zone and result (listed, clean, "
            "failed)", ["zone", "result"], registry=r)
        self._spam = Counter(
            "mailstack_spam_scans", "Port 25 messages scanned by rspamd, by its action "
            "(no_action, add_header, reject, ...), or failed (rspamd down or slow: accepted "
            "unchecked) or too_large (not scanned); submitted ones (with [spam] submission) "
            "as outbound_<result>", ["result"], registry=r)
        self._spam_in_flight = Gauge(
            "mailstack_spam_scans_in_flight", "rspamd scans under way now", registry=r)
        self._spam_peak = Gauge(
            "mailstack_spam_scans_in_flight_peak", "Most rspamd scans under way at once "
            "since the start (scans of several sessions overlap)", registry=r)
        self._spam_learns = Counter(
            "mailstack_spam_learns", "Learns sent to rspamd's controller from the customers' "
            "Junk moves, by result: learned, already_learned, refused (rspamd never will), "
            "retry (rspamd down, slow or failing) or failed (given up)", ["result"],
            registry=r)
        self._queue_size = Gauge(
            "mailstack_queue_recipients", "Recipients waiting in the outbound queue",
            registry=r)
        self._queue_age = Gauge(
            "mailstack_queue_oldest_age_seconds", "Age of the oldest message waiting in the "
            "outbound queue (0 when empty)", registry=r)
        self._db = Histogram(
            "mailstack_db_transaction_seconds", "Database transactions (read or write), "
            "measured in the worker thread", ["kind"], buckets=DB_BUCKETS, registry=r)
        self._hash = Histogram(
            "mailstack_password_hash_seconds", "Password hashing and verification, "
            "measured in the hashing thread", ["operation"], buckets=HASH_BUCKETS, registry=r)
        self._sessions = _Sessions()
        r.register(self._sessions)

    def accepted(self, listener: str) -> None:
        self._accepted.labels(listener).inc()

    def refused(self, listener: str, check: str, verdict: str) -> None:
        self._refused.labels(listener, check, verdict).inc()

    def outbound(self, result: str) -> None:
        self._outbound.labels(result).inc()

    def login(self, protocol: str, result: str) -> None:
        self._logins.labels(protocol, result).inc()

    def dnsbl(self, zone: str, result: str) -> None:
        self._dnsbl.labels(zone, result).inc()

    def spam_scan(self, result: str) -> None:
        self._spam.labels(result).inc()

    def spam_in_flight(self, now: int, peak: int) -> None:
        self._spam_in_flight.set(now)
        self._spam_peak.set(peak)

    def spam_learn(self, result: str) -> None:
        self._spam_learns.labels(result).inc()

    def queue(self, recipients: int, oldest_age: float) -> None:
        self._queue_size.set(recipients)
        self._queue_age.set(max(0.0, oldest_age))

    def sessions_from(self, open_by_protocol: Callable[[], Mapping[str, int]]) -> None:
        """Read the open sessions from ``open_by_protocol()`` at every scrape."""
        self._sessions.source = open_by_protocol

    def db_timer(self, kind: str):
        return _timer(self._db.labels(kind))

    def hash_timer(self, operation: str):
        return _timer(self._hash.labels(operation))

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format (``CONTENT_TYPE``)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


@contextlib.contextmanager
def _timer(histogram):
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)


class _Sessions:
    """A collector: the sessions open now, per protocol, read from the connection limits
    when scraped (an in-memory dictionary: nothing to wait for)."""

    def __init__(self):
        self.source: Callable[[], Mapping[str, int]] = dict

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("mailstack_sessions_open", "Client connections open now, "
                                   "per protocol", labels=["protocol"])
        for protocol, count in sorted(dict(self.source()).items()):
            family.add_metric([protocol], count)
        yield family
