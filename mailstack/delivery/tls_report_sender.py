"""Sends yesterday's TLS-RPT reports: once a UTC day has ended, each domain whose sessions
were counted gets its report at the ``mailto:`` rua its ``_smtp._tls`` record publishes.

Why a repeating service on the business clock: the day ends by the injected clock (tests
move it), and a report is mail like any other -- queued in our outbound queue in the
transaction that forgets the day's counts, DKIM-signed by our host name's keys, retried
and bounced as any message.  A node that was down at midnight sends the report when it
next looks (``[mta_sts] report_interval``); counts of a domain that publishes no rua are
dropped with its day.

Standards: RFC 8460 §3 (the record), §4.1 (one report per policy domain and day), §5.3
(sent by mail, DKIM-signed, from a postmaster address).
Security: the report goes only to the addresses the domain's own record names; a DNS
failure keeps the counts for the next look, for at most KEEP_DAYS days, so a domain
whose DNS stays broken cannot make the table grow without end.  The sender is the null
path: a report that bounces produces no bounce of its own.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks, dns
from mailstack.delivery import tls_report
from mailstack.repeating import Repeating
from mailstack.store import outbound_tls, queue

log = Logger(namespace="mailstack.delivery")
KEEP_DAYS = 3


class TLSReportSender(Repeating):
    name = "tls-reports"
    tick_at_start = True

    def __init__(self, db, clock, resolver: dns.Resolver, signer, hostname: str, interval: float,
                 on_queued):
        """``signer``: DKIM-signs the reports (as bounces are); ``on_queued``: the queue's
        ``kick``."""
        self.db, self.timer, self.resolver, self.signer = db, clock, resolver, signer
        self.hostname, self.interval, self.on_queued = hostname, interval, on_queued
        self._busy = False

    def tick(self):
        if self._busy:
            return None
        self._busy = True
        d = self.send_due()
        d.addErrback(lambda f: log.failure("TLS reports not sent", f))
        d.addBoth(lambda _: setattr(self, "_busy", False))
        return None         # the loop does not wait for DNS

    @defer.inlineCallbacks
    def send_due(self):
        """Every report of a finished day; how many were queued."""
        now = clocks.now(self.timer)
        due = yield self.db.read(outbound_tls.days_before, now.strftime("%Y-%m-%d"))
        queued = 0
        for domain, day in due:
            found = yield self.resolver.txt(f"_smtp._tls.{domain}")
            stale = day < (now - timedelta(days=KEEP_DAYS)).strftime("%Y-%m-%d")
            if isinstance(found, dns.TempFail) and not stale:
                continue                       # ask again at the next look
            rua = tls_report.rua_addresses(found.value) if isinstance(found, dns.Found) else []
            yield self.signer.ready()
            sent = yield self.db.run(self._queue_report, domain, day, rua, now)
            queued += sent
        if queued:
            self.on_queued()
        return queued

    def _queue_report(self, conn, domain: str, day: str, rua, now) -> int:
        """One transaction: the report queued (if there is anywhere to send it) and the
        day's counts forgotten."""
        counted = outbound_tls.counted(conn, domain, day)
        if not outbound_tls.forget(conn, domain, day) or not rua:
            return 0            # (none left: another node sharing the store reported them)
        report_id = f"{day}.{domain}@{self.hostname}"
        report = tls_report.report_json(
            domain, day, counted, outbound_tls.cached_policy(conn, domain),
            organization=self.hostname, contact=f"postmaster@{self.hostname}",
            report_id=report_id)
        message = tls_report.report_message(self.hostname, domain, day, report, rua, now)
        message = self.signer.signatures(message, now) + message
        queue.enqueue(conn, "", rua, message, now, queue_id=f"tlsrpt-{day}-{domain}"[:64])
        log.info("TLS report of {day} for {domain} queued to {rua}", day=day, domain=domain,
                 rua=", ".join(rua))
        return 1
