"""DKIM-signs the mail we send for hosted domains, with dkimpy, off the reactor thread.

Why dkimpy: the field's Python implementation of RFC 6376 and RFC 8463 (the one the
issue names), used by spamassassin-style milters and mailing list software; writing the
canonicalisation and the signature ourselves would only add bugs.  Ed25519 in dkimpy
needs PyNaCl (setup.cfg).

What is signed, and by whom: a message that leaves for remote recipients, by the domain
of its ``From:`` field (one address, RFC 5322 §3.6.2) when that domain has keys that sign
now -- with each of them, Ed25519 and RSA (RFC 8463 §4).  A submitted message is signed
only when the ``From:`` domain is the envelope sender's, which the policy proved the
customer may use (``policy/sender_rules.py``): a customer of one hosted domain cannot get
another's signature by writing its address in ``From:``.  Our own notices (bounces) are
signed by the domain of the ``From:`` we wrote.  Canonicalisation relaxed/relaxed; the
header fields RFC 6376 §5.4.1 recommends (dkimpy's list: From, To, Cc, Subject, Date,
Message-ID, the MIME fields, References …), From signed once more than it occurs so none
can be added.

When: once, when the message is queued (``delivery/routing.py``, ``delivery/bounce.py``),
in the store's thread (``Database.run_prepared``'s preparation, before SQLite's writer
lock, for submitted mail).  The keys are read from the store into memory at most every
``RELOAD`` seconds of the injected clock (``ready``, called on the reactor before queueing),
so a key made by ``mailstack dkim keygen`` signs within a minute without a restart, and
signing costs no query.

How: the body is hashed once, a piece at a time, for both signatures (``body_hash.py``:
dkimpy's ``sign()`` would hold a 25 MB body four times over and the GIL for seconds);
dkimpy then signs the header with each key (``DKIM.gen_header``: its header
canonicalisation, hashing, RSA and Ed25519).  ``t=`` is the injected clock's, like the
choice of keys.  A message whose From we cannot read, or whose domain has no keys, costs
a look at its header and no read of its body.

Standards: RFC 6376 (DKIM), RFC 8463 (Ed25519-SHA256), RFC 8301 (RSA-SHA256, 2048 bits).
Security: a private key never appears in a log line or an exception text we write
(``SigningKey`` has no key in its repr); a message dkimpy cannot sign goes out unsigned
with one log line, never refused.
"""

from __future__ import annotations

import dkim
import dkim.crypto
import nacl.encoding
import nacl.signing
from dkim.canonicalization import CanonicalizationPolicy
from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.dkim import body_hash, keys, schedule
from mailstack.message.address_list import parse_addresses
from mailstack.message.head import read_head
from mailstack.store import dkim_keys

log = Logger(namespace="mailstack.dkim")
RELOAD = 60.0                  # seconds of the injected clock between reads of the keys
RELAXED = b"relaxed/relaxed"
HEAD_LIMIT = 256 * 1024        # octets searched for the end of the header


def from_domain(message: bytes) -> str | None:
    """The domain of the one address of the one ``From:`` field, lower case; None for
    anything else (no From, two, a group, a header we cannot read plainly)."""
    head = read_head(message, HEAD_LIMIT)
    if head is None:
        return None
    values = [value for name, value in head.fields if name.lower() == "from"]
    if len(values) != 1:
        return None
    found = [a for a in parse_addresses(values[0]) if a[2] is not None]
    if len(found) != 1 or not found[0][3]:
        return None
    try:
        return found[0][3].decode("ascii").lower()
    except UnicodeDecodeError:
        return None


def header_signature(head: bytes, bh: bytes, domain: str, key, at) -> bytes:
    """One DKIM-Signature field for the header ``head`` (its fields, each ending in CRLF)
    and the body hash ``bh``, made by dkimpy as its ``sign()`` makes it (module doc)."""
    algorithm = keys.SIGNATURE_ALGORITHM[key.algorithm]
    signer = dkim.DKIM(head + b"\r\n", signature_algorithm=algorithm, linesep=b"\r\n")
    if key.algorithm == keys.ED25519:
        private = nacl.signing.SigningKey(key.private_key.encode(),
                                          encoder=nacl.encoding.Base64Encoder)
    else:
        private = dkim.crypto.parse_pem_private_key(key.private_key.encode())
    signer.hasher = dkim.crypto.HASH_ALGORITHMS[algorithm]
    include = tuple(name.lower() for name in signer.default_sign_headers())  # From twice
    fields = [(b"v", b"1"), (b"a", algorithm), (b"c", RELAXED), (b"d", domain.encode()),
              (b"i", b"@" + domain.encode()), (b"q", b"dns/txt"),
              (b"s", key.selector.encode()), (b"t", str(int(at.timestamp())).encode()),
              (b"h", b" : ".join(include)), (b"bh", bh), (b"b", b"0" * 60)]
    return b"DKIM-Signature: " + signer.gen_header(
        fields, include, CanonicalizationPolicy.from_c_value(RELAXED), b"DKIM-Signature",
        private)


class Signer:
    """The keys in memory and the signing; ``NO_SIGNER`` signs nothing."""

    def __init__(self, db, clock, reload: float = RELOAD):
        self.db, self.clock, self.reload = db, clock, reload
        self._keys: dict[str, tuple] = {}
        self._loaded_at: float | None = None

    def ready(self) -> defer.Deferred:
        """Fires once the keys in memory are at most ``reload`` seconds old."""
        seconds = self.clock.seconds()
        if self._loaded_at is not None and seconds - self._loaded_at < self.reload:
            return defer.succeed(None)
        d = self.db.read(dkim_keys.signing_keys, clocks.to_datetime(seconds))
        d.addCallback(self._loaded, seconds)
        d.addErrback(lambda f: log.warn("DKIM keys not reloaded: {error}",
                                        error=f.getErrorMessage()))
        return d

    def _loaded(self, found, seconds: float) -> None:
        by_domain: dict[str, list] = {}
        for key in found:
            by_domain.setdefault(key.domain, []).append(key)
        self._keys = {d: tuple(k) for d, k in by_domain.items()}     # replaced whole: threads read it
        self._loaded_at = seconds

    def sign(self, head: bytes, body_pieces, at, sender_domain: str | None = None) -> bytes:
        """The DKIM-Signature fields to put on top of a message (b"" when it is not ours to
        sign).  ``head``: its start, the whole header at least; ``body_pieces()``: an
        iterable of the body's octets, called only when the message is signed.
        ``sender_domain``: the envelope sender's, which ``From:`` must match (None for a
        notice whose ``From:`` we wrote).  Runs in a worker thread."""
        domain = from_domain(head)
        if domain is None or (sender_domain is not None and domain != sender_domain.lower()):
            return b""
        chosen = schedule.choose(self._keys.get(domain, ()), at)
        if not chosen:
            return b""
        header = head[:head.find(b"\r\n\r\n") + 2]
        bh = body_hash.of_pieces(body_pieces())
        fields = []
        for key in chosen:
            try:
                fields.append(header_signature(header, bh, domain, key, at))
            except (dkim.DKIMException, ValueError) as e:
                log.warn("not signed by {domain} ({selector}): {error}", domain=domain,
                         selector=key.selector, error=type(e).__name__)
        return b"".join(fields)

    def signatures(self, message: bytes, at, sender_domain: str | None = None) -> bytes:
        """``sign`` for a message in hand (a bounce we wrote)."""
        end = message.find(b"\r\n\r\n")
        return self.sign(message, lambda: [message[end + 4:]] if end >= 0 else [], at,
                         sender_domain)


class _NoSigner:
    """For what is built without signing (unit tests, the CLI): signs nothing."""

    def ready(self) -> defer.Deferred:
        return defer.succeed(None)

    def sign(self, head: bytes, body_pieces, at, sender_domain: str | None = None) -> bytes:
        return b""

    def signatures(self, message: bytes, at, sender_domain: str | None = None) -> bytes:
        return b""


NO_SIGNER = _NoSigner()
