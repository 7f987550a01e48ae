"""DKIM signing end to end: keys made by ``mailstack dkim``, records printed by ``mailstack
dns records`` and loaded into the loopback DNS server, mail submitted on 587 and relayed
to a loopback MX, the signatures checked there by verifiers we did not write.

Why this way: a signature is only worth what a receiver makes of it.  Mail::DKIM (Perl)
and opendkim-testmsg (OpenDKIM) read the keys from DNS exactly as Gmail would, from
records an operator would publish by pasting our output into a zone
(tests/support/dkim_verifiers.py says how each is pointed at the loopback DNS).
"""

from __future__ import annotations

import json
import re
import smtplib
from datetime import timedelta

import dns.rdatatype
import dns.zone
import pytest

from mailstack import tls
from mailstack.store import dkim_keys, mailboxes, queue
from tests.support import dkim_verifiers
from tests.support.cli import Cli, database_config
from tests.support.dns_server import DNSServer
from tests.support.server import HOSTNAME
from tests.support.smtp_sink import SMTPSink
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "dkim signing pw"
SUBMISSION = [{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]
MESSAGE = ("From: Ann <ann@example.test>\r\nTo: Friend <friend@remote.test>\r\n"
           "Subject: signed on its way out\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n"
           "Message-ID: <dkim-1@example.test>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "Hello,\r\n\r\n.a line that starts with a dot, and trailing space   \r\n"
           "Grüße\r\n\r\n\r\n")


@pytest.fixture
def world(certs):
    ns = DNSServer().start()
    ns.add("remote.test", "MX", 10, "mx.remote.test")
    ns.add("mx.remote.test", "A", "127.0.0.1")
    port53 = dkim_verifiers.Port53(ns).start()
    sink = SMTPSink(tls.server_options(certs.certificate, certs.private_key)).start()
    yield ns, sink
    sink.stop()
    port53.stop()
    ns.stop()


@pytest.fixture
def mta(make_server, world, db_url, tmp_path):
    ns, sink = world
    server = make_server(
        listeners=SUBMISSION, dns={"nameservers": [ns.address], "timeout": 1},
        delivery={"remote_port": sink.port, "retry_schedule": [300], "max_queue_age": 3600})
    server.ann = server.add_account("ann@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    server.sink, server.ns = sink, ns
    config = database_config(tmp_path / "cli.toml", db_url)
    config.write_text(config.read_text() + f'[server]\nhostname = "{HOSTNAME}"\n')
    server.cli = Cli(config)
    return server


def keygen(server, domain):
    out = server.cli.ok("dkim", "keygen", domain, "--at", server.now().isoformat())
    assert out.count(" key ") == 2 and "signing now" in out


def publish(server, zone_text: str, origin: str) -> dns.zone.Zone:
    """Load ``mailstack``'s output with dnspython's zone parser, as a zone file would be,
    and serve every TXT record of it from the loopback DNS server."""
    zone = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=False)
    for name, rdataset in zone.iterate_rdatasets(dns.rdatatype.TXT):
        for record in rdataset:
            server.ns.add(name.to_text(), "TXT", *(s.decode() for s in record.strings))
    return zone


def submit(server, recipients, message=MESSAGE, sender="ann@example.test"):
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        client.starttls(context=server.context)
        client.login(sender, PASSWORD)
        return client.sendmail(sender, recipients, message.encode())


def assert_verified_by_both(message: bytes, dns_port: int, tmp_path, domain: str):
    perl = dkim_verifiers.mail_dkim(message, dns_port, tmp_path)
    assert perl["rsa-sha256"] == ("pass", "pass"), perl
    # Debian 12's Mail::DKIM (1.20230212) knows no Ed25519 (tests/support/dkim_verifiers.py):
    # it must say so, never call our signature bad.
    assert perl["ed25519-sha256"] in {
        ("pass", "pass"), ("invalid", "invalid (unsupported algorithm ed25519-sha256)")}, perl
    for algorithm in ("ed25519", "rsa"):
        single = dkim_verifiers.only_signature(message, algorithm)
        assert single.count(b"DKIM-Signature:") == 1 and f"d={domain}".encode() in single
        done = dkim_verifiers.opendkim_testmsg(single, tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), algorithm


def test_submitted_mail_is_dual_signed_and_both_verifiers_accept_it(mta, tmp_path):
    keygen(mta, "example.test")
    records = mta.cli.ok("dns", "records", "example.test", "--at", mta.now().isoformat())
    zone = publish(mta, records, "example.test.")
    assert len([n for n, _ in zone.iterate_rdatasets(dns.rdatatype.TXT)
                if "_domainkey" in n.to_text()]) == 2
    assert submit(mta, ["friend@remote.test"]) == {}
    (got,) = eventually(lambda: mta.sink.messages)
    assert got.recipients == ["friend@remote.test"]
    assert got.body.count(b"DKIM-Signature:") == 2
    assert_verified_by_both(got.body, mta.ns.port, tmp_path, "example.test")
    # The verifiers can fail: one changed octet of the body and OpenDKIM refuses both.
    tampered = got.body.replace(b"Hello,", b"Hallo,")
    for algorithm in ("ed25519", "rsa"):
        done = dkim_verifiers.opendkim_testmsg(dkim_verifiers.only_signature(tampered, algorithm),
                                               tmp_path)
        assert done.returncode != 0 and b"Bad signature" in done.stderr     # key found, no match
    assert dkim_verifiers.mail_dkim(tampered, mta.ns.port, tmp_path)["rsa-sha256"][0] == "fail"


def test_the_spf_record_passes_the_address_our_mail_leaves_from(mta):
    """The SPF line of ``dns records``, evaluated by pyspf (RFC 7208) against the loopback
    DNS: once the operator's A records put the names it lists (our MX, the host we greet
    with) on this server's address, mail from here passes and mail from elsewhere fails."""
    import dns.resolver
    import spf
    records = mta.cli.ok("dns", "records", "example.test", "--at", mta.now().isoformat())
    zone = publish(mta, records, "example.test.")
    (spf_line,) = [b"".join(r.strings).decode() for r in
                   zone.get_rdataset("example.test.", dns.rdatatype.TXT)]
    for rdata in zone.get_rdataset("example.test.", dns.rdatatype.MX):
        mta.ns.add(rdata.exchange.to_text(), "A", "127.0.0.1")
    mta.ns.add("example.test", "MX", 10, rdata.exchange.to_text())
    for name in re.findall(r"\ba:(\S+)", spf_line):
        mta.ns.add(name, "A", "127.0.0.1")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], mta.ns.port
    default, dns.resolver.default_resolver = dns.resolver.default_resolver, resolver
    try:
        ours = spf.check2(i="127.0.0.1", s="ann@example.test", h=HOSTNAME)
        other = spf.check2(i="192.0.2.1", s="ann@example.test", h=HOSTNAME)
    finally:
        dns.resolver.default_resolver = default
    assert spf_line.startswith("v=spf1 ") and spf_line.endswith(" -all")
    assert (ours[0], other[0]) == ("pass", "fail"), (spf_line, ours, other)


def test_a_bounce_that_leaves_is_signed_by_our_host_name(mta, tmp_path):
    keygen(mta, HOSTNAME)
    listed = mta.cli.ok("dkim", "list", HOSTNAME, "--dns", "--at", mta.now().isoformat())
    publish(mta, listed, f"{HOSTNAME}.")
    # Mail from a remote sender that the remote MX then refuses: the DSN goes back out.
    mta.sink.state.replies["nobody@remote.test"] = "550 5.1.1 no such user"
    original = b"From: someone@remote.test\r\nTo: nobody@remote.test\r\nSubject: lost\r\n\r\nhi\r\n"
    mta.db(queue.enqueue, "someone@remote.test", ["nobody@remote.test"], original, mta.now(),
           queue_id="BOUNCE1")
    mta.advance(61)                                  # the queue's next pass
    (dsn,) = eventually(lambda: [m for m in mta.sink.messages if m.sender == ""])
    assert dsn.recipients == ["someone@remote.test"] and b"Undelivered Mail" in dsn.body
    assert dsn.body.count(b"DKIM-Signature:") == 2
    assert_verified_by_both(dsn.body, mta.ns.port, tmp_path, HOSTNAME)


def test_local_mail_and_mail_from_a_domain_not_the_senders_go_unsigned(mta):
    keygen(mta, "example.test")
    submit(mta, ["bob@example.test"])                            # local only: never signed
    forged = MESSAGE.replace("From: Ann <ann@example.test>", "From: Boss <boss@other.test>")
    submit(mta, ["friend@remote.test"], forged)
    (got,) = eventually(lambda: mta.sink.messages)
    assert b"DKIM-Signature" not in got.body

    def bob_inbox():
        return mta.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
            c, mailboxes.require_folder(c, mta.bob, "INBOX").id)]).values()))
    (stored,) = eventually(bob_inbox)
    assert b"DKIM-Signature" not in stored and b"signed on its way out" in stored


def test_no_command_shows_a_private_key(mta):
    keygen(mta, "example.test")
    secrets = [k.private_key for k in mta.db(dkim_keys.signing_keys, mta.now())]
    public = "".join(k.public_key for k in mta.db(dkim_keys.listing, "example.test"))
    # What a key is made of: the Ed25519 seed, the PEM's base64 lines -- but those that
    # hold only the RSA modulus, which the public key holds too at the same alignment.
    pieces = [line for s in secrets for line in s.splitlines()
              if "PRIVATE" not in line and line not in public]
    assert len(secrets) == 2 and len(pieces) > 10
    fast = Cli(mta.cli.config, in_process=True)         # the same commands, in this process
    table = mta.cli.ok("dkim", "list")
    assert "ed25519" in table and "SHA256:" in table and "signing" in table
    shown = [table, fast.ok("dkim", "list", "example.test", "--format", "json"),
             fast.ok("dkim", "list", "--dns"), fast.ok("dns", "records", "example.test"),
             fast.ok("dkim", "rotate", "example.test")]
    assert not [p for p in pieces for text in shown if p in text]
    assert all("PRIVATE" not in text for text in shown)
    refused = mta.cli("dkim", "keygen", "nowhere.test")
    assert refused.returncode == 1 and "not hosted here" in refused.stderr


def test_a_rotation_keeps_the_old_keys_signing_until_the_new_ones_are_due(mta, tmp_path):
    # Made and rotated in the past so that the switch comes 100 s after the server's now:
    # the verifiers compare t= with the real clock (OpenDKIM allows 300 s of drift).
    start = mta.now()
    mta.cli.ok("dkim", "keygen", "example.test", "--at", (start - timedelta(days=30)).isoformat())
    old = selectors(mta.cli.ok("dkim", "list", "example.test", "--format", "json"))
    out = mta.cli.ok("dkim", "rotate", "example.test", "--delay", "7200", "--at",
                     (start - timedelta(seconds=7100)).isoformat())
    assert "signing from" in out
    both = mta.cli.ok("dkim", "list", "example.test", "--dns", "--at", mta.now().isoformat())
    publish(mta, both, "example.test.")                       # old and new, as the zone says
    new = selectors(mta.cli.ok("dkim", "list", "example.test", "--format", "json")) - old
    assert len(new) == 2
    submit(mta, ["friend@remote.test"])
    mta.advance(99)                                            # a second before the switch
    submit(mta, ["friend@remote.test"], MESSAGE.replace("dkim-1@", "dkim-2@"))
    mta.advance(1)
    submit(mta, ["friend@remote.test"], MESSAGE.replace("dkim-1@", "dkim-3@"))
    got = eventually(lambda: mta.sink.messages if len(mta.sink.messages) == 3 else None)
    by_id = {next(line for line in m.body.split(b"\r\n") if line.startswith(b"Message-ID"))
             : m.body for m in got}
    signed_with = {k.decode(): signature_selectors(v) for k, v in by_id.items()}
    assert signed_with == {"Message-ID: <dkim-1@example.test>": old,
                           "Message-ID: <dkim-2@example.test>": old,
                           "Message-ID: <dkim-3@example.test>": new}
    assert_verified_by_both(by_id[b"Message-ID: <dkim-3@example.test>"], mta.ns.port, tmp_path,
                            "example.test")


def selectors(listed_json: str) -> set[str]:
    return {row["selector"] for row in json.loads(listed_json)}


def signature_selectors(message: bytes) -> set[str]:
    return {m.decode() for m in re.findall(rb"\bs=([0-9a-z-]+);", message)}
