"""The Authentication-Results header field (RFC 8601): ours written, forged ones removed.

Why: the results of SPF, DKIM, ARC and DMARC reach the mail program (and Sieve, and the
support desk) as one header field per message, named by our authserv-id (the server's
host name).  A mail program believes a header with our authserv-id, so one that arrived
with the message claims results we never found: RFC 8601 §5 says to remove those before
delivery, and only those -- results from other authserv-ids (a forwarder's) stay.

Why authres: its result classes write each method's resinfo with the right property
names (smtp.mailfrom, header.d, policy.dmarc ...) and quote what needs quoting; we fold
one resinfo per line (authres writes one long line, which can pass the 998-octet limit).
The authserv-id of an incoming field is read here with a small parser instead of authres'
``parse``: a forged field need not be well-formed beyond its first token, and a header we
cannot parse must still be removed if it names us.

Standards: RFC 8601 §2.2 (syntax), §2.7 (methods and ptypes), §5 (removal), RFC 5322 §2.2.3.
Security: every value comes from our own parsing (addresses, domains, selectors);
anything outside printable ASCII becomes ``?`` and spaces, quotes, semicolons and
parentheses are dropped, so a result cannot add a header line, a property or a comment.
"""

from __future__ import annotations

import re

from authres import AuthenticationResultsHeader, DKIMAuthenticationResult, SPFAuthenticationResult
from authres.arc import ARCAuthenticationResult
from authres.dmarc import DMARCAuthenticationResult

_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"();\\]")
_FIELD = re.compile(rb"(?im)^authentication-results[ \t]*:")


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    return _UNSAFE.sub("?", value)[:255]


def _comment(text: str) -> str | None:
    """A reason as an RFC 8601 comment's content: printable, no parentheses."""
    return re.sub(r"[^\x20-\x7e]|[()\\]", "?", text)[:80] if text else None


def header(authserv_id: str, stamp) -> bytes:
    """``Authentication-Results: <id>;`` with each result folded onto its own line."""
    results = [SPFAuthenticationResult(result=stamp.spf.result,
                                       smtp_mailfrom=_clean(stamp.mail_from or stamp.spf.identity)),
               SPFAuthenticationResult(result=stamp.spf_helo.result,
                                       smtp_helo=_clean(stamp.spf_helo.identity))]
    for d in stamp.dkim:
        results.append(DKIMAuthenticationResult(
            result=d.result, result_comment=_comment(d.reason), header_d=_clean(d.domain),
            header_i=_clean(d.identity),
            header_s=_clean(d.selector), header_a=_clean(d.algorithm)))
    if stamp.arc.result != "none":
        results.append(ARCAuthenticationResult(result=stamp.arc.result,
                                               header_as_d=_clean(stamp.arc.sealer)))
    dmarc = stamp.dmarc
    comment = f"p={dmarc.policy} dis={dmarc.applied}" if dmarc.policy else _comment(dmarc.reason)
    results.append(DMARCAuthenticationResult(result=dmarc.result, result_comment=comment,
                                             header_from=_clean(dmarc.domain),
                                             policy=_clean(dmarc.applied) if dmarc.result == "fail"
                                             else None))
    lines = [str(r) for r in results]
    text = f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(lines) + "\r\n"
    return text.encode("ascii", "replace")


def authserv_id(value: bytes) -> str:
    """The authserv-id of a field's value: its first token or quoted string, comments and
    folding skipped (RFC 8601 §2.2)."""
    text = value.decode("ascii", "replace")
    depth, out, i = 0, [], 0
    while i < len(text):                # drop comments, nested ones too (RFC 5322 §3.2.2)
        c = text[i]
        if c == "\\" and depth:
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(c)
        i += 1
    text = "".join(out).strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        return text[1:end if end > 0 else None].strip().lower()
    return re.split(r"[\s;]", text, maxsplit=1)[0].lower()


def strip_ours(message: bytes, our_id: str) -> tuple[bytes, int]:
    """``message`` without the Authentication-Results fields naming ``our_id``, and how
    many were removed.  Only the header section is looked at; other fields stay byte for
    byte."""
    end = message.find(b"\r\n\r\n")
    head_end = end + 2 if end >= 0 else len(message)
    head = message[:head_end]
    if not _FIELD.search(head):
        return message, 0
    fields: list[list[bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    our_id = our_id.lower()
    kept = [f for f in fields if not (_FIELD.match(f[0]) and _field_id(f) == our_id)]
    if len(kept) == len(fields):
        return message, 0
    lines = [line for f in kept for line in f]
    return b"\r\n".join(lines) + b"\r\n" + message[head_end:], len(fields) - len(kept)


def _field_id(field: list[bytes]) -> str:
    """The authserv-id of a field given as its lines (the first, then folded ones)."""
    return authserv_id(b" ".join([field[0].split(b":", 1)[1], *field[1:]]))


def parse_ours(value: str):
    """authres' reading of a header we wrote (tests and ``mailstack`` tools)."""
    return AuthenticationResultsHeader.parse(value)
