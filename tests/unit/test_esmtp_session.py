"""The ESMTP session (esmtp + smtp_envelope + smtp_data) over a StringTransport, with a
double of the policy contract: what the client sees, in what order, and what the policy is
asked.  No socket, no database: the policy and the intake are doubles."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mailstack import replies
from mailstack.policy import mx
from mailstack.policy.contract import SMTPPolicy
from mailstack.policy.outcome import Accepted, Sender
from mailstack.realm.credentials import AccountRef
from mailstack.protocols.esmtp import COMMAND_LINE_LIMIT, MAX_ERRORS, SMTPFactory
from mailstack.protocols.smtp_auth import Authenticator
from mailstack.protocols.smtp_intake import MessageIntake, trace, with_keyword
from mailstack.store.errors import StoreUnavailable

from tests.support.policy_doubles import (
    FakePolicy, FakeResolver, FakeStore, clock_at, settings,
)

CLIENT = "192.0.2.7"


class Intake:
    """The factory's intake: records what would be stored."""

    def __init__(self, fail=None):
        self.stored, self.fail = [], fail

    def store(self, session, envelope, spool, queue_id, undeliverable=(), authentication=None,
              forward=True, spam=None):
        if self.fail is not None:
            return defer.fail(self.fail)
        self.stored.append((envelope.sender, list(envelope.addresses), spool.read(b""),
                            undeliverable, trace(session, envelope, queue_id)))
        return defer.succeed(len(envelope.recipients))

    def reflect(self, session, envelope):
        return defer.succeed(None)


class Tls:
    def allows_plaintext(self):
        return True


def connect(policy=None, intake=None, **smtp):
    config = settings(smtp=smtp, listeners=[{"name": "mx", "protocol": "smtp", "port": 25,
                                             "tls": "none"}])
    policy = policy or FakePolicy()
    factory = SMTPFactory(config.listeners[0], policy,
                          authenticator=Authenticator(None, Tls(), policy.auth_enabled),
                          intake=intake or Intake(), settings=config.smtp,
                          hostname="mx.example.test", clock=clock_at(), tls_options=None,
                          limits=None, spool_dir=None)
    session = factory.protocol()
    session.factory = factory
    transport = StringTransport(peerAddress=IPv4Address("TCP", CLIENT, 40000),
                                hostAddress=IPv4Address("TCP", "192.0.2.1", 25))
    session.makeConnection(transport)
    return session, transport, policy


def say(session, transport, *lines):
    """Send lines (one write, as a pipelining client does) and return the reply lines."""
    transport.clear()
    session.dataReceived(b"".join(line + b"\r\n" for line in lines))
    return transport.value().decode().splitlines()


def codes(reply_lines):
    return [line[:3] for line in reply_lines if line[3:4] == " "]


def test_the_greeting_waits_for_the_connect_policy():
    session, transport, policy = connect()
    assert transport.value() == b"220 2.0.0 mx.example.test ESMTP mailstack ready\r\n"
    assert policy.requests[0].stage == "connect" and policy.requests[0].client_ip == CLIENT


def test_a_client_the_policy_closes_gets_no_banner():
    session, transport, _ = connect(FakePolicy(close=True))
    assert transport.value() == b"" and transport.disconnecting


def test_ehlo_lists_the_extensions_and_no_auth_or_starttls_when_unavailable():
    session, transport, _ = connect(max_message_size=1000)
    lines = say(session, transport, b"EHLO client.test")
    assert lines[0] == f"250-mx.example.test Hello client.test [{CLIENT}]"
    assert [line[4:] for line in lines[1:]] == [
        "SIZE 1000", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"]
    assert say(session, transport, b"HELO") == [str(replies.ARGUMENT_ERROR.smtp().decode())]


def test_a_whole_transaction_pipelined():
    session, transport, policy = connect()
    intake = session.factory.intake
    lines = say(session, transport, b"EHLO c.test", b"MAIL FROM:<s@remote.test> SIZE=40",
                b"RCPT TO:<ann@example.test>", b"RCPT TO:<Postmaster>", b"DATA",
                b"Subject: hi", b"", b"..dot", b".", b"QUIT")
    assert codes(lines) == ["250", "250", "250", "250", "354", "250", "221"]
    assert transport.disconnecting
    sender, addresses, body, undeliverable, facts = intake.stored[0]
    assert (sender, addresses, body) == ("s@remote.test", ["ann@example.test",
                                         "postmaster@example.test"], b"Subject: hi\r\n\r\n.dot\r\n")
    assert (facts.helo, facts.protocol, facts.client_ip, facts.port) == ("c.test", "ESMTP",
                                                                        CLIENT, 25)
    mail, first, second, data = policy.requests[1:]
    assert (mail.stage, mail.sender, mail.declared_size) == ("mail", "s@remote.test", 40)
    assert (first.recipient, first.recipients) == ("ann@example.test", ())
    assert [r.address for r in second.recipients] == ["ann@example.test"]
    assert (data.stage, data.size, len(data.recipients)) == ("data", len(body), 2)
    assert policy.delivered == [data]
    assert all(r.client is policy.client for r in policy.requests[1:])   # carried, unopened


def test_replies_come_in_order_while_the_policy_thinks():
    policy = FakePolicy()
    policy.hold = {"rcpt"}
    session, transport, _ = connect(policy)
    say(session, transport, b"HELO c.test")
    lines = say(session, transport, b"MAIL FROM:<s@remote.test>", b"RCPT TO:<a@example.test>",
                b"RCPT TO:<b@example.test>", b"NOOP")
    assert codes(lines) == ["250"]                   # RCPT waits, and so does all behind it
    transport.clear()
    policy.held["rcpt"].callback(None)
    assert codes(transport.value().decode().splitlines()) == ["250"]
    transport.clear()
    policy.held["rcpt"].callback(None)
    assert codes(transport.value().decode().splitlines()) == ["250", "250"]


def test_refusals_are_sent_as_the_policy_built_them():
    refused = replies.RELAY_DENIED.format(address="x@remote.test")
    policy = FakePolicy(refuse={"rcpt": lambda r: refused if "remote" in r.recipient else None})
    session, transport, _ = connect(policy)
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                b"RCPT TO:<x@remote.test>", b"DATA", b"RCPT TO:<a@example.test>", b"DATA",
                b"x", b".")
    assert lines[2] == refused.smtp().decode()
    assert codes(lines) == ["250", "250", "554", "554", "250", "354", "250"]
    assert lines[3] == replies.NO_VALID_RECIPIENTS.smtp().decode()


def test_a_refused_sender_leaves_no_transaction():
    policy = FakePolicy(refuse={"mail": replies.AUTH_REQUIRED})
    session, transport, _ = connect(policy)
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                b"RCPT TO:<a@example.test>")
    assert codes(lines) == ["250", "530", "503"]


def test_a_refusal_after_data_is_sent_and_nothing_is_stored():
    policy = FakePolicy(refuse={"data": replies.MESSAGE_OVER_QUOTA})
    session, transport, _ = connect(policy)
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                b"RCPT TO:<a@example.test>", b"DATA", b"x", b".")
    assert lines[-1] == replies.MESSAGE_OVER_QUOTA.smtp().decode()
    assert session.factory.intake.stored == [] and policy.delivered == []


def test_a_store_outage_after_data_is_451():
    session, transport, _ = connect(intake=Intake(fail=StoreUnavailable("down")))
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                b"RCPT TO:<a@example.test>", b"DATA", b"x", b".")
    assert lines[-1] == replies.STORE_UNAVAILABLE.smtp().decode()


@pytest.mark.parametrize("lines, last", [
    ([b"MAIL FROM:<s@r.test>"], replies.NEED_HELO),
    ([b"HELO c.test", b"RCPT TO:<a@example.test>"], replies.NEED_MAIL),
    ([b"HELO c.test", b"MAIL FROM:<s@r.test>", b"MAIL FROM:<s@r.test>"], replies.NESTED_MAIL),
    ([b"HELO c.test", b"MAIL FROM:<s@r.test> SIZE=999999999"], replies.SIZE_DECLARED_TOO_BIG),
    ([b"HELO c.test", b"MAIL FROM:<s@r.test> FOO=BAR"], replies.PARAMETER_UNSUPPORTED),
    ([b"HELO c.test", b"MAIL FROM:s@r.test"], replies.ARGUMENT_ERROR),
    ([b"HELO c.test", b"MAIL FROM:<s@r.test>", b"RCPT TO:<a%b@example.test>"],
     replies.RELAY_DENIED.format(address="a%b@example.test")),
    ([b"HELO c.test", b"MAIL FROM:<s@r.test>", b"RSET", b"RCPT TO:<a@example.test>"],
     replies.NEED_MAIL),
    ([b"VRFY ann"], replies.CANNOT_VRFY),
    ([b"EXPN list"], replies.NOT_IMPLEMENTED),
    ([b"AUTH PLAIN"], replies.NOT_IMPLEMENTED),
    ([b"XYZZY"], replies.SYNTAX_ERROR),
    ([b"HELO c.test", b"DATA now"], replies.ARGUMENT_ERROR),
])
def test_protocol_refusals_never_reach_the_policy(lines, last):
    session, transport, policy = connect(max_message_size=1000)
    got = say(session, transport, *lines)
    assert got[-1] == last.smtp().decode()
    assert [r.stage for r in policy.requests] in (["connect"], ["connect", "mail"])


def test_too_many_recipients():
    session, transport, policy = connect(max_recipients=2)
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                *[f"RCPT TO:<r{i}@example.test>".encode() for i in range(3)])
    assert codes(lines) == ["250", "250", "250", "250", "452"]


def test_line_limits():
    session, transport, _ = connect(max_message_size=100)
    assert say(session, transport, b"NOOP " + b"x" * COMMAND_LINE_LIMIT) == [
        replies.LINE_TOO_LONG.smtp().decode()]
    lines = say(session, transport, b"HELO c.test", b"MAIL FROM:<s@r.test>",
                b"RCPT TO:<a@example.test>", b"DATA", b"Subject: " + b"x" * 1000, b"", b".")
    assert lines[-1] == replies.DATA_LINE_TOO_LONG.smtp().decode()
    lines = say(session, transport, b"MAIL FROM:<s@r.test>", b"RCPT TO:<a@example.test>",
                b"DATA", *[b"y" * 50] * 3, b".")
    assert lines[-1] == replies.MESSAGE_TOO_BIG.smtp().decode()
    assert session.factory.intake.stored == []


def test_too_many_errors_close_the_session():
    session, transport, _ = connect()
    lines = say(session, transport, *[b"BOGUS"] * (MAX_ERRORS + 1))
    assert lines[-1].startswith("421 4.7.0") and transport.disconnecting


def test_quit_and_the_with_keyword():
    session, transport, _ = connect()
    assert with_keyword(session) == "SMTP"
    say(session, transport, b"EHLO c.test")
    assert with_keyword(session) == "ESMTP"
    assert say(session, transport, b"QUIT") == [replies.CLOSING.smtp().decode()]
    assert transport.disconnecting


def test_the_double_and_the_real_policy_keep_the_same_contract():
    real = mx.port_policy(FakeStore(), clock_at(), FakeResolver(), settings())
    assert isinstance(FakePolicy(), SMTPPolicy) and isinstance(real, SMTPPolicy)


class Router:
    def __init__(self):
        self.calls = []

    def store(self, sender, accepted, spool, trace_, **kwargs):
        self.calls.append((sender, accepted, trace_, kwargs))
        return defer.succeed(len(accepted))


class Db:
    def __init__(self):
        self.runs = []

    def run(self, fn, *args):
        self.runs.append((fn.__name__, args))
        return defer.succeed(None)


def test_the_intake_stores_what_fits_bounces_the_rest_and_answers_the_reflector():
    router, db = Router(), Db()
    intake = MessageIntake(router, db, clock_at(), "check")
    session, transport, _ = connect()
    say(session, transport, b"EHLO c.test")
    ann = AccountRef(1, "ann@example.test")
    full, fits = Accepted("bob@example.test", (2,), room=10), Accepted("eve@example.test", (3,))
    envelope = session.envelope
    envelope.sender, envelope.identity = "ann@example.test", Sender(ann, "pop-before-smtp", False)
    envelope.recipients += [full, fits, Accepted("check@example.test", discard=True, reflect=True)]
    envelope.addresses += ["bob@example.test", "eve@example.test", "check@example.test"]
    assert intake.store(session, envelope, None, "Q1", (full,)).result == 1
    ((sender, accepted, facts, kwargs),) = router.calls
    assert (sender, accepted, kwargs["account"]) == ("ann@example.test", [fits], ann)
    assert kwargs["undeliverable"] == [("bob@example.test", "5.2.2",
                                        str(replies.MESSAGE_OVER_QUOTA))]
    assert (facts.account, facts.method, facts.recipient) == (
        "ann@example.test", "pop-before-smtp", None)
    intake.reflect(session, envelope)
    ((name, (ids, report, _at)),) = db.runs
    assert name == "deliver" and ids == [1] and b"sent WITHOUT encryption" in report
    envelope.recipients[:] = [Accepted("t@example.test", discard=True)]
    assert intake.store(session, envelope, None, "Q2").result is None
    intake.reflect(session, envelope)
    assert len(router.calls) == 1 and len(db.runs) == 1
