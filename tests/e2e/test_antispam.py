"""The MX's anti-spam policy end to end: a real DNS server on loopback serves PTR records
and DNSBL zones, clients bound to distinct 127.x.y.z addresses play the hosts, and the
support desk's commands find every refusal from the customer's facts."""

from __future__ import annotations

import functools
import json
import smtplib
import socket
from datetime import datetime, timezone

import pytest

from mailstack.store import mailboxes, whitelist
from tests.support.cli import Cli
from tests.support.dns_server import DNSServer

pytestmark = pytest.mark.e2e
PASSWORD = "antispam-test-pw"
SMTP_AND_SUBMISSION = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
]
LISTED, LISTED_NO_TXT, ERROR_CODE, BROKEN_ONLY = "127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"
NO_PTR, PTR_FAILS, TRAP_HITTER, HARVESTER = "127.0.0.14", "127.0.0.15", "127.0.0.16", "127.0.0.17"
PARTNER, FAKE_PARTNER, CLEAN, COMPLAINED = "127.0.0.18", "127.0.0.19", "127.0.0.20", "127.0.0.21"
DNSBL_FAILS = "127.0.0.22"


@pytest.fixture
def nameserver():
    ns = DNSServer().start()
    for n in range(10, 30):
        ip = f"127.0.0.{n}"
        if ip not in (NO_PTR, PTR_FAILS, FAKE_PARTNER, PARTNER):
            ns.add_ptr(ip, f"host{n}.sender.test")
    ns.fail("15.0.0.127.in-addr.arpa")
    ns.add_ptr(PARTNER, "mail.partner.test")
    ns.add_ptr(FAKE_PARTNER, "mail.partner.test", forward=False)
    for zone in ("bl.test", "bl2.test", "broken.test"):
        ns.exists(zone)
    ns.add("10.0.0.127.bl.test", "A", "127.0.0.2")
    ns.add("10.0.0.127.bl.test", "TXT", f"Listed for spam, see http://bl.test/q/{LISTED}")
    ns.add("10.0.0.127.bl2.test", "A", "127.0.0.3")
    ns.add("11.0.0.127.bl2.test", "A", "127.0.0.4")
    ns.add("12.0.0.127.bl.test", "A", "127.255.255.254")       # "you are over quota"
    ns.add("1.0.0.127.broken.test", "A", "127.0.0.2")           # lists everyone
    ns.add("13.0.0.127.broken.test", "A", "127.0.0.2")
    ns.add("18.0.0.127.bl.test", "A", "127.0.0.2")              # the partner is listed
    ns.add("19.0.0.127.bl.test", "A", "127.0.0.2")
    ns.fail("22.0.0.127.bl.test")
    yield ns
    ns.stop()


def antispam_settings(**extra):
    settings = {
        "require_ptr": True,
        "dnsbl": [{"zone": "bl.test"}, {"zone": "bl2.test", "reason": "see {lookup_url}",
                                        "lookup_url": "https://bl2.test/lookup?ip={ip}"},
                  {"zone": "broken.test"}],
        "spam_traps": ["trap@example.test"],
        "harvest_threshold": 5, "harvest_window": 600,
        "complaint_threshold": 3,
        "report_address": "abuse@example.test",
    }
    settings.update(extra)
    return settings


def toml_for(db_url, nameserver, settings):
    lines = ['[database]', f'url = "{db_url}"', '[dns]',
             f'nameservers = ["{nameserver.address}"]', 'timeout = 1', '[antispam]']
    for key, value in settings.items():
        if key != "dnsbl":
            lines.append(f"{key} = {json.dumps(value)}")
    for entry in settings["dnsbl"]:
        lines.append("[[antispam.dnsbl]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def mx(make_server, nameserver, db_url, tmp_path):
    settings = antispam_settings()
    server = make_server(listeners=SMTP_AND_SUBMISSION, antispam=settings,
                         dns={"nameservers": [nameserver.address], "timeout": 1})
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.abuse = server.add_account("abuse@example.test", PASSWORD)
    config = tmp_path / "cli.toml"
    config.write_text(toml_for(db_url, nameserver, settings))

    process, in_process = Cli(config), Cli(config, in_process=True)

    def cli(*args, ok=True, runner=process):
        done = runner(*args)
        if ok:
            assert done.returncode == 0, done.stderr
        return done
    server.cli = cli
    # The support desk's tables of lookups run the same commands in this process (``why``
    # and ``dnsbl test`` need a reactor of their own: never in_process).
    server.desk = functools.partial(cli, runner=in_process)
    return server


def smtp_from(server, ip) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(ip, 0), timeout=15)
    client.ehlo(f"client.{ip}.test")
    return client


def rcpt(server, ip, recipient="alice@example.test", sender="someone@sender.test"):
    with smtp_from(server, ip) as client:
        client.mail(sender)
        return client.rcpt(recipient)


def inbox(server, account_id):
    return server.db(lambda conn: len(mailboxes.list_messages(
        conn, mailboxes.require_folder(conn, account_id, "INBOX").id)))


def test_dnsbl_listing_names_every_list_and_uses_txt(mx):
    code, text = rcpt(mx, LISTED)
    assert code == 554
    assert text.decode().startswith(
        f"5.7.1 Service unavailable; Client host [{LISTED}] blocked using bl.test; "
        f"Listed for spam, see http://bl.test/q/{LISTED}; also blocked using bl2.test; "
        f"see https://bl2.test/lookup?ip={LISTED} (ref ")


def test_list_error_codes_and_a_broken_list_never_block(mx):
    assert rcpt(mx, ERROR_CODE)[0] == 250      # 127.255.255.254 is the list's error
    assert rcpt(mx, BROKEN_ONLY)[0] == 250     # broken.test lists 127.0.0.1: switched off
    done = mx.cli("dnsbl", "test", BROKEN_ONLY, "--format", "json")
    answers = {row["zone"]: row["answer"] for row in json.loads(done.stdout)}
    assert answers["broken.test"].startswith("switched off")
    assert answers["bl.test"] == "not listed"


def test_dnsbl_failure_is_skipped_or_450_by_setting(mx, make_server, nameserver):
    assert rcpt(mx, DNSBL_FAILS)[0] == 250
    strict = make_server(listeners=SMTP_AND_SUBMISSION,
                         antispam=antispam_settings(dnsbl_tempfail="defer"),
                         dns={"nameservers": [nameserver.address], "timeout": 1})
    code, text = rcpt(strict, DNSBL_FAILS)
    assert code == 450 and text.startswith(b"4.7.1")


def test_no_ptr_is_550_and_a_failing_ptr_lookup_only_450(mx):
    code, text = rcpt(mx, NO_PTR)
    assert code == 550 and text.decode().startswith(
        f"5.7.25 Client host rejected: cannot find your hostname, [{NO_PTR}]")
    code, text = rcpt(mx, PTR_FAILS)
    assert code == 450 and text.startswith(b"4.7.25 Client host rejected")


def test_whitelist_beats_blacklist_but_never_opens_relay(mx):
    assert rcpt(mx, LISTED)[0] == 554
    mx.cli("whitelist", "add", LISTED, "--reason", "TICKET-1 partner", "--by", "desk")
    assert rcpt(mx, LISTED)[0] == 250
    code, text = rcpt(mx, LISTED, recipient="victim@remote.test")
    assert code == 554 and b"Relay access denied" in text


def test_hostname_suffix_whitelists_only_a_forward_confirmed_name(mx):
    mx.db(whitelist.add, ".partner.test", "partner", "desk", mx.now())
    assert rcpt(mx, PARTNER)[0] == 250
    assert rcpt(mx, FAKE_PARTNER)[0] in (550, 554)


def test_spam_trap_hit_blocks_the_sender_drops_the_mail_and_expires(mx):
    with smtp_from(mx, TRAP_HITTER) as client:
        assert client.sendmail("spam@sender.test", ["trap@example.test"], b"Subject: buy\r\n\r\nx\r\n") == {}
        client.mail("spam@sender.test")
        code, text = client.rcpt("alice@example.test")
    assert code == 554 and b"spam trap hit: trap@example.test" in text
    code, text = rcpt(mx, TRAP_HITTER)
    assert code == 554 and text.decode().startswith(
        f"5.7.1 Service unavailable; Client host [{TRAP_HITTER}] blocked by local policy; "
        "spam trap hit: trap@example.test")
    assert inbox(mx, mx.alice) == 0
    why = json.loads(mx.cli("why", TRAP_HITTER, "--format", "json").stdout)
    assert "spam trap hit: trap@example.test" in why["blocks"][0]
    assert "evidence: MAIL FROM <spam@sender.test> RCPT TO <trap@example.test>" in why["blocks"][0]
    mx.advance(2 * 86400 + 1)
    assert rcpt(mx, TRAP_HITTER)[0] == 250


def test_repeat_offenders_are_blocked_longer(mx):
    first = mx.cli("block", "add", CLEAN, "--reason", "first").stdout
    mx.cli("block", "remove", CLEAN)
    second = mx.cli("block", "add", CLEAN, "--reason", "again").stdout
    until = [datetime.fromisoformat(out.rsplit(" until ", 1)[1].strip()) for out in (first, second)]
    assert round((until[1] - until[0]).total_seconds() / 86400) == 2   # 2 days, then 4


def test_complaints_block_at_the_threshold(mx):
    for n in range(2):
        mx.cli("complaint", "add", COMPLAINED, "--reason", f"spam report {n}")
        assert rcpt(mx, COMPLAINED)[0] == 250
    out = mx.cli("complaint", "add", COMPLAINED, "--reason", "spam report 3").stdout
    assert "blocked until" in out
    code, text = rcpt(mx, COMPLAINED)
    assert code == 554 and b"3 complaints" in text


def test_forwarded_spam_to_the_report_address_is_a_complaint_against_its_source(mx):
    with smtp_from(mx, CLEAN) as client:
        client.sendmail("spam@sender.test", ["alice@example.test"], b"Subject: cheap pills\r\n\r\nbuy\r\n")
    spam = mx.db(lambda conn: list(mailboxes.get_bodies(conn, [m.id for m in mailboxes.list_messages(
        conn, mailboxes.require_folder(conn, mx.alice, "INBOX").id)]).values()))[0]
    report = (b"From: alice@example.test\r\nSubject: Fwd: spam\r\nContent-Type: message/rfc822\r\n\r\n"
              + spam)
    for _ in range(3):
        with smtplib.SMTP("127.0.0.1", mx.port("submission"), timeout=15) as client:
            client.starttls(context=mx.context)
            client.login("alice@example.test", PASSWORD)
            client.sendmail("alice@example.test", ["abuse@example.test"], report)
    assert inbox(mx, mx.abuse) == 3
    code, text = rcpt(mx, CLEAN)
    assert code == 554 and b"complaints" in text


def test_directory_harvester_is_firewalled_before_the_banner_and_exported(mx):
    with smtp_from(mx, HARVESTER) as client:
        client.mail("guess@sender.test")
        for n in range(5):
            assert client.rcpt(f"guess{n}@example.test")[0] == 550
    sock = socket.create_connection(("127.0.0.1", mx.port("smtp")), timeout=10,
                                    source_address=(HARVESTER, 0))
    assert sock.recv(100) == b""          # closed at once: no banner, no reply at all
    sock.close()
    nft = mx.cli("firewall", "export", "--format", "nft").stdout
    assert f"elements = {{ {HARVESTER}/32 }}" in nft
    assert rcpt(mx, CLEAN)[0] == 250       # everyone else is still served
    mx.advance(2 * 86400 + 1)
    assert rcpt(mx, HARVESTER)[0] == 250


def test_authenticated_submission_from_a_listed_address_still_works(mx):
    with smtplib.SMTP("127.0.0.1", mx.port("submission"), source_address=(LISTED, 0),
                      timeout=15) as client:
        client.starttls(context=mx.context)
        client.login("alice@example.test", PASSWORD)
        assert client.sendmail("alice@example.test", ["alice@example.test"], b"Subject: hi\r\n\r\nx\r\n") == {}


def test_support_desk_finds_the_rejection_from_the_customers_five_facts(mx):
    code, text = rcpt(mx, LISTED, sender="bob@customer.test")
    message = f"{code} {text.decode()}"
    ref = message.rsplit("(ref ", 1)[1].rstrip(")")
    at = datetime.now(timezone.utc).isoformat(timespec="minutes")
    searches = [
        ["--from", "bob@customer.test"], ["--to", "alice@example.test", "--at", at],
        ["--message", f"Remote server replied: {message}"], ["--message", ref],
        ["--ip", LISTED], ["--from", "Bob@Customer.test", "--to", "alice@example.test",
                           "--at", at, "--ip", LISTED, "--message", message],
    ]
    for facts in searches:
        rows = json.loads(mx.desk("rejections", *facts, "--format", "json").stdout)
        assert rows[0]["ref"] == ref and rows[0]["check"] == "dnsbl", facts
        assert rows[0]["reply"] == message and rows[0]["helo"] == f"client.{LISTED}.test"
    missing = mx.cli("rejections", "--from", "nobody@nowhere.test", ok=False)
    assert missing.returncode == 1 and "no matching rejection" in missing.stderr


def test_why_explains_an_address_and_says_what_to_do(mx):
    rcpt(mx, LISTED)
    text = mx.cli("why", LISTED).stdout
    assert "ptr: host10.sender.test" in text
    assert f"bl.test: LISTED (127.0.0.2): Listed for spam, see http://bl.test/q/{LISTED}" in text
    assert "recent rejections:" in text and "(ref " in text
    assert f"mailstack whitelist add {LISTED} --reason" in text
    text = mx.cli("why", NO_PTR).stdout
    assert "ptr: none: such clients get 550 5.7.25" in text and "PTR record" in text


@pytest.mark.parametrize("ip, recipient, check", [
    (NO_PTR, "alice@example.test", "rdns"),
    (CLEAN, "victim@remote.test", "relay"),
    (CLEAN, "nobody@example.test", "recipients"),
    (TRAP_HITTER, "alice@example.test", "blocklist"),
])
def test_every_kind_of_refusal_is_found_by_its_ref_ip_and_addresses(mx, ip, recipient, check):
    if check == "blocklist":
        mx.cli("block", "add", ip, "--reason", "abuse desk: TICKET-9")
    code, text = rcpt(mx, ip, recipient=recipient, sender=f"sender-{check}@sender.test")
    assert code >= 500
    ref = text.decode().rsplit("(ref ", 1)[1].rstrip(")")
    for facts in (["--message", ref], ["--ip", ip, "--to", recipient],
                  ["--from", f"sender-{check}@sender.test"]):
        (row,) = json.loads(mx.desk("rejections", *facts, "--format", "json").stdout)
        assert (row["ref"], row["check"], row["client_ip"]) == (ref, check, ip)
