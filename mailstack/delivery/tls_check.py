"""Whether an outbound TLS session meets the destination's MTA-STS policy: STARTTLS used,
and the MX host's certificate valid for its name (PKIX).

Why after the handshake and not in it: the handshake is always the opportunistic one
(``tls.opportunistic_client_options``), and the certificate is judged once it is done.
In ``testing`` mode a failed check must not stop the delivery but must be counted for
TLS-RPT with its exact kind; in ``enforce`` mode the same answer ends the session
(``smtp_client.py``).  One check, two uses -- and the kind (expired, untrusted, wrong
name) is ours to tell, where a failed handshake would only say "failed".

The check runs on the reactor thread: OpenSSL verifies two or three signatures of a
chain (well under a millisecond), less than the handshake that preceded it there.

Standards: RFC 8461 §4.2 (the MX certificate: PKIX, valid for the MX host name, wildcards
as RFC 6125), §5 (enforce: no delivery to a host that fails); RFC 8460 §4.3.2.1 (the
result types: starttls-not-supported, certificate-host-mismatch, certificate-expired,
certificate-not-trusted, validation-failure).
Security: the chain is verified against the configured CA file or the system store at
the business clock's time, the name by ``service_identity`` (RFC 6125: a wildcard only as
the whole left-most label); the peer's own intermediates are used as untrusted helpers
only.  Not checked: revocation (no OCSP or CRL, as RFC 8461 does not require them),
DANE (RFC 7672).
"""

from __future__ import annotations

import ssl as stdlib_ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import crypto
from service_identity import VerificationError
from service_identity.cryptography import verify_certificate_hostname
from twisted.internet import ssl

from mailstack import clock as clocks

EXPIRED = {9, 10}             # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
UNTRUSTED = {2, 18, 19, 20, 21}    # no issuer, self-signed, issuer not found locally


class TrustAnchors:
    """The CAs outbound TLS trusts: ``ca_file`` (PEM), or the system's store when empty.
    Loaded at first use, once."""

    def __init__(self, ca_file: str, clock):
        self.ca_file, self.clock = ca_file, clock
        self._store = self._root = None

    def twisted_root(self):
        """For Twisted's ``optionsForClientTLS`` (the policy fetch)."""
        if self._root is None:
            if not self.ca_file:
                self._root = ssl.platformTrust()
            else:
                pems = x509.load_pem_x509_certificates(Path(self.ca_file).read_bytes())
                self._root = ssl.trustRootFromCertificates(
                    [ssl.Certificate.loadPEM(c.public_bytes(Encoding.PEM)) for c in pems])
        return self._root

    def _x509_store(self) -> crypto.X509Store:
        if self._store is None:
            store = crypto.X509Store()
            if self.ca_file:
                store.load_locations(self.ca_file)
            else:
                paths = stdlib_ssl.get_default_verify_paths()
                store.load_locations(paths.cafile, paths.capath)
            self._store = store
        return self._store

    def verify(self, chain, host: str) -> str | None:
        """The RFC 8460 result-type of a peer chain (pyOpenSSL ``X509``s, leaf first) for
        ``host``; None when it is valid."""
        if not chain:
            return "validation-failure"
        leaf = chain[0]
        try:
            verify_certificate_hostname(leaf.to_cryptography(), host)
        except VerificationError:
            return "certificate-host-mismatch"
        except Exception:          # a certificate service_identity cannot read
            return "validation-failure"
        store = self._x509_store()
        store.set_time(clocks.now(self.clock).replace(tzinfo=None))
        try:
            crypto.X509StoreContext(store, leaf, chain[1:]).verify_certificate()
        except crypto.X509StoreContextError as e:
            code = e.errors[0] if e.errors else 0
            if code in EXPIRED:
                return "certificate-expired"
            if code in UNTRUSTED:
                return "certificate-not-trusted"
            return "validation-failure"
        return None


@dataclass(frozen=True)
class TLSCheck:
    """What one connection to ``mx_host`` must prove: ``mode`` is the policy's (``none``:
    nothing, opportunistic TLS as always); ``domain`` and ``policy_id`` say which policy,
    for TLS-RPT."""

    mode: str = "none"
    mx_host: str = ""
    anchors: TrustAnchors | None = None
    domain: str = ""
    policy_id: str = ""
    named: bool = True        # whether the policy's mx patterns name the host (testing mode
                              # tries the others too, and counts them as failed)

    @property
    def applies(self) -> bool:
        """Whether a policy is in force: the session is judged and counted."""
        return self.mode in ("testing", "enforce")

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def judge(self, transport) -> str | None:
        """None when the session passes; else its RFC 8460 result-type.  ``transport``:
        the session's TLS transport, None when it stayed in the clear."""
        if not self.applies:
            return None
        if transport is None:
            return "starttls-not-supported"
        # After startTLS the transport's protocol is Twisted's TLSMemoryBIOProtocol, whose
        # handle is the OpenSSL connection (twisted/internet/_newtls.py).
        connection = transport.protocol.getHandle()
        failure = self.anchors.verify(connection.get_peer_cert_chain() or [], self.mx_host)
        return failure or (None if self.named else "validation-failure")


NO_CHECK = TLSCheck()
