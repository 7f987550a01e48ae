"""What a protocol trace may show (``mailstack trace``): each secret and each message
content masked, per protocol, commands and replies kept."""

from __future__ import annotations

import base64

import pytest

from mailstack.protocols.trace_imap import IMAPDialect
from mailstack.protocols.trace_masking import LINE_CAP, POP3Dialect, SMTPDialect

SECRET = b"Tr0ub4dor&3"
BODY = b"Subject: private\r\n\r\nthe confidential body\r\n"


def plain(user: bytes, password: bytes = SECRET) -> bytes:
    return base64.b64encode(b"\0" + user + b"\0" + password)


class Conversation:
    """A dialect fed a conversation; the records and the names it saw."""

    def __init__(self, dialect):
        self.records, self.names = [], []
        self.dialect = dialect(lambda side, text: self.records.append(f"{side}: {text}"),
                               self.names.append)

    def c(self, data: bytes):
        self.dialect.client(data)
        return self

    def s(self, data: bytes):
        self.dialect.server(data)
        return self

    @property
    def text(self) -> str:
        return "\n".join(self.records)

    def assert_clean(self, *secrets: bytes) -> None:
        for secret in (SECRET, plain(b"ann@example.test"), b"confidential", *secrets):
            assert secret.decode() not in self.text, self.text


# --- SMTP ---------------------------------------------------------------------------------
def smtp():
    return Conversation(SMTPDialect).s(b"220 mx ESMTP\r\n").c(b"EHLO pc\r\n").s(
        b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n")


def test_smtp_auth_plain_initial_response_is_masked_and_names_the_user():
    talk = smtp().c(b"AUTH PLAIN " + plain(b"ann@example.test") + b"\r\n").s(b"235 2.7.0 ok\r\n")
    talk.c(b"QUIT\r\n")
    talk.assert_clean()
    assert "C: AUTH PLAIN [initial response: 40 octets, masked]" in talk.records
    assert talk.names == ["ann@example.test"] and "C: QUIT" in talk.records


def test_smtp_auth_login_every_continuation_answer_is_masked():
    talk = smtp().c(b"AUTH LOGIN\r\n").s(b"334 VXNlcm5hbWU6\r\n")
    talk.c(base64.b64encode(b"ann@example.test") + b"\r\n").s(b"334 UGFzc3dvcmQ6\r\n")
    talk.c(base64.b64encode(SECRET) + b"\r\n").s(b"535 5.7.8 no\r\n").c(b"NOOP\r\n")
    talk.assert_clean(base64.b64encode(SECRET), base64.b64encode(b"ann@example.test"))
    assert talk.records.count("C: [SASL response: 24 octets, masked]") == 1
    assert talk.names == ["ann@example.test"]
    assert talk.records[-1] == "C: NOOP"          # the exchange is over: commands again


def test_smtp_sasl_line_pipelined_before_its_334_is_masked():
    talk = smtp().c(b"AUTH PLAIN\r\n" + plain(b"ann@example.test") + b"\r\n")
    talk.s(b"334 \r\n235 ok\r\n")
    talk.assert_clean()


def test_smtp_replies_to_earlier_pipelined_commands_do_not_end_the_exchange():
    talk = smtp().c(b"RSET\r\nNOOP\r\nAUTH PLAIN\r\n").s(b"250 ok\r\n")
    talk.c(plain(b"ann@example.test") + b"\r\n").s(b"250 ok\r\n334 \r\n235 ok\r\n")
    talk.assert_clean()


def test_smtp_data_content_is_counted_not_recorded_and_commands_after_it_are():
    talk = smtp().c(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
    talk.s(b"250 ok\r\n250 ok\r\n354 go ahead\r\n")
    talk.c(BODY[:10]).c(BODY[10:] + b"..stuffed\r\n.\r\nQUIT\r\n").s(b"250 queued\r\n")
    talk.assert_clean(b"private", b"stuffed")
    assert f"C: [message content: {len(BODY) + 11} octets, masked]" in talk.records
    assert talk.records[-3:] == ["C: .", "C: QUIT", "S: 250 queued"]


def test_smtp_dot_after_a_bare_lf_does_not_end_the_content():
    talk = smtp().c(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
    talk.s(b"250 ok\r\n250 ok\r\n354 go\r\n").c(b"x\n.\r\nconfidential\r\n.\r\n")
    talk.assert_clean()


def test_smtp_refused_data_leaves_the_following_commands_visible():
    talk = smtp().c(b"MAIL FROM:<a@example.test>\r\nDATA\r\n").s(b"250 ok\r\n554 no rcpt\r\n")
    talk.c(b"RCPT TO:<b@example.test>\r\n")
    assert talk.records[-1] == "C: RCPT TO:<b@example.test>"


def test_smtp_content_pipelined_before_354_is_masked_too():
    talk = smtp().c(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
                    + BODY + b".\r\nQUIT\r\n")
    talk.s(b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n").c(b"NOOP\r\n")
    talk.assert_clean(b"private")
    assert talk.records[-1] == "C: NOOP"


def test_long_lines_are_cut_and_say_their_size():
    talk = smtp().c(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert talk.records[-1].endswith("... [5005 octets]")
    assert len(talk.records[-1]) < LINE_CAP + 40


# --- POP3 ---------------------------------------------------------------------------------
def pop3():
    return Conversation(POP3Dialect).s(b"+OK ready\r\n")


def test_pop3_pass_and_apop_digest_are_masked_user_names_the_login():
    talk = pop3().c(b"USER ann@example.test\r\nPASS " + SECRET + b"\r\n").s(b"+OK\r\n-ERR no\r\n")
    talk.c(b"APOP bob@example.test c4c9334bac560ecc979e58001b3e22fb\r\n").s(b"-ERR no APOP\r\n")
    talk.assert_clean(b"c4c9334bac560ecc979e58001b3e22fb")
    assert "C: USER ann@example.test" in talk.records
    assert "C: PASS [password: 11 octets, masked]" in talk.records
    assert talk.names == ["ann@example.test", "bob@example.test"]


@pytest.mark.parametrize("initial", [True, False])
def test_pop3_auth_plain_is_masked_with_or_without_initial_response(initial):
    talk = pop3()
    if initial:
        talk.c(b"AUTH PLAIN " + plain(b"ann@example.test") + b"\r\n")
    else:
        talk.c(b"AUTH PLAIN\r\n").s(b"+ \r\n").c(plain(b"ann@example.test") + b"\r\n")
    talk.s(b"+OK 2 messages\r\n").c(b"STAT\r\n")
    talk.assert_clean()
    assert talk.names == ["ann@example.test"] and talk.records[-1] == "C: STAT"


def test_pop3_retr_and_top_content_is_counted_multiline_listings_are_kept():
    talk = pop3().c(b"LIST\r\nRETR 1\r\nTOP 1 0\r\n")
    talk.s(b"+OK 1 messages\r\n1 120\r\n.\r\n")
    talk.s(b"+OK 120 octets\r\n").s(BODY).s(b"..a stuffed line\r\n.\r\n")
    talk.s(b"+OK 20 octets\r\nSubject: private\r\n\r\n.\r\n")
    talk.assert_clean(b"private", b"stuffed")
    assert "S: 1 120" in talk.records
    assert talk.records.count("S: .") == 3


def test_pop3_a_failed_retr_has_no_content():
    talk = pop3().c(b"RETR 9\r\nNOOP\r\n").s(b"-ERR no such message\r\n+OK\r\n")
    assert talk.records[-2:] == ["S: -ERR no such message", "S: +OK"]


# --- IMAP ---------------------------------------------------------------------------------
def imap():
    return Conversation(IMAPDialect).s(b"* OK ready\r\n")


@pytest.mark.parametrize("password", [SECRET, b'"' + SECRET + b'"',
                                      b'"Tr0ub\\"4dor&3"'])
def test_imap_login_password_atom_or_quoted_is_masked(password):
    talk = imap().c(b'a1 LOGIN "ann@example.test" ' + password + b"\r\n").s(b"a1 NO\r\n")
    talk.assert_clean(b"Tr0ub")
    assert talk.records[1] == 'C: a1 LOGIN "ann@example.test" [password masked]'
    assert talk.names == ["ann@example.test"]


def test_imap_login_with_literals_masks_the_password_literal():
    talk = imap().c(b"a1 LOGIN {16}\r\n").s(b"+ go\r\n").c(b"ann@example.test {11}\r\n")
    talk.s(b"+ go\r\n").c(SECRET + b"\r\n").s(b"a1 OK\r\n").c(b"a2 NOOP\r\n")
    talk.assert_clean()
    assert "C: a1 LOGIN ann@example.test [password masked]" in talk.records
    assert talk.names == ["ann@example.test"] and talk.records[-1] == "C: a2 NOOP"


def test_imap_login_with_a_non_synchronising_password_literal_masks_it():
    talk = imap().c(b"a1 LOGIN ann@example.test {11+}\r\n" + SECRET + b"\r\na2 NOOP\r\n")
    talk.assert_clean()
    assert talk.records[1:] == ["C: a1 LOGIN ann@example.test [password masked]", "C: a2 NOOP"]


def test_imap_authenticate_lines_are_masked_until_its_tagged_reply():
    talk = imap().c(b"a1 AUTHENTICATE PLAIN\r\n").s(b"+ \r\n")
    talk.c(plain(b"ann@example.test") + b"\r\n").s(b"a1 OK\r\n").c(b"a2 LOGOUT\r\n")
    talk.assert_clean()
    assert talk.names == ["ann@example.test"] and talk.records[-1] == "C: a2 LOGOUT"
    ir = imap().c(b"a1 AUTHENTICATE PLAIN " + plain(b"ann@example.test") + b"\r\n")
    ir.assert_clean()


def test_imap_append_literal_and_fetch_literal_are_counted():
    talk = imap().c(b"a3 APPEND INBOX (\\Seen) {%d}\r\n" % len(BODY)).s(b"+ Ready\r\n")
    talk.c(BODY[:7]).c(BODY[7:] + b"\r\n").s(b"a3 OK APPEND completed\r\n")
    talk.c(b"a4 FETCH 1 (UID BODY[])\r\n")
    talk.s(b"* 1 FETCH (UID 7 BODY[] {%d}\r\n" % len(BODY)).s(BODY).s(b" FLAGS (\\Seen))\r\n")
    talk.s(b"a4 OK\r\n")
    talk.assert_clean(b"private")
    assert f"[literal: {len(BODY)} octets, masked]" in talk.records[2]
    assert talk.records[-1] == "S: a4 OK"


def test_imap_literal_after_a_long_line_is_still_found():
    envelope = b"(" + b'"x" ' * 300 + b")"
    talk = imap().s(b"* 1 FETCH (ENVELOPE " + envelope + b" BODY[] {12}\r\nconfidential)\r\n")
    talk.assert_clean()


def test_imap_refused_synchronising_literal_is_not_waited_for():
    talk = imap().c(b"a5 APPEND INBOX {999999999}\r\n").s(b"a5 NO [TOOBIG] too big\r\n")
    talk.c(b"a6 NOOP\r\n")
    assert talk.records[-1] == "C: a6 NOOP"
