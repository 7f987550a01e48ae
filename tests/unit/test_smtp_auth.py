"""SMTP AUTH (protocols/smtp_auth.py) in an ESMTP session over a StringTransport.

Standards: RFC 4954 (AUTH: 334 challenges, 235 success, 535 5.7.8 bad credentials,
501 for a cancelled ("*") or undecodable response, 504 for an unknown mechanism, 503
after a successful AUTH and during a mail transaction, 538 5.7.11 when encryption is
required first, 454 4.7.0 for a temporary failure), RFC 4616 (PLAIN: authzid empty or the
login itself), the LOGIN mechanism (draft-murchison-sasl-login: "Username:", "Password:").
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from tests.support.policy_doubles import START
from tests.support.smtp_sessions import ANN, FakePortal, SMTPClient, USERS, codes

USERNAME_CHALLENGE = "334 " + base64.b64encode(b"Username:").decode()
PASSWORD_CHALLENGE = "334 " + base64.b64encode(b"Password:").decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def plain(user="ann@example.test", password="secret", authzid=""):
    return b64(f"{authzid}\0{user}\0{password}")


def ehlo_extensions(client) -> list[str]:
    return [line[4:] for line in client.say("EHLO c.test")[1:]]


def tls_client(**kwargs) -> SMTPClient:
    client = SMTPClient(tls="implicit", **kwargs)
    client.say("EHLO c.test")
    return client


def test_plain_with_an_initial_response():
    client = tls_client()
    assert client.say("AUTH PLAIN " + plain()) == ["235 2.7.0 Authentication successful"]
    assert client.session.authenticated_as == ANN
    (tried,) = client.portal.tried
    assert (tried.username, tried.password, tried.protocol, tried.mechanism, tried.tls,
            tried.port, tried.client_ip) == (b"ann@example.test", b"secret", "smtp", "PLAIN",
                                             True, 587, "192.0.2.7")


@pytest.mark.parametrize("argument", ["PLAIN", "plain =", "PLAIN ="])
def test_plain_without_an_initial_response_gets_an_empty_challenge(argument):
    client = tls_client()
    assert client.say("AUTH " + argument) == ["334 "]
    assert client.say(plain()) == ["235 2.7.0 Authentication successful"]


def test_login_asks_for_username_then_password():
    client = tls_client()
    assert client.say("AUTH LOGIN") == [USERNAME_CHALLENGE]
    assert client.say(b64("ann@example.test")) == [PASSWORD_CHALLENGE]
    assert client.say(b64("secret")) == ["235 2.7.0 Authentication successful"]
    assert client.portal.tried[0].mechanism == "LOGIN"


def test_login_with_the_username_as_initial_response():
    client = tls_client()
    assert client.say("AUTH LOGIN " + b64("ann@example.test")) == [PASSWORD_CHALLENGE]
    assert client.say(b64("secret")) == ["235 2.7.0 Authentication successful"]


def test_wrong_password_is_535_and_leaves_the_session_unauthenticated():
    client = tls_client()
    assert client.say("AUTH PLAIN " + plain(password="wrong")) == [
        "535 5.7.8 Authentication credentials invalid"]
    assert client.session.authenticated_as is None
    assert client.say("AUTH PLAIN " + plain()) == ["235 2.7.0 Authentication successful"]


@pytest.mark.parametrize("steps", [["AUTH PLAIN", "*"], ["AUTH LOGIN", "*"],
                                   ["AUTH LOGIN", b64("ann@example.test"), "*"]])
def test_a_star_cancels_the_exchange_with_501(steps):
    client = tls_client()
    *before, cancel = steps
    for line in before:
        assert client.say(line)[0].startswith("334 ")
    assert client.say(cancel) == ["501 5.0.0 Authentication cancelled"]
    assert client.portal.tried == [] and client.session.authenticated_as is None
    assert client.say("NOOP") == ["250 2.0.0 OK"]      # back in command mode


@pytest.mark.parametrize("steps", [["AUTH PLAIN !!!notbase64"], ["AUTH PLAIN", "@@@"],
                                   ["AUTH LOGIN", "###"], ["AUTH LOGIN " + b64("a"), "%%%"],
                                   ["AUTH PLAIN " + b64("no separators")]])
def test_undecodable_responses_are_501(steps):
    client = tls_client()
    for line in steps[:-1]:
        client.say(line)
    assert client.say(steps[-1]) == ["501 5.5.2 Cannot decode response"]
    assert client.portal.tried == []


def test_an_authzid_naming_another_user_is_refused_without_asking_the_realm():
    client = tls_client()
    assert client.say("AUTH PLAIN " + plain(authzid="bob@example.test")) == [
        "535 5.7.8 Authentication credentials invalid"]
    assert client.portal.tried == []


def test_an_authzid_equal_to_the_login_is_accepted():
    client = tls_client()
    assert client.say("AUTH PLAIN " + plain(authzid="ANN@example.test")) == [
        "235 2.7.0 Authentication successful"]


def test_a_second_auth_is_503():
    client = tls_client()
    client.say("AUTH PLAIN " + plain())
    assert client.say("AUTH PLAIN " + plain()) == ["503 5.5.1 Already authenticated"]
    assert len(client.portal.tried) == 1


def test_auth_during_a_mail_transaction_is_503():
    client = tls_client()
    assert codes(client.say("MAIL FROM:<s@remote.test>")) == ["250"]
    assert client.say("AUTH PLAIN " + plain()) == ["503 5.5.1 Bad sequence of commands"]


def test_an_unknown_mechanism_is_504():
    client = tls_client()
    assert client.say("AUTH CRAM-MD5") == ["504 5.5.4 Unrecognized authentication type"]


def test_a_temporary_realm_failure_is_454():
    client = tls_client(portal=FakePortal(USERS, down=True))
    assert client.say("AUTH PLAIN " + plain()) == ["454 4.7.0 Temporary authentication failure"]


def test_an_over_long_response_ends_the_exchange():
    client = tls_client()
    client.say("AUTH PLAIN")
    assert client.say("A" * 5000) == ["500 5.5.2 Line too long"]
    assert client.portal.tried == []


def test_commands_pipelined_behind_auth_wait_for_its_answer():
    """RFC 4954 §4: the client may pipeline after the initial response; the next command
    runs only once the login has been answered."""
    client = tls_client()
    lines = client.say("AUTH PLAIN " + plain(), "MAIL FROM:<ann@example.test>")
    assert codes(lines) == ["235", "250"]
    assert client.policy.requests[-1].stage == "mail"


# --- when AUTH is offered ---------------------------------------------------------------

def test_auth_is_offered_in_plaintext_before_the_cutover_and_then_only_after_starttls():
    cutover = START + timedelta(days=1)
    client = SMTPClient(cutover=cutover, idle_timeout=2 * 86400)
    assert "AUTH PLAIN LOGIN" in ehlo_extensions(client)
    client.clock.advance(86400)
    extensions = ehlo_extensions(client)
    assert "AUTH PLAIN LOGIN" not in extensions and "STARTTLS" in extensions
    assert client.say("AUTH PLAIN " + plain()) == [
        "538 5.7.11 Encryption required for requested authentication mechanism"]
    assert client.portal.tried == []
    client.say("STARTTLS")
    assert "AUTH PLAIN LOGIN" in ehlo_extensions(client)
    assert client.say("AUTH PLAIN " + plain()) == ["235 2.7.0 Authentication successful"]
    assert client.portal.tried[0].tls is True


def test_auth_is_neither_offered_nor_accepted_when_the_port_disables_it():
    client = SMTPClient(tls="implicit", auth=False)
    assert not any(e.startswith("AUTH") for e in ehlo_extensions(client))
    assert client.say("AUTH PLAIN " + plain()) == ["502 5.5.1 Command not implemented"]
    assert client.portal.tried == []
