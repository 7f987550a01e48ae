"""``mailstack explain`` on bounces of real refusals: the running MX refuses smtplib clients
(DNSBL and PTR served by a DNS server on loopback, as in ``test_antispam.py``), a bounce is
written around the reply it sent, and the command, run as a process, names the refusal."""

from __future__ import annotations

import json
import smtplib
import socket
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import directory
from tests.e2e.test_antispam import (  # noqa: F401  (fixtures)
    CLEAN, COMPLAINED, HARVESTER, LISTED, NO_PTR, TRAP_HITTER, mx, nameserver, rcpt, smtp_from,
)
from tests.support.bounce_styles import STYLES, Bounce
from tests.support.server import HOSTNAME

pytestmark = pytest.mark.e2e
SENDER = "bob@sender.test"


def explain(server, tmp_path, style, reply, recipient, client_ip, *extra, runner=None):
    bounce = Bounce(reply, recipient, SENDER, server.now(), mx=HOSTNAME, mx_ip="127.0.0.1",
                    client_ip=client_ip)
    path = tmp_path / f"{style}.eml"
    path.write_text(STYLES[style](bounce))
    at = server.now().isoformat(timespec="seconds")
    done = (runner or server.cli)("explain", str(path), "--at", at, "--format", "json", *extra)
    return json.loads(done.stdout)


def reply_of(code, text) -> str:
    return f"{code} {text.decode()}"


@pytest.mark.parametrize("style, ip, recipient, kind, words", [
    ("dsn", LISTED, "alice@example.test", "dnsbl", "delisting"),
    ("postfix", NO_PTR, "alice@example.test", "no_ptr", "PTR record"),
    ("exim", CLEAN, "alcie@example.test", "unknown_user", "typing mistake"),
    ("qmail", CLEAN, "victim@remote.test", "relay_denied", "587"),
])
def test_explain_names_a_refusal_the_mx_just_made(mx, tmp_path, style, ip, recipient, kind, words):
    code, text = rcpt(mx, ip, recipient=recipient, sender=SENDER)
    assert code >= 500
    found = explain(mx, tmp_path, style, reply_of(code, text), recipient, ip)
    ref = text.decode().rsplit("(ref ", 1)[1].rstrip(")")
    assert (found["verdict"], found["matched_ref"]) == (kind, ref)
    assert words in found["advice"]["sender"] + found["why"]
    assert any(ip in e for e in found["evidence"])
    if kind == "unknown_user":
        assert found["for_desk"] == ["did you mean alice@example.test? (an existing address of "
                                     "example.test)"]
        assert "alice@" not in text.decode()            # the reply itself never suggests


def test_explain_a_spam_trap_block_and_when_it_ends(mx, tmp_path):
    with smtp_from(mx, TRAP_HITTER) as client:
        client.sendmail("spam@sender.test", ["trap@example.test"], b"Subject: buy\r\n\r\nx\r\n")
    code, text = rcpt(mx, TRAP_HITTER, sender=SENDER)
    found = explain(mx, tmp_path, "exchange", reply_of(code, text), "alice@example.test",
                    TRAP_HITTER)
    assert found["verdict"] == "spam_trap" and found["in_force"] == "yes"
    until = datetime.fromisoformat(found["until"])
    assert until - mx.now() > timedelta(days=1)
    assert "spam trap hit: trap@example.test" in " ".join(found["evidence"])
    mx.advance(3 * 86400)
    found = explain(mx, tmp_path, "exchange", reply_of(code, text), "alice@example.test",
                    TRAP_HITTER)
    assert found["in_force"] == "no"


def test_explain_a_complaint_block(mx, tmp_path):
    for n in range(3):
        mx.cli("complaint", "add", COMPLAINED, "--reason", f"spam report {n}")
    code, text = rcpt(mx, COMPLAINED, sender=SENDER)
    found = explain(mx, tmp_path, "gmail", reply_of(code, text), "alice@example.test", COMPLAINED)
    assert found["verdict"] == "complaints" and found["in_force"] == "yes"
    assert "3 complaints" in found["why"]


def test_explain_a_harvester_that_never_got_a_banner(mx, tmp_path):
    with smtp_from(mx, HARVESTER) as client:
        client.mail("guess@sender.test")
        for n in range(5):
            client.rcpt(f"guess{n}@example.test")
    sock = socket.create_connection(("127.0.0.1", mx.port("smtp")), timeout=10,
                                    source_address=(HARVESTER, 0))
    assert sock.recv(100) == b""
    sock.close()
    found = explain(mx, tmp_path, "dsn", None, "alice@example.test", HARVESTER)
    assert found["verdict"] == "harvest" and found["in_force"] == "yes", found
    assert found["found"]["client_ip"] == HARVESTER
    pasted = explain(mx, tmp_path, "pasted", None, "alice@example.test", HARVESTER,
                     "--ip", HARVESTER)
    assert pasted["verdict"] == "harvest"
    unknown = explain(mx, tmp_path, "pasted", None, "alice@example.test", HARVESTER)
    assert unknown["verdict"] == "no_connection"
    assert "the sending server's IP" in unknown["missing"]


def test_explain_a_full_mailbox(mx, tmp_path):
    mx.db(directory.set_quota, "alice@example.test", 1000)
    with smtp_from(mx, CLEAN) as client:
        client.mail(SENDER, ["SIZE=50000"])
        code, text = client.rcpt("alice@example.test")
    assert code == 452
    found = explain(mx, tmp_path, "forwarded", reply_of(code, text), "alice@example.test", CLEAN)
    assert found["verdict"] == "over_quota" and "Delete or move old mail" in found["advice"]["customer"]


def test_explain_text_output_reads_as_a_letter(mx, tmp_path):
    code, text = rcpt(mx, LISTED, sender=SENDER)
    bounce = Bounce(reply_of(code, text), "alice@example.test", SENDER, mx.now(), client_ip=LISTED)
    path = tmp_path / "quoted.eml"
    path.write_text(STYLES["quoted"](bounce))
    out = mx.cli("explain", str(path)).stdout
    assert out.startswith("verdict: refused: the sending server is on a public blocklist")
    assert f"{LISTED}, was listed on the public blocklist bl.test" in out
    assert "what the sender should do:" in out and "evidence:" in out
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\xff hello")
    out = mx.cli("explain", str(garbage)).stdout
    assert "not refused by us" in out and "missing from the bounce:" in out


def test_explain_an_op25b_refusal(make_server, cli, tmp_path):
    now = datetime.now(timezone.utc)
    server = make_server(
        listeners=[{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}],
        smtp={"mx_relay": "authenticated"}, submission={"help_url": "https://help.example.test/op25b"},
        migration={"customer_networks": ["127.0.0.64/26"], "op25b_all_from": now - timedelta(days=1),
                   "mx_hosts": ["192.0.2.25"]})
    server.add_account("ann@example.test", "op25b-pw")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=("127.0.0.70", 0)) as c:
        c.starttls(context=server.context)
        c.ehlo("customer-pc")
        c.login("ann@example.test", "op25b-pw")
        c.mail("ann@example.test")
        code, text = c.rcpt("friend@other.test")
    assert code == 554
    found = explain(server, tmp_path, "pasted", reply_of(code, text), "friend@other.test",
                    "127.0.0.70", runner=cli)
    assert found["verdict"] == "op25b"
    assert "https://help.example.test/op25b" in found["advice"]["sender"]


def test_explain_a_refusal_after_the_pop_before_smtp_sunset(make_server, cli, tmp_path):
    from tests.e2e import test_pop_before_smtp as legacy
    server = legacy.start(make_server)
    server.advance(31 * legacy.DAY)
    legacy.pop_login(server, legacy.CUSTOMER, tls=False)
    with legacy.smtp_from(server, "submission", legacy.CUSTOMER) as client:
        client.ehlo("legacy-pc")
        code, text = client.mail("ann@example.test")
    assert code == 530
    found = explain(server, tmp_path, "exim", reply_of(code, text), "bob@remote.test",
                    legacy.CUSTOMER, runner=cli)
    assert found["verdict"] == "sunset" and found["in_force"] == "permanent"
    assert legacy.HELP in found["advice"]["sender"]
