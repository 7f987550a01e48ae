"""A port's policy end to end, without a socket: the MX and submission tables run by
``PortPolicy`` against the fake store, DNS and clock.  Each test is one rule an operator
or the support desk relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstack import replies
from mailstack.policy import mx, submission
from mailstack.policy.outcome import Accepted
from mailstack.policy.stages import Chain

from tests.support.policy_doubles import (
    START, FakeResolver, FakeStore, clock_at, fired, settings, smtp_request,
)

CLIENT, LISTED, CUSTOMER = "192.0.2.7", "203.0.113.66", "198.51.100.20"
BL = {(LISTED, "bl.test"): (["127.0.0.2"], "spam source")}


class Warner:
    def __init__(self):
        self.warned = []

    def warn(self, account, kind, ip, how):
        from twisted.internet import defer
        self.warned.append((account.address, kind, ip, how))
        return defer.succeed(None)


class Port:
    """One port's policy and its doubles; ``connect`` gives the ClientState a session keeps."""

    def __init__(self, build=mx.port_policy, mx_relay="never", listed=BL, **sections):
        self.store, self.clock, self.warner = FakeStore(), clock_at(), Warner()
        self.resolver = FakeResolver(listed=listed)
        sections.setdefault("antispam", {})
        sections["antispam"] = {"require_ptr": False, "dnsbl": [{"zone": "bl.test"}],
                                "trusted_networks": ["10.0.0.0/8"], "spam_traps":
                                ["trap@example.test"], "harvest_threshold": 2,
                                "report_address": "abuse@example.test", **sections["antispam"]}
        sections.setdefault("migration", {"customer_networks": ["198.51.100.0/24"]})
        sections.setdefault("pop_before_smtp", {"enabled": True, "window": 600})
        sections["smtp"] = {"mx_relay": mx_relay}
        self.config = settings(**sections)
        self.policy = build(self.store, self.clock, self.resolver, self.config, self.warner)
        self.ann = self.store.add_account("ann@example.test", 1)
        self.store.add_account("bob@example.test", 2, room=1000)

    def connect(self, ip=CLIENT):
        return fired(self.policy.connect(smtp_request("connect", client_ip=ip)))

    def mail(self, ip=CLIENT, sender="ann@example.test", account=None):
        state = self.connect(ip).client
        request = smtp_request("mail", client_ip=ip, client=state, sender=sender,
                               authenticated_as=account)
        return state, fired(self.policy.mail(request))

    def rcpt(self, address, ip=CLIENT, state=None, account=None, sender="s@remote.test",
             recipients=()):
        state = state if state is not None else self.connect(ip).client
        return fired(self.policy.rcpt(smtp_request(
            "rcpt", client_ip=ip, client=state, sender=sender, recipient=address,
            authenticated_as=account, recipients=recipients)))

    def window(self, ip):
        self.store.login(ip, self.ann, START - timedelta(seconds=60))


# --- connect ------------------------------------------------------------------------------

def test_a_trusted_network_is_not_checked_and_dns_is_not_asked():
    port = Port()
    outcome = port.connect("10.1.2.3")
    assert not outcome.refused and not outcome.client.checked
    assert port.rcpt("bob@example.test", "10.1.2.3").accepted is not None
    assert port.resolver.asked == []


def test_a_firewalled_address_is_dropped_before_the_banner_unless_whitelisted():
    port = Port()
    port.store.block(CLIENT, START, action="firewall")
    outcome = port.connect()
    assert outcome.close and outcome.reply is None and outcome.decision.check == "firewall"
    port.store.allow(CLIENT)
    assert not port.connect().close


def test_a_failing_connect_check_closes_with_421():
    port = Port()
    port.policy.tables = type(port.policy.tables)(**{
        **port.policy.tables.__dict__, "connect": Chain("connect", [Broken()])})
    outcome = port.connect()
    assert outcome.close and outcome.reply == replies.TEMPORARY_CLOSE.format(
        host="mail.example.test")


class Broken:
    name = "broken"

    def check(self, request):
        raise RuntimeError("bug")


# --- the whitelist: skips the DNSBL, never opens relay ------------------------------------

def test_a_whitelisted_ip_skips_the_dnsbl():
    port = Port()
    port.store.allow(LISTED)
    outcome = port.rcpt("bob@example.test", LISTED)
    assert outcome.reply is None and outcome.accepted.account_ids == (2,)
    assert not [a for a in port.resolver.asked if a[0] == "dnsbl"]


@pytest.mark.parametrize("mx_relay", ["never", "authenticated", "customers"])
def test_a_whitelisted_ip_can_never_open_relay(mx_relay):
    port = Port(mx_relay=mx_relay)
    port.store.allow(CLIENT)
    port.store.allow(CUSTOMER)
    for ip in (CLIENT, CUSTOMER):
        outcome = port.rcpt("x@remote.test", ip)
        assert outcome.reply.code == 554 and "Relay access denied" in outcome.reply.text
        assert outcome.decision.check == "relay"


def test_a_listed_client_is_refused_at_rcpt_with_from_and_to_in_the_log():
    port = Port()
    outcome = port.rcpt("bob@example.test", LISTED)
    assert outcome.reply.code == 554 and "bl.test; spam source" in outcome.reply.text
    (row,) = port.store.rejections
    assert (row.stage, row.check_name, row.mail_from, row.rcpt_to) == (
        "connect", "dnsbl", "s@remote.test", "bob@example.test")
    assert f"(ref {row.ref})" in outcome.reply.text and row.reply == str(outcome.reply)


def test_relay_is_refused_before_the_client_verdict():
    outcome = Port().rcpt("x@remote.test", LISTED)
    assert outcome.decision.check == "relay"


# --- who relays on port 25 (issue 14: the setting, and the bug it fixes) ------------------

# mx_relay, client IP, live POP window?, AUTH login? -> RCPT to a remote domain
@pytest.mark.parametrize("mx_relay, ip, window, auth, relays", [
    ("never", CUSTOMER, True, False, False),          # the bug: this relayed before
    ("never", CLIENT, True, False, False),
    ("authenticated", CUSTOMER, True, False, False),   # a window is not a login
    ("authenticated", CUSTOMER, False, True, True),
    ("customers", CUSTOMER, True, False, True),
    ("customers", CUSTOMER, False, False, False),      # no window
    ("customers", CLIENT, True, False, False),         # not a customer network
    ("customers", CLIENT, False, True, True),
])
def test_who_relays_on_port_25(mx_relay, ip, window, auth, relays):
    port = Port(mx_relay=mx_relay)
    if window:
        port.window(ip)
    account = port.ann if auth else None
    state, mail = port.mail(ip, account=account)
    assert mail.reply is None
    sender = mail.sender.account if mail.sender else None
    outcome = port.rcpt("x@remote.test", ip, state=state, account=sender)
    assert (outcome.reply is None) == relays, outcome.reply
    if relays:
        assert outcome.accepted == Accepted("x@remote.test", (), remote=True)


def test_a_window_on_port_25_identifies_the_sender_and_warns_of_the_sunset():
    port = Port(mx_relay="customers")
    port.window(CUSTOMER)
    _, outcome = port.mail(CUSTOMER)
    assert (outcome.sender.account, outcome.sender.method, outcome.sender.password_tls) == (
        port.ann, "pop-before-smtp", True)
    assert port.warner.warned == [("ann@example.test", "sunset", CUSTOMER,
                                   "smtp (POP before SMTP)")]


def test_mx_auth_is_offered_only_where_a_login_can_relay():
    assert [Port(mx_relay=m).policy.auth_enabled for m in mx.MX_RELAY] == [False, True, True]
    assert mx.relays_for("never") == "nobody"


def test_a_proven_sender_skips_the_client_verdict():
    port = Port(mx_relay="authenticated")
    outcome = port.rcpt("x@remote.test", LISTED, account=port.ann)
    assert outcome.reply is None


# --- traps and harvest ---------------------------------------------------------------------

def test_a_trap_hit_is_accepted_silently_and_blocks_the_rest_of_the_session():
    port = Port()
    state = port.connect().client
    trapped = port.rcpt("trap@example.test", state=state)
    assert trapped.reply is None and trapped.accepted == Accepted("trap@example.test",
                                                                  discard=True)
    after = port.rcpt("bob@example.test", state=state)
    assert after.reply.code == 554 and "spam trap hit" in after.reply.text
    assert port.rcpt("bob@example.test").reply.code == 554       # the block outlives the session


def test_a_whitelisted_client_skips_the_traps():
    port = Port()
    port.store.allow(CLIENT)
    assert port.rcpt("trap@example.test").accepted is None      # an unknown user, not a trap hit
    assert port.store.blocks == []


def test_unknown_users_feed_the_harvest_firewall_but_not_from_whitelisted_clients():
    port = Port()
    port.store.allow("192.0.2.99")
    for _ in range(3):
        assert port.rcpt("guess@example.test", "192.0.2.99").reply.code == 550
    assert port.store.blocks == []
    for _ in range(2):
        assert port.rcpt("guess@example.test").reply.code == 550
    (block,) = port.store.blocks
    assert (block.action, block.network) == ("firewall", f"{CLIENT}/32")
    assert port.connect().close


def test_the_reflector_is_accepted_for_a_proven_sender_only():
    port = Port(build=submission.port_policy)
    outcome = port.rcpt("check@example.test", account=port.ann)
    assert outcome.accepted == Accepted("check@example.test", discard=True, reflect=True)
    assert port.rcpt("check@example.test").reply.code == 550        # unknown, when not proven


def test_the_recipients_per_hour_brake_defers():
    port = Port(build=submission.port_policy, submission={"recipients_per_hour": 2})
    before = tuple(Accepted(f"r{i}@remote.test") for i in range(2))
    outcome = port.rcpt("x@remote.test", account=port.ann, recipients=before)
    assert outcome.reply.code == 451 and outcome.decision.check == "recipients-per-hour"


def test_a_store_outage_at_rcpt_is_451():
    port = Port()
    state = port.connect().client
    port.store.down = True
    outcome = port.rcpt("bob@example.test", state=state)
    assert outcome.reply == replies.STORE_UNAVAILABLE


# --- submission --------------------------------------------------------------------------

@pytest.mark.parametrize("window, account, code, method", [
    (False, None, 530, None), (True, None, None, "pop-before-smtp"), (False, True, None, "auth"),
])
def test_submission_needs_a_login_or_a_window(window, account, code, method):
    port = Port(build=submission.port_policy)
    if window:
        port.window(CLIENT)
    _, outcome = port.mail(account=port.ann if account else None)
    assert (outcome.reply.code if outcome.reply else None) == code
    assert (outcome.sender.method if outcome.sender else None) == method
    if code:
        assert port.store.rejections[0].stage == "mail"


def test_submission_runs_no_anti_spam():
    port = Port(build=submission.port_policy)
    outcome = port.rcpt("x@remote.test", LISTED, account=port.ann)
    assert outcome.reply is None and port.resolver.asked == []


# --- DATA and after --------------------------------------------------------------------------

@pytest.mark.parametrize("size, code, bounced", [(500, None, 0), (1500, 552, 0)])
def test_the_message_must_fit_a_mailbox(size, code, bounced):
    port = Port()
    bob = Accepted("bob@example.test", (2,), room=1000)
    outcome = fired(port.policy.data(smtp_request("data", recipients=(bob,), size=size)))
    assert (outcome.reply.code if outcome.reply else None) == code
    assert port.store.rejections == []          # about the mailbox, not the client


def test_a_message_that_fits_some_mailboxes_bounces_for_the_others():
    port = Port()
    bob = Accepted("bob@example.test", (2,), room=1000)
    ann = Accepted("ann@example.test", (1,))
    outcome = fired(port.policy.data(smtp_request("data", recipients=(bob, ann), size=1500)))
    assert outcome.reply is None and outcome.undeliverable == (bob,)


class Spool:
    def __init__(self, data):
        self.data = data

    def head(self, limit):
        return self.data[:limit]


def test_a_forwarded_spam_becomes_a_complaint():
    port = Port()
    spam = (b"Received: from x (unknown [203.0.113.9])\r\n\tby mail.example.test (mailstack) with ESMTP"
            b" id 1\r\nSubject: buy\r\n\r\nspam\r\n")
    request = smtp_request("data", sender="ann@example.test", authenticated_as=port.ann,
                           recipients=(Accepted("abuse@example.test", (9,)),))
    ip, count, block = fired(port.policy.after_delivery(request, Spool(spam)))
    assert (ip, count, block) == ("203.0.113.9", 1, None)
    assert port.store.complaints[0].reason == "reported by ann@example.test"
    other = smtp_request("data", recipients=(Accepted("bob@example.test", (2,)),))
    assert fired(port.policy.after_delivery(other, Spool(spam))) is None
    assert len(port.store.complaints) == 1


def test_only_port_25_authenticates_messages_and_only_when_enabled():
    checks = object()       # port_policy only keeps it: what it is does not matter here

    def build(port_policy):
        return lambda *args: port_policy(*args, authenticator=checks)
    assert Port(build=build(mx.port_policy)).policy.authenticator is checks
    assert "dmarc" in Port(build=build(mx.port_policy)).policy.tables.data.names
    assert Port(build=build(submission.port_policy)).policy.authenticator is None
    off = Port(build=build(mx.port_policy), authentication={"enabled": False}).policy
    assert off.authenticator is None
    assert off.tables.data.names == ("quota", "hops", "srs-bounces-only")
