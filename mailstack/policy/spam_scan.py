"""Content scanning on port 25 with rspamd: each message is scanned before the 250.

Why rspamd and not our own filter: a content filter is years of rules, statistics and
fuzzy hashes kept current; rspamd is what Postfix sites run, and it decides an *action*
from the score (``reject``, ``soft reject``, ``rewrite subject``, ``add header``,
``greylist``, ``no action``).  This module turns that action into ours:

- ``reject`` -> ``550 5.7.1`` with our reference, through the rejection log with the score
  and the symbols (``Refused``, the data table's check: ``mx.py``); GTUBE is rspamd's own
  ``reject``;
- ``soft reject`` -> ``451 4.7.1`` (the sender retries);
- anything else -> delivered, with ``X-Spam-Status``, ``X-Spam-Score`` and
  ``X-Spam-Symbols`` in front of the local copies; ``add header`` and ``rewrite subject``
  (and a ``reject`` let through for a whitelisted client or a customer's allow list)
  say ``Yes``; each customer's SPAM Blocker then files them (``store/spam_filing.py``).

When rspamd cannot answer -- down, slow past ``[spam] timeout``, a broken answer -- the
message is accepted and marked ``X-Spam-Status: unchecked``, with one warning line and
the ``mailstack_spam_scans{result="failed"}`` counter: a filter outage must never bounce
or lose mail.  A message over ``[spam] max_message_size`` is not scanned (``unchecked``,
counted as ``too_large``).  Who is scanned: clients that did not log in and are not on a
trusted network (our own hosts); a whitelisted client is scanned and marked, not refused
(as for DMARC: the whitelist is the desk's answer to a partner that must get through).

The scan runs in ``PortPolicy.data`` after authentication (which may rewrite the spool),
before the data table; the table's ``Refused`` check reads the result, as ``dmarc.Enforced``
reads the authentication stamp.

Standards: RFC 5321 §4.2.5 (the reply to the end of data), RFC 3463 (5.7.1, 4.7.1).
Security: never a 5xx from a failure; rspamd's own message text and symbols are not sent
to the client (they would teach a spammer the rules); the X-Spam-* fields a sender wrote
are removed before ours are added, so no message arrives looking scanned when it is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import replies
from mailstack.metrics import NO_METRICS
from mailstack.policy import spam_lists
from mailstack.policy.decision import DUNNO, Decision, Verdict

log = Logger(namespace="mailstack.policy.spam_scan")
# Delivered as "Yes": marked by rspamd, or refused by it and let through (a whitelisted client).
SPAM_ACTIONS = ("add header", "rewrite subject", "reject", "soft reject")
HEAD_LIMIT = 256 * 1024     # octets looked at for X-Spam-* fields a sender wrote
OURS = re.compile(rb"(?im)^X-Spam(?:-(?:Status|Score|Symbols|Flag|Level))?[ \t]*:"
                  rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")


class ScanFailed(Exception):
    """rspamd could not be asked or gave no usable answer (the reason is the message);
    raised by ``rspamd_client`` (imported only when scanning is on)."""


@dataclass(frozen=True)
class SpamResult:
    """What rspamd said about one message; ``action`` is None when it was not asked."""

    action: str | None
    score: float = 0.0
    required: float = 0.0
    symbols: tuple = ()         # (name, score), sorted by name
    unchecked: str = ""         # why not scanned: "failed" or "too_large"

    @property
    def spam(self) -> bool:
        return self.action in SPAM_ACTIONS

    @property
    def header(self) -> bytes:
        """Our X-Spam-* fields, CRLF-ended, for the front of the local copies."""
        if self.action is None:
            return b"X-Spam-Status: unchecked\r\n"
        status = (f"X-Spam-Status: {'Yes' if self.spam else 'No'}, score={self.score:.2f} "
                  f"required={self.required:.2f} action={self.action.replace(' ', '_')}\r\n"
                  f"X-Spam-Score: {self.score:.2f}\r\n")
        return (status + _folded("X-Spam-Symbols:", self.listed())).encode("ascii")

    def listed(self) -> list[str]:
        return [f"{name}({score:.2f})" for name, score in self.symbols]

    def summary(self) -> str:
        """For the log and the rejection log: the action, score and symbols."""
        if self.action is None:
            return f"not scanned ({self.unchecked})"
        return (f"rspamd {self.action}, score {self.score:.2f}/{self.required:.2f}: "
                + " ".join(self.listed()))


def parsed(answer: dict) -> SpamResult:
    """A SpamResult from rspamd's JSON answer; only typed fields are used."""
    symbols = answer.get("symbols")
    listed = []
    if isinstance(symbols, dict):
        for name, facts in symbols.items():
            score = facts.get("score", 0.0) if isinstance(facts, dict) else 0.0
            listed.append((_clean(name), _number(score)))
    action = answer.get("action")
    if not isinstance(action, str):
        raise ScanFailed("answer has no action")
    return SpamResult(_clean(action.lower()), _number(answer.get("score")),
                      _number(answer.get("required_score")), tuple(sorted(listed)))


class Scanner:
    """Asks rspamd about port 25's messages (or, ``outbound``, submission's); ``scan``
    never fails.  An outbound scan tells rspamd the customer who logged in (``User``),
    changes nothing in the message and puts no X-Spam-* field on it (``marks``): what
    it finds only decides ``spam_outbound.TooSpammy``."""

    def __init__(self, client, *, max_message_size: int, metrics=NO_METRICS,
                 outbound: bool = False):
        self.client, self.max_size, self.metrics = client, max_message_size, metrics
        self.outbound = outbound
        self._label = "outbound_" if outbound else ""

    def for_submission(self) -> "Scanner":
        """The same rspamd, asked about submitted mail."""
        return Scanner(self.client, max_message_size=self.max_size, metrics=self.metrics,
                       outbound=True)

    @property
    def marks(self) -> bool:
        """Whether the result goes on the delivered copies (X-Spam-*, the Junk folder)."""
        return not self.outbound

    def applies(self, request) -> bool:
        """Scanned: on port 25 a message from a client that did not log in and is not our
        own host; on submission every message (its sender proved who it is)."""
        if request.message is None:
            return False
        if self.outbound:
            return True
        client = request.client
        return request.authenticated_as is None and client is not None and client.checked

    def scan(self, request) -> defer.Deferred:
        """The SpamResult of the message in ``request.message``; an unchecked one when
        rspamd cannot answer.  X-Spam-* fields the sender wrote are removed first (port 25)."""
        spool = request.message
        if self.max_size and spool.size > self.max_size:
            self.metrics.spam_scan(self._label + "too_large")
            return defer.succeed(SpamResult(None, unchecked="too_large"))
        if not self.outbound:
            _strip_forged(spool)
        d = self.client.check(spool, envelope(request))
        self._in_flight()
        d.addCallback(parsed)
        d.addCallbacks(self._scanned, self._failed, errbackArgs=(request,))
        d.addBoth(self._in_flight)
        return d

    def _in_flight(self, result=None):
        """The client's count of scans under way (and its peak) to the metrics gauges."""
        self.metrics.spam_in_flight(getattr(self.client, "in_flight", 0),
                                    getattr(self.client, "peak", 0))
        return result

    def _scanned(self, result: SpamResult) -> SpamResult:
        self.metrics.spam_scan(self._label + result.action.replace(" ", "_"))
        return result

    def _failed(self, failure, request) -> SpamResult:
        why = _why(failure)
        log.warn("{session}: spam scan failed ({why}): message accepted unchecked",
                 session=request.session, why=why)
        self.metrics.spam_scan(self._label + "failed")
        return SpamResult(None, unchecked="failed")


def envelope(request) -> dict:
    """The request headers rspamd takes for what it cannot read in the message; ``User``
    for a sender who logged in (rspamd then skips the checks meant for strangers)."""
    client = request.client
    facts = {"IP": request.client_ip, "Helo": request.helo or "",
             "From": request.sender or "",
             "Rcpt": [r.address for r in request.recipients],
             "Queue-Id": request.queue_id or ""}
    name = getattr(client, "verified_name", None)
    if name:
        facts["Hostname"] = name
    account = request.authenticated_as
    if account is not None:
        facts["User"] = getattr(account, "address", None) or str(account)
    return facts


class Refused:
    """The data-table check: rspamd's ``reject`` and ``soft reject``, unless the client is
    whitelisted or a local recipient's allow list lets the sender in (``spam_lists``,
    read from ``db``: only on this rare path)."""

    name = "spam"

    def __init__(self, db=None):
        self.db = db

    def check(self, request):
        result = request.spam
        if result is None or result.action not in ("reject", "soft reject"):
            return DUNNO
        if result.action == "reject":
            refusal = Decision(Verdict.REJECT, self.name, result.summary(), replies.SPAM_REJECT)
        else:
            refusal = Decision(Verdict.DEFER, self.name, result.summary(),
                               replies.SPAM_TEMPFAIL)
        d = request.client.verdict()
        d.addCallback(self._unless_allowed, request, refusal)
        return d

    def _unless_allowed(self, verdict, request, refusal):
        if verdict.verdict is Verdict.PERMIT:
            return DUNNO
        if self.db is None:
            return refusal
        d = spam_lists.allowed(self.db, request)
        d.addCallbacks(self._allowed, self._lists_failed, callbackArgs=(request, refusal),
                       errbackArgs=(request,))
        return d

    def _allowed(self, allowed, request, refusal):
        if not allowed:
            return refusal
        log.info("{session}: rspamd {action} not applied: a recipient allows the sender",
                 session=request.session, action=request.spam.action)
        return DUNNO

    def _lists_failed(self, failure, request):
        log.failure("{session}: allow lists unreadable: deferred", failure,
                    session=request.session)
        return Decision(Verdict.DEFER, self.name, "allow lists unreadable",
                        replies.STORE_UNAVAILABLE)


def _strip_forged(spool) -> None:
    """Remove X-Spam-* fields from the message's header (the sender's, or an earlier
    hop's: only ours may say what our scan found).  The whole message is read only when
    its header holds one."""
    spool.remove_fields(spool.head(HEAD_LIMIT), _without_ours)


def _without_ours(message: bytes) -> tuple[bytes, int]:
    """``message`` without X-Spam-* fields in its header section, and how many there were."""
    end = message.find(b"\r\n\r\n")
    cut = end + 2 if end >= 0 else len(message)
    header, count = OURS.subn(b"", message[:cut])
    return header + message[cut:], count


def _folded(name: str, items: list[str]) -> str:
    """``name`` and the items, comma-separated, folded before 78 characters (RFC 5322 §2.2.3)."""
    lines, line = [], name
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if len(line) + 1 + len(piece) > 78 and line != name:
            lines.append(line)
            line = " "
        line += ("" if line == " " else " ") + piece
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _clean(text) -> str:
    """rspamd's names are [A-Za-z0-9_ ]: anything else is dropped (header and log safe)."""
    return re.sub(r"[^A-Za-z0-9_ .-]", "", str(text))[:64]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _why(failure) -> str:
    if failure.check(defer.TimeoutError, defer.CancelledError):
        return "timed out"
    if failure.check(ScanFailed):
        return str(failure.value)
    return failure.type.__name__
