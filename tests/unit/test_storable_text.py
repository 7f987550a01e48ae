"""Text from clients and messages is storable on every engine (issue 22).

PostgreSQL refuses NUL in text, and UTF-8 cannot encode the lone surrogates that
undecodable bytes become: a write carrying either failed, and a delivery failing that way
is deferred for ever.  ``schema.CleanText`` makes such text storable on the way in; this
test keeps every text column that can receive a client's or a message's text on it.
"""

from __future__ import annotations

from sqlalchemy import String, Text

from mailstack.store.schema import CleanText, metadata, storable_text

# Written only by our own code from values it validated or made (names, states, hashes,
# addresses checked by addresses.py, IMAP atoms, ASCII JSON).
OURS = {
    "accounts.address", "accounts.password_hash", "aliases.address", "aliases.target",
    "domains.name", "folders.name", "folders.special_use", "messages.guid", "messages.flags",
    "message_structure.structure", "mailbox_locks.holder", "legacy_notices.phase",
    "blocks.network", "blocks.action", "blocks.source", "blocks.added_by",
    "complaints.ip", "complaints.source", "whitelist.entry", "whitelist.kind",
    "whitelist.reason", "whitelist.added_by", "rejections.ref", "rejections.session",
    "rejections.port", "rejections.stage", "rejections.check_name", "rejections.client_ip",
    "login_events.protocol", "login_events.client_ip", "login_events.mechanism",
    "outbound_messages.queue_id", "outbound_messages.client_ip", "outbound_recipients.domain",
    "outbound_recipients.status", "submissions.client_ip", "submissions.method",
    "submissions.queue_id", "live_sessions.protocol", "live_sessions.client_ip",
    "dkim_keys.domain", "dkim_keys.selector", "dkim_keys.algorithm", "dkim_keys.private_key",
    "dkim_keys.public_key", "mta_sts_policies.domain", "mta_sts_policies.policy_id",
    "mta_sts_policies.mode", "mta_sts_policies.mx", "tls_results.domain", "tls_results.day",
    "tls_results.policy_type", "tls_results.policy_id", "tls_results.result_type",
    "tls_results.remote_ip", "srs_secrets.secret",
    # A customer's Sieve script: stored exactly as uploaded (GETSCRIPT gives it back), after
    # sieve/scripts.py refused NUL and the upload was decoded as strict UTF-8.
    "sieve_scripts.content",
    # SPAM Blocker lists: "allow"/"block", and an address or domain store/spam_settings.py
    # checked and lower-cased.
    "spam_senders.kind", "spam_senders.pattern",
    # The learn queue: a hex SHA-256, "spam"/"ham" and our own status words.
    "spam_learns.digest", "spam_learns.direction", "spam_learns.status",
    # Vacation replies: an envelope sender our SMTP parser accepted, and a handle from a
    # script (strict UTF-8, no NUL: sieve/scripts.py) or its digest.
    "vacation_replies.sender", "vacation_replies.handle",
    # Whitehole requests: our reference, addresses parsed by ipaddress, our verdict, outcome
    # and state words, the desk's login name; the whitelist entry's request reference.
    "whitehole_requests.ref", "whitehole_requests.client_ip", "whitehole_requests.ip",
    "whitehole_requests.verdict", "whitehole_requests.outcome", "whitehole_requests.state",
    "whitehole_requests.decided_by", "whitelist.request_ref",
}


def test_every_text_column_fed_by_clients_or_messages_is_clean():
    plain = {f"{table.name}.{column.name}" for table in metadata.sorted_tables
             for column in table.columns
             if isinstance(column.type, (String, Text)) and not isinstance(column.type, CleanText)}
    assert plain - OURS == set(), "a new text column: CleanText/CleanString, or say why not"


def test_nul_is_dropped_surrogates_replaced_and_control_characters_kept():
    assert storable_text("a\x00b") == "ab"
    assert storable_text("caf\udce9 \ud800") == "caf\ufffd \ufffd"
    assert storable_text("tab\there \x01\x1b\x7f") == "tab\there \x01\x1b\x7f"
    assert storable_text("plain") == "plain"
