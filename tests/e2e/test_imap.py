"""IMAP end to end: imaplib over STARTTLS and implicit TLS, curl, and the faults (mbsync: test_imap_extensions)."""

from __future__ import annotations

import imaplib
import re
import socket
import subprocess

import pytest

from mailstack.store import imap_store, logins, mailboxes
from tests.support.faults import writes_blocked

pytestmark = pytest.mark.e2e
PASSWORD = "imap test password"
IMAP_ONLY = {"listeners": [{"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"},
                           {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"}]}
MULTIPART = (b"From: Bob <bob@remote.test>\r\nTo: ann@example.test\r\nSubject: with attachment\r\n"
             b"Message-ID: <m1@remote.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
             b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Ann, the report.\r\n"
             b"--XX\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             b"JVBERi0xLjQK\r\n--XX--\r\n")


def plain(n):
    return (f"From: sender{n}@remote.test\r\nTo: ann@example.test\r\nSubject: hello {n}\r\n"
            f"Date: Tue, 24 Nov 2026 0{n}:00:00 +0000\r\n\r\nbody number {n}\r\n").encode()


@pytest.fixture
def imap(make_server):
    server = make_server(**IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    server.db(mailboxes.deliver, [server.ann], plain(1), server.now())
    server.db(mailboxes.deliver, [server.ann], plain(2), server.now())
    server.db(mailboxes.deliver, [server.ann], MULTIPART, server.now())
    return server


def starttls(server, login=True) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=10)
    client.starttls(ssl_context=server.context)
    if login:
        client.login("ann@example.test", PASSWORD)
    return client


def implicit(server) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    client.login("ann@example.test", PASSWORD)
    return client


def folder_uids(server, name):
    return server.db(lambda c: [m.uid for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, name).id)])


def test_capability_login_and_select_over_starttls(imap):
    client = imaplib.IMAP4("127.0.0.1", imap.port("imap"), timeout=10)
    assert "STARTTLS" in client.capabilities and "AUTH=PLAIN" in client.capabilities
    assert "LITERAL+" in client.capabilities
    client.starttls(ssl_context=imap.context)
    assert "STARTTLS" not in client.capabilities
    client.login("ann@example.test", PASSWORD)
    typ, data = client.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    untagged = client.untagged_responses
    assert "UIDVALIDITY" in untagged and "UIDNEXT" in untagged and "PERMANENTFLAGS" in untagged
    assert untagged["UNSEEN"] == [b"1"]
    client.logout()


def test_examine_is_read_only_and_implicit_tls_offers_no_starttls(imap):
    client = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=imap.context,
                               timeout=10)
    assert "STARTTLS" not in client.capabilities and "AUTH=PLAIN" in client.capabilities
    client.login("ann@example.test", PASSWORD)
    typ, data = client.select("INBOX", readonly=True)                 # EXAMINE
    assert typ == "OK" and data == [b"3"] and "READ-ONLY" in client.untagged_responses
    typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "NO" and data[0].startswith(b"[READ-ONLY]")
    client.fetch("1", "(BODY[])")                                     # no \Seen under EXAMINE
    assert client.expunge()[0] == "NO"
    client.logout()
    inbox = imap.db(lambda c: mailboxes.list_messages(
        c, mailboxes.require_folder(c, imap.ann, "INBOX").id))
    assert [m.flags for m in inbox] == [frozenset()] * 3


def test_list_lsub_status_create_rename_delete_subscribe(imap):
    client = implicit(imap)
    typ, listed = client.list()
    names = [line.decode() for line in listed]
    for name, attr in (("INBOX", None), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                       ("Trash", "\\Trash"), ("Junk", "\\Junk")):
        line = next(l for l in names if l.endswith(f'"{name}"') or l.endswith(f" {name}"))
        assert attr is None or attr in line
    assert client.create("Projects/2026")[0] == "OK"
    assert client.create("Projects/2026")[0] == "NO"
    assert client.rename("Projects", "Work")[0] == "OK"
    assert any(b"Work/2026" in l for l in client.list()[1])
    assert client.unsubscribe("Work/2026")[0] == "OK"
    assert not any(b"Work/2026" in l for l in client.lsub()[1])
    assert client.subscribe("Work/2026")[0] == "OK"
    assert any(b"Work/2026" in l for l in client.lsub()[1])
    typ, status = client.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)")
    assert b"MESSAGES 3" in status[0] and b"UNSEEN 3" in status[0] and b"UIDNEXT 4" in status[0]
    assert client.delete("Work/2026")[0] == "OK"
    assert client.delete("INBOX")[0] == "NO"
    assert client.status("Nope", "(MESSAGES)")[0] == "NO"
    client.logout()


def test_fetch_envelope_bodystructure_sections_and_partial(imap):
    client = implicit(imap)
    client.select("INBOX")
    typ, data = client.fetch("3", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    line = data[0]
    assert b"UID 3" in line and b'"with attachment"' in line and b'(("Bob" NIL "bob" "remote.test"))' in line
    assert b'("text" "plain"' in line.lower() and b'"mixed"' in line.lower()
    size = int(re.search(rb"RFC822.SIZE (\d+)", line).group(1))
    typ, data = client.fetch("3", "(BODY.PEEK[])")
    assert data[0][1] == MULTIPART and len(data[0][1]) == size
    typ, data = client.fetch("3", "(BODY.PEEK[1])")
    assert data[0][1] == b"Hello Ann, the report."   # the CRLF belongs to the boundary
    typ, data = client.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
    assert data[0][1] == b"Subject: with attachment\r\nMessage-ID: <m1@remote.test>\r\n\r\n"
    typ, data = client.fetch("1", "(BODY.PEEK[]<0.10>)")
    assert data[0][0].endswith(b"BODY[]<0> {10}") and data[0][1] == plain(1)[:10]
    typ, data = client.fetch("1", "(BODY.PEEK[TEXT])")
    assert data[0][1] == b"body number 1\r\n"
    assert b"\\Seen" not in client.fetch("1", "(FLAGS)")[1][0]      # PEEK does not mark
    typ, data = client.fetch("1", "(BODY[TEXT])")                  # BODY[] marks, and says so
    assert data[1] == b" FLAGS (\\Seen \\Recent))"    # delivered before this SELECT
    assert b"\\Seen" in client.fetch("1", "(FLAGS)")[1][0]
    typ, data = client.fetch("2", "(BODY[]<0.4>)")                # a partial BODY[] marks too
    assert data[0][1] == plain(2)[:4] and b"\\Seen" in data[1]
    typ, data = client.fetch("3", "(BODY[])")                     # so does the whole message
    assert data[0][1] == MULTIPART and b"\\Seen" in data[1]
    client.logout()
    stored = imap.db(lambda c: mailboxes.list_messages(
        c, mailboxes.require_folder(c, imap.ann, "INBOX").id))
    assert all("\\Seen" in m.flags for m in stored)


def test_store_search_copy_expunge_and_uid_commands(imap):
    client = implicit(imap)
    client.select("INBOX")
    assert client.uid("STORE", "2", "+FLAGS", "(\\Flagged $Important)")[0] == "OK"
    assert client.search(None, "FLAGGED")[1] == [b"2"]
    assert client.uid("SEARCH", None, "UNFLAGGED")[1] == [b"1 3"]
    assert client.search(None, "SUBJECT", '"hello 2"')[1] == [b"2"]
    assert client.search(None, "OR", "FROM", "sender1", "KEYWORD", "$Important")[1] == [b"1 2"]
    assert client.search(None, "LARGER", "200", "NOT", "SEEN")[1] == [b"3"]
    assert client.search(None, "BODY", "report")[1] == [b"3"]
    typ, data = client.store("1", "+FLAGS", "(\\SEEN)")              # flags are case-insensitive
    assert data == [b"1 (FLAGS (\\Seen \\Recent))"]
    assert client.search(None, "UNSEEN")[1] == [b"2 3"]
    assert client.status("INBOX", "(UNSEEN)")[1] == [b'INBOX (UNSEEN 2)']
    assert client.uid("COPY", "1:2", "Trash")[0] == "OK"
    assert folder_uids(imap, "Trash") == [1, 2]
    assert client.copy("1", "Nowhere")[1][0].startswith(b"[TRYCREATE]")
    assert client.uid("FETCH", "2:*", "(FLAGS)")[0] == "OK"
    client.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = client.expunge()
    assert data == [b"1"]
    assert folder_uids(imap, "INBOX") == [2, 3]                       # durable before OK
    client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    assert client.close()[0] == "OK"
    assert folder_uids(imap, "INBOX") == [3]
    other = starttls(imap)
    other.select("INBOX")
    assert b"$Important" not in other.fetch("1", "(FLAGS)")[1][0]
    other.logout()
    client.logout()


def test_append_is_committed_before_ok_and_works_without_flags(imap):
    client = implicit(imap)
    assert client.append("Drafts", None, None, b"Subject: draft\r\n\r\nbody\r\n")[0] == "OK"
    assert folder_uids(imap, "Drafts") == [1]
    assert client.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(1700000000),
                         b"Subject: sent\r\n\r\nbody\r\n")[0] == "OK"
    sent = imap.db(lambda c: mailboxes.list_messages(c, mailboxes.require_folder(c, imap.ann, "Sent").id))
    assert sent[0].flags == frozenset({"\\Seen"}) and sent[0].internal_date.timestamp() == 1700000000
    client.select("INBOX")
    client.append("INBOX", None, None, b"Subject: new\r\n\r\nx\r\n")
    assert client.untagged_responses.get("EXISTS") in ([b"4"], [b"3", b"4"])
    assert client.append("Nowhere", None, None, b"x")[1][0].startswith(b"[TRYCREATE]")
    client.logout()


def test_new_mail_shows_up_at_noop(imap):
    client = implicit(imap)
    client.select("INBOX")
    imap.db(mailboxes.deliver, [imap.ann], plain(4), imap.now())
    client.noop()
    assert client.untagged_responses.get("EXISTS")[-1] == b"4"
    client.logout()


def test_authenticate_plain_and_failures(imap):
    client = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=imap.context, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("ann@example.test", "wrong")
    typ, _ = client.authenticate("PLAIN", lambda _: f"\0ann@example.test\0{PASSWORD}".encode())
    assert typ == "OK"
    client.logout()
    (event, *_) = imap.db(logins.recent, account_id=imap.ann)
    assert (event.protocol, event.mechanism, event.tls, event.success) == ("imap", "PLAIN", True, True)


def raw_tls(server):
    sock = socket.create_connection(("127.0.0.1", server.port("imaps")), timeout=10)
    tls = server.context.wrap_socket(sock, server_hostname="mx.example.test")
    reader = tls.makefile("rb")
    reader.readline()
    return tls, reader


def test_starttls_command_injection_is_discarded(imap):
    sock = socket.create_connection(("127.0.0.1", imap.port("imap")), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert reader.readline().startswith(b"a OK")
    tls = imap.context.wrap_socket(sock, server_hostname="mx.example.test")
    tls_reader = tls.makefile("rb")
    tls.sendall(b"c NOOP\r\n")
    assert tls_reader.readline().startswith(b"c OK")   # b CAPABILITY was never answered
    tls.close()


def test_bad_input_gets_bad_or_no_and_the_server_keeps_serving(imap):
    tls, reader = raw_tls(imap)
    tls.sendall(b"a FROBNICATE\r\n")
    assert reader.readline().startswith(b"a BAD")
    tls.sendall(b"b LOGIN \xff\xfe \"x\"\r\n")                  # 8-bit bytes in an atom
    assert reader.readline().startswith(b"b BAD")
    tls.sendall(b"c AUTHENTICATE PLAIN\r\n")
    assert reader.readline().startswith(b"+")
    tls.sendall(b"!!not base64!!\r\n")
    assert reader.readline().startswith(b"c BAD")
    tls.sendall(b"d LOGIN ann@example.test \"" + PASSWORD.encode() + b"\"\r\n")
    assert reader.readline().startswith(b"d OK")
    tls.sendall(b"e CREATE \xc3\x28bad\r\n")                         # 8-bit bytes in an atom
    assert reader.readline().startswith(b"e BAD")
    tls.sendall(b"e1 CREATE \"\xc3\x28bad\"\r\n")                  # a string, not mUTF-7
    assert reader.readline().startswith(b"e1 NO [CANNOT]")
    tls.sendall(b"e2 SELECT \"caf\xc3\xa9\"\r\n")
    assert reader.readline().startswith(b"e2 NO [CANNOT]")
    tls.sendall(b"e3 STATUS INBOX\r\n")                                 # missing argument
    assert reader.readline().startswith(b"e3 BAD")
    assert imap.db(imap_store.folder_count, imap.ann) == 5               # nothing created
    tls.sendall(b"f NOOP " + b"x" * 400_000 + b"\r\n")                 # past the command limit
    assert reader.readline() == b"f BAD [TOOBIG] Command line too long\r\n"
    tls.sendall(b"g NOOP\r\n")                                         # and still serving
    assert reader.readline() == b"g OK NOOP completed\r\n"
    tls.close()
    implicit(imap).logout()


def test_append_over_the_limit_and_a_dropped_append_store_nothing(make_server):
    server = make_server(imap={"max_append_size": 1000}, **IMAP_ONLY)
    ann = server.add_account("ann@example.test", PASSWORD)
    server.ann = ann
    tls, reader = raw_tls(server)
    tls.sendall(b"a LOGIN ann@example.test \"" + PASSWORD.encode() + b"\"\r\n")
    assert reader.readline().startswith(b"a OK")
    tls.sendall(b"b APPEND Drafts {5000}\r\n")
    assert reader.readline().startswith(b"b NO [TOOBIG]")
    tls.sendall(b"c APPEND Drafts {100}\r\n")
    assert reader.readline().startswith(b"+")
    tls.sendall(b"Subject: half\r\n\r\nonly part")
    tls.close()
    client = implicit(server)
    assert client.select("Drafts")[1] == [b"0"]
    client.logout()
    assert folder_uids(server, "Drafts") == []


def test_idle_client_is_logged_out_after_the_timeout(imap):
    tls, reader = raw_tls(imap)
    tls.sendall(b"a LOGIN ann@example.test \"" + PASSWORD.encode() + b"\"\r\n")
    assert reader.readline().startswith(b"a OK")
    imap.advance(imap.config.imap.login_timeout + 1)       # logged in: 30 minutes, not 60 s
    tls.sendall(b"b NOOP\r\n")
    assert reader.readline().startswith(b"b OK")
    imap.advance(imap.config.imap.idle_timeout + 1)
    assert reader.readline().startswith(b"* BYE")
    assert reader.readline() == b""
    tls.close()
    implicit(imap).logout()


def test_a_connection_that_does_not_log_in_is_closed_after_the_login_timeout(imap):
    """Issue 13: an unauthenticated connection had the 30-minute post-login timeout."""
    tls, reader = raw_tls(imap)
    tls.sendall(b"a CAPABILITY\r\n")
    assert reader.readline().startswith(b"* CAPABILITY") and reader.readline().startswith(b"a OK")
    imap.advance(imap.config.imap.login_timeout + 1)
    assert reader.readline().startswith(b"* BYE")
    assert reader.readline() == b""
    tls.close()


def test_store_unavailable_gives_no_unavailable_and_recovers(imap, db_url):
    client = implicit(imap)
    with writes_blocked(db_url):
        typ, data = client.append("Drafts", None, None, b"Subject: x\r\n\r\ny\r\n")
        assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]")
    assert client.append("Drafts", None, None, b"Subject: x\r\n\r\ny\r\n")[0] == "OK"
    client.logout()


def test_curl_fetches_by_uid_and_appends(imap, certs, tmp_path):
    base = ["curl", "-sS", "--cacert", str(certs.ca), "-u", f"ann@example.test:{PASSWORD}"]
    url = f"imaps://127.0.0.1:{imap.port('imaps')}"
    done = subprocess.run(base + [f"{url}/INBOX;UID=2"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == plain(2)
    upload = tmp_path / "up.eml"
    upload.write_bytes(b"Subject: via curl\r\n\r\nuploaded\r\n")
    done = subprocess.run(base + ["-T", str(upload), f"{url}/Drafts"], capture_output=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert folder_uids(imap, "Drafts") == [1]


def test_after_the_tls_cutover_login_needs_starttls(make_server):
    from datetime import datetime, timedelta, timezone
    server = make_server(auth={"tls_cutover": datetime.now(timezone.utc) + timedelta(days=1)},
                         **IMAP_ONLY)
    server.add_account("ann@example.test", PASSWORD)
    before = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=10)
    assert "LOGINDISABLED" not in before.capabilities
    before.login("ann@example.test", PASSWORD)          # before the cutover: allowed, recorded
    before.logout()
    server.advance(2 * 86400)
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=10)
    assert "LOGINDISABLED" in client.capabilities and "AUTH=PLAIN" not in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login("ann@example.test", PASSWORD)
    client.starttls(ssl_context=server.context)
    assert "LOGINDISABLED" not in client.capabilities
    client.login("ann@example.test", PASSWORD)
    client.logout()
    implicit(server).logout()                           # port 993 is unaffected
    events = server.db(logins.recent)
    assert [e.tls for e in events if e.success] == [True, True, False]
