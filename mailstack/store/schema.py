"""The schema, as SQLAlchemy Core tables.

Why Core and not the ORM: every call is a short unit of work in a worker thread returning
plain values; identity maps and lazy loading would only hide queries.  Migrations in
``migrations/versions`` create exactly these tables; a test compares the two.

Times are stored as naive UTC and returned aware (``UTCDateTime``): SQLite has no time zone
type, and business time always comes from the injected clock, never a database default.
"""

from __future__ import annotations

import re

from datetime import timezone

from sqlalchemy import (
    Boolean, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, MetaData,
    PrimaryKeyConstraint, String,
    Table, Text, TypeDecorator, UniqueConstraint, BigInteger, false, text,
)

metadata = MetaData()

SYSTEM_FLAGS = ("\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen")


def flag_sql(flag: str, present: bool, column: str = "flags") -> str:
    """Whether a system flag is set, as literal SQL that is the same on both engines.

    Literal, not a bound parameter: a partial index is used only when the query repeats its
    predicate word for word.  System flags are stored in their canonical spelling
    (``mailboxes.canonical_flags``), so the match is exact whether LIKE is case-sensitive
    (PostgreSQL) or not (SQLite); ESCAPE '!' keeps PostgreSQL from reading the backslash as
    LIKE's escape character."""
    assert flag in SYSTEM_FLAGS
    return f"(' ' || {column} || ' ') {'' if present else 'NOT '}LIKE '% {flag} %' ESCAPE '!'"

# Partial indexes for the flag searches clients send most, so that they cost what they find:
# UNSEEN (new mail), FLAGGED (starred views) and \Deleted (EXPUNGE).  On PostgreSQL migration
# 0012 also creates statistics on the flag words, which SQLAlchemy's metadata cannot express.
FLAG_INDEXES = {"ix_messages_folder_unseen": ("\\Seen", False),
                "ix_messages_folder_flagged": ("\\Flagged", True),
                "ix_messages_folder_deleted": ("\\Deleted", True)}


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """Text any engine stores: NUL dropped (PostgreSQL refuses it in text), lone surrogates
    (from undecodable bytes) as U+FFFD (UTF-8 cannot encode them)."""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


class CleanText(TypeDecorator):
    """Text that came from a client or a message (headers, search text, HELO, addresses,
    replies): made storable on the way in, so a NUL byte or an undecodable header can
    never turn a write into an error that defers the mail for ever (issue 22)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else storable_text(value)


class CleanString(CleanText):
    impl = String
    cache_ok = True


class UTCDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


ID = lambda: Integer().with_variant(BigInteger(), "postgresql")  # noqa: E731

domains = Table(
    "domains", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="RESTRICT"), nullable=False),
    Column("address", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("may_send_as_any", Boolean, nullable=False, default=False, server_default=false()),
    Column("quota_bytes", BigInteger),   # storage quota over all folders; NULL: unlimited
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The highest UIDVALIDITY any of its folders ever had: a folder deleted and created
    # again gets a higher one, never its predecessor's (RFC 3501 §2.3.1.1).
    Column("last_uidvalidity", BigInteger, nullable=False, default=0, server_default="0"),
    # SPAM Blocker (issue 18): probable spam to its Junk folder, and "[SPAM] " in front of
    # the Subject of those copies (store/spam_settings.py).
    Column("spam_blocker", Boolean, nullable=False, default=False, server_default=false()),
    Column("spam_tag_subject", Boolean, nullable=False, default=False, server_default=false()),
)

# A customer's own senders (issue 18): ``allow`` delivers to the INBOX whatever rspamd
# said, ``block`` files in Junk.  ``pattern`` is ``user@domain`` or ``domain`` (which
# covers its subdomains); one list per pattern.  The unique index serves delivery's lookup
# (store/spam_filing.py): account ids and candidate patterns.
spam_senders = Table(
    "spam_senders", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),       # allow | block
    Column("pattern", String(320), nullable=False),
    UniqueConstraint("account_id", "pattern", name="uq_spam_senders_account_pattern"),
)

aliases = Table(
    "aliases", metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="RESTRICT"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("target", String(320), nullable=False),
    UniqueConstraint("address", "target", name="uq_aliases_address_target"),
    Index("ix_aliases_address", "address"),
)

folders = Table(
    "folders", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(512), nullable=False),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, default=1),
    Column("special_use", String(32)),
    Column("subscribed", Boolean, nullable=False, default=True),
    # Bumped by every write to the folder's messages (store/changes.py): what IDLE watches.
    Column("modseq", BigInteger, nullable=False, default=0, server_default="0"),
    # UIDs up to this one have been \\Recent in some session already (RFC 3501 §2.3.2):
    # the first session to see a message with the folder selected read-write claims it.
    Column("recent_uid", BigInteger, nullable=False, default=0, server_default="0"),
    # Expunges at or below this modseq are no longer all in ``vanished`` (pruned, or made
    # before it existed): a QRESYNC from an older modseq gets the full answer (vanished.py).
    Column("vanished_floor", BigInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint("account_id", "name", name="uq_folders_account_name"),
)

# The UIDs expunged from a folder and the modseq of the expunge, for QRESYNC's VANISHED
# (RFC 7162 §3.2.5.2): a resync reads the rows past the client's modseq, not the folder.
vanished = Table(
    "vanished", metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"),
           primary_key=True),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Index("ix_vanished_folder_modseq", "folder_id", "modseq"),
)

messages = Table(
    "messages", metadata,
    Column("id", ID(), primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    # Stable forever, whatever folder the message moves to: the POP3 UIDL (RFC 1939 §7).
    Column("guid", String(32), nullable=False, unique=True),
    Column("internal_date", UTCDateTime, nullable=False),
    Column("size", Integer, nullable=False),
    # Space-separated, e.g. "\\Seen \\Flagged $Label1"; "" for none.
    Column("flags", Text, nullable=False, default=""),
    Column("body", LargeBinary, nullable=False),
    # The folder's modseq when the row was stored or its flags last changed: IDLE and NOOP
    # read only the rows changed since the modseq they know.
    Column("modseq", BigInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint("folder_id", "uid", name="uq_messages_folder_uid"),
    Index("ix_messages_folder_modseq", "folder_id", "modseq"),
    # SINCE/BEFORE/ON and LARGER/SMALLER read a range of these, not the folder (with the
    # UID, so that a search reads no message row).
    Index("ix_messages_folder_date", "folder_id", "internal_date", "uid"),
    Index("ix_messages_folder_size", "folder_id", "size", "uid"),
    # Partial, and covering (flags too): the engines re-check the predicate on each row.
    *(Index(name, "folder_id", "uid", "flags", sqlite_where=text(flag_sql(*flag)),
            postgresql_where=text(flag_sql(*flag))) for name, flag in FLAG_INDEXES.items()),
)

# What SEARCH reads instead of the body (store/search_facts.py).  A table of its own: SQLite
# reaches a column stored after a large BLOB only by walking the BLOB's overflow pages.
message_headers = Table(
    "message_headers", metadata,
    Column("message_id", ID(), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("search_headers", CleanText, nullable=False),
    Column("sent_at", UTCDateTime),
)

# What SEARCH BODY/TEXT reads: the decoded, folded text parts (store/search_facts.py).  Apart
# from the headers so that a header search never reads it.
message_text = Table(
    "message_text", metadata,
    Column("message_id", ID(), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("body_text", CleanText, nullable=False),
)

# Each message's MIME structure with byte offsets (mailstack/message/structure.py), computed
# once when the message is stored: FETCH of a section is then a slice of the stored bytes,
# BODYSTRUCTURE and ENVELOPE cost no parsing.  ASCII JSON, so no engine refuses it.
message_structure = Table(
    "message_structure", metadata,
    Column("message_id", ID(), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("structure", Text, nullable=False),
)

login_events = Table(
    "login_events", metadata,
    Column("id", ID(), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("username", CleanString(320), nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("client_ip", String(45), nullable=False),
    Column("tls", Boolean, nullable=False),
    Column("mechanism", String(32), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("reason", CleanString(64), nullable=False, default=""),
    Column("client_name", CleanString(255)),
    Column("port", Integer),              # the server port the client used
    # The POP-before-SMTP window and the migration reports ask "who logged in from this IP
    # since T" and "what did this account do since T": both are index range scans.
    Index("ix_login_events_ip_at", "client_ip", "at"),
    Index("ix_login_events_account_at", "account_id", "at"),
)

mailbox_locks = Table(
    "mailbox_locks", metadata,
    # POP3 RFC 1939 §8 exclusive-access lock, shared by every process on the database.
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # The node (host and state directory) whose session holds it: that node frees its own
    # locks when it starts again after a crash and when it stops.  NULL: taken before 0014.
    Column("node", CleanString(255)),   # a path may hold any bytes
    Index("ix_mailbox_locks_node", "node"),
)

live_sessions = Table(
    "live_sessions", metadata,
    # Who is logged in now, on every node sharing the database (``mailstack who``); a row
    # lives as long as its connection.  ``kick`` asks its node to close it (``mailstack kick``).
    Column("id", ID(), primary_key=True),
    Column("node", CleanString(255), nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("username", CleanString(320), nullable=False),
    Column("client_ip", String(45), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("kick", Boolean, nullable=False, default=False),
    Index("ix_live_sessions_node", "node"),
    Index("ix_live_sessions_username", "username"),
)

traces = Table(
    "traces", metadata,
    # A protocol trace asked by ``mailstack trace`` (issue 15, item 16): every node writes
    # the connections of ``target`` (a normalised address, or an IP network) to files under
    # its state_dir until ``until``, or until ``mailstack trace --off`` sets ``stopped_at``.
    Column("id", ID(), primary_key=True),
    Column("target", CleanString(320), nullable=False, unique=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),        # ``--off``: ended early, whatever the clocks say
    Column("added_by", CleanString(255), nullable=False, default=""),
    Column("reason", CleanString(255), nullable=False, default=""),
    Index("ix_traces_until", "until"),
)

dkim_keys = Table(
    "dkim_keys", metadata,
    # A DKIM signing key of a domain (issue 17): generated by ``mailstack dkim keygen`` or
    # ``rotate``, never printed.  Its TXT record is published from ``published_at``; it
    # signs from ``signs_from`` until ``retires_at`` (``dkim/schedule.py``).
    Column("id", ID(), primary_key=True),
    Column("domain", String(255), nullable=False),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(16), nullable=False),      # ed25519 | rsa
    Column("private_key", Text, nullable=False),           # base64 seed / PEM: only the signer reads it
    Column("public_key", Text, nullable=False),            # the p= value (base64)
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("signs_from", UTCDateTime, nullable=False),
    Column("retires_at", UTCDateTime),                     # None: signs until a rotation
    UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain_selector"),
)

mta_sts_policies = Table(
    "mta_sts_policies", metadata,
    # The MTA-STS policy another domain serves (RFC 8461 §5.1), kept until ``expires_at``
    # (its max_age after the fetch) and fetched again when its _mta-sts id changes.
    Column("domain", String(253), primary_key=True),
    Column("policy_id", String(32), nullable=False),
    Column("mode", String(16), nullable=False),               # enforce | testing | none
    Column("mx", Text, nullable=False),                      # the mx patterns, space-separated
    Column("max_age", Integer, nullable=False),
    Column("policy_text", CleanText, nullable=False),       # as served: TLS-RPT's policy-string
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

tls_results = Table(
    "tls_results", metadata,
    # Outbound TLS sessions counted per recipient domain and UTC day for TLS-RPT (RFC 8460
    # §4): successes with an empty result_type (and no host), failures with their
    # result-type, MX host and address.  Deleted once the day's report is sent.
    Column("id", ID(), primary_key=True),
    Column("domain", String(253), nullable=False),
    Column("day", String(10), nullable=False),               # YYYY-MM-DD, UTC
    Column("policy_type", String(16), nullable=False),       # sts | no-policy-found
    Column("policy_id", String(32), nullable=False),
    Column("result_type", String(48), nullable=False),
    Column("mx_host", CleanString(255), nullable=False),
    Column("remote_ip", String(45), nullable=False),
    Column("sessions", Integer, nullable=False),
    UniqueConstraint("domain", "day", "policy_type", "policy_id", "result_type", "mx_host",
                     "remote_ip", name="uq_tls_results_key"),
)

submissions = Table(
    "submissions", metadata,
    # One row per message a customer sent: the recipients-per-hour limit and the
    # migration reports ("who still relies on POP-before-SMTP or cleartext?") read it.
    Column("id", ID(), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("username", CleanString(320), nullable=False),
    Column("client_ip", String(45), nullable=False),
    Column("method", String(32), nullable=False),   # auth | pop-before-smtp
    Column("tls", Boolean, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("queue_id", String(64), nullable=False),
    Column("helo", CleanString(255)),     # the mail program, where it says who it is
    Column("user_agent", CleanString(255)),
    Column("port", Integer),
    Index("ix_submissions_account_at", "account_id", "at"),
    Index("ix_submissions_method_at", "method", "at"),
)

blocks = Table(
    "blocks", metadata,
    # A local block of one address or network. ``action`` "reject" refuses its mail at
    # RCPT; "firewall" closes its connections before the banner. Every block expires.
    Column("id", Integer, primary_key=True),
    Column("network", String(49), nullable=False),      # "192.0.2.7/32", "2001:db8::/64"
    Column("action", String(16), nullable=False),       # reject | firewall
    Column("source", String(16), nullable=False),       # manual | trap | complaints | harvest
    Column("reason", CleanString(255), nullable=False),
    Column("evidence", CleanText, nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Index("ix_blocks_network_expires", "network", "expires_at"),
)

whitelist = Table(
    "whitelist", metadata,
    Column("id", Integer, primary_key=True),
    Column("entry", String(255), nullable=False, unique=True),  # IP, CIDR or ".host.suffix"
    Column("kind", String(8), nullable=False),                   # ip | cidr | host
    Column("reason", String(255), nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The whitehole request an approval created it from (``whitehole_requests.ref``);
    # NULL: added by hand.  When the desk looks at the entry again.
    Column("request_ref", String(16)),
    Column("review_at", UTCDateTime),
)

whitehole_requests = Table(
    "whitehole_requests", metadata,
    # A sender's administrator asking for a whitelist entry on the HTTPS page (issue 21):
    # what they sent (the pasted bounce is hostile input: shown only escaped), what the
    # page found (``findings``: JSON) and told them (``outcome``), and the desk's decision.
    Column("id", Integer, primary_key=True),
    Column("ref", String(16), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("client_ip", String(45), nullable=False),      # who filed it (the web client)
    Column("ip", String(45), nullable=False),             # the mail server to whitelist
    Column("contact", CleanString(320), nullable=False),
    Column("reason", CleanText, nullable=False),
    Column("bounce", CleanText, nullable=False),
    Column("verdict", String(32), nullable=False),        # the explainer's kind
    Column("outcome", String(16), nullable=False),        # desk/whitehole.py OUTCOMES
    Column("findings", CleanText, nullable=False),
    Column("state", String(16), nullable=False),          # open | answered | approved | denied
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(64)),
    Column("note", CleanText),
    Index("ix_whitehole_requests_state_created", "state", "created_at"),
    Index("ix_whitehole_requests_ip", "ip"),
)

complaints = Table(
    "complaints", metadata,
    Column("id", Integer, primary_key=True),
    Column("ip", String(45), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),    # cli | report
    Column("reason", CleanString(255), nullable=False),
    Column("evidence", CleanText, nullable=False),
    Index("ix_complaints_ip_at", "ip", "at"),
)

rejections = Table(
    "rejections", metadata,
    # Every refusal a check made, with the five facts a customer can tell the support
    # desk (From, To, time, the reply text or its ref, client IP), indexed for each.
    Column("id", ID(), primary_key=True),
    Column("ref", String(16), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Column("session", String(32), nullable=False),
    Column("port", String(32), nullable=False),
    Column("stage", String(8), nullable=False),
    Column("check_name", String(32), nullable=False),
    Column("client_ip", String(45), nullable=False),
    Column("ptr", CleanString(255)),
    Column("helo", CleanString(255)),
    Column("mail_from", CleanString(320)),
    Column("rcpt_to", CleanString(320)),
    Column("reply", CleanText, nullable=False),
    # Why the check refused, for the desk (a spam score and its symbols); not sent.
    Column("detail", CleanText, nullable=False, server_default=""),
    Index("ix_rejections_ip_at", "client_ip", "at"),
    Index("ix_rejections_at", "at"),
    Index("ix_rejections_rcpt_at", "rcpt_to", "at"),
    Index("ix_rejections_from_at", "mail_from", "at"),
)

outbound_messages = Table(
    "outbound_messages", metadata,
    # A message for other domains, kept until every recipient is delivered or bounced.
    Column("id", ID(), primary_key=True),
    Column("queue_id", String(64), nullable=False),
    Column("sender", CleanString(320), nullable=False),            # "" = null reverse-path
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("client_ip", String(45)),
    Index("ix_outbound_messages_queue_id", "queue_id"),
)

outbound_recipients = Table(
    "outbound_recipients", metadata,
    Column("id", ID(), primary_key=True),
    Column("message_id", ID(), ForeignKey("outbound_messages.id", ondelete="CASCADE"),
           nullable=False),
    Column("recipient", CleanString(320), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("status", String(16), nullable=False),   # queued | delivering | delivered | bounced
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # A runner's claim; an expired claim (crashed process) is taken over.
    Column("claimed_until", UTCDateTime),
    Column("last_reply", CleanText, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_outbound_recipients_status_next", "status", "next_attempt_at"),
    Index("ix_outbound_recipients_message", "message_id"),
)

legacy_notices = Table(
    "legacy_notices", metadata,
    # Every notice put into a legacy customer's INBOX: one per account and phase unless the
    # operator asks again; the migration report shows them.
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("phase", String(16), nullable=False),   # sunset | cutover
    Column("at", UTCDateTime, nullable=False),
    Index("ix_legacy_notices_account_phase", "account_id", "phase"),
)

srs_secrets = Table(
    "srs_secrets", metadata,
    # The SRS secret made on the first start without ``[forwarding] srs_secrets`` (srs.py,
    # store/srs_secrets.py): one row per generation, the newest signs, every one verifies.
    # Never printed or logged.
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("generation", name="uq_srs_secrets_generation"),
)

sieve_scripts = Table(
    "sieve_scripts", metadata,
    # Customers' Sieve scripts (RFC 5228), edited over ManageSieve (RFC 5804) or by
    # ``mailstack sieve``; the active one runs at delivery (store/sieve_scripts.py).
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", CleanString(255), nullable=False),
    Column("content", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_sieve_scripts_account_name"),
    # At most one active script per account, kept by the database (RFC 5804 §2.8).
    Index("uq_sieve_scripts_active", "account_id", unique=True,
          sqlite_where=text("active"), postgresql_where=text("active")),
)

spam_learns = Table(
    "spam_learns", metadata,
    # A message a customer moved into \Junk (learn as spam) or out of it (as ham), to be
    # taught to rspamd (store/spam_learning.py, spam/learning.py).  Written in the
    # transaction of the IMAP COPY or MOVE; the body is kept until the learn is done, so
    # an expunge meanwhile loses nothing.  One row per account, message digest and
    # direction: a message is never learned twice the same way.
    Column("id", ID(), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False),
    Column("digest", String(64), nullable=False),        # SHA-256 of the body, hex
    Column("direction", String(4), nullable=False),      # spam | ham
    Column("body", LargeBinary),                         # NULL once done, or too large
    Column("size", Integer, nullable=False),
    # pending | learning (claimed) | learned | refused (rspamd never will) | too_large |
    # failed (given up after retrying)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),                # a learner's lease
    Column("last_error", CleanText, nullable=False),     # or why it was refused
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "digest", "direction", name="uq_spam_learns_message"),
    Index("ix_spam_learns_status_next", "status", "next_attempt_at"),
    Index("ix_spam_learns_updated", "updated_at"),
)

vacation_replies = Table(
    "vacation_replies", metadata,
    # When a Sieve vacation action last answered a sender, per response (RFC 5230 §4.1,
    # §4.2): at most one reply per :days; written with the stored message
    # (store/vacation_replies.py).
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("handle", String(100), nullable=False),
    Column("replied_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("account_id", "sender", "handle", name="pk_vacation_replies"),
)
