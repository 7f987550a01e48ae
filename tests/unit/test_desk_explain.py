"""``mailstack explain``'s reading and matching: every bounce style for every kind of refusal
we make, against a real store (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailstack import replies
from mailstack.desk import bounce_parse
from mailstack.desk.explainer import Explainer
from mailstack.policy.rejection_log import with_ref
from mailstack.store import blocks, directory, rejections
from tests.support.bounce_styles import STYLES, Bounce

AT = datetime(2026, 12, 3, 10, 14, 30, tzinfo=timezone.utc)
CLIENT, SENDER = "198.51.100.7", "bob@sender.test"
URL = "https://example.test/help/smtp"


def _row(ref, check, detail, reply, recipient="alice@example.test", ip=CLIENT):
    return rejections.Rejection(
        ref=ref, at=AT, session="S1", port="smtp", stage="rcpt", check_name=check,
        client_ip=ip, ptr="mail.sender.test", helo="mail.sender.test", mail_from=SENDER,
        rcpt_to=recipient, reply=str(with_ref(reply, ref)), detail=detail)


def _block(conn, source, action, reason, days=2):
    blocks.add(conn, CLIENT, action=action, source=source, reason=reason,
               evidence=f"evidence of {source}", added_by=source, at=AT - timedelta(minutes=5),
               duration=timedelta(days=days))


# kind -> (store setup: returns the row or None, words the advice must carry)
KINDS = {
    "dnsbl": (lambda conn: _row("DNSBLREF", "dnsbl", "listed by bl.test", replies.DNSBL_LISTED.format(
        ip=CLIENT, listing="bl.test; Listed for spam")), "delisting"),
    "no_ptr": (lambda conn: _row("NPTR2345", "rdns", "no PTR", replies.NO_PTR.format(ip=CLIENT)),
               "PTR record"),
    "spam_trap": (lambda conn: (_block(conn, "trap", "reject", "spam trap hit: trap@example.test"),
                                _row("TRAP2345", "blocklist", "trap: spam trap hit: trap@example.test",
                                     replies.LOCALLY_BLOCKED.format(
                                         ip=CLIENT, reason="spam trap hit: trap@example.test")))[1],
                  "spam-trap"),
    "complaints": (lambda conn: (_block(conn, "complaints", "reject", "3 complaints in 1 day(s)"),
                                 _row("CMPL2345", "blocklist", "complaints: 3 complaints in 1 day(s)",
                                      replies.LOCALLY_BLOCKED.format(
                                          ip=CLIENT, reason="3 complaints in 1 day(s)")))[1],
                   "reported mail"),
    "harvest": (lambda conn: _block(conn, "harvest", "firewall",
                                    "directory harvest: 5 RCPTs to unknown users in 600 s"),
                "do not exist"),
    "unknown_user": (lambda conn: _row("UNKN2345", "recipients", "user unknown",
                                       replies.UNKNOWN_USER.format(address="alcie@example.test"),
                                       recipient="alcie@example.test"), "typing mistake"),
    "relay_denied": (lambda conn: _row("RELA2345", "relay", "relay denied",
                                       replies.RELAY_DENIED.format(address="x@remote.test"),
                                       recipient="x@remote.test"), "587"),
    "over_quota": (lambda conn: _row("QUTA2345", "recipients", "mailbox full",
                                     replies.MAILBOX_FULL.format(address="alice@example.test")),
                   "Delete or move old mail"),
    "op25b": (lambda conn: _row("PBBB2345", "op25b", "customer network sending to remote.test on port 25",
                                replies.OP25B.format(url=URL), recipient="x@remote.test"), URL),
    "sunset": (lambda conn: _row("SUNS2345", "pop-before-smtp", "window of bob after the sunset",
                                 replies.POP_BEFORE_SMTP_ENDED.format(url=URL),
                                 recipient="x@remote.test"), "requires authentication"),
    "dmarc": (lambda conn: _row("DMRC2345", "dmarc", "DMARC policy of sender.test: reject",
                                replies.DMARC_REJECT.format(domain="sender.test", policy="reject")),
              "DKIM"),
    "recipient_filter": (lambda conn: _row("SEVE2345", "sieve", "the recipient's Sieve script rejected it",
                                           replies.SIEVE_REJECT.format(address="alice@example.test",
                                                                       reason="No offers, thanks.")),
                         "your filters"),
}


def _setup(db, kind):
    setup, words = KINDS[kind]
    db.run_sync(directory.add_domain, "example.test", AT)
    for local in ("alice", "bob.smith", "carol"):
        db.run_sync(directory.add_account, f"{local}@example.test", "x", AT)
    row = db.run_sync(setup)
    if isinstance(row, rejections.Rejection):
        db.run_sync(rejections.record, row)
    return row, words


def explainer(db):
    return Explainer(db.run_sync, ["mx.example.test"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_bounce_style_of_every_refusal_gets_its_verdict_and_advice(db, kind):
    row, words = _setup(db, kind)
    recipient = row.rcpt_to if row else "alice@example.test"
    for style, render in STYLES.items():
        bounce = Bounce(row.reply if row else None, recipient, SENDER, AT)
        facts = bounce_parse.read(render(bounce).encode())
        ip = None if row or style == "dsn" else CLIENT   # no banner: the desk names the IP
        found = explainer(db).explain(facts, AT + timedelta(hours=1), client_ip=ip).as_dict()
        assert found["verdict"] == kind, (style, found)
        advice = found["advice"]["sender"] + found["advice"]["customer"] + found["why"]
        assert words in advice, (style, advice)
        if row:
            assert found["matched_ref"] == row.ref, style
            if style != "pasted" or recipient in row.reply:
                assert found["found"]["recipient"] == recipient, (style, found["found"])
        if style not in ("pasted",):
            assert found["found"].get("sender") == SENDER, (style, found["found"])
            assert found["found"].get("time", "").startswith("2026-12-03T10:1"), (style, found)
        if kind in ("spam_trap", "complaints", "harvest"):
            assert found["in_force"] == "yes" and found["until"].startswith("2026-12-05"), style


def test_a_block_that_has_expired_is_said_to_be_over(db):
    _setup(db, "complaints")
    facts = bounce_parse.read(postfix_of("CMPL2345", db))
    found = explainer(db).explain(facts, AT + timedelta(days=3))
    assert (found.kind, found.in_force) == ("complaints", "no")
    assert "ended" not in found.words("sender") and "until" not in found.words("sender")


def postfix_of(ref, db):
    (row,) = db.run_sync(rejections.search, text=ref)
    return STYLES["postfix"](Bounce(row.reply, row.rcpt_to, SENDER, AT)).encode()


def test_without_a_ref_the_refusal_is_found_by_ip_recipient_sender_and_time(db):
    row, _ = _setup(db, "dnsbl")
    stripped = row.reply.split(" (ref ")[0]
    facts = bounce_parse.read(STYLES["dsn"](Bounce(stripped, "alice@example.test", SENDER, AT)).encode())
    assert facts.ref is None and facts.client_ip == CLIENT
    found = explainer(db).explain(facts, AT)
    assert found.rejection.ref == row.ref and found.kind == "dnsbl"
    later = bounce_parse.read(STYLES["dsn"](Bounce(stripped, "alice@example.test", SENDER,
                                                   AT + timedelta(days=2))).encode())
    assert explainer(db).explain(later, AT).rejection is None        # outside the window


def test_unknown_user_lists_the_closest_existing_addresses_for_the_desk_only(db):
    _setup(db, "unknown_user")
    found = explainer(db).explain(bounce_parse.read(postfix_of("UNKN2345", db)), AT)
    assert found.for_desk == ["did you mean alice@example.test? (an existing address of example.test)"]
    sent_on = found.words("why") + found.words("sender") + found.words("customer")
    assert "alice@" not in sent_on


def test_the_sending_server_is_read_from_the_received_line_naming_the_reporting_mta(db):
    _setup(db, "harvest")
    facts = bounce_parse.read(STYLES["dsn"](Bounce(None, "alice@example.test", SENDER, AT)).encode())
    assert (facts.client_ip, facts.connection) == (CLIENT, "timed out")
    assert explainer(db).explain(facts, AT).kind == "harvest"


def test_a_connection_failure_at_another_providers_server_is_not_ours(db):
    _setup(db, "harvest")
    bounce = Bounce(None, "friend@elsewhere.test", SENDER, AT, mx="mx.elsewhere.test")
    found = explainer(db).explain(bounce_parse.read(STYLES["postfix"](bounce).encode()), AT,
                                  client_ip=CLIENT)
    assert found.kind == "not_ours"


def test_no_firewall_record_says_what_is_missing(db):
    _setup(db, "dnsbl")
    facts = bounce_parse.read(STYLES["pasted"](Bounce(None, "alice@example.test", SENDER, AT)).encode())
    found = explainer(db).explain(facts, AT).as_dict()
    assert found["verdict"] == "no_connection"
    assert "the sending server's IP" in found["missing"] and "the sender" in found["missing"]


def test_a_mistyped_domain_of_ours_is_named_for_a_relay_refusal(db):
    _setup(db, "dnsbl")
    row = _row("RELB2345", "relay", "relay denied",
               replies.RELAY_DENIED.format(address="alice@exmaple.test"), recipient="alice@exmaple.test")
    db.run_sync(rejections.record, row)
    found = explainer(db).explain(bounce_parse.read(row.reply.encode()), AT)
    assert found.kind == "relay_denied"
    assert found.for_desk == ["did you mean alice@example.test? (the domain looks mistyped)"]


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff" * 5000, b"From: x\n\n" + b"--" * 100000,
                                     b"Content-Type: multipart/report; boundary=\"a\"\n\n--a\n"
                                     b"Content-Type: message/delivery-status\n\n\x00\n--a",
                                     b"Content-Type: message/rfc822\n\n" * 50,
                                     b"550 5.1.1 " + b"x" * (bounce_parse.MAX_INPUT * 2)])
def test_garbage_never_crashes_and_says_what_is_missing(db, garbage):
    facts = bounce_parse.read(garbage)
    found = explainer(db).explain(facts, AT).as_dict()
    assert found["verdict"] in ("not_ours", "other", "unknown_user")
    assert isinstance(found["missing"], list)


SAMPLES = {   # file -> (verdict without any record of ours, ref, recipient, client IP, sender)
    "exchange-base64-unknown-user.eml": ("unknown_user", "KT7WX2QP", "k.tanaka@example.test",
                                         None, "h.sato@corp.sender.test"),
    "japanese-iso2022jp-dnsbl.eml": ("dnsbl", "P9QRS3TM", "suzuki@example.test", "203.0.113.45",
                                     "yamada@isp-sender.test"),
    "webmail-quoted-printable-quota.eml": ("over_quota", "M4NV8BCD", "ito@example.test", None,
                                           "kato@example.org"),
    "pasted-ticket-spam-trap.eml": ("spam_trap", "T6HJ2KWX", "watanabe@example.test",
                                    "198.51.100.77", None),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_hand_written_samples_are_read(db, name):
    from pathlib import Path
    data = (Path(__file__).parents[1] / "data" / "bounces" / name).read_bytes()
    facts = bounce_parse.read(data)
    kind, ref, recipient, ip, sender = SAMPLES[name]
    assert (facts.ref, facts.recipient, facts.client_ip, facts.sender) == (ref, recipient, ip, sender)
    found = explainer(db).explain(facts, AT)
    assert found.kind == kind and found.rejection is None
    if kind == "dnsbl":
        assert "bl.example.net" in found.words("why")


@pytest.mark.parametrize("hostile", [
    b"Remote server " + b"a" * 400_000,
    b"a" * 500_000, b"[" * 500_000, b"a@" * 250_000, b"[a.b " * 100_000,
    b"> " * 250_000, b"\n \t" * 150_000, b"\n" * 500_000, b" \n\t" * 150_000, b"From: " * 80_000,
    b"From: x\n\n" + b"\n " * 200_000, b"Received: from " * 30_000, b"550 5.1.1 " + b"<a@b.c> " * 60_000,
    b"554 5.7.1 Service unavailable; Client host [" + b"] blocked using " * 30_000,
    b"host a.bc[" * 50_000, b"x@" + b"y" * 300_000 + b".com",
    b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(3000)),
    b'Content-Type: multipart/mixed; boundary="b"\n\n' + b"--b\nContent-Type: text/plain\n\nx\n" * 20_000,
    b"Content-Type: message/rfc822\n\n" * 10_000,
])
def test_hostile_input_is_read_in_bounded_time(db, hostile):
    import time
    started = time.monotonic()
    facts = bounce_parse.read(hostile)
    explainer(db).explain(facts, AT)
    assert time.monotonic() - started < 5, hostile[:40]


def test_the_reply_after_data_that_has_no_ref_is_still_a_full_mailbox(db):
    facts = bounce_parse.read(str(replies.MESSAGE_OVER_QUOTA).encode())
    found = explainer(db).explain(facts, AT)
    assert found.kind == "over_quota" and found.rejection is None


@pytest.mark.parametrize("bounce, kind", [
    # Another provider's Postfix uses the same wording as ours: its host or domain tells.
    ("<pal@elsewhere.test>: host mx.elsewhere.test[203.0.113.9] said: 554 5.7.1 Service "
     "unavailable; Client host [198.51.100.7] blocked using zen.example.net", "not_ours"),
    ("Your message to pal@elsewhere.test was not delivered.\n\nThe response from the remote "
     "server was:\n554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using "
     "zen.example.net", "not_ours"),
    ("Your message to pal@elsewhere.test was not delivered.\n\n550 5.1.1 The account does not "
     "exist", "not_ours"),
    ("<alice@example.test>: host mx.example.test[192.0.2.25] said: 554 5.7.1 Service "
     "unavailable; Client host [198.51.100.7] blocked using bl.test", "dnsbl"),
    ("554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using bl.test", "dnsbl"),
    ("host not found for gmial.com: Host or domain name not found", "not_ours"),
])
def test_a_refusal_by_another_provider_is_not_ours(db, bounce, kind):
    _setup(db, "harvest")
    assert explainer(db).explain(bounce_parse.read(bounce.encode()), AT).kind == kind
