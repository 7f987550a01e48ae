"""Notices to legacy customers, written for each of them, and the warning period.

Why in the INBOX and not sent through the queue: the customer's mail program is exactly
the thing that may stop working; a message already in their mailbox reaches them however
they read it.  ``mailstack legacy notify`` sends one per account and phase; during the
last ``*_warning_days`` before the sunset or the cutover, every use of the old way still
works but brings one notice a day (and a log line), so users learn of the change from
their own mail before it stops.
"""

from __future__ import annotations

import string
import uuid
from datetime import timedelta
from email.utils import format_datetime
from importlib.resources import files

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.policy import client_settings
from mailstack.store import legacy

log = Logger(namespace="mailstack.policy.notices")


def default_template(phase: str) -> str:
    return files("mailstack").joinpath(f"data/notice-{phase}.txt").read_text("utf-8")


def phase_date(config, phase: str):
    return config.pop_before_smtp.sunset if phase == "sunset" else config.auth.tls_cutover


def values(config, address: str, date, last_seen, client_ips, protocols, programs=()) -> dict:
    setup = config.client_setup
    programs = sorted(p for p in programs if p)
    return {"address": address, "date": date.strftime("%d %B %Y"),
            "program": f" using {', '.join(programs)}" if programs else "",
            "last_seen": last_seen.strftime("%d %B %Y %H:%M UTC"),
            "client_ips": ", ".join(sorted(client_ips)), "protocols": ", ".join(sorted(protocols)),
            "host": client_settings.hostname(config), "help_url": config.submission.help_url,
            "submissions_port": setup.submissions_port, "submission_port": setup.submission_port,
            "imaps_port": setup.imaps_port, "pop3s_port": setup.pop3s_port}


def render(template: str, fields: dict, address: str, now, hostname: str) -> bytes:
    text = string.Template(template).safe_substitute(fields)
    first, _, body = text.partition("\n")
    subject = first.removeprefix("Subject:").strip() if first.startswith("Subject:") else "Notice"
    body = body if first.startswith("Subject:") else text
    domain = address.rpartition("@")[2]
    head = [f'From: "Mail team" <postmaster@{domain}>', f"To: <{address}>", f"Subject: {subject}",
            f"Date: {format_datetime(now)}", f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
            "Auto-Submitted: auto-generated", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return ("\r\n".join(head + [""] + body.strip("\n").split("\n")) + "\r\n").encode("utf-8")


class Warner:
    """Daily warnings during the last days before the sunset and the cutover."""

    def __init__(self, config, db, clock):
        # The whole config: a notice names the dates, ports, host and help page of several
        # sections (``values``), as ``mailstack legacy notify`` does.
        self.config, self.db, self.clock = config, db, clock

    def in_warning(self, phase: str, now) -> bool:
        date = phase_date(self.config, phase)
        days = (self.config.migration.sunset_warning_days if phase == "sunset"
                else self.config.migration.cutover_warning_days)
        return date is not None and days > 0 and date - timedelta(days=days) <= now < date

    @defer.inlineCallbacks
    def warn(self, account, phase: str, client_ip: str, protocol: str):
        now = clocks.now(self.clock)
        if not self.in_warning(phase, now):
            return False
        date = phase_date(self.config, phase)
        message = render(default_template(phase),
                         values(self.config, account.address, date, now, {client_ip}, {protocol}),
                         account.address, now, self.config.server.hostname)
        sent = yield self.db.run(legacy.deliver_daily_notice, account.id, f"{phase}-warning",
                                 message, now)
        if sent:
            log.warn("{phase} warning: {user} still uses the old way ({protocol} from {ip}); "
                     "notice put into the INBOX", phase=phase, user=account.address,
                     protocol=protocol, ip=client_ip)
        return sent

    def after_login(self, credentials, account):
        """The realm's hook: a password that crossed without TLS during the warning period."""
        if credentials.tls or not self.in_warning("cutover", clocks.now(self.clock)):
            return defer.succeed(False)    # every login asks: answered without a coroutine
        return self.warn(account, "cutover", credentials.client_ip, credentials.protocol)
