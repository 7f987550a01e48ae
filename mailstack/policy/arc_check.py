"""ARC (RFC 8617): is the message's chain of custody intact, and who sealed it last?

Why it matters here: a mailing list or a forwarder changes a message (a subject tag, a
footer) and its author's DKIM signature breaks, so DMARC fails at the final hop.  ARC lets
the forwarder vouch for what it saw: if the chain validates and its last sealer is one we
trust (``[authentication] trusted_forwarders``), a DMARC ``p=reject`` is not applied
(RFC 7489 §6.7 local policy override "trusted_forwarder", as Gmail does for lists).  The
chain is reported in Authentication-Results either way.

Why dkimpy's ``ARC.verify``: it validates every set (ARC-Seal over the sets below it, the
newest ARC-Message-Signature, i= numbering, cv= rules: RFC 8617 §5.2) with its DKIM code;
its DNS goes through ``dns_bridge`` like DKIM's.  authheaders' ``check_arc`` reports a DNS
failure as a chain failure; a lookup that could not be made is ``temperror`` here.

Standards: RFC 8617 §5.2 (validation), §4.1.3 (cv=), RFC 8601 §2.7 (arc=, header.oldest-pass).
Security: the sealer's identity counts only when the whole chain validates (cv pass); the
trusted list names domains (the ARC-Seal d=), whose keys are found in their own DNS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim

from mailstack.policy.dns_bridge import DNSTempFail

_quiet = logging.getLogger("mailstack.arc")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class ARCResult:
    result: str                # pass fail none temperror
    sealer: str = ""           # d= of the newest ARC-Seal (only meaningful on pass)
    instance: int = 0
    reason: str = ""


def check(bridge, message: bytes) -> ARCResult:
    if b"arc-seal" not in message[:_head_end(message)].lower():
        return ARCResult("none")       # no parse, no work: most mail carries no ARC
    try:
        cv, sets, comment = dkim.ARC(message, logger=_quiet).verify(dnsfunc=bridge.dkim_txt)
    except DNSTempFail:
        return ARCResult("temperror", reason="key lookup failed")
    except Exception as e:     # a malformed chain dkimpy could not read
        return ARCResult("fail", reason=type(e).__name__)
    if cv is None:
        return ARCResult("fail", reason=str(comment)[:80])
    result = cv.decode("ascii").lower()
    newest = sets[0] if sets else {}
    sealer = newest.get("as-domain", b"").decode("ascii", "replace").lower()
    return ARCResult(result, sealer if result == "pass" else "", newest.get("instance", 0),
                     "" if result == "pass" else str(comment)[:80])


def _head_end(message: bytes) -> int:
    end = message.find(b"\r\n\r\n")
    return end if end >= 0 else len(message)
