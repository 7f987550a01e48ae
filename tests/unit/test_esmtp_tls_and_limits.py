"""The ESMTP session's STARTTLS and its limits (protocols/esmtp.py, protocols/starttls.py)
over a TLS-capable StringTransport, on the business clock.

Standards: RFC 3207 (STARTTLS: 220 then the handshake, nothing pipelined after it runs,
everything learned before it forgotten; 503 when TLS is already active), RFC 5321 §4.5.3.2
(timeouts; 421 closes).  Issue 13: a DATA trickle below min_data_rate and endless junk
commands cannot hold a session.
"""

from __future__ import annotations

import pytest

from tests.support.smtp_sessions import SMTPClient, codes


def extensions(client) -> list[str]:
    return [line[4:] for line in client.say("EHLO c.test")[1:]]


def test_starttls_is_offered_on_a_starttls_listener_with_certificates():
    client = SMTPClient()
    assert "STARTTLS" in extensions(client)
    assert client.say("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
    assert client.transport.tls_started_with is not None and client.session.tls


@pytest.mark.parametrize("tls, certificates", [("starttls", False), ("none", True)])
def test_starttls_is_not_offered_without_certificates_or_on_a_plain_listener(tls, certificates):
    client = SMTPClient(tls=tls, certificates=certificates)
    assert "STARTTLS" not in extensions(client)
    assert client.say("STARTTLS") == ["502 5.5.1 Command not implemented"]
    assert client.transport.tls_started_with is None


def test_starttls_when_tls_is_already_active_is_503():
    client = SMTPClient(tls="implicit")
    assert "STARTTLS" not in extensions(client)
    assert client.say("STARTTLS") == ["503 5.5.1 TLS already active"]


def test_starttls_with_an_argument_is_refused():
    client = SMTPClient()
    assert codes(client.say("STARTTLS now")) == ["501"]
    assert client.transport.tls_started_with is None


def test_commands_pipelined_after_starttls_are_dropped_and_the_state_forgotten():
    """CVE-2011-0411: a man in the middle appends commands to the STARTTLS packet."""
    client = SMTPClient()
    client.say("EHLO c.test")
    lines = client.say("STARTTLS", "MAIL FROM:<evil@remote.test>", "RCPT TO:<x@remote.test>")
    assert lines == ["220 2.0.0 Ready to start TLS"]
    assert [r.stage for r in client.policy.requests] == ["connect"]
    assert client.session.helo is None and client.session.envelope.sender is None
    # after the handshake the client must start again with EHLO (RFC 3207 §4.2)
    assert codes(client.say("MAIL FROM:<s@remote.test>")) == ["503"]
    assert codes(client.say("EHLO c.test", "MAIL FROM:<s@remote.test>")) == ["250", "250"]
    assert client.policy.requests[-1].tls is True


def test_a_partial_line_sent_with_starttls_is_dropped_too():
    client = SMTPClient()
    client.say("EHLO c.test")
    assert client.send_raw(b"STARTTLS\r\nMAIL FROM:<a@b") == ["220 2.0.0 Ready to start TLS"]
    assert codes(client.say("NOOP")) == ["250"]     # "MAIL FROM:<a@b" was not kept


def test_the_idle_timeout_runs_on_the_business_clock():
    client = SMTPClient(idle_timeout=60)
    client.clock.advance(59)
    client.say("NOOP")                       # activity pushes it back
    client.clock.advance(59)
    assert not client.closed
    client.clock.advance(1)
    assert client.take() == ["421 4.4.2 mx.example.test Idle timeout, closing connection"]
    assert client.closed


def _in_data(client):
    assert codes(client.say("EHLO c.test", "MAIL FROM:<s@remote.test>",
                            "RCPT TO:<ann@example.test>", "DATA")) == ["250", "250", "250", "354"]


def test_a_data_trickle_below_the_minimum_rate_is_cut_off():
    """Each line resets the idle timeout; the rate deadline is not reset (issue 13)."""
    client = SMTPClient(idle_timeout=60, min_data_rate=100)
    _in_data(client)
    seen = []
    for _ in range(5):                       # 10 bytes every 30 s: far below 100 bytes/s
        client.clock.advance(30)
        seen += client.take()
        if client.closed:
            break
        seen += client.say("trickle!")
    assert seen == ["421 4.4.2 mx.example.test Data arriving too slowly, closing connection"]
    assert client.closed


def test_data_at_a_good_rate_is_not_cut_off():
    client = SMTPClient(idle_timeout=60, min_data_rate=100)
    _in_data(client)
    for _ in range(6):                       # 4 KB every 30 s
        client.clock.advance(30)
        client.say(*["x" * 100] * 40)
    assert not client.closed


def test_the_data_deadline_ends_with_the_session():
    client = SMTPClient(idle_timeout=60, min_data_rate=100)
    _in_data(client)
    assert client.session.data_deadline is not None
    client.session.connectionLost(None)
    assert client.session.data_deadline is None
    assert all(not c.active() for c in client.clock.getDelayedCalls())


def test_too_many_junk_commands_close_the_session():
    client = SMTPClient(junk_command_limit=3)
    lines = client.say("NOOP", "RSET", "HELP", "NOOP", "NOOP")
    assert codes(lines) == ["250", "250", "214", "421"]
    assert lines[-1] == "421 4.7.0 mx.example.test Too many commands without mail, closing connection"
    assert client.closed


def test_mail_commands_are_not_junk():
    client = SMTPClient(junk_command_limit=3)
    client.say("EHLO c.test")                # junk 1; then RSET, RSET: 3
    lines = client.say("MAIL FROM:<s@remote.test>", "RSET", "MAIL FROM:<s@remote.test>",
                       "RSET", "MAIL FROM:<s@remote.test>")
    assert codes(lines) == ["250"] * 5 and not client.closed
    assert codes(client.say("NOOP")) == ["421"]


def test_vrfy_never_confirms_and_expn_is_not_implemented():
    client = SMTPClient()
    assert codes(client.say("VRFY ann@example.test")) == ["252"]
    assert codes(client.say("EXPN staff")) == ["502"]


def test_non_utf8_and_unknown_commands_are_refused():
    client = SMTPClient()
    assert codes(client.send_raw(b"NO\xffOP\r\n")) == ["500"]
    assert codes(client.say("FROB")) == ["500"]
