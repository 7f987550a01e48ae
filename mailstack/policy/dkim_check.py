"""DKIM (RFC 6376, Ed25519 by RFC 8463): every signature of a message, each its own result.

Why dkimpy, and why not through ``authheaders.check_dkim``: dkimpy is the field's
verifier (canonicalisation, l=, the key record's tags, RSA and Ed25519); authheaders
verifies only the first signature and turns a DNS timeout into "fail".  Here the message
is parsed once (``dkim.DKIM``) and each signature is verified by its index, with our
resolver as dkimpy's ``dnsfunc`` (``dns_bridge``).

Results per signature (RFC 8601 §2.7.1): ``pass``; ``fail`` (the hash or the signature
does not match); ``permerror`` (a signature that cannot be read, no key at the selector,
a key that cannot be used: RFC 6376 §6.1.2 PERMFAIL); ``temperror`` (the key could not be
looked up).  No signature at all is one ``none``.

Standards: RFC 6376 §6, RFC 8463, RFC 8601 §2.7.1 (header.d, header.i, header.s, header.a).
Security: runs in a worker thread; dkimpy refuses RSA keys under 1024 bits and is given the
message as it came (before our own header is added or a forged one is removed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim

from mailstack.policy import dkim_rsa
from mailstack.policy.dns_bridge import DNSTempFail

dkim_rsa.install()          # RSA by OpenSSL, not dkimpy's pure Python (dkim_rsa.py)

_quiet = logging.getLogger("mailstack.dkim")     # dkimpy logs every failure as an error
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class DKIMResult:
    result: str                # pass fail permerror temperror none
    domain: str = ""           # d=
    selector: str = ""         # s=
    identity: str = ""         # i=
    algorithm: str = ""        # a=
    reason: str = ""


def check(bridge, message: bytes) -> list[DKIMResult]:
    end = message.find(b"\r\n\r\n")
    if b"dkim-signature" not in message[:end if end >= 0 else len(message)].lower():
        return [DKIMResult("none")]     # no parse, no work: unsigned mail costs nothing here
    try:
        verifier = dkim.DKIM(message, logger=_quiet)
    except Exception:          # a message dkimpy cannot even parse
        return [DKIMResult("permerror", reason="message not parseable")]
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    if not count:
        return [DKIMResult("none")]
    return [_one(verifier, index, bridge) for index in range(count)]


def _one(verifier, index: int, bridge) -> DKIMResult:
    bridge.missing.clear()
    verifier.signature_fields = {}
    try:
        ok = verifier.verify(idx=index, dnsfunc=bridge.dkim_txt)
    except DNSTempFail:
        return _result(verifier, "temperror", "key lookup failed")
    except dkim.DKIMException as e:
        return _result(verifier, "permerror", _first_words(e))
    except Exception as e:     # dkimpy's own failure on odd input: not the sender's pass
        return _result(verifier, "permerror", type(e).__name__)
    if ok:
        return _result(verifier, "pass")
    if bridge.missing:
        return _result(verifier, "permerror", "no key for signature")
    return _result(verifier, "fail", "signature did not verify")


def _result(verifier, result: str, reason: str = "") -> DKIMResult:
    fields = getattr(verifier, "signature_fields", None) or {}

    def text(tag: bytes) -> str:
        return fields.get(tag, b"").decode("ascii", "replace").strip()

    return DKIMResult(result, text(b"d").lower(), text(b"s"), text(b"i"), text(b"a"), reason)


def _first_words(error) -> str:
    return str(error).split(":")[0][:60]
