"""POP3 end to end: poplib over STLS and implicit TLS, curl and fetchmail, and the faults."""

from __future__ import annotations

import poplib
import socket
import subprocess
import time

import pytest

from mailstack.store import logins, mailboxes
from tests.support.faults import writes_blocked

pytestmark = pytest.mark.e2e
PASSWORD = "pop3 test password"
POP_ONLY = {"listeners": [{"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
                          {"name": "pop3s", "protocol": "pop3", "port": 0, "tls": "implicit"}]}


def message(n: int, extra: bytes = b"") -> bytes:
    return (f"From: sender{n}@remote.test\r\nSubject: message {n}\r\n\r\n".encode()
            + b"line one\r\n.starts with a dot\r\nline three\r\n" + extra)


@pytest.fixture
def pop(make_server):
    server = make_server(**POP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for n in (1, 2, 3):
        server.db(mailboxes.deliver, [server.ann], message(n), server.now())
    return server


def stls(server, user="ann@example.test", password=PASSWORD) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    client.stls(context=server.context)
    if user:
        client.user(user)
        client.pass_(password)
    return client


def login_eventually(server, seconds=5.0) -> poplib.POP3:
    """Log in, retrying while the previous session's lock is being released."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return stls(server)
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0] and time.monotonic() < deadline
            time.sleep(0.05)


def inbox_count(server):
    return server.db(lambda c: len(mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, "INBOX").id)))


def test_every_command_over_stls(pop):
    client = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=10)
    caps = client.capa()
    assert "STLS" in caps and "USER" in caps and "RESP-CODES" in caps and "AUTH-RESP-CODE" in caps
    assert "APOP" not in caps and "CELERITY" not in caps
    assert b"<" not in client.getwelcome()          # no APOP timestamp
    client.stls(context=pop.context)
    assert "STLS" not in client.capa()
    client.user("ann@example.test")
    client.pass_(PASSWORD)
    assert client.stat()[0] == 3
    listing = client.list()[1]
    uidls = client.uidl()[1]
    assert len(listing) == 3 and len(uidls) == 3
    assert client.uidl(2).split()[1:] == uidls[1].split()   # "+OK 2 <uid>" includes the number
    assert client.list(1).split()[1] == b"1"
    lines = client.retr(1)[1]
    assert b"Subject: message 1" in lines and b".starts with a dot" in lines
    size = int(client.list(1).split()[2])
    assert sum(len(l) + 2 for l in lines) == size            # LIST size == what RETR sends
    top = client.top(2, 1)[1]
    assert top[-1] == b"line one" and b"line three" not in top
    client.dele(1)
    with pytest.raises(poplib.error_proto):
        client.retr(1)
    assert client.stat()[0] == 2 and len(client.list()[1]) == 2
    client.rset()
    assert client.stat()[0] == 3
    client.dele(2)
    assert client.noop().startswith(b"+OK")
    client.quit()
    assert inbox_count(pop) == 2                               # committed before the +OK
    again = stls(pop)
    assert [u.split()[1] for u in again.uidl()[1]] == [uidls[0].split()[1], uidls[2].split()[1]]
    again.quit()


def test_implicit_tls_and_auth_plain(pop):
    client = poplib.POP3_SSL("127.0.0.1", pop.port("pop3s"), context=pop.context, timeout=10)
    assert "STLS" not in client.capa()
    import base64
    token = base64.b64encode(b"\0ann@example.test\0" + PASSWORD.encode()).decode()
    assert client._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")
    assert client.stat()[0] == 3
    client.quit()
    (event, *_) = pop.db(logins.recent, account_id=pop.ann)
    assert (event.protocol, event.tls, event.mechanism, event.success) == ("pop3", True, "PLAIN", True)


def test_wrong_password_gets_auth_resp_code(pop):
    client = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=10)
    client.stls(context=pop.context)
    client.user("ann@example.test")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        client.pass_("wrong")
    client.user("ann@example.test")
    client.pass_(PASSWORD)
    client.quit()


def test_second_session_gets_in_use_and_a_dropped_session_frees_the_lock(pop):
    first = stls(pop)
    second = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=10)
    second.stls(context=pop.context)
    second.user("ann@example.test")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
        second.pass_(PASSWORD)
    first.dele(1)
    first.sock.shutdown(socket.SHUT_RDWR)                    # gone without QUIT
    first.close()
    third = login_eventually(pop)
    assert third.stat()[0] == 3                               # nothing deleted without QUIT
    third.quit()


def test_pipelined_user_pass_stat_get_answers_in_order(pop):
    raw = socket.create_connection(("127.0.0.1", pop.port("pop3s")), timeout=10)
    tls = pop.context.wrap_socket(raw, server_hostname="mx.example.test")
    reader = tls.makefile("rb")
    reader.readline()
    tls.sendall(f"USER ann@example.test\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE x\r\nLIST 99\r\nQUIT\r\n".encode())
    answers = [reader.readline() for _ in range(6)]
    assert answers[0].startswith(b"+OK") and answers[1].startswith(b"+OK")
    assert answers[2].startswith(b"+OK 3 ")
    assert answers[3].startswith(b"-ERR") and answers[4].startswith(b"-ERR")   # session continues
    assert answers[5].startswith(b"+OK")
    tls.close()


def test_stls_command_injection_is_discarded(pop):
    raw = socket.create_connection(("127.0.0.1", pop.port("pop3")), timeout=10)
    reader = raw.makefile("rb")
    reader.readline()
    raw.sendall(b"STLS\r\nUSER ann@example.test\r\n")
    assert reader.readline().startswith(b"+OK")
    tls = pop.context.wrap_socket(raw, server_hostname="mx.example.test")
    tls_reader = tls.makefile("rb")
    tls.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
    assert tls_reader.readline().startswith(b"-ERR")   # the injected USER was never seen
    tls.close()
    login_eventually(pop).quit()


def test_bad_input_is_answered_and_the_server_keeps_serving(pop):
    raw = socket.create_connection(("127.0.0.1", pop.port("pop3s")), timeout=10)
    tls = pop.context.wrap_socket(raw, server_hostname="mx.example.test")
    reader = tls.makefile("rb")
    reader.readline()
    tls.sendall(b"USER " + b"x" * 5000 + b"\r\n")
    assert reader.readline().startswith(b"-ERR Line too long")
    tls.sendall(b"FROB\r\nUSER \xff\xfe\r\nAPOP ann x\r\nAUTH PLAIN !!notbase64!!\r\nSTAT\r\n")
    answers = [reader.readline() for _ in range(5)]
    assert all(a.startswith(b"-ERR") for a in answers), answers
    assert b"APOP" in answers[2] and b"base64" in answers[3]
    tls.close()
    stls(pop).quit()


def test_idle_client_is_closed_after_the_timeout(pop):
    client = stls(pop)
    pop.advance(pop.config.pop3.idle_timeout + 1)
    assert client.file.readline().startswith(b"-ERR")
    assert client.file.readline() == b""
    client.close()
    login_eventually(pop).quit()                 # the lock went with the connection


def test_a_live_session_keeps_its_lock_past_the_lock_expiry(pop):
    client = stls(pop)
    for _ in range(4):                          # 3.2 idle timeouts; the lock lasts two
        pop.advance(pop.config.pop3.idle_timeout * 0.8)
        assert client.noop().startswith(b"+OK")  # the new expiry is committed before it
    second = stls(pop, user=None)
    second.user("ann@example.test")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
        second.pass_(PASSWORD)
    second.quit()
    client.quit()


def test_user_and_pass_after_login_are_refused_and_the_session_continues(pop):
    client = stls(pop)
    for command in ("USER ann@example.test", f"PASS {PASSWORD}", "AUTH PLAIN", "STLS"):
        with pytest.raises(poplib.error_proto, match="-ERR"):
            client._shortcmd(command)
    assert client.stat()[0] == 3
    client.quit()


def test_store_unavailable_at_login_is_a_temporary_error(pop, db_url):
    client = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=10)
    client.stls(context=pop.context)
    client.user("ann@example.test")
    with writes_blocked(db_url, tables=("folders", "messages", "mailbox_locks")):
        with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
            client.pass_(PASSWORD)
    client.quit()
    login_eventually(pop).quit()


def test_store_unavailable_at_quit_deletes_nothing_and_says_so(pop, db_url):
    client = stls(pop)
    client.dele(1)
    with writes_blocked(db_url, tables=("folders", "messages", "mailbox_locks")):
        with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
            client.quit()
    client.close()
    assert inbox_count(pop) == 3
    again = login_eventually(pop)   # the lock is released once the store is back
    assert again.stat()[0] == 3
    again.quit()


def test_curl_reads_a_message_over_pop3s(pop, certs):
    done = subprocess.run(["curl", "-sS", "--cacert", str(certs.ca), "-u",
                           f"ann@example.test:{PASSWORD}",
                           f"pop3s://127.0.0.1:{pop.port('pop3s')}/2"],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert b"Subject: message 2" in done.stdout


def test_fetchmail_downloads_and_deletes_over_stls(pop, certs, tmp_path):
    rc = tmp_path / "fetchmailrc"
    out = tmp_path / "mbox"
    rc.write_text(f"""set no syslog
poll mx.example.test via 127.0.0.1 service {pop.port("pop3")} protocol pop3 auth password
  user "ann@example.test" there with password "{PASSWORD}" is "ann" here
  sslproto tls1.2+ sslcommonname "mx.example.test" sslcertck sslcertfile "{certs.ca}" sslcertpath "{tmp_path}"
  mda "/bin/sh -c 'cat >> {out}'"
""")
    rc.chmod(0o600)
    done = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v",
                           "--pidfile", str(tmp_path / "fetchmail.pid")],   # not /var/run's
                          capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    assert all(f"Subject: message {n}" in text for n in (1, 2, 3))
    assert inbox_count(pop) == 0
