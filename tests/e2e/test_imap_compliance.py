"""Issue 12's failure classes as our own regressions: what imaptest, Roundcube and a second
device found, replayed over TLS with imaplib and with raw sockets (which read literals in
responses and check every response's grammar).  Commands, sessions, logging and framing
here; message structure and search in test_imap_compliance_messages."""

from __future__ import annotations

import base64
import re
import resource
import socket

import pytest
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from mailstack.store import mailboxes
from tests.e2e.test_imap import IMAP_ONLY, PASSWORD, implicit, plain, raw_tls

pytestmark = pytest.mark.e2e
TIMEOUT = 5            # a command the server never answers fails the test this fast
_LITERAL_END = re.compile(rb"~?\{([0-9]+)\}\r\n\Z")


@pytest.fixture
def imap(make_server):
    server = make_server(**IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for n in (1, 2, 3):
        server.db(mailboxes.deliver, [server.ann], plain(n), server.now())
    return server


class Session:
    """One IMAP session over implicit TLS, written and read byte for byte."""

    def __init__(self, server, login: bool = True):
        self.sock, self.reader = raw_tls(server)
        self.sock.settimeout(TIMEOUT)
        self.count = 0
        if login:
            self.ok(f'LOGIN ann@example.test "{PASSWORD}"')

    def tag(self) -> bytes:
        self.count += 1
        return b"t%d" % self.count

    def response(self) -> bytes:
        """One response, its literals inline, without the final CRLF."""
        out = b""
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            out += line
            literal = _LITERAL_END.search(line)
            if literal is None:
                return out[:-2]
            out += self.reader.read(int(literal.group(1)))

    def command(self, text, tag: bytes | None = None) -> tuple[bytes, list[bytes]]:
        """(tagged status and text, [untagged responses]) of one command."""
        tag = tag or self.tag()
        self.sock.sendall(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.reply(tag)

    def reply(self, tag: bytes) -> tuple[bytes, list[bytes]]:
        untagged = []
        while not (response := self.response()).startswith(tag + b" "):
            untagged.append(response)
        return response[len(tag) + 1:], untagged

    def ok(self, text) -> list[bytes]:
        status, untagged = self.command(text)
        assert status.startswith(b"OK"), (text, status)
        return untagged

    def fetch(self, text) -> dict[int, dict]:
        """``FETCH`` answered OK: {seq: {item: value}} of its FETCH responses."""
        return dict(fetch_items(r) for r in self.ok(text) if b" FETCH " in r[:20])

    def close(self):
        self.sock.close()


# --- reading IMAP data (RFC 3501 §4, §9) ---------------------------------------------------
_ATOM = re.compile(rb'[^\x00-\x20()"{\[\]\x7f]+(?:\[[^\]\r\n]*\])?(?:<[0-9]+>)?')
_QUOTED = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"')
_LITERAL = re.compile(rb"~?\{([0-9]+)\}\r\n")


def parse(data: bytes) -> list:
    """IMAP data as nested lists: atoms as str, strings as bytes, NIL as None,
    numbers as int.  AssertionError on anything that is not well-formed."""
    stack, pos = [[]], 0
    while pos < len(data):
        if data[pos:pos + 1] == b" ":
            assert stack[-1] and data[pos + 1:pos + 2] not in (b" ", b")", b""), data[:pos + 1]
            pos += 1
        elif data[pos:pos + 1] == b"(":
            stack.append([])
            pos += 1
        elif data[pos:pos + 1] == b")":
            assert len(stack) > 1, b"unbalanced ) in " + data
            inner = stack.pop()
            stack[-1].append(inner)
            pos += 1
        elif (found := _QUOTED.match(data, pos)) is not None:
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", found.group(1)))
            pos = found.end()
        elif (found := _LITERAL.match(data, pos)) is not None:
            size = int(found.group(1))
            assert found.end() + size <= len(data), "literal cut short"
            stack[-1].append(data[found.end():found.end() + size])
            pos = found.end() + size
        else:
            found = _ATOM.match(data, pos)
            assert found is not None, b"not IMAP data at: " + data[pos:pos + 40]
            word = found.group()
            stack[-1].append(None if word.upper() == b"NIL" else int(word) if word.isdigit()
                             else word.decode())
            pos = found.end()
    assert len(stack) == 1, b"unbalanced ( in " + data
    return stack[0]


def fetch_items(response: bytes) -> tuple[int, dict]:
    """``* n FETCH (name value ...)`` as (n, {NAME: value}), checking its grammar."""
    star, seq, word, items = parse(response)
    assert star == "*" and isinstance(seq, int) and word.upper() == "FETCH", response
    assert len(items) % 2 == 0 and all(isinstance(n, str) for n in items[::2]), response
    return seq, {items[i].upper(): items[i + 1] for i in range(0, len(items), 2)}


def flags(values: dict) -> set[str]:
    return {flag.upper() for flag in values["FLAGS"]}


def mailboxes_listed(untagged, kind="LIST") -> dict[str, set[str]]:
    """{name: attributes} of LIST or LSUB responses, however each name is written."""
    out = {}
    for response in untagged:
        star, word, attributes, _delimiter, name = parse(response)
        assert star == "*" and word.upper() == kind, response
        out[name.decode() if isinstance(name, bytes) else name] = {a.upper() for a in attributes}
    return out


def check_envelope(envelope) -> None:
    """date subject from sender reply-to to cc bcc in-reply-to message-id (RFC 3501 §7.4.2)."""
    assert isinstance(envelope, list) and len(envelope) == 10, envelope
    for i in (0, 1, 8, 9):
        assert envelope[i] is None or isinstance(envelope[i], bytes), envelope[i]
    for addresses in envelope[2:8]:
        assert addresses is None or isinstance(addresses, list) and addresses, addresses
        for address in addresses or ():
            assert isinstance(address, list) and len(address) == 4, address   # never 3
            assert all(v is None or isinstance(v, bytes) for v in address), address


def check_body(body) -> None:
    """A well-formed BODY or BODYSTRUCTURE (RFC 3501 §9 ``body``), all the way down."""
    assert isinstance(body, list) and body, body
    if isinstance(body[0], list):                         # multipart: 1*body SP subtype
        count = 0
        while count < len(body) and isinstance(body[count], list):
            check_body(body[count])
            count += 1
        assert count < len(body) and isinstance(body[count], bytes), body
        return
    kind, subtype, params, _id, _description, encoding, size, *rest = body
    assert isinstance(kind, bytes) and isinstance(subtype, bytes) and isinstance(encoding, bytes)
    assert params is None or isinstance(params, list) and len(params) % 2 == 0
    assert isinstance(size, int)
    if (kind.lower(), subtype.lower()) == (b"message", b"rfc822"):
        envelope, inner, lines, *_ = rest
        check_envelope(envelope)
        check_body(inner)
        assert isinstance(lines, int)
    elif kind.lower() == b"text":
        assert isinstance(rest[0], int), body


def stored_flags(server, name="INBOX") -> dict[int, set]:
    return server.db(lambda c: {m.uid: set(m.flags) for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, name).id)})


# --- 1. every command gets its answer -------------------------------------------------------
UNPARSEABLE = {"missing argument": b'LIST ""', "missing argument after SP": b'LIST "" ',
               "unknown command": b"FROBNICATE",
               "literal {-1}": b"SELECT {-1}", "literal {+5}": b"SELECT {+5}",
               "literal {5_0}": b"SELECT {5_0}", "unclosed list": b"FETCH 1 (FLAGS",
               "UID alone": b"UID", "no command": b"",
               "3,900 parentheses": b"SEARCH " + b"(" * 3900 + b"ALL" + b")" * 3900}


@pytest.mark.parametrize("text", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_an_unparseable_command_gets_bad_and_every_later_command_its_answer(imap, text):
    session = Session(imap)
    session.ok("SELECT INBOX")
    session.sock.sendall(b"x1 " + text + b"\r\nx2 NOOP\r\nx3 FETCH 2 (UID)\r\n")   # pipelined
    assert session.reply(b"x1")[0].startswith(b"BAD"), text[:30]
    assert session.reply(b"x2")[0].startswith(b"OK")
    status, untagged = session.reply(b"x3")
    assert status.startswith(b"OK") and untagged == [b"* 2 FETCH (UID 2)"]
    session.close()


def test_list_patterns_nil_and_every_special_character_are_patterns_answered_ok(imap):
    session = Session(imap)
    assert session.ok('LIST "" NIL') == []                       # the pattern "NIL"
    assert session.ok('LIST "" "(){ %*\\"\\\\]"') == []          # every atom-special, quoted
    assert session.ok("LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*") == []   # imaptest atoms
    assert session.command("SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}")[0].startswith(b"NO")
    assert session.ok("CREATE NIL") == []
    listed = session.ok('LIST "" NIL')
    assert len(listed) == 1 and parse(listed[0])[-1] == b"NIL"   # a string, not NIL itself
    session.close()


# --- 2. two sessions on one folder ----------------------------------------------------------
def test_flag_changes_made_by_two_sessions_on_one_message_are_both_kept(imap):
    a, b = implicit(imap), implicit(imap)
    a.select("INBOX")
    a.store("1", "+FLAGS", "(\\Seen)")
    b.select("INBOX")                                  # B has loaded message 1 as \Seen
    a.store("1", "+FLAGS", "(\\Answered)")
    typ, data = b.store("1", "-FLAGS", "(\\Seen)")
    assert typ == "OK" and b"\\Answered" in data[-1] and b"\\Seen" not in data[-1], data
    assert stored_flags(imap)[1] == {"\\Answered"}
    a.store("2", "+FLAGS", "(\\Flagged)")
    typ, data = b.fetch("2", "(BODY[])")               # marks \Seen, keeps A's \Flagged
    assert typ == "OK" and b"\\Flagged" in data[-1] and b"\\Seen" in data[-1]
    assert stored_flags(imap)[2] == {"\\Flagged", "\\Seen"}
    a.logout()
    b.logout()


def test_a_non_peek_fetch_sets_seen_even_when_another_session_has_just_cleared_it(imap):
    """RFC 3501 §6.4.5: BODY[...] sets \\Seen.  Read on the desk, marked unread on the phone,
    read again on the desk: the message is \\Seen, whatever the desk's copy of its flags."""
    desk, phone = Session(imap), implicit(imap)
    desk.ok("SELECT INBOX")
    phone.select("INBOX")
    desk.fetch("FETCH 1 (BODY[TEXT])")
    assert phone.store("1", "-FLAGS", "(\\Seen)")[0] == "OK"
    assert stored_flags(imap)[1] == set()
    desk.fetch("FETCH 1 (BODY[TEXT])")
    assert stored_flags(imap)[1] == {"\\Seen"}
    assert "\\SEEN" in flags(desk.fetch("FETCH 1 (FLAGS)")[1])
    desk.close()
    phone.logout()


# --- 3. other sessions' changes, at the end of every command ----------------------------
def changed_elsewhere(server):
    """Session B flags 2, expunges 1 and appends a 4th message."""
    other = implicit(server)
    other.select("INBOX")
    other.store("2", "+FLAGS", "(\\Flagged)")
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    assert other.append("INBOX", None, None, plain(4))[0] == "OK"
    other.logout()


@pytest.mark.parametrize("quiet, may_expunge", [
    ("FETCH 3 (FLAGS)", "UID FETCH 1:* (FLAGS)"),
    ("STORE 3 +FLAGS (\\Draft)", "NOOP"),
    ("SEARCH ALL", "UID SEARCH ALL"),
])
def test_other_sessions_changes_are_announced_after_every_command_expunge_only_where_allowed(
        imap, quiet, may_expunge):
    """RFC 3501 §5.2, §7.4.1: FETCH, STORE and SEARCH carry FLAGS and EXISTS, never EXPUNGE;
    UID commands and NOOP carry the EXPUNGE too."""
    session = Session(imap)
    session.ok("SELECT INBOX")
    changed_elsewhere(imap)
    untagged = session.ok(quiet)
    assert not [u for u in untagged if u.endswith(b"EXPUNGE")], untagged
    assert b"* 4 EXISTS" in untagged, untagged
    flagged = [fetch_items(u)[1] for u in untagged if u.startswith(b"* 2 FETCH")]
    assert flagged and "\\FLAGGED" in flags(flagged[0]), untagged
    untagged = session.ok(may_expunge)
    assert b"* 1 EXPUNGE" in untagged, untagged
    assert session.fetch("FETCH 1:* (UID)") == {1: {"UID": 2}, 2: {"UID": 3}, 3: {"UID": 4}}
    session.close()


def test_copy_and_move_into_the_selected_mailbox_report_exists_before_the_tagged_ok(imap):
    session = Session(imap)
    session.ok("SELECT INBOX")
    assert b"* 5 EXISTS" in session.ok("COPY 1:2 INBOX")
    untagged = session.ok("MOVE 1 INBOX")
    assert b"* 1 EXPUNGE" in untagged and b"* 5 EXISTS" in untagged
    assert untagged.index(b"* 1 EXPUNGE") < untagged.index(b"* 5 EXISTS")
    assert session.fetch("FETCH 5 (UID)") == {5: {"UID": 6}}
    session.close()


# --- 7. one debug line per command, never a password nor message content ----------------
@pytest.fixture
def log_events():
    events = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    yield events
    globalLogPublisher.removeObserver(observer)


SECRET = b"the launch code is tangerine-0451"


def test_debug_log_has_one_line_per_command_and_never_a_password_or_message_content(
        imap, log_events):
    session = Session(imap, login=False)
    sent = [(b"L1", "LOGIN", "NO", b'LOGIN ann@example.test "wrong horse battery"'),
            (b"L2", "LOGIN", "OK", f'LOGIN ann@example.test "{PASSWORD}"'.encode()),
            (b"L3", "SELECT", "OK", b"SELECT Drafts"),
            (b"L4", "NOOP", "OK", b"NOOP")]
    for tag, _name, status, text in sent:
        assert session.command(text, tag)[0].startswith(status.encode())
    message = b"Subject: private\r\n\r\n" + SECRET + b"\r\n"
    session.sock.sendall(b"L5 APPEND Drafts {%d}\r\n" % len(message))
    assert session.response().startswith(b"+")
    session.sock.sendall(message + b"\r\n")
    assert session.reply(b"L5")[0].startswith(b"OK")
    assert session.command(b"FETCH 1 (BODY[] BODY[TEXT])", b"L6")[0].startswith(b"OK")
    assert session.command(b"LOGOUT", b"L7")[0].startswith(b"OK")
    plain_auth = base64.b64encode(f"\0ann@example.test\0{PASSWORD}".encode())
    other = Session(imap, login=False)
    other.sock.sendall(b"P1 AUTHENTICATE PLAIN\r\n")
    assert other.response().startswith(b"+")
    other.sock.sendall(plain_auth + b"\r\n")
    assert other.reply(b"P1")[0].startswith(b"OK")
    assert other.command(b"LOGOUT", b"P2")[0].startswith(b"OK")
    sent += [(b"L5", "APPEND", "OK", b""), (b"L6", "FETCH", "OK", b""),
             (b"L7", "LOGOUT", "OK", b""), (b"P1", "AUTHENTICATE", "OK", b""),
             (b"P2", "LOGOUT", "OK", b"")]
    imap_debug = [formatEvent(e) for e in list(log_events)
                  if e.get("log_level") == LogLevel.debug
                  and e.get("log_namespace") == "mailstack.imap"]
    for tag, name, status, _ in sent:
        lines = [line for line in imap_debug if tag.decode() in line.split()]
        assert len(lines) == 1, (tag, imap_debug)
        words = lines[0].split()
        assert name in words and status in words, lines[0]
        assert re.search(r"\b\d+(\.\d+)? ?ms\b", lines[0]), lines[0]
    for event in list(log_events):
        text = formatEvent(event) + repr(event)
        for secret in (PASSWORD, "wrong horse battery", plain_auth.decode(), SECRET.decode(),
                       "tangerine"):
            assert secret not in text, (secret, formatEvent(event))


def imap_lines(log_events, level=LogLevel.debug) -> list[str]:
    return [formatEvent(e) for e in list(log_events) if e.get("log_level") >= level
            and e.get("log_namespace") == "mailstack.imap"]


def test_debug_log_has_a_line_for_commands_refused_before_they_run(imap, log_events):
    """A command answered BAD for its state or its syntax is a command the client sent."""
    session = Session(imap, login=False)
    assert session.command(b"FETCH 1 (FLAGS)", b"R1")[0].startswith(b"BAD")   # not selected
    session.ok(f'LOGIN ann@example.test "{PASSWORD}"')
    session.ok("SELECT INBOX")
    assert session.command(b"FETCH 1 (FLAGS", b"R2")[0].startswith(b"BAD")    # unclosed list
    session.close()
    for tag in ("R1", "R2"):
        lines = [line for line in imap_lines(log_events) if tag in line.split()]
        assert len(lines) == 1, (tag, lines)
        words = lines[0].split()
        assert "FETCH" in words and "BAD" in words, lines[0]
        assert re.search(r"\b\d+(\.\d+)? ?ms\b", lines[0]), lines[0]


def test_an_over_long_login_line_is_refused_without_logging_its_password(imap, log_events):
    session = Session(imap, login=False)
    status, _ = session.command(f'LOGIN a "{PASSWORD}" '.encode() + b"x" * 300_000, b"P")
    assert status.startswith(b"BAD [TOOBIG]")
    session.ok(f'LOGIN ann@example.test "{PASSWORD}"')
    session.close()
    for event in list(log_events):
        assert PASSWORD not in formatEvent(event) + repr(event), formatEvent(event)


# --- 8. hostile framing, in bounded memory --------------------------------------------
def test_a_synchronising_literal_over_appendlimit_is_refused_without_a_continuation(make_server):
    server = make_server(imap={"max_append_size": 1000}, **IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    session = Session(server)
    status, untagged = session.command("APPEND Drafts {5000}")
    assert status.startswith(b"NO [TOOBIG]") and untagged == []         # no "+"
    session.ok("NOOP")
    assert stored_flags(server, "Drafts") == {}
    session.close()


def test_a_60_mb_non_synchronising_append_is_discarded_then_refused_and_the_session_goes_on(imap):
    session = Session(imap)
    session.sock.settimeout(60)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss        # KiB
    size, chunk = 60_000_000, b"x" * (1 << 20)
    session.sock.sendall(b"t100 APPEND Drafts {%d+}\r\n" % size)
    sent = 0
    while sent < size:
        piece = chunk[:size - sent]
        session.sock.sendall(piece)
        sent += len(piece)
    session.sock.sendall(b"\r\n")
    status, _ = session.reply(b"t100")
    assert status.startswith(b"NO [TOOBIG]"), status
    session.ok("NOOP")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 40 * 1024, f"peak memory grew by {grown} KiB"     # never the 60 MB
    assert stored_flags(imap, "Drafts") == {}
    session.close()


def test_a_command_line_over_256_kb_is_bad_toobig_and_the_session_goes_on(imap):
    session = Session(imap)
    status, _ = session.command(b"SEARCH SUBJECT " + b"s" * 300_000)
    assert status.startswith(b"BAD [TOOBIG]"), status
    status, _ = session.command(b"LOGIN {300000+}\r\n" + b"u" * 300_000 + b" pw")
    assert status.startswith(b"BAD [TOOBIG]") or status.startswith(b"NO [TOOBIG]"), status
    session.ok("SELECT INBOX")
    session.close()


def test_starttls_command_injection_a_pipelined_login_is_never_executed(imap):
    sock = socket.create_connection(("127.0.0.1", imap.port("imap")), timeout=TIMEOUT)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(b"a STARTTLS\r\nb LOGIN ann@example.test \"" + PASSWORD.encode()
                 + b"\"\r\nc SELECT INBOX\r\n")
    assert reader.readline().startswith(b"a OK")
    tls = imap.context.wrap_socket(sock, server_hostname="mx.example.test")
    tls_reader = tls.makefile("rb")
    tls.sendall(b"d NOOP\r\ne SELECT INBOX\r\n")
    assert tls_reader.readline().startswith(b"d OK")     # nothing of b or c was answered
    assert tls_reader.readline().startswith(b"e BAD")    # and LOGIN b never took effect
    tls.close()
