"""Directory-harvest ("rumplestiltskin") firewall.

Why: a client that tries many addresses that do not exist is guessing our customers'
addresses to sell or spam them.  After ``harvest_threshold`` RCPTs to unknown users within
``harvest_window`` seconds (counted from the rejection log, so every process agrees), the
address is firewalled: its new connections are closed before the banner, so it learns
nothing more, and ``mailstack firewall export`` hands the list to the edge router.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.store import blocks, rejections

log = Logger(namespace="mailstack.policy.harvest")
UNKNOWN_USER_CHECK = "recipients"


class HarvestWatch:
    name = "harvest"

    def __init__(self, db, clock, settings, blocker):
        self.db, self.clock, self.settings, self.blocker = db, clock, settings, blocker

    @defer.inlineCallbacks
    def after_unknown_user(self, request):
        """Called once an unknown-user refusal is in the log; firewalls at the threshold."""
        now = clocks.now(self.clock)
        window = self.settings.harvest_window
        count = yield self.db.read(rejections.count_since, request.client_ip,
                                   UNKNOWN_USER_CHECK, now - timedelta(seconds=window))
        if count < self.settings.harvest_threshold:
            return None
        return (yield self.db.run(self._firewall, request.client_ip, count, window,
                                  request.recipient, now))

    def _firewall(self, conn, ip, count, window, last, now):
        if any(b.action == "firewall" for b in blocks.active_for(conn, ip, now)):
            return None
        block = self.blocker.add(
            conn, ip, action="firewall", source="harvest",
            reason=f"directory harvest: {count} RCPTs to unknown users in {window} s",
            evidence=f"{count} unknown-user refusals since {now - timedelta(seconds=window)}; "
                     f"last RCPT TO <{last}>", added_by="harvest", at=now)
        log.warn("firewalled {ip}: {reason} until {until}", ip=ip, reason=block.reason,
                 until=block.expires_at.isoformat())
        return block
