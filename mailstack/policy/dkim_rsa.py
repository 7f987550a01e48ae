"""RSA signature verification for dkimpy through OpenSSL (``cryptography``).

Why: dkimpy verifies RSASSA-PKCS1-v1_5 in pure Python (``dkim/crypto.py``: ``pow`` and a
byte-at-a-time ``int2str``), about 0.35 ms of the ~0.9 ms a signed 4 KB message costs on
port 25 (docs/benchmarks.md); OpenSSL takes a few hundredths of a millisecond.  dkimpy
has no hook for its crypto, so ``install`` replaces the one function it calls,
``dkim.RSASSA_PKCS1_v1_5_verify`` (DKIM and ARC both use it), with ``verify``: the same
contract -- a hash object, the signature octets, dkimpy's public-key dict; True or False
-- and everything else (canonicalisation, tags, key records, the key-size floor) stays
dkimpy's.  Keys are built once per modulus (an LRU of 1,024: a busy MX sees few keys).

A hash dkimpy might add and we do not know, or a key OpenSSL refuses to load, goes to
dkimpy's own function, so nothing verifies here that dkimpy would refuse for another reason.
The one difference is deliberate: a signature longer than the modulus is refused, as
RFC 8017 §8.2.2 says (dkimpy reduces it modulo n and may accept it).

Standards: RFC 8017 §8.2.2 (RSASSA-PKCS1-v1_5-VERIFY), RFC 6376 §3.3.1.
Security: verification only (no private key here); a shorter signature is left-padded
with zero octets to the modulus length, as I2OSP gives it.
"""

from __future__ import annotations

import functools

import dkim
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

_PURE = dkim.RSASSA_PKCS1_v1_5_verify
_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}


@functools.lru_cache(maxsize=1024)
def _public_key(modulus: int, exponent: int):
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def verify(hash, signature: bytes, public_key: dict) -> bool:
    """dkimpy's ``RSASSA_PKCS1_v1_5_verify``, by OpenSSL."""
    algorithm = _HASHES.get(getattr(hash, "name", "").lower())
    try:
        key = _public_key(public_key["modulus"], public_key["publicExponent"])
    except (ValueError, TypeError, KeyError):
        key = None
    if algorithm is None or key is None:
        return _PURE(hash, signature, public_key)
    size = (key.key_size + 7) // 8
    if len(signature) > size:
        return False
    try:
        key.verify(signature.rjust(size, b"\0"), hash.digest(), padding.PKCS1v15(),
                   utils.Prehashed(algorithm()))
    except InvalidSignature:
        return False
    return True


def install() -> None:
    """Make dkimpy's DKIM and ARC verification use ``verify`` (idempotent)."""
    dkim.RSASSA_PKCS1_v1_5_verify = verify
