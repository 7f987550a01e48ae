"""Port 25's message authentication end to end (issue 17, part 2): SPF, DKIM, ARC and DMARC.

Messages are signed by an independent signer (Perl's Mail::DKIM: RSA-SHA256, and
Ed25519-SHA256 through its canonicalisation, tests/support/dkim_signers.py), forwarded
copies are ARC-sealed by Mail::DKIM::ARC::Signer, and sent over TCP with smtplib from
distinct 127.0.0.x addresses to the running server.  A loopback DNS server holds the SPF,
DKIM and DMARC records, and fails or stays silent for chosen names.  What is checked is
what a customer and the support desk see: the Authentication-Results header of the stored
message, the folder it is in (over IMAP), the SMTP reply, and the rejection log.
"""

from __future__ import annotations

import email
import imaplib
import json
import smtplib

import pytest

from mailstack.store import mailboxes, whitelist
from tests.support.cli import Cli
from tests.support.dkim_signers import make_key, seal, sign
from tests.support.dns_server import DNSServer
from tests.support.server import HOSTNAME

pytestmark = pytest.mark.e2e
PASSWORD = "auth-results-pw"
SENDER_HOST, STRANGER, FORWARDER_HOST, PARTNER = ("127.0.0.40", "127.0.0.41", "127.0.0.42",
                                                  "127.0.0.43")
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"}]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    return {"rsa": make_key(directory, "bank.test", "rsa2026"),
            "ed": make_key(directory, "bank.test", "ed2026", "ed25519-sha256"),
            "shop": make_key(directory, "shop.test", "s1"),
            "slow": make_key(directory, "slow.test", "s1"),
            "list": make_key(directory, "lists.test", "arc"),
            "rogue": make_key(directory, "rogue.test", "arc")}


@pytest.fixture
def nameserver(keys):
    ns = DNSServer().start()
    ns.add("bank.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    ns.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@bank.test")
    ns.add("shop.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    ns.add("_dmarc.shop.test", "TXT", "v=DMARC1; p=quarantine")
    ns.add("lists.test", "TXT", f"v=spf1 ip4:{FORWARDER_HOST} -all")
    ns.add("rogue.test", "TXT", f"v=spf1 ip4:{FORWARDER_HOST} -all")
    ns.add(f"client.{SENDER_HOST}.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    ns.exists("plain.test")                        # no SPF, no DKIM, no DMARC
    ns.add("slow.test", "TXT", f"v=spf1 ip4:{SENDER_HOST} -all")
    for key in keys.values():
        ns.add(key.name, "TXT", *key.txt)
    ns.fail("flaky.test")                          # SERVFAIL for SPF
    ns.fail("_dmarc.flaky.test")                   # SERVFAIL for DMARC
    ns.ignore("s1._domainkey.slow.test")           # the key lookup times out
    ns.ignore("_dmarc.slow.test")
    yield ns
    ns.stop()


def settings(nameserver, **authentication):
    return dict(listeners=LISTENERS, dns={"nameservers": [nameserver.address], "timeout": 1},
                authentication={"trusted_forwarders": ["lists.test"], **authentication})


@pytest.fixture
def mx(make_server, nameserver, db_url, tmp_path):
    server = make_server(**settings(nameserver))
    server.alice = server.add_account("alice@example.test", PASSWORD)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    server.desk = Cli(config, in_process=True)
    return server


def message(sender="ceo@bank.test", subject="Quarterly figures", extra=b"") -> bytes:
    return extra + (f"From: The CEO <{sender}>\r\nTo: alice@example.test\r\n"
                    f"Subject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
                    f"Message-ID: <{subject.replace(' ', '.')}@bank.test>\r\n\r\n"
                    "Dear Alice,\r\n\r\nthe figures are attached.\r\n").encode()


def send(server, ip, data: bytes, mail_from="ceo@bank.test"):
    """(code, text) of the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(ip, 0),
                      timeout=30) as client:
        client.ehlo(f"client.{ip}.test")
        client.mail(mail_from)
        code, _ = client.rcpt("alice@example.test")
        assert code == 250
        code, text = client.data(data)
        return code, text.decode()


def stored(server, folder="INBOX") -> list[email.message.Message]:
    def bodies(conn):
        info = mailboxes.require_folder(conn, server.alice, folder)
        ids = [m.id for m in mailboxes.list_messages(conn, info.id)]
        return [mailboxes.get_bodies(conn, [i])[i] for i in ids]
    return [email.message_from_bytes(b) for b in server.db(bodies)]


def results(msg) -> dict:
    """Our Authentication-Results as {method: [result, ...]} (and the raw field)."""
    ours = [v for v in msg.get_all("Authentication-Results", [])
            if v.split(";")[0].strip().lower() == HOSTNAME]
    assert len(ours) == 1, msg.get_all("Authentication-Results")
    found = {"raw": " ".join(ours[0].split())}
    for part in ours[0].split(";")[1:]:
        method, _, rest = part.strip().partition("=")
        found.setdefault(method, []).append(rest.split()[0])
    return found


def test_signed_mail_from_the_right_host_passes_spf_dkim_rsa_and_ed25519_and_dmarc(mx, keys):
    signed = sign(sign(message(), keys["rsa"]), keys["ed"])
    assert send(mx, SENDER_HOST, signed)[0] == 250
    (msg,) = stored(mx)
    found = results(msg)
    assert found["spf"] == ["pass", "pass"] and found["dkim"] == ["pass", "pass"], found
    assert found["dmarc"] == ["pass"], found
    assert "header.a=ed25519-sha256" in found["raw"] and "header.a=rsa-sha256" in found["raw"]
    assert "smtp.mailfrom=ceo@bank.test" in found["raw"] and "header.from=bank.test" in found["raw"]
    names = [name.lower() for name in msg.keys()]       # our trace block: Received, then ours
    assert names[:3] == ["return-path", "received", "authentication-results"], names


def test_forged_mail_failing_dmarc_reject_is_refused_550_with_a_ref_the_desk_finds(mx, keys):
    tampered = sign(message(), keys["rsa"]).replace(b"the figures", b"the new bank account")
    code, text = send(mx, STRANGER, tampered)
    assert code == 550 and text.startswith("5.7.1 "), text
    assert "bank.test" in text and "p=reject" in text
    ref = text.rsplit("(ref ", 1)[1].rstrip(")")
    (row,) = json.loads(mx.desk("rejections", "--message", ref, "--format", "json").stdout)
    assert (row["check"], row["client_ip"], row["ref"]) == ("dmarc", STRANGER, ref)
    assert row["reply"] == f"{code} {text}" and row["to"] == "alice@example.test"
    assert stored(mx) == []


def test_dmarc_quarantine_files_the_message_in_junk_seen_over_imap(mx):
    assert send(mx, STRANGER, message("offers@shop.test", "Cheap watches"),
                mail_from="offers@shop.test")[0] == 250
    with imaplib.IMAP4("127.0.0.1", mx.port("imap")) as imap:
        imap.starttls(ssl_context=mx.context)
        imap.login("alice@example.test", PASSWORD)
        assert imap.select("INBOX")[1] == [b"0"]
        assert imap.select("Junk")[1] == [b"1"]
        _, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)])")
    header = data[0][1].decode()
    assert "spf=fail" in header and "dkim=none" in header
    assert "dmarc=fail (p=quarantine dis=quarantine)" in " ".join(header.split())
    assert "policy.dmarc=quarantine" in header


def test_unsigned_mail_from_a_domain_without_records_is_none_for_all_three(mx):
    assert send(mx, STRANGER, message("someone@plain.test", "Hello"),
                mail_from="someone@plain.test")[0] == 250
    found = results(stored(mx)[0])
    assert found["spf"] == ["none", "none"] and found["dkim"] == ["none"]
    assert found["dmarc"] == ["none"], found


def test_dns_failures_are_temperror_and_delivered_by_default(mx, keys):
    assert send(mx, SENDER_HOST, message("ceo@flaky.test", "Flaky"),
                mail_from="ceo@flaky.test")[0] == 250
    found = results(stored(mx)[0])
    assert found["spf"][0] == "temperror" and found["dmarc"] == ["temperror"], found
    # A key lookup and a DMARC lookup that time out: temperror, and still no 5xx.
    signed = sign(message("ceo@slow.test", "Slow"), keys["slow"])
    assert send(mx, SENDER_HOST, signed, mail_from="ceo@slow.test")[0] == 250
    found = results(stored(mx)[1])
    assert found["spf"][0] == "pass" and found["dkim"] == ["temperror"], found
    assert found["dmarc"] == ["temperror"], found


def test_dns_failure_can_be_deferred_451_but_never_refused(make_server, nameserver, keys):
    server = make_server(**settings(nameserver, dns_failure="defer"))
    server.alice = server.add_account("alice@example.test", PASSWORD)
    code, text = send(server, SENDER_HOST, message("ceo@flaky.test", "Flaky"),
                      mail_from="ceo@flaky.test")
    assert code == 451 and text.startswith("4.7.5 "), text
    # A key lookup and a policy lookup that time out: 451 too, never a 5xx.
    signed = sign(message("ceo@slow.test", "Slow"), keys["slow"])
    code, text = send(server, STRANGER, signed, mail_from="ceo@slow.test")
    assert code == 451, text


def test_forged_authentication_results_claiming_our_id_are_stripped_others_kept(mx, keys):
    forged = (f"Authentication-Results: {HOSTNAME};\r\n\tdkim=pass header.d=bank.test;"
              f" dmarc=pass\r\nAuthentication-Results: (comment) \"{HOSTNAME.upper()}\";"
              " spf=pass\r\nAuthentication-Results: relay.other.test; spf=pass\r\n").encode()
    assert send(mx, STRANGER, message("someone@plain.test", "Hi", extra=forged),
                mail_from="someone@plain.test")[0] == 250
    (msg,) = stored(mx)
    found = results(msg)            # exactly one of ours: the one we wrote
    assert found["dkim"] == ["none"] and found["dmarc"] == ["none"]
    fields = msg.get_all("Authentication-Results")
    assert len(fields) == 2 and fields[1].startswith("relay.other.test;"), fields


def forwarded(keys, sealer) -> bytes:
    """The bank's signed message as a mailing list passes it on: subject tagged (the DKIM
    signature breaks), the list's own results added and the whole ARC-sealed."""
    original = sign(message(), keys["rsa"])
    changed = original.replace(b"Subject: Quarterly figures", b"Subject: [staff] Quarterly figures")
    results_header = (f"Authentication-Results: {sealer.domain}; spf=pass smtp.mailfrom="
                      "ceo@bank.test; dkim=pass header.d=bank.test; dmarc=pass\r\n").encode()
    return seal(results_header + changed, sealer)


def test_arc_sealed_forward_from_a_trusted_forwarder_is_delivered_despite_p_reject(mx, keys):
    code, text = send(mx, FORWARDER_HOST, forwarded(keys, keys["list"]),
                      mail_from="staff-bounces@lists.test")
    assert code == 250, text
    found = results(stored(mx)[0])
    assert found["dkim"] == ["fail"] and found["dmarc"] == ["fail"], found
    assert found["arc"] == ["pass"] and "header.as-d=lists.test" in found["raw"]
    assert "(p=reject dis=none)" in found["raw"]        # what was done: delivered
    # The same forward sealed by a forwarder nobody trusts: refused as the bank asks.
    code, text = send(mx, FORWARDER_HOST, forwarded(keys, keys["rogue"]),
                      mail_from="staff-bounces@rogue.test")
    assert code == 550 and "p=reject" in text


def test_a_whitelisted_client_is_exempt_from_the_dmarc_reject(mx, keys):
    mx.db(whitelist.add, PARTNER, "partner's gateway rewrites mail", "desk", mx.now())
    tampered = sign(message(), keys["rsa"]).replace(b"the figures", b"the changed figures")
    assert send(mx, PARTNER, tampered)[0] == 250
    found = results(stored(mx)[0])
    assert found["dmarc"] == ["fail"] and "(p=reject dis=none)" in found["raw"], found


def test_the_switch_turns_verification_off_on_port_25(make_server, nameserver):
    server = make_server(**settings(nameserver, enabled=False))
    server.alice = server.add_account("alice@example.test", PASSWORD)
    assert send(server, STRANGER, message())[0] == 250       # would be a DMARC reject
    assert stored(server)[0].get_all("Authentication-Results") is None
