"""Every command syntax Dovecot's imaptest sends to a server with our capabilities parses.

Taken from imaptest's scripted tests (``src/tests/*``, variables filled in) and from the
commands its random stress mode builds (``src/client-state.c``, ``src/search.c``).
Commands of extensions we do not advertise (SORT, THREAD, ESEARCH, BINARY, CATENATE,
MULTIAPPEND, URLAUTH, NOTIFY) are skipped by imaptest too; its stress mode's ``qresync``
option reselects with ``(QRESYNC (uidvalidity modseq))``.
"""

from __future__ import annotations

import pytest

from mailstack.protocols.imap_parser import parse_command

IMAPTEST_COMMANDS = [
    b'list "" ""', b'list "" testbox/%', b'list "" testbox/%/%', b'list "" testbox/*test4',
    b"list testbox/ *", b'list "" INBOX', b'list "" ~foo', b'list "" NIL', b'lsub "" *test',
    b'list "" (testbox/*2 testbox/test3)', b'list (remote) "" %',
    b'list (subscribed) "" testbox/*',
    b'list (subscribed recursivematch) "" testbox/test2% return (children)',
    b'list "" testbox/% return (children subscribed)',
    b'LIST "" *', b'create "testbox/p&AOQA5A-"', b'list "" "testbox/p&AOQA5A-"',
    b'status "testbox/p&AOQA5A-" (messages)', b"select ~foo", b"create testbox/",
    b"create testbox/test3/test4/", b"delete testbox/test2", b"subscribe testbox/test",
    b"unsubscribe testbox/test", b'CREATE "test/1"', b'DELETE "test/1/2"', b'SELECT "testbox"',
    b"examine testbox", b"close", b"check", b"noop", b"expunge", b"logout", b"IDLE",
    b"status testbox (messages unseen recent)", b'STATUS "testbox" (MESSAGES UNSEEN RECENT)',
    b"status testbox (messages recent uidnext uidvalidity unseen)", b"status testbox (uidnext)",
    b"store 1:3 flags (\\seen)", b"store 4 -flags \\seen", b"store 2,4 +flags ($hello $world)",
    b"store 1,3 flags \\deleted", b"uid store 4 flags \\seen", b"store 1 +flags NIL",
    b"STORE 1:3,5 +FLAGS.SILENT (\\Answered \\Seen $Label1 $Label4)", b"STORE 1:5 FLAGS ()",
    b"STORE 2:4 +FLAGS \\Deleted", b"STORE 7 -FLAGS.SILENT \\Deleted",
    b"copy 1:2,4 testbox2", b"COPY 3:8 testbox2", b"move 1 testbox2", b"uid move 7 testbox2",
    b"fetch 1:3 uid", b"fetch 3:1 uid", b"fetch 1,* uid", b"fetch * uid", b"fetch *:1 uid",
    b"uid fetch 9:* uid", b"uid fetch 1:* uid", b"uid fetch 1,* uid", b"fetch 1 full",
    b"fetch 1 all", b"fetch 1 fast", b"fetch 1 rfc822.header", b"fetch 1 body.peek[header]",
    b"fetch 1 (flags body.peek[text])", b"fetch 1 rfc822.text", b"fetch 2 (flags body.peek[])",
    b"fetch 2 rfc822", b"fetch 3 (body[])", b"fetch 4 (body[header])",
    b"fetch 2 body.peek[text]<0.3>", b"fetch 3 body.peek[text]<7.1>",
    b"fetch 1 body.peek[header.fields (from)]", b"fetch 1 (body.peek[header.fields (from from)])",
    b"fetch 1 body.peek[header.fields.not (date date)]", b"fetch 1 (body.peek[1.mime])",
    b"fetch 1 (body.peek[2.header.fields (from subject X-foo)])", b"fetch 1 (body.peek[2.2])",
    b"fetch 1 (body.peek[1.1.MIME])", b"fetch 1 (body.peek[1.1.1])", b"fetch 1:* body",
    b"fetch 1:* envelope", b"fetch 1:* (flags internaldate)", b"fetch 1:5 (internaldate)",
    b"UID FETCH 1:* FLAGS", b"FETCH 3 (UID BODY.PEEK[HEADER])", b"FETCH 3 (UID RFC822.HEADER)",
    b"FETCH 3 (UID BODY.PEEK[1])", b"FETCH 3 (UID BODY.PEEK[TEXT])",
    b"FETCH 1:4,6 (UID FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (From To Cc Subject References "
    b"In-Reply-To Message-ID)] BODYSTRUCTURE RFC822.SIZE INTERNALDATE BODY)",
    b"search all", b"uid search all", b"search 1:3,5", b"search 4:2", b"search uid 1:3,5",
    b"search uid 4:2", b"search 1:3 not uid 3", b"search not 2,4", b"search or 1 uid 3",
    b"search *", b"search uid *", b"search uid 9:*", b"search *:3", b"search 1,4,*",
    b"search (3) uid 4", b"search (uid 4) 3", b"search 3 (uid 4)", b"uid search uid 1:4294967295",
    b"search answered", b"search unkeyword $hello", b"search new", b"search old",
    b"search recent", b"search not seen not deleted not flagged", b"search subject NIL",
    b"search body nil", b"search smaller 100", b"search or smaller 100 larger 100",
    b"search not smaller 100 not larger 100", b"search sentbefore 24-mar-2007",
    b"search 8:* not sentsince 28-oct-2007", b"search header from \"\"",
    b'search subject "hello beautiful world"', b'search not header x-extra ""',
    b"search from user-from@domain.org", b"search to groupname2", b"search bcc realbcc",
    b"search text asdfghjkl", b"search body wertyuio",
    b'SEARCH OR SMALLER 1000 (SINCE 24-Mar-2007 SUBJECT "hello") OR 2:5 BODY {3+}\r\n\xc3\xa4x',
    b'LOGIN "user1" "pass"', b"AUTHENTICATE plain", b"ENABLE QRESYNC",
    b'SELECT "INBOX" (QRESYNC (1796328826 5614))',
    b'APPEND "testbox" (\\Seen $Label2) "24-Mar-2007 23:00:00 +0200" {5+}\r\nhello',
    b'APPEND "testbox" " 7-Jan-2010 01:02:03 -0800" {5}\r\nhello', b"append testbox {5}\r\nhello",
    b'append testbox (\\seen \\flagged) "24-Mar-2007 23:00:00 +0200" {5}\r\nhello',
]


@pytest.mark.parametrize("command", IMAPTEST_COMMANDS, ids=lambda c: c.decode("latin-1")[:60])
def test_imaptest_commands_parse(command):
    parsed = parse_command(b"1.23 " + command)
    assert parsed.tag == b"1.23"


def test_imaptest_id_command():
    pairs = b" ".join(b'"%s" "%s"' % (chr(97 + i).encode() + b"2" * 29, b"1234567890" * 102
                                        + b"1234") for i in range(26))
    assert len(parse_command(b"1.1 ID (" + pairs + b")").params) == 26
