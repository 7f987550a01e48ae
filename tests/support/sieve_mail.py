"""What the Sieve delivery tests share: a server with port 25 and IMAP, scripts installed
with ``mailstack sieve put --activate`` (the operator's command, checked as ManageSieve's
PUTSCRIPT), mail sent with smtplib and read back with imaplib, and the outbound queue
read from the store (what ``mailstack queue`` lists, with the bodies).
"""

from __future__ import annotations

import email
import imaplib
import smtplib

from sqlalchemy import select

from mailstack.store import queue
from mailstack.store.schema import outbound_messages, outbound_recipients
from tests.support.cli import Cli

PASSWORD = "sieve delivery pw"
ANN, BOB = "ann@example.test", "bob@example.test"
REMOTE = "carol@remote.test"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"},
             {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]


def start(make_server, db_url, tmp_path, **overrides):
    """A server with ANN and BOB, and ``server.desk``: the ``mailstack`` command."""
    server = make_server(listeners=LISTENERS, **overrides)
    server.ids = {address: server.add_account(address, PASSWORD) for address in (ANN, BOB)}
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    server.desk = Cli(config, in_process=True)
    return server


def install(server, address: str, script: str, name: str = "filters") -> None:
    server.desk.ok("sieve", "put", address, name, "-", "--activate", stdin=script)


def message(subject="Hello", sender=REMOTE, to=ANN, extra="", body="Hi there.\r\n",
            message_id="<m1@remote.test>") -> bytes:
    head = (f"From: Carol <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: {message_id}\r\n{extra}")
    return (head + "\r\n" + body).encode()


def send(server, data: bytes, mail_from=REMOTE, rcpts=(ANN,)) -> tuple[int, str]:
    """(code, text) of the reply to the end of DATA on port 25."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as client:
        client.ehlo("mail.remote.test")
        assert client.mail(mail_from)[0] == 250
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        code, text = client.data(data)
        return code, text.decode()


def submit(server, data: bytes, login=BOB, rcpts=(ANN,)) -> dict:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=60) as client:
        client.starttls(context=server.context)
        client.login(login, PASSWORD)
        return client.sendmail(login, list(rcpts), data)


def mailbox(server, address, folder="INBOX") -> list[tuple[email.message.Message, set]]:
    """(message, flags) of each message in ``folder``, as the customer's IMAP client sees
    them ([] when the folder does not exist)."""
    with imaplib.IMAP4("127.0.0.1", server.port("imap")) as imap:
        imap.starttls(ssl_context=server.context)
        imap.login(address, PASSWORD)
        status, data = imap.select(f'"{folder}"', readonly=True)
        if status != "OK":
            return []
        found = []
        for n in range(1, int(data[0]) + 1):
            _, parts = imap.fetch(str(n), "(FLAGS BODY.PEEK[])")
            flags = imaplib.ParseFlags(parts[0][0])
            found.append((email.message_from_bytes(parts[0][1]),
                          {f.decode() for f in flags}))
        return found


def folders(server, address) -> set[str]:
    with imaplib.IMAP4("127.0.0.1", server.port("imap")) as imap:
        imap.starttls(ssl_context=server.context)
        imap.login(address, PASSWORD)
        _, data = imap.list()
        return {line.decode().rsplit(' "/" ', 1)[1].strip('"') for line in data}


def queued(server) -> list[tuple[str, list[str], bytes]]:
    """(envelope sender, recipients, body) of every message in the outbound queue."""
    def read(conn):
        found = []
        for (message_id,) in conn.execute(select(outbound_messages.c.id)
                                          .order_by(outbound_messages.c.id)):
            entry = queue.message(conn, message_id)
            rcpts = [r for (r,) in conn.execute(
                select(outbound_recipients.c.recipient)
                .where(outbound_recipients.c.message_id == message_id))]
            found.append((entry.sender, rcpts, entry.body))
        return found
    return server.db(read)
