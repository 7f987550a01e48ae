"""TLS: server and client contexts with a TLS 1.2 floor, certificate loading, dev certificates.

Why one module: STARTTLS on 25/587/110/143 and implicit TLS on 465/993/995 must present the
same certificate with the same protocol floor, and the demo must work on a fresh machine
without an operator making certificates by hand -- so ``ensure_dev_certificates`` creates a
private CA and an ECDSA P-256 server certificate (ECDSA handshakes cost half of RSA-2048's on
this class of machine; PERFORMANCE.md).  The CA file is what test clients verify against.

Security: TLS 1.2 minimum (RFC 8996, RFC 8314 §4.1); private keys are written 0600 and never
committed (``certs/*.key`` is git-ignored).  ``opportunistic_client_options`` checks no
certificate (RFC 7435): it keeps outbound mail from passive eavesdroppers only
(``delivery/smtp_client.py``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import ssl

from mailstack import clock as clocks


def server_options(certificate_path: Path, key_path: Path) -> ssl.CertificateOptions:
    """One options object for every TLS listener (STARTTLS and implicit alike)."""
    chain = x509.load_pem_x509_certificates(Path(certificate_path).read_bytes())
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    return ssl.CertificateOptions(
        # cryptography objects, not pyOpenSSL ones (those warn on every context).
        privateKey=key,
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        enableSessions=False,
    )


class ReloadableServerTLS:
    """The server's TLS options as one object every listener holds, whose certificate can
    be replaced (``mailstack reload``): Twisted asks ``getContext()`` for each new
    connection and each STARTTLS, so a renewed certificate is served from the next one on
    while connections already encrypted keep theirs."""

    def __init__(self, options: ssl.CertificateOptions):
        self.options = options

    def getContext(self):
        return self.options.getContext()

    def replace(self, options: ssl.CertificateOptions) -> None:
        self.options = options


def opportunistic_client_options() -> ssl.CertificateOptions:
    """MTA-to-MTA STARTTLS is opportunistic (RFC 7435): encrypt, do not verify names."""
    return ssl.CertificateOptions(verify=False, raiseMinimumTo=ssl.TLSVersion.TLSv1_2)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _names_all(certificate: Path, hostnames: list[str]) -> bool:
    """Whether ``certificate`` exists and its subjectAltName holds every name."""
    if not certificate.exists():
        return False
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(hostnames) <= set(san.get_values_for_type(x509.DNSName))


def ensure_dev_certificates(certificate: Path, private_key: Path, ca_certificate: Path,
                            hostnames: list[str], *, now: datetime.datetime | None = None) -> bool:
    """Create a dev CA and a server certificate unless both files exist and the certificate
    names every one of ``hostnames`` (a hosted domain added since is then covered).  True
    if created."""
    if Path(private_key).exists() and _names_all(Path(certificate), hostnames):
        return False
    # Wall-clock time on purpose, not the injected clock: the clients that check these
    # certificates' validity dates read the real time, whatever the server's clock says.
    now = now or clocks.now(clocks.WallClock())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailstack development CA")])
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                              critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(h) for h in dict.fromkeys(hostnames + ["localhost"])]
    names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(Path(private_key), _pem_key(key))
    Path(certificate).write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                  + ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(ca_certificate).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return True
