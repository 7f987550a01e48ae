"""Whitehole requests end to end (issue 21, item 3): a sender's server refused on port 25
for a DNSBL listing (served by a DNS server on loopback, as in ``test_antispam.py``) files a
request on the HTTPS page with curl, the bounce built from the reply we actually sent; the
desk approves it with ``mailstack whitelist requests`` (a process); the server then
delivers.  A request for an IP we never refused is answered as such, and a flood of
submissions from one IP meets the per-IP limit (429)."""

from __future__ import annotations

import http.client
import json
import re
import smtplib
import subprocess
from urllib.parse import urlencode

import pytest

from tests.e2e.test_antispam import (  # noqa: F401  (the nameserver fixture)
    CLEAN, LISTED, PASSWORD, antispam_settings, inbox, nameserver, rcpt, smtp_from, toml_for,
)
from tests.support.bounce_styles import STYLES, Bounce
from tests.support.cli import Cli
from tests.support.server import HOSTNAME

pytestmark = pytest.mark.e2e
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "https", "protocol": "http", "port": 0, "tls": "implicit"},
]
SENDER = "bob@sender.test"
FLOODER, NEIGHBOUR = "127.0.0.50", "127.0.0.51"


@pytest.fixture
def desk(make_server, nameserver, db_url, tmp_path):
    settings = antispam_settings()
    server = make_server(listeners=LISTENERS, antispam=settings,
                         dns={"nameservers": [nameserver.address], "timeout": 1},
                         whitehole={"requests_per_minute": 10})
    server.alice = server.add_account("alice@example.test", PASSWORD)
    config = tmp_path / "cli.toml"
    config.write_text(toml_for(db_url, nameserver, settings))
    server.cli = Cli(config)
    return server


def desk_cli(server, *args, ok=True):
    done = server.cli(*args)
    assert (done.returncode == 0) == ok, done.stderr + done.stdout
    return done


def curl_post(server, certs, tmp_path, fields: dict, *, source=None):
    """curl over TLS posts the form (each field --data-urlencode, the bounce from a file)."""
    bounce = tmp_path / "bounce.txt"
    bounce.write_text(fields.pop("bounce"))
    args = ["--data-urlencode", f"bounce@{bounce}"]
    for name, value in fields.items():
        args += ["--data-urlencode", f"{name}={value}"]
    headers = tmp_path / "headers.txt"
    done = subprocess.run(["curl", "-sS", "--cacert", str(certs.ca), "-D", str(headers),
                           "-w", "\n%{http_code}", *(["--interface", source] if source else []),
                           *args, f"https://127.0.0.1:{server.port('https')}/whitehole"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), headers.read_text().lower(), body


def reference(body: str) -> str:
    return re.search(r"filed as <strong>(WH-[A-Z2-9]{8})</strong>", body).group(1)


def test_a_listed_sender_files_a_request_the_desk_approves_and_its_mail_then_arrives(
        desk, certs, tmp_path):
    code, text = rcpt(desk, LISTED, sender=SENDER)
    assert code == 554
    reply = f"{code} {text.decode()}"
    bounce = STYLES["dsn"](Bounce(reply, "alice@example.test", SENDER, desk.now(), mx=HOSTNAME,
                                  mx_ip="127.0.0.1", client_ip=LISTED))
    status, headers, body = curl_post(desk, certs, tmp_path, {
        "bounce": bounce, "ip": LISTED, "contact": "postmaster@sender.test",
        "reason": "invoices to our customer alice; delisting requested at bl.test"})
    assert status == 200 and "default-src 'none'" in headers
    ref = reference(body)
    assert "What happens next" in body and f"refused mail from {LISTED}" in body
    assert f'<a href="https://bl2.test/lookup?ip={LISTED}">' in body   # where to get delisted

    listed = json.loads(desk_cli(desk, "whitelist", "requests", "list", "--format", "json").stdout)
    assert [(r["ref"], r["ip"], r["verdict"], r["outcome"], r["state"]) for r in listed] == [
        (ref, LISTED, "dnsbl", "eligible", "open")]
    shown = json.loads(desk_cli(desk, "whitelist", "requests", "show", ref.lower(),
                                "--format", "json").stdout)
    # broken.test lists 127.0.0.1: switched off, so not asked
    assert {d["zone"]: d["state"] for d in shown["findings"]["dnsbl"]} == {
        "bl.test": "listed", "bl2.test": "listed"}
    assert shown["findings"]["refusals"][0]["check"] == "dnsbl"
    assert shown["bounce"] == bounce.strip()
    text = desk_cli(desk, "whitelist", "requests", "show", ref).stdout
    assert "the bounce says: refused: the sending server is on a public blocklist" in text
    assert "  - bl.test: listed" in text and "  | Final-Recipient: rfc822; alice@example.test" in text

    approved = desk_cli(desk, "whitelist", "requests", "approve", ref, "--note", "TICKET-9",
                        "--review-days", "30").stdout
    assert f"{ref} approved: {LISTED}/32 whitelisted" in approved
    (entry,) = json.loads(desk_cli(desk, "whitelist", "list", "--format", "json").stdout)
    assert entry["origin"] == f"request {ref}" and entry["review"]
    table = desk_cli(desk, "whitelist", "list").stdout
    assert "ORIGIN" in table and f"request {ref}" in table

    with smtp_from(desk, LISTED) as client:
        refused = client.sendmail(SENDER, ["alice@example.test"], b"Subject: hi\r\n\r\nagain\r\n")
    assert refused == {}
    assert inbox(desk, desk.alice) == 1
    desk_cli(desk, "whitelist", "requests", "deny", ref, ok=False)     # decided already


def test_a_request_for_an_ip_we_never_refused_is_answered_as_such(desk, certs, tmp_path):
    reply = "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using other.test"
    bounce = STYLES["postfix"](Bounce(reply, "alice@example.test", SENDER, desk.now(),
                                      client_ip=CLEAN))
    status, _, body = curl_post(desk, certs, tmp_path, {
        "bounce": bounce + "\x1b]0;owned\x07\x1b[2J", "ip": CLEAN,
        "contact": "admin@sender.test", "reason": "please"})
    assert status == 200
    ref = reference(body)
    assert "cannot succeed" in body and f"no record of refusing mail from {CLEAN}" in body
    assert json.loads(desk_cli(desk, "whitelist", "requests", "list", "--format",
                               "json").stdout) == []
    (answered,) = json.loads(desk_cli(desk, "whitelist", "requests", "list", "--all",
                                      "--format", "json").stdout)
    assert (answered["ref"], answered["outcome"], answered["state"]) == (
        ref, "no_refusal", "answered")
    shown = desk_cli(desk, "whitelist", "requests", "show", ref).stdout    # the desk's terminal
    assert "\x1b" not in shown and "\\x1b]0;owned\\x07\\x1b[2J" in shown
    denied = desk_cli(desk, "whitelist", "requests", "approve", ref, ok=False)
    assert "nothing to whitelist" in denied.stderr
    assert json.loads(desk_cli(desk, "whitelist", "list", "--format", "json").stdout) == []
    status, _, _ = curl_post(desk, certs, tmp_path, {                  # 2 MB: not kept
        "bounce": "x" * 2_000_000, "ip": CLEAN, "contact": "a@sender.test", "reason": "r"})
    assert status == 413


def post_from(server, context, source: str, form: bytes):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port("https"), context=context,
                                       timeout=20, source_address=(source, 0))
    try:
        conn.request("POST", "/whitehole", form,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("retry-after")
    finally:
        conn.close()


def test_fifty_requests_a_minute_from_one_ip_are_refused_after_the_limit(desk):
    form = urlencode({"bounce": "550 5.7.1 refused", "ip": CLEAN, "contact": "a@sender.test",
                      "reason": "flood"}).encode()
    answers = [post_from(desk, desk.context, FLOODER, form) for _ in range(50)]
    assert [code for code, _ in answers] == [200] * 10 + [429] * 40
    assert all(retry and 1 <= int(retry) <= 60 for _, retry in answers[10:])
    assert post_from(desk, desk.context, NEIGHBOUR, form)[0] == 200    # another IP is not
    listed = json.loads(desk_cli(desk, "whitelist", "requests", "list", "--all",
                                 "--format", "json").stdout)
    assert len(listed) == 11
    desk.advance(60)
    assert post_from(desk, desk.context, FLOODER, form)[0] == 200
