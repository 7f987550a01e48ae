"""The POP3 session (protocols/pop3*.py) over a StringTransport: every command of RFC 1939
against a real SQLite store, on simulated time (tests/support/sessions.py).

Standards: RFC 1939 (the commands, UPDATE after QUIT), RFC 2449 (CAPA, RESP-CODES),
RFC 2595 (STLS), RFC 5034 (AUTH PLAIN).
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from mailstack.protocols.pop3_lease import MaildropLease
from mailstack.store import maildrop
from tests.support import sessions

ANN = "ann@example.test"
ONE = b"Subject: one\r\n\r\nhello\r\n.dot line\r\n"
TWO = b"Subject: two\r\nX-Two: yes\r\n\r\nfirst\r\nsecond\r\nthird\r\n"
THREE = b"Subject: three\r\n\r\nbody three\r\n"


@pytest.fixture
def ann(stack) -> int:
    account = stack.add_account(ANN, "secret")
    stack.deliver(account, ONE, TWO, THREE)
    return account


def logged_in(stack, **kwargs) -> sessions.Client:
    client = stack.pop3(**kwargs)
    assert client.send(f"USER {ANN}", "PASS secret").endswith(b" has 3 messages\r\n")
    return client


def lines(reply: bytes) -> list[bytes]:
    return reply.split(b"\r\n")[:-1]


def plain(authzid: str, user: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


# --- greeting and CAPA (RFC 2449) -------------------------------------------------------

def test_greeting_and_capa_before_login_offer_user_sasl_and_stls(stack):
    client = stack.pop3()
    assert client.greeting == b"+OK mailstack POP3 server ready\r\n"
    caps = lines(client.send("CAPA"))
    assert caps[0] == b"+OK Capability list follows" and caps[-1] == b"."
    assert {b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"USER", b"SASL PLAIN",
            b"STLS"} <= set(caps)


@pytest.mark.parametrize("tls, certificates", [("implicit", True), ("starttls", False),
                                                ("none", True)])
def test_stls_is_offered_only_on_a_starttls_listener_with_certificates(stack, tls, certificates):
    client = stack.pop3(tls, certificates=certificates)
    assert b"STLS" not in lines(client.send("CAPA"))
    assert client.send("STLS") in (b"-ERR Unknown command\r\n", b"-ERR TLS is already active\r\n")


def test_capa_after_login_drops_the_login_capabilities(stack, ann):
    caps = lines(logged_in(stack).send("CAPA"))
    assert b"TOP" in caps and b"USER" not in caps and b"STLS" not in caps


# --- login and its refusals ---------------------------------------------------------------

def test_user_pass_opens_the_maildrop(stack, ann):
    client = stack.pop3()
    assert client.send(f"USER {ANN}") == b"+OK send PASS\r\n"
    assert client.send("PASS secret") == b"+OK ann@example.test has 3 messages\r\n"


@pytest.mark.parametrize("user, password", [(ANN, "wrong"), ("bob@example.test", "secret")])
def test_a_wrong_password_or_unknown_user_gets_the_same_auth_refusal(stack, ann, user, password):
    client = stack.pop3()
    assert client.send(f"USER {user}", f"PASS {password}") == (
        b"+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n")
    assert client.send("STAT") == b"-ERR Command not valid in this state\r\n"


def test_pass_without_user_and_empty_user_are_refused(stack, ann):
    client = stack.pop3()
    assert client.send("PASS secret") == b"-ERR Send USER first\r\n"
    assert client.send("USER") == b"-ERR Bad argument\r\n"


def test_transaction_commands_before_login_and_unknown_ones_are_refused(stack, ann):
    client = stack.pop3()
    assert client.send("RETR 1") == b"-ERR Command not valid in this state\r\n"
    assert client.send("XYZZY") == b"-ERR Unknown command\r\n"
    assert client.send("APOP ann x").startswith(b"-ERR APOP is not supported")
    assert client.send("USER ann@example.test") == b"+OK send PASS\r\n"      # still usable


def test_login_commands_after_login_are_not_valid(stack, ann):
    client = logged_in(stack)
    assert client.send(f"USER {ANN}") == b"-ERR Command not valid in this state\r\n"


def test_auth_plain_with_an_initial_response_logs_in(stack, ann):
    client = stack.pop3()
    assert client.send(f"AUTH PLAIN {plain('', ANN, 'secret')}") == (
        b"+OK ann@example.test has 3 messages\r\n")


def test_auth_plain_as_another_identity_is_refused(stack, ann):
    stack.add_account("bob@example.test", "other")
    client = stack.pop3()
    assert client.send("AUTH PLAIN", plain("bob@example.test", ANN, "secret")) == (
        b"+ \r\n-ERR [AUTH] Authentication failed\r\n")


def test_a_second_session_finds_the_maildrop_in_use(stack, ann):
    logged_in(stack)
    second = stack.pop3()
    assert second.send(f"USER {ANN}", "PASS secret") == (
        b"+OK send PASS\r\n-ERR [IN-USE] Mailbox is locked by another session\r\n")


def test_after_the_tls_cutover_a_password_needs_tls(template, tmp_path):
    stack = sessions.Stack(template, tmp_path, tls_cutover=sessions.START - timedelta(days=1))
    try:
        stack.add_account(ANN, "secret")
        client = stack.pop3()
        caps = lines(client.send("CAPA"))
        assert b"USER" not in caps and b"STLS" in caps
        assert client.send(f"USER {ANN}").startswith(b"-ERR [AUTH] Plaintext login is disabled")
        assert client.send("STLS") == b"+OK Begin TLS negotiation\r\n"
        assert client.transport.tls_started_with is sessions.TLS_OPTIONS
        assert client.send(f"USER {ANN}", "PASS secret") == (
            b"+OK send PASS\r\n+OK ann@example.test has 0 messages\r\n")
    finally:
        stack.close()


def test_stls_drops_commands_pipelined_behind_it(stack, ann):
    """RFC 2595 §4 / CVE-2011-0411: what came in cleartext must not run under TLS."""
    client = stack.pop3()
    assert client.send("STLS", f"USER {ANN}") == b"+OK Begin TLS negotiation\r\n"
    assert client.send("PASS secret") == b"-ERR Send USER first\r\n"
    assert client.send("STLS") == b"-ERR TLS is already active\r\n"


def test_no_login_within_the_login_timeout_closes(stack):
    client = stack.pop3()
    stack.clock.advance(59)
    assert not client.closed
    stack.clock.advance(2)
    assert client.take() == b"-ERR No login in time, closing connection\r\n" and client.closed


# --- the TRANSACTION state (RFC 1939 §5) --------------------------------------------------

def test_stat_list_and_uidl_describe_the_snapshot(stack, ann):
    client = logged_in(stack)
    sizes = [len(ONE), len(TWO), len(THREE)]
    guids = [m.guid for m in stack.inbox(ann)]
    assert client.send("STAT") == f"+OK 3 {sum(sizes)}\r\n".encode()
    assert lines(client.send("LIST")) == [b"+OK 3 messages"] + [
        f"{n} {size}".encode() for n, size in enumerate(sizes, 1)] + [b"."]
    assert client.send("LIST 2") == f"+OK 2 {len(TWO)}\r\n".encode()
    assert lines(client.send("UIDL"))[1:-1] == [f"{n} {g}".encode() for n, g in
                                                enumerate(guids, 1)]
    assert client.send("UIDL 3") == f"+OK 3 {guids[2]}\r\n".encode()


def test_retr_sends_the_message_dot_stuffed_and_terminated(stack, ann):
    client = logged_in(stack)
    assert client.send("RETR 1") == (
        f"+OK {len(ONE)} octets\r\n".encode() + b"Subject: one\r\n\r\nhello\r\n"
        b"..dot line\r\n.\r\n")


def test_top_sends_the_header_and_the_first_lines(stack, ann):
    client = logged_in(stack)
    assert client.send("TOP 2 0").endswith(b"\r\nX-Two: yes\r\n\r\n.\r\n")
    assert client.send("TOP 2 2").endswith(b"X-Two: yes\r\n\r\nfirst\r\nsecond\r\n.\r\n")


@pytest.mark.parametrize("command, reply", [
    ("RETR 9", b"-ERR No such message\r\n"), ("RETR 0", b"-ERR No such message\r\n"),
    ("DELE abc", b"-ERR Bad argument\r\n"), ("LIST x", b"-ERR Bad argument\r\n"),
    ("TOP 1", b"-ERR Bad argument\r\n"), ("TOP 1 x", b"-ERR Bad argument\r\n")])
def test_a_bad_message_argument_is_refused_and_the_session_goes_on(stack, ann, command, reply):
    client = logged_in(stack)
    assert client.send(command) == reply
    assert client.send("NOOP") == b"+OK\r\n"


def test_dele_hides_the_message_until_rset(stack, ann):
    client = logged_in(stack)
    assert client.send("DELE 2") == b"+OK message 2 deleted\r\n"
    assert client.send("STAT") == f"+OK 2 {len(ONE) + len(THREE)}\r\n".encode()
    assert lines(client.send("LIST"))[1:-1] == [f"1 {len(ONE)}".encode(),
                                                f"3 {len(THREE)}".encode()]
    assert client.send("RETR 2") == b"-ERR Message is deleted\r\n"
    assert client.send("DELE 2") == b"-ERR Message is deleted\r\n"
    assert client.send("RSET").startswith(b"+OK 3 ")
    assert client.send("LIST 2") == f"+OK 2 {len(TWO)}\r\n".encode()


def test_quit_commits_the_deletions_before_its_ok(stack, ann):
    client = logged_in(stack)
    client.send("DELE 1", "DELE 3")
    stored_when_written = []
    write = client.transport.write

    def spy(data):
        stored_when_written.append(len(stack.inbox(ann)))
        write(data)
    client.transport.write = spy
    assert client.send("QUIT") == b"+OK 2 messages deleted, signing off\r\n"
    assert stored_when_written == [1] and client.closed
    assert [m.size for m in stack.inbox(ann)] == [len(TWO)]


def test_quit_when_the_store_fails_deletes_nothing_and_says_so(stack, ann):
    client = logged_in(stack)
    client.send("DELE 1")
    stack.pool.failing.add(maildrop.close_maildrop)
    assert client.send("QUIT") == b"-ERR [SYS/TEMP] Temporary server problem; try again later\r\n"
    assert client.closed and len(stack.inbox(ann)) == 3


def test_a_dropped_connection_deletes_nothing_and_frees_the_maildrop(stack, ann):
    client = logged_in(stack)
    client.send("DELE 1")
    client.drop()
    assert len(stack.inbox(ann)) == 3
    logged_in(stack)                      # the lock is free for the next session


def test_a_store_failure_during_retr_is_a_temporary_error(stack, ann):
    client = logged_in(stack)
    stack.pool.failing.add(maildrop.bodies)
    assert client.send("RETR 1") == b"-ERR [SYS/TEMP] Temporary server problem; try again later\r\n"
    stack.pool.failing.clear()
    assert client.send("RETR 1").startswith(f"+OK {len(ONE)} octets".encode())


def test_the_lease_is_renewed_by_a_command_after_half_the_idle_timeout(stack, ann):
    client = logged_in(stack)
    renewed = []
    real = MaildropLease.renew

    def spy(lease):
        result = real(lease)
        renewed.append(result is not None)
        return result
    client.protocol.lease.renew = lambda: spy(client.protocol.lease)
    client.send("NOOP")
    stack.clock.advance(301)
    client.send("NOOP")
    assert renewed == [False, True]


def test_quit_before_login_just_says_goodbye(stack):
    client = stack.pop3()
    assert client.send("QUIT") == b"+OK mailstack POP3 server signing off\r\n"
    assert client.closed


# --- RETR from the read-ahead (issue 16) ------------------------------------------------

def many(n: int) -> list[bytes]:
    """Messages whose bodies start lines with dots and whose last line has no CRLF."""
    return [f"Subject: {i}\r\n\r\n.line {i}\r\nbody\r\n..{i}".encode() for i in range(n)]


def retr_reply(message: bytes) -> bytes:
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    end = b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n"
    return f"+OK {len(message)} octets\r\n".encode() + stuffed + end


def test_pipelined_retr_of_every_message_across_read_ahead_batches(stack):
    account = stack.add_account(ANN, "secret")
    messages = many(150)                  # more than two batches of 64
    stack.deliver(account, *messages)
    client = stack.pop3()
    client.send(f"USER {ANN}", "PASS secret")
    reads, sent_before = [], []
    real_read = stack.db.read

    def read(fn, *args, **kwargs):
        reads.append(len(args[1]))
        sent_before.append(client.transport.value().count(b" octets\r\n"))
        return real_read(fn, *args, **kwargs)
    stack.db.read = read
    assert client.send("DELE 70") == b"+OK message 70 deleted\r\n"
    wire = client.send(*[f"RETR {n}" for n in range(1, 151)])
    expected = b"".join(b"-ERR Message is deleted\r\n" if n == 70 else retr_reply(m)
                        for n, m in enumerate(messages, 1))
    assert wire == expected
    assert len(reads) <= 4 and sum(reads) == 149     # each message read once, in batches
    # Each batch after the first was asked for while half of the one before was unsent.
    assert sent_before == [0, 32, 96]


def test_a_retr_found_in_the_read_ahead_is_answered_at_once(stack):
    account = stack.add_account(ANN, "secret")
    stack.deliver(account, *many(5))
    client = logged_in_as(stack, 5)
    assert client.send("RETR 1").startswith(b"+OK")
    session = client.protocol
    # The store is not asked again, and no Deferred makes the command queue wait.
    stack.pool.failing.add(maildrop.bodies)
    assert session.trans_RETR("2") is None
    assert client.take() == retr_reply(many(5)[1])


def test_a_failed_read_ahead_is_read_again_by_the_retr_that_needs_it(stack):
    account = stack.add_account(ANN, "secret")
    stack.deliver(account, *many(130))
    client = logged_in_as(stack, 130)
    client.send(*[f"RETR {n}" for n in range(1, 32)])
    stack.pool.failing.add(maildrop.bodies)
    # Half of the first batch sent: the next one is read ahead, and that read fails.
    assert client.send("RETR 32") == retr_reply(many(130)[31])
    client.send(*[f"RETR {n}" for n in range(33, 65)])
    assert client.send("RETR 65").startswith(b"-ERR [SYS/TEMP] ")
    stack.pool.failing.clear()
    assert client.send("RETR 65") == retr_reply(many(130)[64])


def test_top_still_sends_the_unstuffed_header_count_after_a_retr(stack, ann):
    client = logged_in(stack)
    client.send("RETR 1")
    top = b"Subject: one\r\n\r\nhello\r\n"
    assert client.send("TOP 1 1") == f"+OK {len(top)} octets\r\n".encode() + top + b".\r\n"


def logged_in_as(stack, n: int) -> sessions.Client:
    client = stack.pop3()
    assert client.send(f"USER {ANN}", "PASS secret").endswith(f" has {n} messages\r\n".encode())
    return client


# --- what is durable (issue 16) ------------------------------------------------------------

def test_quit_deletions_are_durable_and_the_lock_alone_is_not(stack, ann):
    durable, volatile = [], []
    real_run, real_volatile = stack.db.run, stack.db.run_volatile
    stack.db.run = lambda fn, *a, **k: (durable.append(fn.__name__), real_run(fn, *a, **k))[1]
    stack.db.run_volatile = lambda fn, *a, **k: (volatile.append(fn.__name__),
                                                 real_volatile(fn, *a, **k))[1]
    client = logged_in(stack)
    client.send("QUIT")
    client = logged_in(stack)
    client.send("DELE 1", "QUIT")
    # A login is looked up in a durable transaction that records it when the password was
    # verified recently (the second); the first is recorded once its hash is verified.
    assert durable == ["_cached_login", "record", "_cached_login", "close_maildrop"]
    assert volatile == ["open_maildrop", "close_maildrop", "open_maildrop"]
    assert len(stack.inbox(ann)) == 2


def test_messages_of_every_size_between_small_ones_come_out_whole_and_in_order(stack):
    account = stack.add_account(ANN, "secret")
    middle = b"Subject: middle\r\n\r\n" + b".dotted line of the middle one\r\n" * 3300   # ~100 KB
    large = b"Subject: large\r\n\r\n" + b".dotted line of the large one\r\n" * 10000    # ~300 KB
    messages = [many(1)[0], middle, large, many(2)[1]]
    stack.deliver(account, *messages)
    client = logged_in_as(stack, 4)
    wire = client.send(*[f"RETR {n}" for n in range(1, 5)])
    assert wire == b"".join(retr_reply(m) for m in messages)
