"""Aliases that forward to remote addresses, with SRS, end to end (issue 17, part 4).

Mail arrives on port 25 over TCP from smtplib; the alias is made with the admin command;
the forwarded copy leaves through the outbound queue, which finds the destination by MX in
a loopback DNS server and delivers to a loopback SMTP sink.  The DNS server also holds our
SPF record (the SRS domain, our host name) and the original sender's, and pyspf checks the
forwarded copy's envelope sender against them as the destination would.  The original
message is signed by an independent signer (Perl's Mail::DKIM) and Mail::DKIM verifies
the forwarded copy.  A bounce sent back to the SRS address reaches the original sender
through the same sink; a forged or expired SRS address is refused and logged.
"""

from __future__ import annotations

import smtplib

import dns.resolver
import pytest
import spf

from mailstack.store import mailboxes, queue, rejections, whitelist
from tests.support.dkim_signers import make_key, sign
from tests.support.dkim_verifiers import mail_dkim
from tests.support.dns_server import DNSServer
from tests.support.server import HOSTNAME
from tests.support.smtp_sink import SMTPSink
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "forwarding-pw"
SENDER_HOST, BOUNCER, PARTNER = "127.0.0.50", "127.0.0.51", "127.0.0.52"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}]


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("keys"), "far.test", "s1")


@pytest.fixture
def world(key):
    ns = DNSServer().start()
    for domain in ("remote.test", "far.test"):            # both served by the sink
        ns.add(domain, "MX", 10, f"mx.{domain}")
        ns.add(f"mx.{domain}", "A", "127.0.0.1")
    ns.add(HOSTNAME, "TXT", "v=spf1 ip4:127.0.0.1 -all")  # our SRS domain: we send from here
    ns.add("far.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    ns.add("bank.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    ns.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject")
    ns.add(key.name, "TXT", *key.txt)
    sink = SMTPSink().start()
    yield ns, sink
    sink.stop()
    ns.stop()


@pytest.fixture
def mx(make_server, world, cli_in_process):
    ns, sink = world
    server = make_server(listeners=LISTENERS,
                         dns={"nameservers": [ns.address], "timeout": 1},
                         delivery={"remote_port": sink.port, "queue_interval": 60},
                         forwarding={"max_hops": 5})
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.ns, server.sink, server.desk = ns, sink, cli_in_process
    out = cli_in_process.ok("alias", "add", "team@example.test", "alice@example.test")
    assert "added" in out
    out = cli_in_process.ok("alias", "add", "team@example.test", "Bob@Remote.test")
    assert "forwarded" in out
    return server


def message(sender="carol@far.test", subject="Team lunch", extra=b"") -> bytes:
    return extra + (f"From: Carol <{sender}>\r\nTo: team@example.test\r\n"
                    f"Subject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
                    f"Message-ID: <{subject.replace(' ', '.')}@far.test>\r\n\r\n"
                    "Friday at noon?\r\n").encode()


def send(server, data: bytes, mail_from="carol@far.test", to="team@example.test",
         ip=SENDER_HOST):
    """(code, text) of the reply to RCPT, or to the end of DATA when RCPT was accepted."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(ip, 0),
                      timeout=30) as client:
        client.ehlo(f"client.{ip}.test")
        client.mail(mail_from)
        code, text = client.rcpt(to)
        if code != 250:
            return code, text.decode()
        code, text = client.data(data)
        return code, text.decode()


def inbox(server) -> list[bytes]:
    def bodies(conn):
        info = mailboxes.require_folder(conn, server.alice, "INBOX")
        ids = [m.id for m in mailboxes.list_messages(conn, info.id)]
        return [mailboxes.get_bodies(conn, [i])[i] for i in ids]
    return server.db(bodies)


def spf_result(ns, monkeypatch, ip: str, sender: str) -> str:
    """pyspf's verdict on ``sender`` from ``ip``, its DNS asked of the loopback server."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], ns.port
    monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
    return spf.check2(i=ip, s=sender, h="mx.sink.test")[0]


def test_alias_forward_reaches_the_remote_mx_with_an_srs_sender_and_a_local_copy(
        mx, key, monkeypatch, tmp_path):
    original = sign(message(), key)
    code, text = send(mx, original)
    assert code == 250, text
    assert len(inbox(mx)) == 1 and inbox(mx)[0].endswith(original)
    (got,) = eventually(lambda: mx.sink.messages)
    assert got.recipients == ["bob@remote.test"]
    local, _, domain = got.sender.rpartition("@")
    assert local.startswith("SRS0=") and local.endswith("=far.test=carol"), got.sender
    assert domain == HOSTNAME
    # The message as it came, with only our Received field on top.
    assert got.body.endswith(original)
    added = got.body[:-len(original)].decode().split("\r\n")[:-1]
    assert added[0].startswith("Received: from client.127.0.0.50.test")
    assert all(line.startswith("\t") for line in added[1:]), added
    # SPF at the destination: the rewritten sender passes, the original would fail.
    assert spf_result(mx.ns, monkeypatch, "127.0.0.1", got.sender) == "pass"
    assert spf_result(mx.ns, monkeypatch, "127.0.0.1", "carol@far.test") == "fail"
    # The author's signature survives the forward (Mail::DKIM, keys in the loopback DNS).
    assert mail_dkim(got.body, mx.ns.port, tmp_path)["rsa-sha256"][0] == "pass"


def test_a_bounce_to_the_srs_address_reaches_the_original_sender(mx):
    assert send(mx, message())[0] == 250
    (forwarded,) = eventually(lambda: mx.sink.messages)
    dsn = (b"From: MAILER-DAEMON@remote.test\r\nTo: " + forwarded.sender.encode() +
           b"\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           b"--b\r\n\r\nbob@remote.test: mailbox unavailable\r\n--b--\r\n")
    code, text = send(mx, dsn, mail_from="", to=forwarded.sender, ip=BOUNCER)
    assert code == 250, text
    bounce = eventually(lambda: mx.sink.messages[1:])[0]
    assert bounce.recipients == ["carol@far.test"] and bounce.sender == ""
    assert bounce.body.endswith(dsn)


def test_only_a_dsn_may_come_to_an_srs_address_from_a_sender(mx):
    assert send(mx, message())[0] == 250
    (forwarded,) = eventually(lambda: mx.sink.messages)
    code, text = send(mx, message("spam@far.test", "Buy now"), mail_from="spam@far.test",
                      to=forwarded.sender)
    assert code == 550 and text.startswith("5.7.1 ") and "only delivery status" in text


def test_a_forged_or_expired_srs_address_gets_550_and_is_logged(mx):
    assert send(mx, message())[0] == 250
    (forwarded,) = eventually(lambda: mx.sink.messages)
    address = forwarded.sender
    tag, hash_, rest = address.split("=", 2)
    forged = f"{tag}={'AAAA' if hash_.upper() != 'AAAA' else 'BBBB'}={rest}"
    code, text = send(mx, b"", mail_from="", to=forged, ip=BOUNCER)
    assert code == 550 and text.startswith("5.1.1 ") and "invalid or expired" in text, text
    other = address.replace("=far.test=carol@", "=far.test=mallory@")
    assert send(mx, b"", mail_from="", to=other, ip=BOUNCER)[0] == 550
    mx.advance(22 * 86400)                      # [forwarding] srs_max_age_days: 21
    code, text = send(mx, b"", mail_from="", to=address, ip=BOUNCER)
    assert code == 550 and text.startswith("5.1.1 "), text
    logged = mx.db(rejections.search, client_ip=BOUNCER)
    assert [r.check_name for r in logged] == ["srs"] * 3
    assert logged[0].reply.startswith("550 5.1.1 ") and "(ref " in logged[0].reply


def test_the_null_sender_is_not_rewritten(mx):
    code, text = send(mx, message(), mail_from="")
    assert code == 250, text
    (got,) = eventually(lambda: mx.sink.messages)
    assert got.sender == "" and got.recipients == ["bob@remote.test"]


def test_mail_failing_dmarc_reject_let_in_by_the_whitelist_is_stored_not_forwarded(mx):
    mx.db(whitelist.add, PARTNER, "partner's gateway", "desk", mx.now())
    code, text = send(mx, message("ceo@bank.test", "Wire money"), mail_from="ceo@bank.test",
                      ip=PARTNER)
    assert code == 250, text
    assert len(inbox(mx)) == 1
    assert mx.db(queue.listing) == []           # nothing queued with the 250: no forward
    assert send(mx, message())[0] == 250        # a message that is forwarded, after it
    assert len(inbox(mx)) == 2
    (got,) = eventually(lambda: mx.sink.messages)
    assert b"Subject: Team lunch" in got.body and b"Wire money" not in got.body


def test_a_forwarding_loop_is_refused_554_by_the_hop_limit(mx):
    hops = b"".join(b"Received: from hop%d.test by loop.test; Thu, 3 Dec 2026 10:00:00 +0000\r\n"
                    % n for n in range(6))
    code, text = send(mx, message(extra=hops))
    assert code == 554 and text.startswith("5.4.6 "), text
    assert mx.db(queue.listing) == [] and inbox(mx) == []
    # Mail only stored here cannot loop: the same message to the account itself is taken.
    assert send(mx, message(extra=hops), to="alice@example.test")[0] == 250


def test_a_forward_the_destination_refuses_bounces_to_the_original_sender(
        make_server, world, cli_in_process):
    ns, sink = world
    sink.state.replies["bob@remote.test"] = "550 5.1.1 no such user"
    server = make_server(listeners=LISTENERS, dns={"nameservers": [ns.address], "timeout": 1},
                         delivery={"remote_port": sink.port, "queue_interval": 60},
                         forwarding={"srs_domain": "example.test"})   # a domain we host
    cli_in_process.ok("alias", "add", "out@example.test", "bob@remote.test")
    assert send(server, message(), to="out@example.test")[0] == 250
    dsn = eventually(lambda: [m for m in sink.messages if m.recipients == ["carol@far.test"]])[0]
    assert dsn.sender == "" and b"Final-Recipient: rfc822; bob@remote.test" in dsn.body
    assert b"550 5.1.1 no such user" in dsn.body
    eventually(lambda: server.db(queue.listing) == [])


def test_a_customer_writing_to_a_forwarding_alias_on_submission_is_forwarded_too(
        make_server, world, cli_in_process):
    ns, sink = world
    server = make_server(listeners=LISTENERS + [
        {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}],
        dns={"nameservers": [ns.address], "timeout": 1},
        delivery={"remote_port": sink.port, "queue_interval": 60})
    server.add_account("ann@example.test", PASSWORD)
    cli_in_process.ok("alias", "add", "out@example.test", "bob@remote.test")
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as client:
        client.starttls(context=server.context)
        client.login("ann@example.test", PASSWORD)
        assert client.sendmail("ann@example.test", ["out@example.test"],
                               message("ann@example.test", "From a customer")) == {}
    (got,) = eventually(lambda: sink.messages)
    assert got.recipients == ["bob@remote.test"]
    assert got.sender.startswith("SRS0=") and got.sender.endswith(f"=example.test=ann@{HOSTNAME}")
