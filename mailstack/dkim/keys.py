"""DKIM key pairs and what DNS publishes of them.

Why both algorithms: RFC 8463 §4 tells signers to sign with Ed25519 *and* RSA while
verifiers catch up -- Ed25519 is short and fast, RSA-2048 is what every verifier knows.
The keys are made with ``cryptography`` (already our TLS library); the private key is kept
in the form dkimpy signs with: the base64 32-octet seed for Ed25519 (RFC 8463 §3), a PEM
RSAPrivateKey for RSA.  The ``p=`` value is the base64 raw public key for Ed25519
(RFC 8463 §4) and the DER SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1).

Standards: RFC 6376 §3.6.1 (key record tags), §3.6.2.2 (TXT strings of at most 255
octets), RFC 8463 (Ed25519-SHA256), RFC 8301 §3.2 (RSA keys of at least 1024, 2048 used).
Security: nothing here prints or logs a private key; ``fingerprint`` and ``txt_value``
are made from the public key alone.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

ED25519, RSA = "ed25519", "rsa"
ALGORITHMS = (ED25519, RSA)
SIGNATURE_ALGORITHM = {ED25519: b"ed25519-sha256", RSA: b"rsa-sha256"}
RSA_BITS = 2048
TXT_STRING = 255          # octets of one character-string in a TXT record (RFC 1035 §3.3)


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private_key: str      # what dkimpy signs with; stored, never shown
    public_key: str       # the p= value

    def __repr__(self) -> str:          # a stray log line must not carry the key
        return f"KeyPair({self.algorithm}, {fingerprint(self.public_key)})"


def generate(algorithm: str) -> KeyPair:
    if algorithm == ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
        return KeyPair(ED25519, base64.b64encode(seed).decode(), base64.b64encode(public).decode())
    if algorithm == RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return KeyPair(RSA, pem.decode("ascii"), base64.b64encode(public).decode())
    raise ValueError(f"unknown DKIM algorithm {algorithm!r}")


def txt_value(algorithm: str, public_key: str) -> str:
    """The key record (RFC 6376 §3.6.1): ``v=DKIM1; k=…; p=…``."""
    return f"v=DKIM1; k={algorithm}; p={public_key}"


def txt_strings(value: str) -> list[str]:
    """``value`` cut into character-strings of at most 255 octets: a 2048-bit RSA key
    record is about 400 (RFC 6376 §3.6.2.2: the strings are joined without spaces)."""
    return [value[i:i + TXT_STRING] for i in range(0, len(value), TXT_STRING)] or [""]


def zone_text(value: str) -> str:
    """The TXT record's data as zone-file text: each string quoted (no quote or backslash
    can occur in a key record or in the records we write)."""
    return " ".join(f'"{s}"' for s in txt_strings(value))


def fingerprint(public_key: str) -> str:
    """A short name of a public key for listings: SHA-256 of its octets, as ssh shows it."""
    digest = hashlib.sha256(base64.b64decode(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")[:22]
