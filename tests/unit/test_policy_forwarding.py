"""Port 25's forwarding rules (policy/forwarding.py) run by the MX's own tables, without a
socket: SRS bounce addresses checked and routed, only DSNs to them from a sender, the hop
limit of mail that would be forwarded."""

from __future__ import annotations

from mailstack import clock as clocks
from mailstack.message.spool import spooled
from mailstack.policy import mx
from mailstack.policy.outcome import Accepted
from mailstack.srs import SRS

from tests.support.policy_doubles import (
    FakeResolver, FakeStore, clock_at, fired, settings, smtp_request,
)

SRS_DOMAIN = "mail.example.test"


class Port:
    def __init__(self, srs=True, **forwarding):
        self.store, self.clock = FakeStore(), clock_at()
        self.srs = SRS(SRS_DOMAIN, ["unit-test-secret-0123"]) if srs else None
        config = settings(antispam={"require_ptr": False}, forwarding=forwarding)
        self.policy = mx.port_policy(self.store, self.clock, FakeResolver(), config,
                                     srs=self.srs)

    def rcpt(self, address, sender=""):
        state = fired(self.policy.connect(smtp_request("connect"))).client
        return fired(self.policy.rcpt(smtp_request("rcpt", client=state, sender=sender,
                                                   recipient=address)))

    def data(self, message: bytes, recipients, sender=""):
        return fired(self.policy.data(smtp_request(
            "data", sender=sender, recipients=tuple(recipients), size=len(message),
            message=spooled(message))))


def test_a_valid_srs_address_is_routed_to_the_sender_it_stands_for():
    port = Port()
    address = port.srs.forward("carol@far.test", clocks.now(port.clock))
    outcome = port.rcpt(address)
    assert outcome.reply is None and outcome.decision.check == "recipients"
    assert outcome.accepted == Accepted(address, (), forward=("carol@far.test",))


def test_a_forged_or_expired_srs_address_is_550_5_1_1_and_logged():
    port = Port()
    address = port.srs.forward("carol@far.test", clocks.now(port.clock))
    forged = address.replace("=carol@", "=mallory@")
    outcome = port.rcpt(forged)
    assert (outcome.reply.code, outcome.reply.status) == (550, "5.1.1")
    assert outcome.decision.check == "srs" and "hash" in outcome.decision.reason
    port.clock.advance(22 * 86400)
    outcome = port.rcpt(address)
    assert outcome.reply.code == 550 and "expired" in outcome.decision.reason
    assert [r.check_name for r in port.store.rejections] == ["srs", "srs"]


def test_without_srs_such_an_address_is_not_relayed():
    address = SRS(SRS_DOMAIN, ["unit-test-secret-0123"]).forward("carol@far.test",
                                                                clocks.now(clock_at()))
    outcome = Port(srs=False).rcpt(address)
    assert (outcome.reply.code, outcome.decision.check) == (554, "relay")


MESSAGE = b"From: a@far.test\r\nSubject: hi\r\n\r\nbody\r\n"
DSN = (b"From: MAILER-DAEMON@far.test\r\nContent-Type: multipart/report;\r\n"
       b"\treport-type=delivery-status; boundary=x\r\n\r\n--x--\r\n")


def test_only_a_dsn_goes_to_an_srs_address_from_a_non_null_sender():
    port = Port()
    address = port.srs.forward("carol@far.test", clocks.now(port.clock))
    to_srs = Accepted(address, (), forward=("carol@far.test",))
    refused = port.data(MESSAGE, [to_srs], sender="x@far.test")
    assert (refused.reply.code, refused.reply.status) == (550, "5.7.1")
    assert refused.decision.check == "srs-bounces-only"
    assert port.data(DSN, [to_srs], sender="x@far.test").reply is None
    assert port.data(MESSAGE, [to_srs], sender="").reply is None


def test_a_message_to_be_forwarded_with_too_many_hops_is_554_5_4_6():
    port = Port(max_hops=3)
    line = b"Received: from a by b; Thu, 3 Dec 2026 10:00:00 +0000\r\n"
    hops = line * 4
    forward = Accepted("team@example.test", (1,), forward=("bob@remote.test",))
    refused = port.data(hops + MESSAGE, [forward])
    assert (refused.reply.code, refused.reply.status, refused.decision.check) == (
        554, "5.4.6", "hops")
    assert port.data(line * 3 + MESSAGE, [forward]).reply is None      # three: fine
    assert port.data(hops + MESSAGE, [Accepted("ann@example.test", (1,))]).reply is None
