"""MTA-STS text: the ``_mta-sts`` TXT record, the policy file, and which MX hosts a policy
allows.

Why a leaf of its own: the same format is written by the policy we serve
(``policy/sender_records.py``, whose hash is the record's ``id=``) and read from the
policies other domains serve (``delivery/sts_policies.py``); one module keeps the two
readings of RFC 8461 from drifting apart.  Pure functions, no I/O.

Standards: RFC 8461 §3.1 (the TXT record), §3.2 (the policy file: ``version``, ``mode``,
``max_age``, ``mx``; CRLF or LF line ends; the first of a repeated field wins, except
``mx``), §4.1 (MX host matching: exact, or ``*.`` standing for exactly one left-most label).
Security: the parsers read text fetched from other domains: bounded by their callers
(64 KB policy, DNS answer size), no recursion, nothing evaluated; a value out of the
grammar makes the whole record or policy invalid (``StsSyntaxError``), which the caller
treats as "no policy" (RFC 8461 §3.2), never as a looser policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600            # RFC 8461 §3.2: max_age is at most one year
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class StsSyntaxError(ValueError):
    """The record or policy does not follow RFC 8461's grammar."""


@dataclass(frozen=True)
class Policy:
    mode: str
    max_age: int
    mx: tuple[str, ...]          # patterns, lower case: "mx.example.net", "*.example.net"

    def allows(self, host: str) -> bool:
        """Whether ``host`` (an MX host name) matches one of the policy's patterns."""
        return any(mx_matches(pattern, host) for pattern in self.mx)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: ``mx.example.net`` matches itself only; ``*.example.net`` matches
    exactly one more label on the left (``a.example.net``, not ``example.net`` nor
    ``a.b.example.net``).  Case-insensitive; a trailing dot on the host is ignored."""
    pattern, host = pattern.lower(), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return host == pattern


def record_id(txt: str) -> str | None:
    """The ``id`` of an STS record (``v=STSv1; id=...``), None when the text is not an STS
    record at all (another TXT at the name); StsSyntaxError when it is one, but broken."""
    fields = [f.strip(" \t") for f in txt.split(";")]
    if fields[0] != "v=STSv1":
        return None
    found = None
    for field in fields[1:]:
        if not field:
            continue            # the trailing ";" the grammar allows
        key, eq, value = field.partition("=")
        if not eq or not _KEY.fullmatch(key):
            raise StsSyntaxError(f"bad field {field[:40]!r}")
        if key == "id" and found is None:
            if not _ID.fullmatch(value):
                raise StsSyntaxError("id must be 1 to 32 letters and digits")
            found = value
    if found is None:
        raise StsSyntaxError("no id")
    return found


def only_record_id(txts) -> str | None:
    """The id of the one STS record among a name's TXT records (``bytes`` or ``str``);
    None when there is none or more than one (RFC 8461 §3.1: then there is no policy)."""
    ids = []
    for txt in txts:
        text = txt.decode("utf-8", "replace") if isinstance(txt, bytes) else txt
        found = record_id(text)
        if found is not None:
            ids.append(found)
    return ids[0] if len(ids) == 1 else None


def parse_policy(text: str) -> Policy:
    """A policy file (RFC 8461 §3.2) as a Policy; StsSyntaxError when it is not one."""
    seen: dict[str, str] = {}
    mx: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip(" \t"):
            continue
        key, colon, value = line.partition(":")
        if not colon or not _KEY.fullmatch(key):
            raise StsSyntaxError(f"bad line {line[:40]!r}")
        value = value.strip(" \t")
        if key == "mx":
            mx.append(_mx_pattern(value))
        elif key not in seen:
            seen[key] = value
    if seen.get("version") != "STSv1":
        raise StsSyntaxError("version must be STSv1")
    mode = seen.get("mode")
    if mode not in MODES:
        raise StsSyntaxError("mode must be enforce, testing or none")
    max_age = seen.get("max_age", "")
    if not max_age.isdigit() or len(max_age) > 10:
        raise StsSyntaxError("max_age must be a number of seconds")
    if not mx and mode != "none":
        raise StsSyntaxError("no mx")
    return Policy(mode, min(int(max_age), MAX_AGE_LIMIT), tuple(mx))


def _mx_pattern(value: str) -> str:
    host = value.removeprefix("*.")
    labels = host.split(".")
    if not value.isascii() or len(labels) < 2 or not all(_LABEL.fullmatch(l) for l in labels):
        raise StsSyntaxError(f"bad mx {value[:40]!r}")
    return value.lower()


def policy_text(mode: str, mx, max_age: int) -> str:
    """The policy file we serve: CRLF lines, in the RFC's order."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx),
             f"max_age: {max_age}"]
    return "".join(line + "\r\n" for line in lines)
