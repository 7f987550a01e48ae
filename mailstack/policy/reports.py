"""Spam forwarded by a customer to the report address becomes a complaint against its source.

Why after delivery: the report is first delivered like any message (the abuse desk reads
it); then the originating IP is read from the first Received header our own MX wrote
(``complaints.originating_ip``) and counted, and enough complaints block it.  Only the start
of the message is read: the forwarded spam's headers are near its top, and a large
attachment need not be.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.policy import complaints

log = Logger(namespace="mailstack.policy.reports")
REPORT_LIMIT = 1024 * 1024   # octets of a forwarded spam read for its Received headers


class ReportAddress:
    def __init__(self, db, clock, settings, blocker, hostname: str):
        self.db, self.clock, self.settings = db, clock, settings
        self.blocker, self.hostname = blocker, hostname

    def addressed(self, recipients) -> bool:
        report = self.settings.report_address
        return bool(report) and any(r.address == report for r in recipients)

    @defer.inlineCallbacks
    def take(self, request, spool):
        """Register the complaint a report to the address makes, if the message is one."""
        if not self.addressed(request.recipients):
            return None
        account = request.authenticated_as
        reporter = (account.address if account is not None else request.sender) or "unknown"
        result = yield self.db.run(_report_from_spool, spool, clocks.now(self.clock), reporter,
                                   self.hostname, self.settings, self.blocker)
        if result is None:
            log.info("{session}: report from {who}: no originating IP found",
                     session=request.session, who=reporter)
            return None
        ip, count, block = result
        log.info("{session}: report from {who}: complaint against {ip} ({n} in window){b}",
                 session=request.session, who=reporter, ip=ip, n=count,
                 b=" → blocked" if block else "")
        return result


def _report_from_spool(conn, spool, *args):
    """complaints.from_report over the start of the report (a store function)."""
    return complaints.from_report(conn, spool.head(REPORT_LIMIT), *args)
