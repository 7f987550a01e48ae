"""``mailstack trace`` against a running server (issue 15, item 16): real smtplib, poplib
and imaplib clients, over STARTTLS and implicit TLS; the trace files hold the commands and
replies, never the password or the message, and a trace ends by itself."""

from __future__ import annotations

import imaplib
import json
import poplib
import smtplib
import stat
import time
from pathlib import Path

import pytest

from mailstack.protocols.traces import Traces
from tests.support.cli import Cli
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "alice's trace password"
WRONG = "a wrong guess of hers"
BODY_TEXT = "the body text no trace may hold"
LISTENERS = [
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "none"},
    {"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
]
MESSAGE = (f"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: hush\r\n\r\n"
           f"{BODY_TEXT}\r\n")


@pytest.fixture
def server(make_server, db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(Traces, "POLL_SECONDS", 0.2)
    server = make_server(listeners=LISTENERS)
    server.add_account("alice@example.test", PASSWORD)
    server.add_account("bob@example.test", PASSWORD)
    server.cli_config = tmp_path / "cli.toml"
    server.cli_config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
                                 f'[database]\nurl = "{db_url}"\n')
    server.traces = Path(tmp_path / "state" / "traces")
    return server


def mailstack(server, *args):
    return Cli(server.cli_config)(*args)


def node_traces(server) -> Traces:
    return next(s for s in server.root if isinstance(s, Traces))


def trace_files(server, name: str) -> list[Path]:
    return sorted((server.traces / name).glob("*.log"))


def trace_text(server, name: str) -> str:
    time.sleep(3 * Traces.POLL_SECONDS)            # a poll writes what is pending
    return "\n".join(p.read_text() for p in trace_files(server, name))


def test_trace_of_an_address_records_every_protocol_masked_and_ends_by_itself(server):
    started = mailstack(server, "trace", "Alice@Example.TEST", "--minutes", "5",
                        "--reason", "ticket 7")
    assert started.returncode == 0, started.stderr
    assert "tracing alice@example.test until" in started.stdout
    eventually(lambda: "alice@example.test" in node_traces(server).addresses)

    with pytest.raises(imaplib.IMAP4.error):         # why can't she log in?
        imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"),
                          ssl_context=server.context).login("alice@example.test", WRONG)
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as smtp:
        smtp.starttls(context=server.context)
        smtp.login("alice@example.test", PASSWORD)
        smtp.sendmail("alice@example.test", ["alice@example.test"], MESSAGE.encode())
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    assert BODY_TEXT.encode() in b"\r\n".join(pop.retr(1)[1])
    pop.quit()
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    imap.starttls(ssl_context=server.context)
    imap.login("alice@example.test", PASSWORD)
    imap.select("INBOX")
    assert BODY_TEXT.encode() in imap.fetch("1", "(BODY.PEEK[])")[1][0][1]
    imap.append("INBOX", None, None, MESSAGE.replace("hush", "second").encode())
    imap.logout()
    bob = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    bob.login("bob@example.test", PASSWORD)          # someone else: not traced
    bob.logout()

    files = trace_files(server, "alice@example.test")
    assert sorted(p.name.split("-")[-2] for p in files) == [
        "imap", "imap", "pop3", "submission"]
    text = trace_text(server, "alice@example.test")
    for shown in ("LOGIN alice@example.test [password masked]", "NO [AUTHENTICATIONFAILED]",
                  "C: AUTH PLAIN [initial response:", "S: 235", "FROM:<alice@example.test>",
                  "C: [message content:", "C: USER alice@example.test",
                  "C: PASS [password: 22 octets, masked]", "C: RETR 1", "S: [message content:",
                  "STARTTLS", "APPEND INBOX", "octets, masked]", "BODY.PEEK[]"):
        assert shown in text, shown
    for secret in (PASSWORD, WRONG, BODY_TEXT, "hush", "second", "bob@example.test"):
        assert secret not in text, secret
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE((server.traces / "alice@example.test").stat().st_mode) == 0o700

    listed = json.loads(mailstack(server, "trace", "--list", "--format", "json").stdout)
    assert [(t["target"], t["state"], t["reason"], len(t["files"])) for t in listed] == [
        ("alice@example.test", "active", "ticket 7", 4)]

    server.advance(6 * 60)      # no command: the time is up (the CLI's clock ran ahead)
    eventually(lambda: not node_traces(server).addresses)
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    pop.quit()
    time.sleep(3 * Traces.POLL_SECONDS)
    assert len(trace_files(server, "alice@example.test")) == 4


def test_trace_of_an_ip_starts_at_the_banner_and_off_ends_it(server):
    assert mailstack(server, "trace", "127.0.0.2").returncode == 0
    eventually(lambda: "127.0.0.2" in node_traces(server).networks)
    traced = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10,
                          source_address=("127.0.0.2", 0))
    traced.ehlo("traced.example")
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as other:
        other.ehlo("other.example")                # from 127.0.0.1: not traced
    off = mailstack(server, "trace", "--off", "127.0.0.2")
    assert off.returncode == 0, off.stderr
    eventually(lambda: not node_traces(server).networks)
    traced.noop()
    traced.quit()
    (path,) = trace_files(server, "127.0.0.2")
    lines = path.read_text().splitlines()
    assert " S: 220 " in lines[1] and any(line.endswith("C: ehlo traced.example")
                                          for line in lines)
    assert lines[-1] == "# trace ended" and not any("NOOP" in line for line in lines)
    assert [p.name for p in server.traces.iterdir()] == ["127.0.0.2"]
    assert mailstack(server, "trace", "--off", "127.0.0.2").returncode == 1


def test_trace_refuses_what_is_neither_an_address_nor_an_ip(server):
    bad = mailstack(server, "trace", "not an address")
    assert bad.returncode == 1 and "neither an address nor an IP" in bad.stderr
    assert mailstack(server, "trace", "alice@example.test", "--minutes", "100000").returncode == 2


def test_every_node_sharing_the_database_traces_into_its_own_state_dir(server, make_server,
                                                                        tmp_path):
    second = make_server(listeners=LISTENERS, server={"state_dir": str(tmp_path / "node2")})
    assert mailstack(server, "trace", "127.0.0.3", "--minutes", "2").returncode == 0
    eventually(lambda: "127.0.0.3" in node_traces(server).networks
               and "127.0.0.3" in node_traces(second).networks)
    for node in (server, second):
        with smtplib.SMTP("127.0.0.1", node.port("submission"), timeout=10,
                          source_address=("127.0.0.3", 0)) as smtp:
            smtp.ehlo("node.example")
    time.sleep(3 * Traces.POLL_SECONDS)
    first_files = trace_files(server, "127.0.0.3")
    second_files = sorted((tmp_path / "node2" / "traces" / "127.0.0.3").glob("*.log"))
    assert len(first_files) == 1 and len(second_files) == 1
    assert "C: ehlo node.example" in second_files[0].read_text()
