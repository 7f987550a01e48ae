"""Protocol traces on a node (``protocols/traces.py``): which connections are traced, from
when, where the file goes, and that a trace ends by itself on business time."""

from __future__ import annotations

import base64
import stat
from datetime import timedelta

import pytest

from mailstack.protocols.traces import Traces
from mailstack.store import traces as stored
from tests.support import sessions

PASSWORD = "ann's long password"


@pytest.fixture
def ann(stack) -> int:
    return stack.add_account("ann@example.test", PASSWORD)


@pytest.fixture
def traces(stack, tmp_path):
    node = Traces(stack.db, stack.clock, stack.clock, tmp_path / "state" / "traces", "node-1")
    stack.limits.traces = node
    return node


def start(stack, traces, target: str, minutes: int = 10) -> None:
    stack.db.run_sync(stored.start, stored.normalise_target(target), stack.now(),
                      stack.now() + timedelta(minutes=minutes))
    traces.poll()


def files(traces, target: str) -> list:
    return sorted((traces.directory / stored.directory_name(target)).glob("*.log"))


def text_of(traces, target: str) -> str:
    traces.expire()                   # what a poll does: pending records are written
    (path,) = files(traces, target)
    return path.read_text()


def wrapped(client) -> bool:
    return "dataReceived" in vars(client.protocol) or "write" in vars(client.transport)


def test_no_trace_no_wrapping_and_no_file(stack, traces, ann):
    client = stack.pop3()
    client.send("USER ann@example.test", f"PASS {PASSWORD}")
    assert not wrapped(client) and client.protocol.ticket.tap is None
    assert not traces.directory.exists()


def test_a_failed_login_of_a_traced_address_is_written_with_what_led_to_it(stack, traces, ann):
    start(stack, traces, "Ann@Example.test")
    client = stack.pop3()
    client.send("CAPA")
    client.send("USER ann@example.test", "PASS wrong-password")
    text = text_of(traces, "ann@example.test")
    assert "connection from 192.0.2.10" in text
    assert " S: +OK" in text.splitlines()[2]            # the banner, kept before the login
    assert "C: CAPA" in text and "C: USER ann@example.test" in text
    assert "C: PASS [password: 14 octets, masked]" in text and "S: -ERR [AUTH]" in text
    assert "wrong-password" not in text


def test_a_login_as_someone_else_ends_the_watching(stack, traces, ann):
    stack.add_account("bob@example.test", PASSWORD)
    start(stack, traces, "ann@example.test")
    client = stack.pop3()
    assert wrapped(client)
    client.send("USER bob@example.test", f"PASS {PASSWORD}")
    assert not wrapped(client) and not traces.taps
    assert not traces.directory.exists()


def test_imap_login_then_append_and_fetch_keep_commands_not_the_message(stack, traces, ann):
    start(stack, traces, "ann@example.test")
    client = stack.imap(tls="none")
    message = b"Subject: secret plans\r\n\r\nthe body nobody may read\r\n"
    client.send(f'a1 LOGIN ann@example.test "{PASSWORD}"')
    client.send(b"a2 APPEND INBOX {%d+}\r\n" % len(message) + message)
    client.send("a3 SELECT INBOX", "a4 FETCH 1 BODY[]")
    text = text_of(traces, "ann@example.test")
    assert "C: a1 LOGIN ann@example.test [password masked]" in text
    assert f"[literal: {len(message)} octets, masked]" in text
    assert "S: a4 OK" in text
    assert PASSWORD not in text and b"nobody" not in text.encode() and "secret plans" not in text


def test_an_ip_trace_starts_at_the_banner_and_ends_by_itself(stack, traces, ann):
    start(stack, traces, sessions.CLIENT_IP, minutes=5)
    client = stack.pop3()
    sasl = base64.b64encode(f"\0ann@example.test\0{PASSWORD}".encode()).decode()
    client.send(f"AUTH PLAIN {sasl}")
    client.send("STAT")
    stack.clock.advance(5 * 60)
    traces.poll()                                     # the time is up: no command needed
    (path,) = files(traces, sessions.CLIENT_IP)
    text = path.read_text()
    assert text.splitlines()[1].endswith(" S: +OK mailstack POP3 server ready")
    assert "C: STAT" in text and text.endswith("# trace ended\n")
    assert sasl not in text and PASSWORD not in text
    assert not wrapped(client)
    client.send("NOOP")                               # no longer traced
    assert "NOOP" not in path.read_text()
    later = stack.pop3()
    assert not wrapped(later) and files(traces, sessions.CLIENT_IP) == [path]


def test_trace_off_ends_it_at_the_next_poll(stack, traces, ann):
    start(stack, traces, sessions.CLIENT_IP)
    client = stack.pop3()
    stack.db.run_sync(stored.stop, sessions.CLIENT_IP, stack.now())
    traces.poll()
    assert not wrapped(client) and files(traces, sessions.CLIENT_IP)[0].read_text().endswith(
        "# trace ended\n")


def test_trace_directory_is_0700_and_files_0600(stack, traces, ann):
    start(stack, traces, sessions.CLIENT_IP)
    client = stack.pop3()
    client.drop()
    (path,) = files(traces, sessions.CLIENT_IP)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(traces.directory.stat().st_mode) == 0o700
    assert path.read_text().endswith("# connection closed\n")


def test_watching_keeps_a_bounded_number_of_records(stack, traces, ann):
    start(stack, traces, "ann@example.test")
    client = stack.pop3()
    for _ in range(200):
        client.send("NOOP")
    assert len(client.protocol.ticket.tap.before) == Traces.BEFORE_LOGIN


# --- the store, on SQLite and PostgreSQL ----------------------------------------------------
def test_store_start_extend_stop_and_active(db):
    from datetime import datetime, timezone
    now = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
    first = db.run_sync(stored.start, "ann@example.test", now, now + timedelta(minutes=5),
                        "ops", "ticket 42")
    assert first.active(now) and first.reason == "ticket 42"
    later = now + timedelta(minutes=1)
    again = db.run_sync(stored.start, "ann@example.test", later, later + timedelta(hours=1))
    assert again.started_at == now and again.until == later + timedelta(hours=1)
    db.run_sync(stored.start, "192.0.2.0/24", now, now + timedelta(minutes=2))
    assert [t.target for t in db.read_sync(stored.active, later)] == ["192.0.2.0/24",
                                                                      "ann@example.test"]
    assert [t.target for t in db.read_sync(stored.active, later + timedelta(minutes=2))] == [
        "ann@example.test"]
    assert db.run_sync(stored.stop, "ann@example.test", later)
    assert not db.run_sync(stored.stop, "ann@example.test", later)
    assert [t.target for t in db.read_sync(stored.active, later)] == ["192.0.2.0/24"]
    assert len(db.read_sync(stored.listing)) == 2


@pytest.mark.parametrize("text, target", [
    ("Ann@Example.TEST", "ann@example.test"), ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"), ("2001:db8::1/64", "2001:db8::/64"),
    ("192.0.2.7/32", "192.0.2.7")])
def test_targets_are_normalised(text, target):
    assert stored.normalise_target(text) == target


def test_a_target_directory_name_never_leaves_the_traces_directory():
    assert stored.directory_name("ann@example.test") == "ann@example.test"
    for target in ("2001:db8::/64", "a/b@example.test", "..", ".x@example.test"):
        name = stored.directory_name(target)
        assert "/" not in name and not name.startswith(".") and name != target
