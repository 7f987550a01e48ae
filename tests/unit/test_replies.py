"""POP3 and IMAP status texts are one type, rendered for each protocol (RFC 2449 §8,
RFC 3206, RFC 3501 §7.1)."""

from mailstack import replies


def test_a_coded_reply_renders_for_pop3_and_imap():
    reply = replies.CodedReply("SYS/TEMP", "Try later")
    assert reply.pop3() == b"-ERR [SYS/TEMP] Try later"
    assert reply.imap() == b"[SYS/TEMP] Try later"


def test_a_reply_without_a_code_has_no_brackets():
    assert replies.POP_BAD_COMMAND.pop3() == b"-ERR Unknown command"
    assert replies.IMAP_SYNTAX.imap() == b"Syntax error in the command arguments"
    assert replies.IMAP_AUTH_FAILED.imap() == b"[AUTHENTICATIONFAILED] Authentication failed"
