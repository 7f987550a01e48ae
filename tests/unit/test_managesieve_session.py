"""The ManageSieve session (protocols/managesieve*.py) over a StringTransport, against a
real SQLite store on simulated time (tests/support/sessions.py): framing, literals and
their limits, STARTTLS, AUTHENTICATE PLAIN, every script command and its response codes.

Standards: RFC 5804 (§1.3 codes, §1.7 capabilities, §2.1-§2.14 the commands).
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from mailstack.config_sections import SieveConfig
from mailstack.store import logins, sieve_scripts
from tests.support import sessions

ANN = "ann@example.test"
SMALL = SieveConfig(max_script_size=200, max_scripts=2)


def plain(user=ANN, password="secret", authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def lines(reply: bytes) -> list[bytes]:
    return reply.split(b"\r\n")[:-1]


@pytest.fixture
def ann(stack) -> int:
    return stack.add_account(ANN, "secret")


def logged_in(stack, **kwargs) -> sessions.Client:
    client = stack.sieve(**kwargs)
    client.transport.make_tls()
    assert client.send(f'AUTHENTICATE "PLAIN" "{plain()}"') == b'OK "Logged in"\r\n'
    return client


def literal(text: str, plus: bool = True) -> str:
    return "{%d%s}\r\n%s" % (len(text.encode()), "+" if plus else "", text)


# --- greeting, capabilities, STARTTLS -----------------------------------------------------

def test_greeting_lists_capabilities_and_starttls_before_tls(stack):
    caps = lines(stack.sieve().greeting)
    assert caps[-1] == b'OK "mailstack ManageSieve ready"'
    assert b'"IMPLEMENTATION" "mailstack"' in caps and b'"VERSION" "1.0"' in caps
    assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' in caps
    assert (b'"SIEVE" "fileinto reject ereject envelope body vacation imap4flags mailbox '
            b'copy comparator-i;ascii-casemap comparator-i;octet"') in caps


def test_starttls_drops_pipelined_commands_and_sends_capabilities_again(stack, ann):
    client = stack.sieve()
    reply = client.send("STARTTLS", f'AUTHENTICATE "PLAIN" "{plain()}"')
    assert client.transport.tls_started_with is sessions.TLS_OPTIONS
    caps = lines(reply)
    assert caps[0] == b'OK "Begin TLS negotiation now"' and caps[-1] == b"OK"
    assert b'"STARTTLS"' not in caps and b'"SASL" "PLAIN"' in caps
    assert b"Logged in" not in reply                  # the pipelined login was dropped


@pytest.mark.parametrize("tls, certificates", [("implicit", True), ("starttls", False),
                                                ("none", True)])
def test_starttls_only_on_a_starttls_listener_with_certificates(stack, tls, certificates):
    client = stack.sieve(tls, certificates=certificates)
    assert b'"STARTTLS"' not in client.greeting
    assert client.send("STARTTLS").startswith(b"NO ")


def test_after_the_cutover_no_password_without_tls(template, tmp_path):
    stack = sessions.Stack(template, tmp_path, tls_cutover=sessions.START - timedelta(days=1))
    try:
        stack.add_account(ANN, "secret")
        client = stack.sieve()
        assert b'"SASL" ""' in lines(client.greeting)
        assert client.send(f'AUTHENTICATE "PLAIN" "{plain()}"') == \
            b'NO (ENCRYPT-NEEDED) "Use STARTTLS before authenticating"\r\n'
        assert stack.db.read_sync(logins.recent) == []     # the password was not even tried
        client.send("STARTTLS")
        assert client.send(f'AUTHENTICATE "PLAIN" "{plain()}"') == b'OK "Logged in"\r\n'
    finally:
        stack.close()


# --- AUTHENTICATE ----------------------------------------------------------------------------

def test_authenticate_with_a_continuation_and_a_literal_response(stack, ann):
    client = stack.sieve("implicit")
    assert client.send('AUTHENTICATE "PLAIN"') == b'""\r\n'
    assert client.send(literal(plain())) == b'OK "Logged in"\r\n'
    [event] = stack.db.read_sync(logins.recent)
    assert (event.protocol, event.success, event.tls, event.mechanism, event.port) == \
        ("sieve", True, True, "PLAIN", 4190)
    assert b'"OWNER" "ann@example.test"' in lines(client.send("CAPABILITY"))


@pytest.mark.parametrize("response, expected", [
    ('"*"', b'NO "Authentication cancelled"'),
    ('"not base64!"', b'NO "Invalid base64 in the SASL response"'),
    (f'"{plain(password="wrong")}"', b'NO "Authentication failed"'),
    (f'"{plain(authzid="bob@example.test")}"', b'NO "Authentication failed"'),
])
def test_authenticate_refusals(stack, ann, response, expected):
    client = stack.sieve("implicit")
    client.send('AUTHENTICATE "PLAIN"')
    assert client.send(response) == expected + b"\r\n"
    assert client.send("LISTSCRIPTS") == b'NO "Command not valid in this state"\r\n'


def test_a_failed_login_is_recorded_for_sieve(stack, ann):
    client = stack.sieve("implicit")
    client.send(f'AUTHENTICATE "PLAIN" "{plain(password="wrong")}"')
    [event] = stack.db.read_sync(logins.recent)
    assert (event.protocol, event.success) == ("sieve", False)


def test_unauthenticate_returns_to_the_login_state(stack, ann):
    client = logged_in(stack)
    assert client.send("UNAUTHENTICATE") == b'OK "Logged out"\r\n'
    assert client.send("LISTSCRIPTS") == b'NO "Command not valid in this state"\r\n'


# --- the script commands ---------------------------------------------------------------------

def test_put_list_activate_get_rename_delete(stack, ann):
    client = logged_in(stack)
    script = 'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "X"; }\r\n'
    assert client.send('PUTSCRIPT "main" ' + literal(script)) == b"OK\r\n"
    assert client.send('PUTSCRIPT "other" "keep;"') == b"OK\r\n"
    assert client.send('SETACTIVE "main"') == b"OK\r\n"
    assert client.send("LISTSCRIPTS") == b'"main" ACTIVE\r\n"other"\r\nOK\r\n'
    data = script.encode()
    assert client.send('GETSCRIPT "main"') == b"{%d}\r\n%s\r\nOK\r\n" % (len(data), data)
    assert client.send('DELETESCRIPT "main"') == \
        b'NO (ACTIVE) "The active script cannot be deleted"\r\n'
    assert client.send('RENAMESCRIPT "main" "other"') == \
        b'NO (ALREADYEXISTS) "A script by that name already exists"\r\n'
    assert client.send('RENAMESCRIPT "main" "renamed"') == b"OK\r\n"
    assert client.send('SETACTIVE ""', 'DELETESCRIPT "renamed"', "LISTSCRIPTS") == \
        b'OK\r\nOK\r\n"other"\r\nOK\r\n'
    for command in ('GETSCRIPT "nope"', 'SETACTIVE "nope"', 'DELETESCRIPT "nope"',
                    'RENAMESCRIPT "nope" "x"'):
        assert client.send(command) == \
            b'NO (NONEXISTENT) "There is no script by that name"\r\n'


def test_putscript_and_checkscript_report_the_error_line(stack, ann):
    client = logged_in(stack)
    bad = 'require "fileinto";\nif true {\n  fileinto "x"\n}\n'
    assert client.send("CHECKSCRIPT " + literal(bad)) == \
        b'NO "line 4: parsing error: unexpected token \'}\' found near \'}\'"\r\n'
    assert client.send('PUTSCRIPT "bad" ' + literal('require "date";\n')) == \
        b'NO "line 1: unsupported extension \\"date\\""\r\n'
    assert client.send("CHECKSCRIPT " + literal("keep;\n")) == b"OK\r\n"
    assert client.send("LISTSCRIPTS") == b"OK\r\n"


def test_script_names_are_checked(stack, ann):
    client = logged_in(stack)
    assert client.send('PUTSCRIPT "" "keep;"') == b'NO "Invalid script name"\r\n'
    assert client.send('PUTSCRIPT ' + literal("a\x01b") + ' "keep;"') == \
        b'NO "Invalid script name"\r\n'
    assert client.send('PUTSCRIPT "x" 12') == b'NO "Syntax error in the command arguments"\r\n'
    assert client.send('GETSCRIPT "a" "b"') == b'NO "Syntax error in the command arguments"\r\n'


def test_havespace_and_the_limits(stack, ann):
    client = logged_in(stack, settings=SMALL)
    assert client.send('HAVESPACE "a" 200') == b"OK\r\n"
    assert client.send('HAVESPACE "a" 201') == \
        b'NO (QUOTA/MAXSIZE) "Script exceeds the size limit"\r\n'
    assert client.send('PUTSCRIPT "a" "keep;"', 'PUTSCRIPT "b" "keep;"') == b"OK\r\nOK\r\n"
    assert client.send('PUTSCRIPT "c" "keep;"') == b'NO (QUOTA/MAXSCRIPTS) "Too many scripts"\r\n'
    assert client.send('HAVESPACE "c" 1') == b'NO (QUOTA/MAXSCRIPTS) "Too many scripts"\r\n'
    assert client.send('PUTSCRIPT "b" "discard;"') == b"OK\r\n"    # a replacement fits


def test_a_script_over_the_size_limit_is_refused_without_being_buffered(stack, ann):
    client = logged_in(stack, settings=SMALL)
    client.send_raw(b'PUTSCRIPT "big" {100000+}\r\n' + b"#" * 50000)
    assert len(client.protocol.framing.buffer) == 0       # counted off, not kept
    reply = client.send_raw(b"#" * 50000 + b"\r\nLISTSCRIPTS\r\n")
    assert reply == b'NO (QUOTA/MAXSIZE) "Script exceeds the size limit"\r\nOK\r\n'


def test_a_synchronising_literal_is_read_without_a_continuation(stack, ann):
    client = logged_in(stack)
    assert client.send('PUTSCRIPT "s" ' + literal("keep;", plus=False)) == b"OK\r\n"


def test_before_login_literals_are_small(stack, ann):
    client = stack.sieve("implicit")
    reply = client.send_raw(b"PUTSCRIPT {5000+}\r\n" + b"x" * 5000 + b"\r\nNOOP\r\n")
    assert reply == b'NO "String too long"\r\nOK "Done"\r\n'


def test_an_overlong_command_line_is_refused_and_skipped(stack, ann):
    client = logged_in(stack, settings=SMALL)
    reply = client.send_raw(b"NOOP " + b"x" * 20000 + b"\r\nNOOP\r\n")
    assert reply == b'NO "Command too long"\r\nOK "Done"\r\n'


def test_a_store_failure_is_trylater_never_an_error_text(stack, ann):
    client = logged_in(stack)
    stack.pool.failing.add(sieve_scripts.list_scripts)
    assert client.send("LISTSCRIPTS") == \
        b'NO (TRYLATER) "Temporary server problem; try again later"\r\n'
    stack.pool.failing.clear()
    assert client.send("LISTSCRIPTS") == b"OK\r\n"


# --- the rest ------------------------------------------------------------------------------

def test_noop_tag_unknown_commands_and_logout(stack):
    client = stack.sieve()
    assert client.send('NOOP "STARTTLS-SYNC-42"') == b'OK (TAG "STARTTLS-SYNC-42") "Done"\r\n'
    assert client.send("FROB") == b'NO "Unknown command"\r\n'
    assert client.send("PUTSCRIPT \"a\" \"keep;\"") == b'NO "Command not valid in this state"\r\n'
    assert client.send("LOGOUT") == b'OK "Logout complete"\r\n'
    assert client.closed


def test_no_login_in_time_closes_the_session_however_busy_the_client(stack):
    client = stack.sieve()
    stack.clock.advance(SieveConfig().login_timeout - 10)
    assert client.send("NOOP") == b'OK "Done"\r\n'
    stack.clock.advance(11)
    assert client.take() == b'BYE "No login in time, closing connection"\r\n'
    assert client.closed
