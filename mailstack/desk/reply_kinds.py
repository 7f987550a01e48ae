"""Which kind of refusal a reply or a rejection record is.

Why from ``replies.py``: every refusal text we send is built once there (ARCHITECTURE C4),
so the patterns that recognise our replies in a bounce are made from the same templates --
a reworded reply is still recognised.  A rejection record says it more surely: its check
name and the check's reason (``detail``).

Standards: RFC 3463 (enhanced status codes: X.1.1 unknown user, X.2.2 mailbox full, X.7.25
no PTR).
"""

from __future__ import annotations

import re

from mailstack import replies

TEMPLATES = [
    ("dnsbl", replies.DNSBL_LISTED), ("temporary", replies.DNSBL_TEMPFAIL),
    ("no_ptr", replies.NO_PTR), ("no_ptr", replies.NO_PTR_TEMPORARY),
    ("local_block", replies.LOCALLY_BLOCKED), ("unknown_user", replies.UNKNOWN_USER),
    ("unknown_user", replies.SRS_INVALID), ("relay_denied", replies.RELAY_DENIED),
    ("over_quota", replies.MAILBOX_FULL), ("over_quota", replies.MESSAGE_OVER_QUOTA),
    ("op25b", replies.OP25B), ("sunset", replies.POP_BEFORE_SMTP_ENDED),
    ("auth_required", replies.AUTH_REQUIRED), ("dmarc", replies.DMARC_REJECT),
    ("spam", replies.SPAM_REJECT), ("temporary", replies.SPAM_TEMPFAIL),
    ("recipient_filter", replies.SIEVE_REJECT),
    ("temporary", replies.AUTHENTICATION_TEMPFAIL), ("temporary", replies.RATE_LIMITED),
]
BY_STATUS = {"5.1.1": "unknown_user", "5.7.25": "no_ptr", "4.7.25": "no_ptr",
             "4.2.2": "over_quota", "5.2.2": "over_quota"}
BY_CHECK = {"dnsbl": "dnsbl", "rdns": "no_ptr", "relay": "relay_denied", "op25b": "op25b",
            "dmarc": "dmarc", "spam": "spam", "srs": "unknown_user", "quota": "over_quota",
            "recipients-per-hour": "temporary", "sieve": "recipient_filter"}
# A kind told by a block record -> the block source it comes from.
BLOCK_KINDS = {"spam_trap": "trap", "complaints": "complaints", "local_block": "manual",
               "harvest": "harvest", "firewall": "manual"}
LASTS = {"listing": "while listed", "dns": "until the PTR record is published",
         "fact": "permanent", "mailbox": "until the mailbox has room",
         "policy": "permanent", "none": "not applicable", "block": "unknown"}
URL = re.compile(r"\bsee (https?://\S+?)[).,;]*(?:\s|$)")
REF_TAIL = r"(?:\s*\(ref [A-Z0-9]{8}\))?\s*"


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*?)" for i, p in enumerate(parts))
    return re.compile(regex.replace(r"\ ", r"\s+") + REF_TAIL, re.DOTALL)


PATTERNS = [(kind, reply.status, _pattern(reply.text)) for kind, reply in TEMPLATES]


def of_reply_text(text: str) -> tuple[str, dict | None]:
    """(kind, the template's fields) of a reply written as ``550 5.1.1 text``; the fields
    are None when no reply of ours has that text (the kind is then a guess from the code)."""
    found = re.match(r"\s*(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})\s+(.*)", text or "", re.DOTALL)
    if not found:
        return "other", None
    status, body = found.group(2), " ".join(found.group(3).split())
    for kind, their_status, pattern in PATTERNS:
        match = pattern.fullmatch(body)
        if match and their_status == status:
            return _local_block(kind, match.groupdict()), match.groupdict()
    return BY_STATUS.get(status, "temporary" if status.startswith("4") else "other"), None


def of_reply(reply) -> tuple[str, dict | None]:
    return of_reply_text(str(reply)) if reply is not None else ("other", None)


def _local_block(kind: str, fields: dict) -> str:
    if kind != "local_block":
        return kind
    reason = fields.get("reason", "")
    if reason.startswith("spam trap hit"):
        return "spam_trap"
    if re.match(r"\d+ complaints", reason):
        return "complaints"
    return kind


def of_rejection(row) -> str:
    """The kind of a rejection record, from its check, its reason and its reply."""
    check, detail = row.check_name, row.detail or ""
    if check == "blocklist":
        source = detail.split(":", 1)[0]
        return {"trap": "spam_trap", "complaints": "complaints", "harvest": "harvest"}.get(
            source, "local_block")
    if check == "recipients":
        return "over_quota" if "full" in detail else "unknown_user"
    if check == "pop-before-smtp":
        return "sunset" if "sunset" in detail else "auth_required"
    if check in BY_CHECK:
        return BY_CHECK[check]
    kind, _ = of_reply_text(row.reply)
    return kind


def url_in(text: str) -> str | None:
    found = URL.search(text or "")
    return found.group(1) if found else None
