"""Independent DKIM verifiers for the tests: Perl's Mail::DKIM and OpenDKIM's opendkim-testmsg.

Both look the keys up in DNS, in the tests' loopback DNS server (dns_server.py):

- Mail::DKIM (Debian's libmail-dkim-perl) through Net::DNS, whose resolver is pointed at
  the server's address and port (``Mail::DKIM::DNS::resolver``).  Debian 12 ships
  Mail::DKIM 1.20230212, which verifies RSA only: its ``Mail::DKIM::PublicKey`` accepts
  ``k=rsa`` alone and it has no ``ed25519_sha256`` algorithm (added upstream in 1.20230630),
  so it reports an Ed25519 signature as invalid ("unsupported"), whatever the key.
- opendkim-testmsg (Debian's opendkim-tools, libopendkim 2.11, which verifies Ed25519 and
  RSA) has no option for a nameserver, a port or a key file when it verifies: libopendkim
  asks the C library's resolver (``res_ninit``/``res_nquery``), which reads
  /etc/resolv.conf and always uses port 53.  So it runs in a mount namespace of its own
  (``unshare -m``, as root: CI runs as root) where a resolv.conf naming a loopback address
  of this test process (``NAMESERVER_53``: 127.53.x.y from the pid, so parallel workers do
  not meet) is bound over /etc/resolv.conf, and the test's DNS server also answers on port
  53 of that address (``Port53``).  The machine's resolv.conf is never touched.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.names import dns, server

from tests.support.reactor import call

NAMESERVER_53 = f"127.53.{(os.getpid() >> 8) & 255}.{(os.getpid() & 255) or 1}"

MAIL_DKIM = r"""
use strict;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;
my $port = shift @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0, retry => 1,
    udp_timeout => 5, tcp_timeout => 5));
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) { $line =~ s/\015?\012\z/\015\012/; $dkim->PRINT($line); }
$dkim->CLOSE();
for my $sig ($dkim->signatures) {
    print join("\t", $sig->algorithm, $sig->selector, $sig->domain, $sig->result,
               $sig->result_detail), "\n";
}
"""


def mail_dkim(message: bytes, dns_port: int, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Mail::DKIM's result per signature: {algorithm: (result, detail)}."""
    script = tmp_path / "verify.pl"
    script.write_text(MAIL_DKIM)
    done = subprocess.run(["perl", str(script), str(dns_port)], input=message,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    results = {}
    for line in done.stdout.decode().splitlines():
        algorithm, _selector, _domain, result, detail = line.split("\t")
        results[algorithm] = (result, detail)
    return results


def opendkim_testmsg(message: bytes, tmp_path: Path) -> subprocess.CompletedProcess:
    """``opendkim-testmsg`` verifying ``message`` against DNS at NAMESERVER_53:53 (module doc).
    Exit status 0 and no output: verified."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {NAMESERVER_53}\noptions attempts:1 timeout:3\n")
    command = f"mount --bind {resolv} /etc/resolv.conf && exec opendkim-testmsg"
    return subprocess.run(["unshare", "-m", "sh", "-c", command], input=message,
                          capture_output=True, timeout=60)


def only_signature(message: bytes, algorithm: str) -> bytes:
    """``message`` with every DKIM-Signature field but those of ``algorithm`` removed, so
    that a verifier that stops at the first good signature is asked about this one."""
    head, sep, body = message.partition(b"\r\n\r\n")
    fields = re.split(rb"\r\n(?![ \t])", head)
    kept = [f for f in fields if not f.lower().startswith(b"dkim-signature:")
            or f"a={algorithm}".encode() in re.sub(rb"\s+", b"", f)]
    return b"\r\n".join(kept) + sep + body


class Port53:
    """The DNS server's records also answered on NAMESERVER_53:53 (UDP and TCP), for
    opendkim-testmsg, whose resolver knows no other port."""

    def __init__(self, ns):
        self.ns = ns

    def start(self) -> "Port53":
        def _start():
            factory = server.DNSServerFactory(authorities=[self.ns.resolver])
            self.tcp = reactor.listenTCP(53, factory, interface=NAMESERVER_53)
            self.udp = reactor.listenUDP(53, dns.DNSDatagramProtocol(factory),
                                         interface=NAMESERVER_53)
        call(_start)
        return self

    def stop(self) -> None:
        call(lambda: defer.gatherResults([defer.maybeDeferred(self.udp.stopListening),
                                          defer.maybeDeferred(self.tcp.stopListening)]))
