"""Password guessing over POP3 (poplib, STLS) is stopped without locking anyone else out.

Issue 13, item 6: 30 wrong passwords for an account used to refuse its owner from every
address for 15 minutes (one guess a minute, for ever), and everyone behind the attacker's
address too.  Distinct 127.x.y.z source addresses play distinct hosts; business time moves
with ``server.advance``; the delays are shrunk so that 1,000 guesses take seconds.
"""

from __future__ import annotations

import poplib
import socket
import time

import pytest

from mailstack.store import logins

pytestmark = pytest.mark.e2e
PASSWORD = "the owner's password"
STALE = "last year's password"
ATTACKER, OWNER_ELSEWHERE, HOUSEHOLD = "127.0.13.66", "127.0.13.2", "127.0.13.3"
POP_ONLY = {"listeners": [{"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"}]}


class POP3From(poplib.POP3):
    """poplib from a chosen source address (poplib itself has no ``source_address``)."""

    def __init__(self, source: str, host: str, port: int, timeout: float):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


@pytest.fixture
def pop(make_server):
    # The default limits, millisecond delays (the defaults would make 1,000 guesses take
    # minutes of real time).  The guesser keeps one connection for 100 s of business time:
    # the login deadline (tests/e2e/test_connection_limits.py) is lifted so that the
    # throttle, not the deadline, is what stops it here.
    server = make_server(auth={"throttle": {"base_delay": 0.001, "max_delay": 0.002}},
                         pop3={"login_timeout": 3600}, **POP_ONLY)
    for user in ("ann", "bob", "carol"):
        server.add_account(f"{user}@example.test", PASSWORD)
    return server


def connect(server, source: str) -> POP3From:
    client = POP3From(source, "127.0.0.1", server.port("pop3"), timeout=30)
    client.stls(context=server.context)
    return client


def attempt(client: POP3From, user: str, password: str) -> bytes:
    """One USER/PASS: b"+OK…" or the -ERR line (with its RFC 2449 response code)."""
    try:
        client.user(user)
        return client.pass_(password)
    except poplib.error_proto as e:
        return e.args[0]


def log_in(server, source: str, user: str, password: str = PASSWORD) -> bytes:
    client = connect(server, source)
    try:
        return attempt(client, user, password)
    finally:
        client.quit()


def guess(server, source: str, user: str, count: int, advance_every: int = 10) -> list[bytes]:
    client, answers = connect(server, source), []
    for n in range(count):
        answers.append(attempt(client, user, f"guess {n}"))
        if n % advance_every == advance_every - 1:
            server.advance(1)
    client.quit()
    return answers


def bad_password_checks(server, source: str) -> int:
    events = server.db(logins.recent, client_ip=source, limit=5000)
    return sum(1 for e in events if e.reason == "bad-password")


def test_password_guessing_never_locks_the_owner_out_elsewhere(pop):
    answers = guess(pop, ATTACKER, "ann@example.test", 1000)
    assert not any(a.startswith(b"+OK") for a in answers)
    assert log_in(pop, OWNER_ELSEWHERE, "ann@example.test").startswith(b"+OK")
    # The attacker is stopped: only a handful of passwords were ever checked, the rest
    # refused unchecked -- even the right one, from the attacker's address.
    assert bad_password_checks(pop, ATTACKER) <= 10
    assert b"[SYS/TEMP]" in answers[-1]
    assert b"[SYS/TEMP]" in log_in(pop, ATTACKER, "ann@example.test")
    # One guess a minute for an hour keeps neither the owner out nor the attacker in.
    for minute in range(60):
        assert not log_in(pop, ATTACKER, "ann@example.test", f"slow {minute}").startswith(b"+OK")
        if minute % 10 == 0:
            assert log_in(pop, OWNER_ELSEWHERE, "ann@example.test").startswith(b"+OK")
        pop.advance(60)
    assert bad_password_checks(pop, ATTACKER) <= 10 + 60 // 15 * 10


def test_password_guessing_does_not_lock_out_neighbours_on_the_attackers_address(pop):
    assert log_in(pop, ATTACKER, "bob@example.test").startswith(b"+OK")     # polled before
    guess(pop, ATTACKER, "ann@example.test", 1000)
    for user in ("bob@example.test", "carol@example.test"):             # carol: first time here
        started = time.monotonic()
        assert log_in(pop, ATTACKER, user).startswith(b"+OK")
        assert time.monotonic() - started < 3.0                           # at most a short delay


def test_stale_password_on_a_phone_counts_once(pop):
    """The phone retries last year's password every minute for two hours while someone
    guesses the same account elsewhere; once its owner types the new password, it works."""
    phone = []
    for minute in range(120):
        phone.append(log_in(pop, HOUSEHOLD, "ann@example.test", STALE))
        if minute == 30:
            guess(pop, ATTACKER, "ann@example.test", 1000)
        pop.advance(60)
    assert all(b"[AUTH]" in answer for answer in phone), set(phone)   # failed, never refused
    assert log_in(pop, HOUSEHOLD, "ann@example.test").startswith(b"+OK")
