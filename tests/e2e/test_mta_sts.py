"""MTA-STS and TLS-RPT end to end: curl fetches our policy from the HTTPS listener; the
queue fetches a remote domain's policy from a loopback HTTPS server, and delivers to a
loopback MX (tests/support/smtp_sink.py) only as the policy allows; the day's TLS report
reaches the address the domain's ``_smtp._tls`` record names.

The remote world: a loopback DNS server holds ``remote.test``'s MX, its ``_mta-sts`` and
``_smtp._tls`` records and the address of ``mta-sts.remote.test``; a test CA
(tests/support/test_ca.py) issues every certificate, and the queue trusts only that CA
(``[mta_sts] ca_file``).
"""

from __future__ import annotations

import email
import gzip
import hashlib
import json
import smtplib
import subprocess
import time

import pytest
from twisted.internet import reactor
from twisted.web import resource, server as web_server

from mailstack import tls
from mailstack.dkim import rotation
from mailstack.store import mailboxes, outbound_tls, queue
from tests.support.dns_server import DNSServer
from tests.support.reactor import call
from tests.support.server import merge
from tests.support.smtp_sink import SMTPSink
from tests.support.test_ca import TestCA
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "mta-sts pw"
SUBMISSION = [{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]
HTTPS = [{"name": "https", "protocol": "http", "port": 0, "tls": "implicit"}]


class PolicyFile(resource.Resource):
    """``/.well-known/mta-sts.txt`` of mta-sts.remote.test, as the test sets it."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.text, self.fetches, self.redirect = "", 0, None

    def render_GET(self, request):
        if request.path != b"/.well-known/mta-sts.txt":
            request.setResponseCode(404)
            return b""
        self.fetches += 1
        if self.redirect:
            request.setResponseCode(302)
            request.setHeader(b"location", self.redirect.encode())
            return b""
        request.setHeader(b"content-type", b"text/plain")
        return self.text.encode()


class PolicyHost:
    def __init__(self, issued):
        self.file = PolicyFile()
        self.options = tls.server_options(issued.certificate, issued.private_key)

    def start(self):
        def listen():
            site = web_server.Site(self.file)
            site.noisy = False
            self.port = reactor.listenSSL(0, site, self.options, interface="127.0.0.1")
            return self.port.getHost().port
        self.number = call(listen)
        return self

    def stop(self):
        call(self.port.stopListening)

    def serve(self, mode: str, mx: str = "mx.remote.test", max_age: int = 86400):
        self.file.text = f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: {max_age}\r\n"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("mta-sts-ca"))


@pytest.fixture
def remote(ca):
    """DNS, the policy host and two MX servers: one whose certificate names the MX host,
    one whose certificate names another host."""
    ns = DNSServer().start()
    ns.add("remote.test", "MX", 10, "mx.remote.test")
    ns.add("mx.remote.test", "A", "127.0.0.1")
    ns.add("mta-sts.remote.test", "A", "127.0.0.1")
    ns.add("_mta-sts.remote.test", "TXT", "v=STSv1; id=policy1")
    ns.add("_smtp._tls.remote.test", "TXT", "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test")
    ns.add("reports.test", "MX", 10, "mx.reports.test")
    ns.add("mx.reports.test", "A", "127.0.0.1")
    host = PolicyHost(ca.issue("policy-host", "mta-sts.remote.test")).start()
    good = ca.issue("mx-good", "mx.remote.test", "mx.reports.test")
    wrong = ca.issue("mx-wrong", "mx.elsewhere.test")
    sinks = {"good": SMTPSink(tls.server_options(good.certificate, good.private_key)).start(),
             "wrong": SMTPSink(tls.server_options(wrong.certificate, wrong.private_key)).start(),
             "plain": SMTPSink().start()}
    yield ns, host, sinks
    for sink in sinks.values():
        sink.stop()
    host.stop()
    ns.stop()


def mta(make_server, ca, remote, sink: str, account=None, **extra):
    ns, host, sinks = remote
    server = make_server(**merge({
        "listeners": SUBMISSION, "dns": {"nameservers": [ns.address], "timeout": 1},
        "delivery": {"remote_port": sinks[sink].port, "retry_schedule": [300, 600],
                     "max_queue_age": 3600, "queue_interval": 60},
        "mta_sts": {"ca_file": str(ca.ca_file), "https_port": host.number}}, extra))
    # A second server on the same store (a restart) finds the account made by the first.
    server.ann = account or server.add_account("ann@example.test", PASSWORD)
    server.sink = sinks[sink]
    return server


def submit(server, recipients, subject="sts"):
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        client.starttls(context=server.context)
        client.login("ann@example.test", PASSWORD)
        return client.sendmail("ann@example.test", recipients,
                               f"From: ann@example.test\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())


def inbox(server):
    return server.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, "INBOX").id)]).values()))


def counted(server, domain="remote.test"):
    day = server.now().strftime("%Y-%m-%d")
    return server.db(outbound_tls.counted, domain, day)


# --- our policy -----------------------------------------------------------------------------

def test_curl_fetches_our_policy_whose_hash_dns_records_publishes(make_server, ca, tmp_path,
                                                                 cli, db_url):
    issued = ca.issue("ours", "mx.example.test", "mta-sts.example.test", "mta-sts.elsewhere.test")
    server = make_server(listeners=HTTPS, tls={"certificate": str(issued.certificate),
                                              "private_key": str(issued.private_key)},
                         dns_records={"mta_sts_mode": "enforce", "mta_sts_max_age": 86400})
    port = server.port("https")

    def curl(host):
        done = subprocess.run(
            ["curl", "-sS", "--cacert", str(ca.ca_file), "--resolve", f"{host}:{port}:127.0.0.1",
             "-w", "\n%{http_code} %{content_type}", f"https://{host}:{port}/.well-known/mta-sts.txt"],
            capture_output=True, timeout=30)          # bytes: the CRLF line ends kept
        assert done.returncode == 0, done.stderr
        body, _, status = done.stdout.decode().rpartition("\n")
        return status, body

    status, policy = curl("mta-sts.example.test")
    assert status == "200 text/plain"
    assert policy == "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"
    config = tmp_path / "records.toml"
    config.write_text(f'[server]\nhostname = "mx.example.test"\n[database]\nurl = "{db_url}"\n'
                      '[domains]\nhosted = ["example.test"]\n'
                      '[dns_records]\nmta_sts_mode = "enforce"\nmta_sts_max_age = 86400\n')
    cli.config = config
    records = cli.ok("dns", "records", "example.test")
    (line,) = [l for l in records.splitlines() if l.startswith("_mta-sts.example.test.")]
    assert f'id={hashlib.sha256(policy.encode()).hexdigest()[:20]}"' in line
    assert curl("mta-sts.elsewhere.test")[0].startswith("404")


# --- enforce --------------------------------------------------------------------------------

def test_enforce_refuses_a_certificate_for_another_name_then_bounces(make_server, ca, remote):
    ns, host, _ = remote
    host.serve("enforce")
    server = mta(make_server, ca, remote, "wrong")
    submit(server, ["x@remote.test"])
    (row,) = eventually(lambda: [r for r in server.db(queue.listing) if r.attempts == 1])
    assert row.status == "queued" and row.last_reply.startswith("451 4.7.5")
    assert "certificate-host-mismatch" in row.last_reply
    assert server.sink.messages == [] and host.file.fetches == 1
    assert [(c.result_type, c.mx_host) for c in counted(server)] == [
        ("certificate-host-mismatch", "mx.remote.test")]
    for _ in range(8):
        server.advance(600)
        time.sleep(0.2)
    dsn = eventually(lambda: [b for b in inbox(server) if b"Undelivered Mail" in b])[0]
    assert b"Status: 4.4.7" in dsn and b"MTA-STS policy" in dsn
    assert b"certificate-host-mismatch" in dsn
    assert server.sink.messages == [] and server.db(queue.listing) == []
    assert host.file.fetches == 1          # the cached policy served every attempt


def test_enforce_delivers_over_tls_to_a_host_that_proves_its_name(make_server, ca, remote):
    ns, host, _ = remote
    host.serve("enforce")
    server = mta(make_server, ca, remote, "good")
    submit(server, ["x@remote.test"])
    (got,) = eventually(lambda: server.sink.messages)
    assert got.tls and got.recipients == ["x@remote.test"]
    eventually(lambda: server.db(queue.listing) == [])
    assert [(c.result_type, c.sessions) for c in counted(server)] == [("", 1)]


def test_enforce_refuses_cleartext(make_server, ca, remote):
    ns, host, _ = remote
    host.serve("enforce")
    server = mta(make_server, ca, remote, "plain")
    submit(server, ["x@remote.test"])
    (row,) = eventually(lambda: [r for r in server.db(queue.listing) if r.attempts == 1])
    assert "4.7.5" in row.last_reply and "starttls-not-supported" in row.last_reply
    assert server.sink.messages == []


def test_enforce_skips_an_mx_the_policy_does_not_name(make_server, ca, remote):
    ns, host, _ = remote
    host.serve("enforce", mx="*.other.test")
    server = mta(make_server, ca, remote, "good")
    submit(server, ["x@remote.test"])
    (row,) = eventually(lambda: [r for r in server.db(queue.listing) if r.attempts == 1])
    assert row.last_reply.startswith("451 4.7.5") and "names none of its MX hosts" in row.last_reply
    assert server.sink.state.connections == 0


def replace_txt(ns, name, value):
    ns.resolver.records[(name, 16)].clear()          # 16: TXT
    ns.add(name, "TXT", value)


def test_a_failed_fetch_keeps_the_cached_policy(make_server, ca, remote):
    ns, host, _ = remote
    host.serve("enforce")
    first = mta(make_server, ca, remote, "wrong")
    submit(first, ["x@remote.test"])
    eventually(lambda: [r for r in first.db(queue.listing) if r.attempts == 1])
    first.stop()
    host.file.text = "<html>moved</html>"          # no policy any more, and a new id
    replace_txt(ns, "_mta-sts.remote.test", "v=STSv1; id=policy2")
    second = mta(make_server, ca, remote, "wrong", first.ann)   # the same store, nothing in memory
    submit(second, ["z@remote.test"])
    (row,) = eventually(lambda: [r for r in second.db(queue.listing)
                                 if r.recipient == "z@remote.test" and r.attempts == 1])
    assert "4.7.5" in row.last_reply and second.sink.messages == []
    assert host.file.fetches == 2
    assert ("sts-policy-invalid", 1) in [(c.result_type, c.sessions) for c in counted(second)]


def test_a_redirect_is_not_followed_and_an_oversized_policy_not_read(make_server, ca, remote):
    """RFC 8461 §3.3: no 3xx followed, the size bounded.  With no policy cached the
    domain is treated as having none (delivered), and the fetch failure is counted."""
    ns, host, _ = remote
    host.serve("enforce")
    host.file.redirect = f"https://mta-sts.remote.test:{host.number}/.well-known/mta-sts.txt"
    server = mta(make_server, ca, remote, "wrong")
    submit(server, ["x@remote.test"])
    eventually(lambda: server.sink.messages)
    assert host.file.fetches == 1
    # Counted in the transaction that records the delivery, after the remote 250.
    eventually(lambda: [(c.result_type, c.sessions) for c in counted(server)] == [
        ("sts-policy-fetch-error", 1)], what="the fetch failure counted")
    server.stop()
    host.file.redirect = None
    host.file.text = "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 86400\n" + \
        "x: " + "y" * 70000 + "\n"
    replace_txt(ns, "_mta-sts.remote.test", "v=STSv1; id=policy3")
    again = mta(make_server, ca, remote, "wrong", server.ann)   # no cached TXT or failure
    submit(again, ["y@remote.test"])
    eventually(lambda: [m for m in again.sink.messages if m.recipients == ["y@remote.test"]])
    eventually(lambda: ("sts-policy-fetch-error", 2) in [(c.result_type, c.sessions)
                                                         for c in counted(again)],
               what="the second fetch failure counted")


def test_a_policy_host_without_a_valid_certificate_gives_no_policy(make_server, ca, remote):
    """RFC 8461 §3.3: the policy counts only from a host that proves its name; TLS-RPT
    calls the failure sts-webpki-invalid."""
    impostor = PolicyHost(ca.issue("impostor", "www.remote.test")).start()
    try:
        impostor.serve("enforce")
        server = mta(make_server, ca, remote, "wrong",
                     mta_sts={"https_port": impostor.number})
        submit(server, ["x@remote.test"])
        eventually(lambda: server.sink.messages)          # as though there were no policy
        assert impostor.file.fetches == 0
        eventually(lambda: [(c.result_type, c.sessions) for c in counted(server)] == [
            ("sts-webpki-invalid", 1)], what="the policy host's failure counted")
    finally:
        impostor.stop()


# --- testing mode and the report ------------------------------------------------------------

def test_testing_mode_delivers_records_the_failure_and_reports_it_the_next_day(
        make_server, ca, remote):
    ns, host, sinks = remote
    host.serve("testing")
    server = mta(make_server, ca, remote, "wrong")
    submit(server, ["x@remote.test"])
    (got,) = eventually(lambda: server.sink.messages)
    assert got.tls and got.recipients == ["x@remote.test"]
    eventually(lambda: server.db(queue.listing) == [])
    assert [(c.result_type, c.mx_host, c.remote_ip, c.sessions) for c in counted(server)] == [
        ("certificate-host-mismatch", "mx.remote.test", "127.0.0.1", 1)]
    day = server.now().strftime("%Y-%m-%d")
    server.db(rotation.keygen, "mx.example.test", server.now(), rotation.make_pairs())
    server.advance(86400)
    report_mail = eventually(lambda: [m for m in server.sink.messages
                                      if m.recipients == ["tlsrpt@reports.test"]])[0]
    assert report_mail.sender == ""
    assert b"DKIM-Signature:" in report_mail.body and b"d=mx.example.test" in report_mail.body
    message = email.message_from_bytes(report_mail.body)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    assert message["TLS-Report-Domain"] == "remote.test"
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    report = json.loads(gzip.decompress(part.get_payload(decode=True)))
    assert report["date-range"]["start-datetime"] == f"{day}T00:00:00Z"
    (policy,) = report["policies"]
    assert policy["policy"]["policy-type"] == "sts"
    assert policy["policy"]["policy-domain"] == "remote.test"
    assert policy["policy"]["mx-host"] == ["mx.remote.test"]
    assert policy["summary"] == {"total-successful-session-count": 0,
                                 "total-failure-session-count": 1}
    assert policy["failure-details"][0]["result-type"] == "certificate-host-mismatch"
    assert server.db(outbound_tls.counted, "remote.test", day) == []   # sent once
