"""IMAP clients we did not write, each driven against a running server over IMAPS on
127.0.0.1 with the dev CA: offlineimap3 (two-way Maildir sync), getmail6 (retrieval into a
Maildir), mutt under tmux (reading, copying, saving, deleting; IDLE hearing other sessions)
and fetchmail (``proto IMAP``, keep and nokeep).  mbsync has its own test in
test_imap_extensions; fetchmail over POP3 in test_pop3.

Each test skips itself when its client is not installed; ``.ci/run`` installs them all.
Every client runs with HOME in the test's tmp directory and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import imaplib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mailstack.store import mailboxes
from tests.support.terminal import Terminal

pytestmark = pytest.mark.e2e
USER = "ann@example.test"
PASSWORD = "imap clients password"
IMAPS_ONLY = {"listeners": [{"name": "imaps", "protocol": "imap", "port": 0,
                             "tls": "implicit"}]}

PLAIN = (b"From: Bob <bob@remote.test>\r\nTo: ann@example.test\r\nSubject: plain note\r\n"
         b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <plain@remote.test>\r\n"
         b"\r\nThe plain body says kumquat.\r\nSecond line.\r\n")
ALTERNATIVE = (
    b"From: Carol <carol@remote.test>\r\nTo: ann@example.test\r\nSubject: alternative note\r\n"
    b"Date: Tue, 24 Nov 2026 11:00:00 +0000\r\nMessage-ID: <alt@remote.test>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nThe alternative text says persimmon, caf\xc3\xa9.\r\n"
    b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>The alternative html says <b>persimmon</b>.</p>\r\n--ALT--\r\n")
# A 150 KB PDF-like attachment (many TLS records and literal chunks) and a forwarded message.
REPORT = base64.encodebytes(bytes((i * 7919 + i // 251) % 256 for i in range(150_000)))
ATTACHMENT = (
    b"From: Dave <dave@remote.test>\r\nTo: ann@example.test\r\nSubject: report attached\r\n"
    b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <att@remote.test>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"MIX\"\r\n\r\n"
    b"--MIX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    b"The report is attached, says tamarind.\r\n"
    b"--MIX\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + REPORT.replace(b"\n", b"\r\n") +
    b"--MIX\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: Gus <gus@remote.test>\r\nTo: dave@remote.test\r\nSubject: the figures\r\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nThe forwarded figures say fig.\r\n"
    b"--MIX--\r\n")
PROJECT = (b"From: Erin <erin@remote.test>\r\nTo: ann@example.test\r\nSubject: project plan\r\n"
           b"Date: Tue, 24 Nov 2026 13:00:00 +0000\r\nMessage-ID: <proj@remote.test>\r\n"
           b"\r\nThe project plan says quince.\r\n")
NESTED = (b"From: Hal <hal@remote.test>\r\nTo: ann@example.test\r\nSubject: next year\r\n"
          b"Date: Tue, 24 Nov 2026 13:30:00 +0000\r\nMessage-ID: <nested@remote.test>\r\n"
          b"\r\nNext year's plan says pomelo.\r\n")
LATE = (b"From: Fay <fay@remote.test>\r\nTo: ann@example.test\r\nSubject: arrived later\r\n"
        b"Date: Tue, 24 Nov 2026 14:00:00 +0000\r\nMessage-ID: <late@remote.test>\r\n"
        b"\r\nThis one arrived later, says lychee.\r\n")
INBOX_MESSAGES = (PLAIN, ALTERNATIVE, ATTACHMENT)


def needs(program: str):
    return pytest.mark.skipif(shutil.which(program) is None, reason=f"{program} not installed")


@pytest.fixture
def imaps(make_server):
    """A server with IMAPS only; ann has the three INBOX messages and Projects has one."""
    server = make_server(**IMAPS_ONLY)
    server.ann = server.add_account(USER, PASSWORD)
    for body in INBOX_MESSAGES:
        server.db(mailboxes.deliver, [server.ann], body, server.now())
    server.db(lambda c: mailboxes.append(
        c, mailboxes.create_folder(c, server.ann, "Projects", server.now()), PROJECT,
        server.now()))
    return server


def stored(server, folder: str) -> dict[bytes, tuple[frozenset, bytes]]:
    """Message-ID -> (flags, body) for every message in the folder, from the store."""
    def read(conn):
        found = mailboxes.list_messages(conn, mailboxes.require_folder(conn, server.ann,
                                                                       folder).id)
        bodies = mailboxes.get_bodies(conn, [m.id for m in found])
        return {message_id(bodies[m.id]): (m.flags, bodies[m.id]) for m in found}
    return server.db(read)


def message_id(body: bytes) -> bytes:
    return re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", body).group(1)


def folder_state(server, folder: str) -> dict[bytes, frozenset]:
    return {mid: flags for mid, (flags, _) in stored(server, folder).items()}


def run(argv, home: Path) -> subprocess.CompletedProcess:
    """Run a client with HOME in the test's tmp directory and nothing from our environment."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(argv, capture_output=True, env=env, timeout=30)


def connect(server) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    client.login(USER, PASSWORD)
    return client


# --- offlineimap3 ----------------------------------------------------------------------

def maildir_messages(folder: Path) -> dict[bytes, Path]:
    """Message-ID -> file for every message in a Maildir folder (new/ and cur/)."""
    files = [p for sub in ("new", "cur") for p in (folder / sub).glob("*")]
    return {message_id(p.read_bytes()): p for p in files}


def maildir_flags(path: Path) -> str:
    return path.name.rsplit(":2,", 1)[1] if ":2," in path.name else ""


def offlineimap(server, certs, home: Path, maildir: Path, folders: list[str]):
    """A one-shot offlineimap sync of ``folders`` with a local Maildir, as a function."""
    rc = home / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = ann
metadata = {home}/offlineimap-state
maxsyncaccounts = 1

[Account ann]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {maildir}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.port('imaps')}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {certs.ca}
folderfilter = lambda name: name in {folders!r}
""")

    def sync() -> str:
        done = run(["offlineimap", "-c", str(rc), "-o", "-1", "-u", "basic"], home)
        log = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0 and "ERROR" not in log, log
        return log
    return sync


@needs("offlineimap")
def test_offlineimap_syncs_inbox_and_subfolders_both_ways(imaps, certs, tmp_path):
    maildir = tmp_path / "Mail"
    imaps.db(lambda c: mailboxes.append(
        c, mailboxes.create_folder(c, imaps.ann, "Projects/2026", imaps.now()), NESTED,
        imaps.now()))
    sync = offlineimap(imaps, certs, tmp_path, maildir,
                       ["INBOX", "Projects", "Projects/2026", "Travel"])
    sync()
    # The client writes Maildir files with LF line ends (it re-serialises the message with
    # Python's email package); otherwise what it stored is byte for byte what the server has.
    inbox, projects = maildir_messages(maildir / "INBOX"), maildir_messages(maildir / "Projects")
    assert set(inbox) == {message_id(b) for b in INBOX_MESSAGES}
    for body in INBOX_MESSAGES:
        assert inbox[message_id(body)].read_bytes() == body.replace(b"\r\n", b"\n")
    assert [p.read_bytes() for p in projects.values()] == [PROJECT.replace(b"\r\n", b"\n")]
    assert all(maildir_flags(p) == "" for p in inbox.values())   # fetched with BODY.PEEK
    nested = maildir_messages(maildir / "Projects.2026")        # '/' on the server, '.' here
    assert [p.read_bytes() for p in nested.values()] == [NESTED.replace(b"\r\n", b"\n")]

    # Locally: read and flag the plain message, delete the attachment message, flag the
    # project plan, write a new message into Projects and another into a new folder.
    plain = inbox[message_id(PLAIN)]
    plain.rename(maildir / "INBOX" / "cur" / (plain.name.split(":2,")[0] + ":2,FS"))
    inbox[message_id(ATTACHMENT)].unlink()
    project = next(iter(projects.values()))
    project.rename(maildir / "Projects" / "cur" / (project.name.split(":2,")[0] + ":2,F"))
    draft = (b"From: ann@example.test\nTo: erin@remote.test\nSubject: written offline\n"
             b"Message-ID: <offline@example.test>\n\nWritten on the train, says medlar.\n")
    (maildir / "Projects" / "new" / "1700000000.M1P1.laptop").write_bytes(draft)
    for sub in ("cur", "new", "tmp"):
        (maildir / "Travel" / sub).mkdir(parents=True)
    (maildir / "Travel" / "cur" / "1700000001.M2P1.laptop:2,S").write_bytes(
        b"From: ann@example.test\nTo: ann@example.test\nSubject: tickets\n"
        b"Message-ID: <tickets@example.test>\n\nThe tickets say durian.\n")
    # On the server: another client answers the alternative note, and a message arrives.
    client = connect(imaps)
    client.select("INBOX")
    client.store("2", "+FLAGS", "(\\Answered)")
    client.logout()
    imaps.db(mailboxes.deliver, [imaps.ann], LATE, imaps.now())
    sync()

    server_inbox = stored(imaps, "INBOX")
    assert set(server_inbox) == {message_id(b) for b in (PLAIN, ALTERNATIVE, LATE)}
    assert server_inbox[message_id(PLAIN)][0] == {"\\Seen", "\\Flagged"}
    assert server_inbox[message_id(ALTERNATIVE)][0] == {"\\Answered"}
    server_projects = stored(imaps, "Projects")
    assert server_projects[message_id(PROJECT)][0] == {"\\Flagged"}
    uploaded = server_projects[b"<offline@example.test>"][1]
    assert b"Written on the train, says medlar." in uploaded
    travel = stored(imaps, "Travel")                                    # CREATE, APPEND
    assert [flags for flags, _ in travel.values()] == [{"\\Seen"}]
    assert b"The tickets say durian." in travel[b"<tickets@example.test>"][1]
    inbox = maildir_messages(maildir / "INBOX")
    assert set(inbox) == {message_id(b) for b in (PLAIN, ALTERNATIVE, LATE)}
    assert inbox[message_id(LATE)].read_bytes() == LATE.replace(b"\r\n", b"\n")
    assert maildir_flags(inbox[message_id(PLAIN)]) == "FS"
    assert maildir_flags(inbox[message_id(ALTERNATIVE)]) == "R"

    # A third run with nothing changed on either side changes nothing.
    sync()
    assert stored(imaps, "INBOX") == server_inbox
    assert set(maildir_messages(maildir / "INBOX")) == set(inbox)


# --- getmail6 --------------------------------------------------------------------------

@pytest.fixture
def getmail_maildir(tmp_path):
    """Where getmail delivers.  getmail refuses to deliver as root (CI runs as root): then
    it delivers as ``nobody``, into a directory outside pytest's (root-only) tmp tree."""
    if os.geteuid() != 0:
        yield tmp_path / "Maildir", None
        return
    parent = Path(tempfile.mkdtemp(prefix="getmail-"))
    try:
        nobody = pwd.getpwnam("nobody")
        os.chown(parent, nobody.pw_uid, nobody.pw_gid)
        maildir = parent / "Maildir"
        for sub in ("", "new", "cur", "tmp"):
            (maildir / sub).mkdir()
            os.chown(maildir / sub, nobody.pw_uid, nobody.pw_gid)
        yield maildir, "nobody"
    finally:
        shutil.rmtree(parent)


def getmail(server, certs, home: Path, destination, **options) -> str:
    """One getmail run with SimpleIMAPSSLRetriever into a Maildir; its output."""
    maildir, user = destination
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (home / ".getmail").mkdir(exist_ok=True)
    retriever_options = {k: options.pop(k) for k in ("use_peek",) if k in options}
    settings = {"delivered_to": "false", "received": "false", "verbose": "2", **options}
    rc = home / "getmailrc"
    rc.write_text(f"""[retriever]
type = SimpleIMAPSSLRetriever
server = localhost
port = {server.port('imaps')}
username = {USER}
password = {PASSWORD}
mailboxes = ("INBOX",)
ca_certs = {certs.ca}
record_mailbox = false
""" + "".join(f"{k} = {v}\n" for k, v in retriever_options.items()) + f"""
[destination]
type = Maildir
path = {maildir}/
""" + (f"user = {user}\n" if user else "") + """
[options]
""" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    done = run(["getmail", f"--getmaildir={home / '.getmail'}", f"--rcfile={rc}"], home)
    log = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, log
    return log


def delivered(maildir: Path) -> dict[bytes, bytes]:
    """Message-ID -> file content, without the Return-Path line getmail always writes."""
    found = {}
    for path in (maildir / "new").glob("*"):
        content = path.read_bytes()
        assert content.startswith(b"Return-Path: "), content[:80]
        found[message_id(content)] = content.split(b"\n", 1)[1]
    return found


def retrieved_count(log: str) -> int:
    match = re.search(r"(\d+) messages? \([^)]*\) retrieved", log)
    return int(match.group(1)) if match else 0


@needs("getmail")
def test_getmail_retrieves_each_message_once_and_deletes_it(imaps, certs, tmp_path,
                                                            getmail_maildir):
    maildir = getmail_maildir[0]
    log = getmail(imaps, certs, tmp_path, getmail_maildir, delete="true", read_all="true")
    assert retrieved_count(log) == 3, log
    # getmail writes LF line ends (its Python email generator) after a Return-Path line.
    assert delivered(maildir) == {message_id(b): b.replace(b"\r\n", b"\n")
                                  for b in INBOX_MESSAGES}
    assert stored(imaps, "INBOX") == {}                   # \Deleted and expunged
    log = getmail(imaps, certs, tmp_path, getmail_maildir, delete="true", read_all="true")
    assert retrieved_count(log) == 0, log
    assert len(list((maildir / "new").glob("*"))) == 3


@needs("getmail")
def test_getmail_read_all_false_retrieves_only_new_messages_and_keeps_them(
        imaps, certs, tmp_path, getmail_maildir):
    maildir = getmail_maildir[0]
    # use_peek = false: getmail fetches RFC822 (not BODY.PEEK[]), but without delete it
    # EXAMINEs the mailbox, so nothing may set \Seen (RFC 3501 §6.3.2).
    log = getmail(imaps, certs, tmp_path, getmail_maildir, read_all="false", delete="false",
                  use_peek="false")
    assert retrieved_count(log) == 3, log
    assert delivered(maildir) == {message_id(b): b.replace(b"\r\n", b"\n")
                                  for b in INBOX_MESSAGES}
    on_server = stored(imaps, "INBOX")
    assert {k: v[1] for k, v in on_server.items()} == {message_id(b): b for b in INBOX_MESSAGES}
    assert [flags for flags, _ in on_server.values()] == [frozenset()] * 3, log
    log = getmail(imaps, certs, tmp_path, getmail_maildir, read_all="false", delete="false",
                  use_peek="false")
    assert retrieved_count(log) == 0 and len(delivered(maildir)) == 3, log
    imaps.db(mailboxes.deliver, [imaps.ann], LATE, imaps.now())
    log = getmail(imaps, certs, tmp_path, getmail_maildir, read_all="false", delete="false",
                  use_peek="false")
    assert retrieved_count(log) == 1, log
    assert delivered(maildir)[message_id(LATE)] == LATE.replace(b"\r\n", b"\n")
    assert len(stored(imaps, "INBOX")) == 4


# --- mutt ------------------------------------------------------------------------------

@pytest.fixture
def terminal(tmp_path):
    opened = []

    def open_(argv):
        opened.append(Terminal(tmp_path, argv))
        return opened[-1]

    yield open_
    for term in opened:
        term.close()


def eventually(condition, seconds=5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


MUTT_INDEX = r"Mutt: =INBOX \[Msgs:"                   # the index's status line


def start_mutt(server, certs, home: Path, terminal, extra: str = "") -> Terminal:
    """mutt on imaps://localhost:PORT/INBOX in a terminal, its index on screen."""
    rc = home / "muttrc"
    rc.write_text(f"""set folder = "imaps://localhost:{server.port('imaps')}/"
set spoolfile = "+INBOX"
set imap_user = "{USER}"
set imap_pass = "{PASSWORD}"
set ssl_ca_certificates_file = "{certs.ca}"
set certificate_file = "{home}/mutt_certificates"
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set imap_check_subscribed = no
set sort = date-sent
set charset = utf-8
set mark_old = no
set move = no
set delete = yes
set quit = yes
set confirmappend = no
set confirmcreate = no
set wait_key = no
set pager_stop = yes
set pager_index_lines = 0
set sleep_time = 0
set mail_check_stats = no
""" + extra)
    mutt = terminal(["mutt", "-n", "-F", str(rc)])
    mutt.wait_for(MUTT_INDEX)
    return mutt


def subjects_and_seen(client: imaplib.IMAP4, folder: str) -> list[tuple[bytes, bool]]:
    typ, _ = client.select(folder, readonly=True)
    assert typ == "OK", folder
    typ, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return [(re.search(rb"Subject: (.*?)\r", d[1]).group(1), b"\\Seen" in d[0])
            for d in data if isinstance(d, tuple)]


@needs("mutt")
@needs("tmux")
def test_mutt_reads_copies_and_deletes_over_imaps(imaps, certs, tmp_path, terminal):
    mutt = start_mutt(imaps, certs, tmp_path, terminal)
    screen = mutt.wait_for(MUTT_INDEX + "3 ")
    assert all(s in screen for s in ("plain note", "alternative note", "report attached"))

    def open_message(subject: str, expect: str) -> str:
        mutt.keys("/")
        mutt.type(f"~s '{subject}'")
        mutt.keys("Enter")                                # display-message
        shown = mutt.wait_for(expect)
        mutt.keys("q")                                    # back to the index
        mutt.wait_for(MUTT_INDEX)
        return shown

    assert "Subject: plain note" in open_message("plain note", r"says kumquat")
    shown = open_message("alternative note", r"says persimmon")
    assert "persimmon, café" in shown                     # the text/plain part, decoded
    shown = open_message("report attached", r"says tamarind")
    assert re.search(r"Attachment #2: report\.pdf", shown), shown
    assert "Subject: the figures" in shown and "The forwarded figures say fig." in shown

    # Copy the report to Projects (server-side UID COPY); save the alternative note to a
    # folder that does not exist yet (COPY answered NO [TRYCREATE], then CREATE and COPY
    # again); delete the plain note; sync the mailbox (STORE \Deleted, EXPUNGE).
    mutt.keys("C")
    mutt.wait_for(r"Copy to mailbox")
    mutt.type("=Projects")
    eventually(lambda: len(stored(imaps, "Projects")) == 2)
    mutt.keys("/")
    mutt.type("~s 'alternative note'")
    mutt.keys("s")
    mutt.wait_for(r"Save to mailbox")
    mutt.type("=Archive")
    eventually(lambda: imaps.db(mailboxes.get_folder, imaps.ann, "Archive") is not None
               and len(stored(imaps, "Archive")) == 1)
    mutt.keys("/")
    mutt.type("~s 'plain note'")
    mutt.keys("d")
    mutt.keys("$")
    screen = mutt.wait_for(MUTT_INDEX + "1 ")
    assert "plain note" not in screen and "report attached" in screen
    mutt.keys("q")
    eventually(lambda: not mutt.running())

    # What mutt did, as another IMAP client sees it.
    client = connect(imaps)
    assert subjects_and_seen(client, "INBOX") == [(b"report attached", True)]
    assert subjects_and_seen(client, "Archive") == [(b"alternative note", True)]
    assert subjects_and_seen(client, "Projects") == [(b"project plan", False),
                                                     (b"report attached", True)]
    typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert [d[1] for d in data if isinstance(d, tuple)] == [PROJECT, ATTACHMENT]
    client.logout()


@needs("mutt")
@needs("tmux")
def test_mutt_idling_in_inbox_sees_arrivals_flags_and_expunges_from_elsewhere(
        make_server, certs, tmp_path, terminal):
    server = make_server(**IMAPS_ONLY, imap={"idle_poll": 0.2})
    server.ann = server.add_account(USER, PASSWORD)
    for body in INBOX_MESSAGES:
        server.db(mailboxes.deliver, [server.ann], body, server.now())
    mutt = start_mutt(server, certs, tmp_path, terminal,
                      "set imap_idle = yes\nset timeout = 1\n")    # IDLE, checked each second
    mutt.wait_for(MUTT_INDEX + "3 ")
    server.db(mailboxes.deliver, [server.ann], LATE, server.now())
    screen = mutt.wait_for(MUTT_INDEX + "4 ")                  # * 4 EXISTS, then FETCH
    assert "arrived later" in screen
    other = connect(server)
    other.select("INBOX")
    other.store("2", "+FLAGS", "(\\Flagged)")                 # the alternative note
    mutt.wait_for(r"!.*alternative note")
    other.store("1", "+FLAGS", "(\\Deleted)")                 # the plain note
    other.expunge()
    other.logout()
    screen = mutt.wait_for(MUTT_INDEX + "3 ")
    assert "plain note" not in screen and "arrived later" in screen
    mutt.keys("q")
    eventually(lambda: not mutt.running())


# --- fetchmail over IMAP ---------------------------------------------------------------

def fetchmail(server, certs, home: Path, *options: str) -> tuple[int, str, dict]:
    """One fetchmail run over IMAPS; (exit code, log, Message-ID -> delivered bytes of every
    message delivered so far).  The MDA writes each message to a file of its own."""
    out = home / "delivered"
    out.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(f"""set no syslog
set invisible
poll localhost service {server.port('imaps')} protocol IMAP auth password
  user "{USER}" there with password "{PASSWORD}" is "ann" here
  ssl sslproto tls1.2+ sslcertck sslcertfile "{certs.ca}" sslcertpath "{home}"
  no rewrite {' '.join(options)}
  mda "/bin/sh -c 'cat > $(mktemp -p {out} msg.XXXXXX)'"
""")
    rc.chmod(0o600)
    # Its own lock file: as root fetchmail locks /var/run/fetchmail.pid, which another
    # test's fetchmail on the other xdist worker may hold at that moment.
    done = run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v",
                "--pidfile", str(home / "fetchmail.pid")], home)
    log = (done.stdout + done.stderr).decode(errors="replace")
    assert not re.search(r"IMAP< A\d+ (NO|BAD)\b", log), log     # -v logs the IMAP dialogue
    messages = {message_id(p.read_bytes()): p.read_bytes() for p in out.glob("msg.*")}
    return done.returncode, log, messages


@needs("fetchmail")
def test_fetchmail_imap_keep_fetches_each_message_once_and_marks_it_seen(imaps, certs,
                                                                         tmp_path):
    code, log, got = fetchmail(imaps, certs, tmp_path, "keep")
    assert code == 0, log
    # fetchmail hands the MDA LF line ends (stripcr); otherwise the stored bytes.
    assert got == {message_id(b): b.replace(b"\r\n", b"\n") for b in INBOX_MESSAGES}, log
    on_server = stored(imaps, "INBOX")
    assert {k: v for k, (_, v) in on_server.items()} == {message_id(b): b
                                                          for b in INBOX_MESSAGES}
    assert [flags for flags, _ in on_server.values()] == [{"\\Seen"}] * 3
    code, log, got = fetchmail(imaps, certs, tmp_path, "keep")
    assert code == 1 and len(got) == 3, log              # 1: no mail (all are \Seen)
    imaps.db(mailboxes.deliver, [imaps.ann], LATE, imaps.now())
    code, log, got = fetchmail(imaps, certs, tmp_path, "keep")
    assert code == 0 and len(got) == 4, log
    assert got[message_id(LATE)] == LATE.replace(b"\r\n", b"\n")
    assert folder_state(imaps, "INBOX")[message_id(LATE)] == {"\\Seen"}


@needs("fetchmail")
def test_fetchmail_imap_nokeep_deletes_and_expunges_what_it_fetched(imaps, certs, tmp_path):
    client = connect(imaps)
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Seen)")             # an already-read message: not fetched
    client.logout()
    code, log, got = fetchmail(imaps, certs, tmp_path, "nokeep")
    assert code == 0, log
    assert set(got) == {message_id(ALTERNATIVE), message_id(ATTACHMENT)}, log
    assert set(stored(imaps, "INBOX")) == {message_id(PLAIN)}
    code, log, got = fetchmail(imaps, certs, tmp_path, "nokeep", "fetchall")
    assert code == 0 and set(got) == {message_id(b) for b in INBOX_MESSAGES}, log
    assert stored(imaps, "INBOX") == {}
