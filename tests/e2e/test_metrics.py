"""What an operator's Prometheus and log shipper see (issue 15, item 17): the metrics
listener scraped with Debian's curl and read by prometheus_client's own parser, and
``mailstack serve --log-format json`` read line by line as JSON."""

from __future__ import annotations

import json
import poplib
import smtplib
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_outbound import overrides, world  # noqa: F401 (a fixture)
from tests.support.cli import Cli, database_config
from tests.support.process import command, config_toml, free_ports, stop, wait_for_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "metrics-test-pw"
BLOCKED = "127.0.0.20"
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "pop3s", "protocol": "pop3", "port": 0, "tls": "implicit"},
    {"name": "metrics", "protocol": "metrics", "port": 0},
]
MESSAGE = b"From: alice@example.test\r\nSubject: counted\r\n\r\nbody\r\n"


@pytest.fixture
def server(make_server, db_url, tmp_path):
    server = make_server(listeners=LISTENERS)
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.cli = Cli(database_config(tmp_path / "cli.toml", db_url)).ok
    return server


def curl(server, path="/metrics"):
    done = subprocess.run(["curl", "-sS", "-w", "\n%{http_code} %{content_type}",
                           f"http://127.0.0.1:{server.port('metrics')}{path}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return body, status


def scrape(server) -> dict:
    """{(sample name, {label: value} as sorted tuple): value} of one scrape."""
    body, status = curl(server)
    assert status.startswith("200 text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_the_endpoint_counts_mail_logins_refusals_sessions_and_latencies(server):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=15) as smtp:
        smtp.sendmail("someone@sender.test", ["alice@example.test"], MESSAGE)
    # Sent to a remote domain through submission: queued, and deferred because no DNS
    # server answers (the test nameserver fails every lookup: tests/support/dns_server.py).
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=15) as sub:
        sub.starttls(context=server.context)
        sub.login("alice@example.test", PASSWORD)
        sub.sendmail("alice@example.test", ["bob@remote.test"], MESSAGE)
    wrong = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=server.context)
    wrong.user("alice@example.test")
    with pytest.raises(poplib.error_proto):
        wrong.pass_("not the password")
    wrong.quit()
    pop = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=server.context)
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    server.cli("block", "add", BLOCKED, "--reason", "metrics test")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(BLOCKED, 0),
                      timeout=15) as smtp:
        smtp.ehlo("blocked.test")
        smtp.mail("spammer@sender.test")
        assert smtp.rcpt("alice@example.test")[0] >= 500

    deferred = ("mailstack_outbound_recipients_total", (("result", "deferred"),))
    eventually(lambda: scrape(server).get(deferred) == 1, 20, "the remote recipient deferred")
    server.advance(90)                  # business time: the queued message is 90 s old
    samples = scrape(server)            # while the POP3 session is still open
    pop.quit()

    assert value(samples, "mailstack_messages_accepted_total", listener="smtp") == 1
    assert value(samples, "mailstack_messages_accepted_total", listener="submission") == 1
    assert value(samples, "mailstack_smtp_refused_total", listener="smtp",
                 check="blocklist", verdict="reject") == 1
    assert value(samples, "mailstack_logins_total", protocol="pop3", result="bad-password") == 1
    assert value(samples, "mailstack_logins_total", protocol="pop3", result="ok") == 1
    assert value(samples, "mailstack_sessions_open", protocol="pop3") == 1
    assert value(samples, "mailstack_queue_recipients") == 1
    assert value(samples, "mailstack_queue_oldest_age_seconds") == 90
    assert value(samples, "mailstack_outbound_recipients_total", result="delivered") == 0
    assert value(samples, "mailstack_password_hash_seconds_count", operation="verify") >= 2
    assert value(samples, "mailstack_db_transaction_seconds_count", kind="write") > 0
    assert value(samples, "mailstack_db_transaction_seconds_count", kind="read") > 0
    assert value(samples, "process_open_fds") > 0


def test_delivered_and_bounced_recipients_are_counted_after_their_commit(make_server, world):
    ns, sink = world
    server = make_server(**overrides(ns, sink, listeners=[*LISTENERS[1:2], LISTENERS[3]]))
    server.add_account("alice@example.test", PASSWORD)
    sink.state.replies["nobody@remote.test"] = "550 5.1.1 no such user"
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=15) as sub:
        sub.starttls(context=server.context)
        sub.login("alice@example.test", PASSWORD)
        sub.sendmail("alice@example.test", ["x@remote.test", "nobody@remote.test"], MESSAGE)
    bounced = ("mailstack_outbound_recipients_total", (("result", "bounced"),))
    samples = eventually(lambda: (lambda s: s if s.get(bounced) == 1 else None)(scrape(server)),
                         20, "the refused recipient bounced")
    assert value(samples, "mailstack_outbound_recipients_total", result="delivered") == 1
    assert value(samples, "mailstack_outbound_recipients_total", result="deferred") == 0
    assert value(samples, "mailstack_queue_recipients") == 0
    assert value(samples, "mailstack_queue_oldest_age_seconds") == 0


def test_only_the_metrics_path_is_served(server):
    body, status = curl(server, "/")
    assert status.startswith("404")
    assert "mailstack_" not in body


def test_json_log_lines_carry_session_and_client_ip(tmp_path):
    smtp_port, = free_ports(1)
    config = tmp_path / "m.toml"
    config.write_text(config_toml(f"sqlite:///{tmp_path}/j.db", [("smtp", smtp_port, "none")]))
    subprocess.run(command(config, "db", "upgrade"), check=True, capture_output=True)
    subprocess.run(command(config, "domain", "add", "example.test"), capture_output=True)
    subprocess.run(command(config, "account", "add", "carol@example.test", "--password-stdin"),
                   input="carol's password 1", text=True, check=True, capture_output=True)
    proc = subprocess.Popen(command(config, "serve", "--log-format", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(smtp_port, proc)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=15) as client:
            client.sendmail("someone@sender.test", ["carol@example.test"], MESSAGE)
    finally:
        output = stop(proc)
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert records and all({"time", "level", "namespace", "message"} <= set(r) for r in records)
    stored = [r for r in records if "stored" in r["message"] and "session" in r]
    assert stored, output
    assert stored[0]["client_ip"] == "127.0.0.1"
    assert not stored[0]["message"].startswith("[")      # the fields are not in the text
    assert any(r["message"].startswith("listening: ") for r in records)
