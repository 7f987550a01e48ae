"""The IMAP extensions real clients use, each driven over TLS by imaplib (and mbsync):
IDLE, UIDPLUS, MOVE, SPECIAL-USE, NAMESPACE, ID, UNSELECT, ENABLE, CHILDREN, APPENDLIMIT and
QUOTA -- and IDLE hearing deliveries from this process and from a second one."""

from __future__ import annotations

import imaplib
import re
import smtplib
import subprocess
import sys
import time

import pytest

from mailstack.store import directory, logins, mailboxes
from tests.support.process import free_ports, stop, wait_for_port, write_config

pytestmark = pytest.mark.e2e
PASSWORD = "imap ext password"
LISTENERS = {"listeners": [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
                           {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"}],
             "imap": {"idle_poll": 1.0}}


def message(n, subject="hello"):
    return (f"From: s{n}@remote.test\r\nTo: ann@example.test\r\nSubject: {subject} {n}\r\n"
            f"Message-ID: <m{n}@remote.test>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture
def ext(make_server):
    server = make_server(**LISTENERS)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for n in (1, 2, 3):
        server.db(mailboxes.deliver, [server.ann], message(n), server.now())
    return server


def connect(server, login=True) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    if login:
        client.login("ann@example.test", PASSWORD)
    return client


def uids_in(server, name):
    return server.db(lambda c: [m.uid for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, name).id)])


def command(client, text: str):
    """Send a raw command; (tagged status line, [untagged lines])."""
    tag = client._new_tag()
    client.send(tag + b" " + text.encode() + b"\r\n")
    untagged = []
    while True:
        line = client.readline()
        if line.startswith(tag + b" "):
            return line[len(tag) + 1:].rstrip(), untagged
        untagged.append(line.rstrip())


def test_capabilities_name_each_extension(ext):
    client = connect(ext, login=False)
    client.login("ann@example.test", PASSWORD)
    typ, data = client.capability()
    caps = set(data[0].decode().split())
    for name in ("IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CREATE-SPECIAL-USE",
                 "NAMESPACE", "ID", "UNSELECT", "ENABLE", "CHILDREN", "QUOTA",
                 "QUOTA=RES-STORAGE", "APPENDLIMIT=26214400"):
        assert name in caps, name
    assert "LITERAL+" in caps and "SASL-IR" in caps
    client.logout()


def test_uidplus_appenduid_copyuid_and_uid_expunge(ext):
    client = connect(ext)
    typ, data = client.append("Drafts", "(\\Draft)", None, message(9, "draft"))
    validity = ext.db(lambda c: mailboxes.require_folder(c, ext.ann, "Drafts").uidvalidity)
    assert typ == "OK" and data[0].startswith(b"[APPENDUID %d 1]" % validity)
    client.select("INBOX")
    status, _ = command(client, "UID COPY 1:2 Trash")
    trash = ext.db(lambda c: mailboxes.require_folder(c, ext.ann, "Trash").uidvalidity)
    assert status.startswith(b"OK [COPYUID %d 1:2 1:2]" % trash)
    client.store("1:3", "+FLAGS.SILENT", "(\\Deleted)")
    typ, data = client.uid("EXPUNGE", "2")            # only UID 2, though 1-3 are \Deleted
    assert typ == "OK" and client.untagged_responses.get("EXPUNGE") == [b"2"]
    assert uids_in(ext, "INBOX") == [1, 3]
    assert command(client, "UID EXPUNGE")[0].startswith(b"BAD")
    client.logout()


def test_move_and_uid_move_expunge_at_the_source(ext):
    client = connect(ext)
    client.select("INBOX")
    status, untagged = command(client, "MOVE 1 Trash")
    assert status.startswith(b"OK")
    trash = ext.db(lambda c: mailboxes.require_folder(c, ext.ann, "Trash").uidvalidity)
    assert untagged[0] == b"* OK [COPYUID %d 1 1] Moved" % trash
    assert untagged[1] == b"* 1 EXPUNGE"
    status, untagged = command(client, "UID MOVE 3 Junk")
    assert status.startswith(b"OK") and untagged[-1] == b"* 2 EXPUNGE"   # UID 3 is seq 2
    assert uids_in(ext, "INBOX") == [2] and uids_in(ext, "Trash") == [1]
    assert uids_in(ext, "Junk") == [1]
    assert command(client, "MOVE 1 Nowhere")[0].startswith(b"NO [TRYCREATE]")
    client.logout()


def test_special_use_list_options_and_create_use(ext):
    client = connect(ext)
    status, lines = command(client, 'LIST (SPECIAL-USE) "" "*"')
    assert status.startswith(b"OK")
    uses = {re.search(rb'"/" "?([^"]+)"?$', l).group(1): l for l in lines}
    assert set(uses) == {b"Sent", b"Drafts", b"Trash", b"Junk"}
    assert b"\\Sent" in uses[b"Sent"] and b"\\Junk" in uses[b"Junk"]
    status, lines = command(client, 'LIST "" "*" RETURN (SPECIAL-USE)')
    assert status.startswith(b"OK") and len(lines) == 5
    assert any(b"\\Trash" in l and l.endswith(b' Trash') for l in lines)
    assert command(client, "CREATE Archive (USE (\\Archive))")[0].startswith(b"OK")
    status, lines = command(client, 'LIST (SPECIAL-USE) "" "Arch*"')
    assert len(lines) == 1 and b"\\Archive" in lines[0]
    assert command(client, "CREATE Stars (USE (\\Flagged))")[0].startswith(b"NO [USE-ATTR]")
    status, lines = command(client, 'LIST "" "*" RETURN (SUBSCRIBED)')
    subscribed = {l.rsplit(b" ", 1)[-1] for l in lines if b"\\Subscribed" in l}
    assert subscribed == {b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk"}   # CREATE does not subscribe
    client.logout()


def test_children_namespace_unselect_and_enable(ext):
    client = connect(ext)
    client.create("Projects/2026")
    listed = {l.rsplit(b" ", 1)[-1].strip(b'"'): l for l in client.list()[1]}
    assert b"\\HasChildren" in listed[b"Projects"]
    assert b"\\HasNoChildren" in listed[b"Projects/2026"]
    typ, data = client.namespace()
    assert typ == "OK" and data[0] == b'(("" "/")) NIL NIL'
    status, lines = command(client, "ENABLE UTF8=ACCEPT CONDSTORE")
    assert status.startswith(b"OK") and lines == [b"* ENABLED CONDSTORE"]
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Deleted)")
    assert command(client, "UNSELECT")[0].startswith(b"OK")
    assert uids_in(ext, "INBOX") == [1, 2, 3]             # nothing expunged
    assert command(client, "FETCH 1 FLAGS")[0].startswith(b"BAD")   # no mailbox selected
    client.logout()


def test_id_is_answered_and_recorded_with_the_login_event(ext):
    client = connect(ext, login=False)                    # before LOGIN (Apple Mail, K-9)
    status, lines = command(client, 'ID ("name" "Thunderbird" "version" "128.3")')
    assert status.startswith(b"OK") and lines[0].startswith(b'* ID ("name" "mailstack"')
    client.login("ann@example.test", PASSWORD)
    client.logout()
    later = connect(ext)                                  # after LOGIN (Thunderbird)
    assert command(later, 'ID ("name" "Outlook" "version" "16.0")')[0].startswith(b"OK")
    assert command(later, "ID NIL")[0].startswith(b"OK")
    assert command(later, "ID (unbalanced")[0].startswith(b"BAD")
    later.logout()
    events = ext.db(logins.recent, account_id=ext.ann, success=True)
    names = {e.client_name for e in events if e.protocol == "imap"}
    assert names == {"Thunderbird 128.3", "Outlook 16.0"}
    assert {e.port for e in events} == {ext.port("imaps")}


def test_quota_is_reported_and_append_and_copy_are_refused_when_full(ext):
    client = connect(ext)
    assert command(client, 'GETQUOTAROOT "INBOX"')[1] == [b'* QUOTAROOT INBOX']  # unlimited
    ext.db(directory.set_quota, "ann@example.test", 10 * 1024)
    used = ext.db(directory.mailbox_usage, ext.ann)[1]
    status, lines = command(client, 'GETQUOTAROOT "INBOX"')
    assert lines == [b'* QUOTAROOT INBOX ""',
                     b'* QUOTA "" (STORAGE %d 10)' % ((used + 1023) // 1024)]
    assert command(client, 'GETQUOTA ""')[1] == [lines[1]]
    assert command(client, 'SETQUOTA "" (STORAGE 99999)')[0].startswith(b"NO [NOPERM]")
    big = message(7, "big") + b"x" * (11 * 1024)
    typ, data = client.append("INBOX", None, None, big)
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    ext.db(directory.set_quota, "ann@example.test", used + 100)
    client.select("INBOX")
    typ, data = client.copy("1:3", "Trash")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    assert uids_in(ext, "INBOX") == [1, 2, 3] and uids_in(ext, "Trash") == []
    status, lines = command(client, "MOVE 1 Trash")       # a move does not grow the mailbox
    assert status.startswith(b"OK")
    typ, data = client.status("Trash", "(MESSAGES SIZE)")
    assert b"MESSAGES 1" in data[0] and b"SIZE " in data[0]
    client.logout()
    with smtplib.SMTP("127.0.0.1", ext.port("smtp")) as smtp:   # SMTP refuses too, at RCPT
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:  # (smtplib declares SIZE)
            smtp.sendmail("s@remote.test", ["ann@example.test"], big)
    code, text = refused.value.recipients["ann@example.test"]
    assert code == 452 and b"4.2.2" in text and b"Mailbox full" in text


# --- IDLE --------------------------------------------------------------------------------

def start_idle(client):
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+ ")
    return tag


def wait_for(client, pattern: bytes, seconds: float) -> tuple[bytes, float]:
    started = time.monotonic()
    client.sock.settimeout(seconds)
    line = b""
    while not re.search(pattern, line):
        line = client.readline()
        assert line, "connection closed"
    return line.rstrip(), time.monotonic() - started


def stop_idle(client, tag):
    client.sock.settimeout(10)
    client.send(b"DONE\r\n")
    while True:
        line = client.readline()
        if line.startswith(tag):
            return line


def test_idle_receives_an_smtp_delivery_within_a_second(ext):
    client = connect(ext)
    client.select("INBOX")
    tag = start_idle(client)
    sent = time.monotonic()
    with smtplib.SMTP("127.0.0.1", ext.port("smtp")) as smtp:
        smtp.sendmail("s@remote.test", ["ann@example.test"], message(4))
    line, _ = wait_for(client, rb"^\* \d+ EXISTS", 5)
    assert line == b"* 4 EXISTS" and time.monotonic() - sent < 1.0
    assert stop_idle(client, tag).startswith(tag + b" OK")
    typ, data = client.fetch("4", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"hello 4" in data[0][1]
    client.logout()


def test_idle_pushes_flag_changes_and_expunges_made_by_another_session(ext):
    watcher, actor = connect(ext), connect(ext)
    watcher.select("INBOX")
    actor.select("INBOX")
    tag = start_idle(watcher)
    actor.store("2", "+FLAGS", "(\\Flagged)")
    line, _ = wait_for(watcher, rb"FETCH", 5)
    assert line == b"* 2 FETCH (FLAGS (\\Flagged \\Recent))"   # the watcher selected first
    actor.store("1", "+FLAGS", "(\\Deleted)")
    actor.expunge()
    assert wait_for(watcher, rb"EXPUNGE", 5)[0] == b"* 1 EXPUNGE"
    assert stop_idle(watcher, tag).startswith(tag + b" OK")
    typ, data = watcher.fetch("1:*", "(UID)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"3"]
    watcher.logout()
    actor.logout()


def test_idle_must_end_with_done(ext):
    client = connect(ext)
    client.select("INBOX")
    tag = start_idle(client)
    client.send(b"NOOP\r\n")
    assert client.readline().startswith(tag + b" BAD")
    assert client.noop()[0] == "OK"                       # the session goes on
    client.logout()


def test_idle_hears_a_delivery_made_by_a_second_process(ext, db_url, tmp_path):
    """PostgreSQL: LISTEN/NOTIFY, well under a second.  SQLite: the poll (imap.idle_poll)."""
    smtp_port, pop3s_port = free_ports(2)
    config = write_config(tmp_path / "second.toml", db_url,
                          [("smtp", smtp_port, "starttls"), ("pop3", pop3s_port, "implicit")])
    proc = subprocess.Popen([sys.executable, "-m", "mailstack", "--config", str(config), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path)
    try:
        wait_for_port(smtp_port, proc)
        if db_url.startswith("postgresql"):
            # While LISTEN is up the poll is skipped: what arrives must come by NOTIFY.
            deadline = time.monotonic() + 10
            while not ext.built.watch.listening and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ext.built.watch.listening
        client = connect(ext)
        client.select("INBOX")
        tag = start_idle(client)
        time.sleep(0.2)
        sent = time.monotonic()
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:   # the second process's port 25
            smtp.sendmail("s@remote.test", ["ann@example.test"], message(5))
        line, _ = wait_for(client, rb"EXISTS", 10)
        delay = time.monotonic() - sent
        assert line == b"* 4 EXISTS"
        limit = 1.0 if db_url.startswith("postgresql") else 1.0 + 1.0   # idle_poll + slack
        assert delay < limit, delay
        assert stop_idle(client, tag).startswith(tag + b" OK")
        client.logout()
    finally:
        stop(proc)


# --- a client we did not write ---------------------------------------------------------

def test_mbsync_syncs_special_use_folders_both_ways(ext, certs, tmp_path):
    maildir = tmp_path / "mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount ann
Host localhost
Port {ext.port('imaps')}
User ann@example.test
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {certs.ca}

IMAPStore remote
Account ann

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel ann
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")

    def sync():
        done = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True,
                              timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stdout + done.stderr

    sync()
    assert len(list((maildir / "INBOX").glob("*/*"))) == 3
    # A message written into the local Sent folder is uploaded (APPEND, APPENDUID).
    sent = maildir / "Sent" / "new"
    sent.mkdir(parents=True, exist_ok=True)
    (sent / "1700000000.1_1.host:2,S").write_bytes(message(8, "sent from laptop"))
    # A message deleted locally is expunged on the server (STORE \Deleted + UID EXPUNGE).
    victim = next((maildir / "INBOX" / "cur").glob("*")) if list(
        (maildir / "INBOX" / "cur").glob("*")) else next((maildir / "INBOX" / "new").glob("*"))
    victim.unlink()
    sync()
    assert len(uids_in(ext, "Sent")) == 1 and len(uids_in(ext, "INBOX")) == 2
    body = ext.db(lambda c: mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, ext.ann, "Sent").id)]))
    assert b"sent from laptop" in next(iter(body.values()))
    assert (maildir / "Trash").is_dir() and (maildir / "Junk").is_dir()
