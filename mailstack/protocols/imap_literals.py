"""Which literals an IMAP session accepts, where their octets go, how fast they must come.

Why apart from the session: this is the one place where a client's promise of N octets
meets our memory.  The framing (``imap_framing``) announces each literal with a
``LiteralRequest`` before a byte of it is kept; the answer is decided here:

- its size: an APPEND's literals (once logged in, so a stranger cannot make us read 25 MB)
  are bounded by APPENDLIMIT (RFC 7889), any other by what is left of ``MAX_COMMAND``; a
  synchronising literal over the bound gets a tagged NO/BAD instead of ``+`` (RFC 3501
  §7.5), a non-synchronising one (RFC 7888) is counted off and discarded;
- its place: in memory if it fits in what is left of ``MAX_COMMAND``, otherwise (an
  APPEND's message) in a spool file as it arrives (``message/spool.py``, in ``[smtp]
  spool_dir``), stored from there under the byte budget as SMTP's DATA is (issue 13);
- its pace: after ``LITERAL_GRACE`` seconds the literal must keep up ``[imap]
  min_literal_rate`` (Postfix's minimum data rate), or the session is closed.

Security: no octet is kept before its size is checked; memory per session is bounded by
``MAX_COMMAND`` whatever the client announces.
"""

from __future__ import annotations

from mailstack import replies
from mailstack.message.spool import Spool
from mailstack.protocols import imap_framing as framing
from mailstack.protocols.deadlines import RateDeadline

MAX_COMMAND = 256 * 1024     # a command with the literals kept in memory (Dovecot: 64 KB)
LITERAL_GRACE = 60           # seconds before a literal's minimum rate applies


class LiteralAdmission:
    """Mixin of the IMAP session: its answer to each ``LiteralRequest``."""

    literal_deadline = None     # RateDeadline while an accepted literal arrives

    def literal_requested(self, request: framing.LiteralRequest):
        """Accept, refuse or discard a literal before any octet of it is kept (above)."""
        words = request.head.split(b" ", 2)
        name = words[1].upper() if len(words) > 1 else b""
        is_append = name == b"APPEND" and self.may_run("APPEND")
        in_memory = request.size <= MAX_COMMAND - self.framing.command_size
        limit = self.imap_config.max_append_size if is_append else MAX_COMMAND
        if request.size > limit or not (in_memory or is_append):
            self.log.info("literal of {size} octets refused", size=request.size)
            if not request.synchronising:
                return self.framing.discard_literal()
            self.framing.reject_literal()
            tag = framing.tag_of(request.head)
            if is_append:
                return self._answer(tag, b"NO", replies.IMAP_TOO_BIG.imap())
            return self._answer(tag, b"BAD", b"[TOOBIG] Literal too long")
        self.framing.accept_literal(None if in_memory else Spool(self.spool_dir))
        self.literal_deadline = RateDeadline(self.clock, LITERAL_GRACE,
                                             self.imap_config.min_literal_rate,
                                             self._literal_too_slow)
        if request.synchronising:
            self.send(b"+ Ready for literal data")

    def _stop_literal_deadline(self):
        if self.literal_deadline is not None:
            self.literal_deadline.cancel()
            self.literal_deadline = None

    def _literal_too_slow(self):
        """A promised literal trickles: Postfix's minimum data rate, applied to APPEND."""
        self.literal_deadline = None
        self.log.info("literal below {rate} bytes/s; closing",
                      rate=self.imap_config.min_literal_rate)
        self.send(b"* BYE " + replies.IMAP_TOO_SLOW.imap())
        self.close()
