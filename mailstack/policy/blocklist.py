"""The local block list: addresses our own evidence condemned (traps, complaints, harvest,
the abuse desk).  Read from the database on every connection, so a change made with
``mailstack block`` applies at once, in every process.

Also the one place that *adds* automatic blocks, with the expiry rule: ``block_duration``
(or the source's own ``*_block_duration``), multiplied by ``repeat_factor`` for every earlier block of the same address in the last
``max_block_duration``, capped at ``max_block_duration``.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.policy.decision import DUNNO, Decision, Verdict, reject
from mailstack.store import blocks
from mailstack.store.errors import StoreUnavailable


class LocallyBlocked:
    name = "blocklist"

    def __init__(self, db, clock):
        self.db, self.clock = db, clock

    @defer.inlineCallbacks
    def check(self, request):
        found = yield self.db.read(blocks.active_for, request.client_ip, clocks.now(self.clock))
        if not found:
            return DUNNO
        block = found[0]
        return reject(self.name, f"{block.source}: {block.reason}",
                      replies.LOCALLY_BLOCKED.format(ip=request.client_ip, reason=block.reason))


class Firewalled:
    """At connect: an address firewalled (directory harvest, the abuse desk) is dropped
    before the banner, unless the whitelist vouches for it.  A store outage fails open here:
    the client checks, delivered at RCPT, will defer instead."""

    name = "firewall"

    def __init__(self, db, clock, whitelist):
        self.db, self.clock, self.whitelist = db, clock, whitelist

    @defer.inlineCallbacks
    def check(self, request):
        try:
            found = yield self.db.read(blocks.active_for, request.client_ip,
                                       clocks.now(self.clock))
        except StoreUnavailable:
            return DUNNO
        if not any(b.action == "firewall" for b in found):
            return DUNNO
        listed = yield self.whitelist.check(request)
        if listed.verdict is Verdict.PERMIT:
            return DUNNO
        return Decision(Verdict.REJECT, self.name, "firewalled")


class Blocker:
    """Adds expiring blocks with the repeat-offender rule (used by checks and the CLI)."""

    def __init__(self, settings):
        self.settings = settings

    def duration(self, conn, network: str, at, source: str) -> timedelta:
        s = self.settings
        cap = timedelta(seconds=s.max_block_duration)
        earlier = blocks.earlier_blocks(conn, blocks.network_of(network), at - cap)
        base = getattr(s, f"{source}_block_duration", 0) or s.block_duration
        seconds = base * (s.repeat_factor ** earlier)
        return min(timedelta(seconds=seconds), cap)

    def add(self, conn, network: str, *, action: str, source: str, reason: str, evidence: str,
            added_by: str, at, duration: timedelta | None = None):
        """A store function: run it inside ``db.run``."""
        if duration is None:
            duration = self.duration(conn, network, at, source)
        return blocks.add(conn, network, action=action, source=source, reason=reason,
                          evidence=evidence, added_by=added_by, at=at, duration=duration)
