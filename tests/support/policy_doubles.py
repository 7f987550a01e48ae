"""Doubles for unit-testing the policy and the SMTP session without a database or a socket.

``FakeStore`` stands in for ``store.db.Database`` as the policy uses it: ``read(fn, ...)``
and ``run(fn, ...)`` with exactly the store functions the checks call, each kept in memory
with the same meaning as its SQL (an active block covers an address until it expires, a
window is the newest successful login since a moment, ...).  A store function it does not
know fails the test: it is a double of the store, not a mock that answers whatever is
asked.  Policy functions written against a connection (``Blocker.add``, the harvest
firewall, complaint reports) run with the store functions they call pointed at the same
memory for the duration of the call.  ``down = True`` makes every call a StoreUnavailable.

``FakeResolver`` answers the four ``dns.Resolver`` calls from tables; ``FakePolicy``
implements ``policy.contract.SMTPPolicy`` for the session tests.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from twisted.internet import defer

from mailstack import dns
from mailstack.policy.client_state import ClientState
from mailstack.policy.outcome import Accepted, Outcome
from mailstack.realm.credentials import AccountRef
from mailstack.store import blocks, complaints, directory
from mailstack.store import logins, rejections, routes, submissions
from mailstack.store import whitelist
from mailstack.store.errors import StoreUnavailable

START = datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc)


class _NoConnection:
    """What a connection-taking function gets: any SQL it tries fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"policy code used the connection directly ({name}); "
                             "FakeStore does not know that store call")


@dataclass
class FakeStore:
    hosted: set = field(default_factory=lambda: {"example.test"})
    accounts: dict = field(default_factory=dict)       # address -> (account id, room)
    aliases: dict = field(default_factory=dict)        # address -> tuple of account ids
    send_as: dict = field(default_factory=dict)        # account id -> set of addresses | "any"
    blocks: list = field(default_factory=list)
    whitelist: list = field(default_factory=list)
    logins: list = field(default_factory=list)
    submissions: list = field(default_factory=list)    # (account id, at, recipients)
    rejections: list = field(default_factory=list)
    complaints: list = field(default_factory=list)
    down: bool = False
    calls: list = field(default_factory=list)

    # --- the Database interface ------------------------------------------------------------

    def read(self, fn, *args, **kwargs):
        return self._call(fn, args, kwargs)

    def run(self, fn, *args, **kwargs):
        return self._call(fn, args, kwargs)

    def _call(self, fn, args, kwargs):
        if self.down:
            return defer.fail(StoreUnavailable("the test's store is down"))
        self.calls.append(getattr(fn, "__name__", repr(fn)))
        own = self._functions().get(fn)
        if own is not None:
            return defer.succeed(own(*args, **kwargs))
        with self._patched():
            return defer.succeed(fn(_NoConnection(), *args, **kwargs))

    def _functions(self):
        return {
            blocks.active_for: self.active_blocks, blocks.earlier_blocks: self.earlier_blocks,
            blocks.add: self.add_block, whitelist.all_entries: lambda: list(self.whitelist),
            logins.last_success_from: self.last_success_from,
            routes.route: self.route, directory.may_send_as: self.may_send_as,
            submissions.recipients_since: self.recipients_since,
            rejections.record: self.rejections.append,
            rejections.count_since: self.count_rejections,
            complaints.add: self.add_complaint, complaints.count_since: self.count_complaints,
        }

    @contextlib.contextmanager
    def _patched(self):
        """The store functions that policy code calls with a connection, pointed here."""
        names = [(blocks, "active_for"), (blocks, "earlier_blocks"), (blocks, "add"),
                 (complaints, "add"), (complaints, "count_since")]
        saved = [(module, name, getattr(module, name)) for module, name in names]
        own = self._functions()
        try:
            for module, name, original in saved:
                setattr(module, name, _without_conn(own[original]))
            yield
        finally:
            for module, name, original in saved:
                setattr(module, name, original)

    # --- in-memory store functions -------------------------------------------------------

    def active_blocks(self, ip, at):
        address = ipaddress.ip_address(ip)
        found = [b for b in self.blocks
                 if b.expires_at > at and address in ipaddress.ip_network(b.network)]
        return sorted(found, key=lambda b: b.expires_at, reverse=True)

    def earlier_blocks(self, network, since):
        return sum(1 for b in self.blocks if b.network == network and b.created_at >= since)

    def add_block(self, network, *, action, source, reason, evidence, added_by, at, duration):
        block = blocks.Block(len(self.blocks) + 1, blocks.network_of(network), action, source,
                             reason[:255], evidence, added_by[:64], at, at + duration)
        self.blocks.append(block)
        return block

    def last_success_from(self, client_ip, since, protocols):
        found = [e for e in self.logins if e.client_ip == client_ip and e.at >= since
                 and e.success and e.protocol in protocols and e.account_id is not None]
        return max(found, key=lambda e: e.at) if found else None

    def route(self, address):
        if address.rpartition("@")[2] not in self.hosted:
            return routes.Route(False)
        if address in self.aliases:
            return routes.Route(True, routes.Recipients(self.aliases[address]))
        if address not in self.accounts:
            return routes.Route(True)
        account_id, room = self.accounts[address]
        return routes.Route(True, routes.Recipients((account_id,)), room)

    def may_send_as(self, account_id, address):
        allowed = self.send_as.get(account_id, set())
        return allowed == "any" or address in allowed

    def recipients_since(self, account_id, since):
        return sum(n for a, at, n in self.submissions if a == account_id and at >= since)

    def count_rejections(self, client_ip, check_name, since):
        return sum(1 for r in self.rejections
                   if r.client_ip == client_ip and r.check_name == check_name and r.at >= since)

    def add_complaint(self, complaint):
        self.complaints.append(complaint)
        return self.count_complaints(complaint.ip, None)

    def count_complaints(self, ip, since):
        return sum(1 for c in self.complaints if c.ip == ip and (since is None or c.at >= since))

    # --- arranging a test ------------------------------------------------------------------

    def add_account(self, address, account_id, room=None, sends_as=()):
        self.accounts[address] = (account_id, room)
        self.send_as[account_id] = {address, *sends_as}
        return AccountRef(account_id, address)

    def block(self, ip, at, *, action="reject", source="manual", reason="test",
              duration=timedelta(days=1)):
        return self.add_block(ip, action=action, source=source, reason=reason, evidence="",
                              added_by="test", at=at, duration=duration)

    def login(self, ip, account, at, *, protocol="pop3", tls=True, success=True):
        self.logins.append(logins.LoginEvent(at, account.address, protocol, ip, tls, "USER",
                                             success, account.id))

    def allow(self, entry, reason="partner"):
        text, kind = whitelist.parse_entry(entry)
        self.whitelist.append(whitelist.Entry(text, kind, reason, "test", START))


def _without_conn(function):
    return lambda conn, *args, **kwargs: function(*args, **kwargs)


class FakeResolver:
    """DNS from tables: ``ptr``/``confirmed`` map an IP to a name, ``listed`` maps
    (ip, zone) to (codes, txt); anything else is NotFound, ``tempfail`` zones fail."""

    def __init__(self, ptr=None, confirmed=None, listed=None, tempfail=()):
        self.ptr_names, self.confirmed = ptr or {}, confirmed or {}
        self.listed, self.tempfail = listed or {}, set(tempfail)
        self.asked = []

    def ptr(self, ip):
        self.asked.append(("ptr", ip))
        if "ptr" in self.tempfail:
            return defer.succeed(dns.TempFail("timeout"))
        name = self.ptr_names.get(ip)
        return defer.succeed(dns.Found([name]) if name else dns.NotFound())

    def forward_confirmed_ptr(self, ip):
        self.asked.append(("fcrdns", ip))
        if "ptr" in self.tempfail:
            return defer.succeed(dns.TempFail("timeout"))
        name = self.confirmed.get(ip)
        return defer.succeed(dns.Found(name) if name else dns.NotFound())

    def dnsbl(self, ip, zone):
        self.asked.append(("dnsbl", ip, zone))
        if zone in self.tempfail:
            return defer.succeed(dns.TempFail("timeout"))
        found = self.listed.get((ip, zone))
        return defer.succeed(dns.Found(found) if found else dns.NotFound())


class FakePolicy:
    """``policy.contract.SMTPPolicy`` for session tests: answers from ``refuse``
    (stage -> Reply, or a function of the request returning one), records every request,
    and ``hold`` makes a stage answer only when the test fires its Deferred."""

    auth_enabled = False

    def __init__(self, refuse=None, close=False):
        self.refuse = dict(refuse or {})
        self.close = close
        self.requests = []
        self.held = {}
        self.hold = set()
        self.delivered = []

    def postmaster_domain(self):
        return "example.test"

    def _answer(self, stage, request, **accepted):
        self.requests.append(request)
        reply = self.refuse.get(stage)
        if callable(reply):
            reply = reply(request)
        outcome = Outcome(reply=reply) if reply is not None else Outcome(**accepted)
        if stage in self.hold:
            d = self.held[stage] = defer.Deferred()
            return d.addCallback(lambda _: outcome)
        return defer.succeed(outcome)

    def connect(self, request):
        self.requests.append(request)
        self.client = ClientState()
        return defer.succeed(Outcome(close=self.close, client=self.client))

    def mail(self, request):
        return self._answer("mail", request)

    def rcpt(self, request):
        return self._answer("rcpt", request, accepted=Accepted(request.recipient, (1,)))

    def data(self, request):
        return self._answer("data", request)

    def after_delivery(self, request, spool):
        self.delivered.append(request)
        return defer.succeed(None)


# --- helpers for tests whose Deferreds all fire at once ---------------------------------------

def fired(d):
    """The result of a Deferred that has already fired (the doubles answer at once)."""
    results = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    result = results[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def clock_at(moment=START):
    from twisted.internet import task
    clock = task.Clock()
    clock.advance(moment.timestamp())
    return clock


def settings(**sections):
    """A validated Config from TOML-shaped sections, as ``config.load`` would give."""
    from mailstack import config
    return config.from_dict(sections)


def smtp_request(stage="rcpt", **facts):
    from mailstack.policy.request import SMTPRequest
    facts.setdefault("session", "S1")
    facts.setdefault("client_ip", "192.0.2.7")
    facts.setdefault("port", "smtp")
    return SMTPRequest(stage=stage, **facts)
