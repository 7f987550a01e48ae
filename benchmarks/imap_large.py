#!/usr/bin/env python3
"""FETCH and SEARCH on a large IMAP mailbox: time per command and the server's peak memory.

Usage: .venv/bin/python benchmarks/imap_large.py [--messages 50000] [--db URL]
Creates a fresh database (SQLite file by default), fills one INBOX with N small messages
(2 KB or --body-kb, every 100th with the subject "needle", a third unread, one every 10
minutes up to now), starts `mailstack serve` pinned to core 1, and times, with imaplib over
IMAPS: SELECT, UID FETCH 1:* (FLAGS), FETCH of the last 100 messages' BODY.PEEK[], UID SEARCH
UNSEEN, SEARCH SUBJECT needle, SEARCH BODY needle -- keys whose matches grow with the folder
-- and keys with the same 20 or 144 matches whatever its size: FLAGGED, LARGER, SINCE
yesterday, SUBJECT of 20 messages, and STATUS (MESSAGES UNSEEN) of another folder that holds
the same.  Peak memory is the server's VmHWM (Linux).
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select

from mailstack import config as configs
from mailstack.realm import hashing
from mailstack.store import directory, mailboxes, migrations
from mailstack.store.db import Database
from mailstack.message.structure import analyse
from mailstack.store.schema import (
    folders, message_headers, message_structure, message_text, messages,
)
from mailstack.store.search_facts import body_text, search_facts

BIN = Path(sys.executable).parent
FIXED = 20          # flagged, larger and "rare" messages, whatever the folder's size


def fill(config, count: int, body_kb: int = 2) -> None:
    db = Database(config.database_url(), reactor=None, threads=1)
    migrations.upgrade(db.engine)
    now = datetime.now(timezone.utc)
    db.run_sync(directory.ensure_domains, ["example.test"], now)
    hasher = hashing.PasswordHasher(hashing.make_context())
    account = db.run_sync(directory.add_account, "big@example.test", hasher.hash("pw-big"), now)

    def bulk(conn):
        inbox = mailboxes.require_folder(conn, account, "INBOX")
        rows, facts = [], {}
        every = max(1, count // FIXED)
        for n in range(1, count + 1):
            rare = n % every == every // 2 and n // every < FIXED   # FIXED of them, never a needle
            subject = "needle" if n % 100 == 0 else "rare one" if rare else f"message {n}"
            body = (f"From: s{n}@remote.test\r\nTo: big@example.test\r\nSubject: {subject}\r\n\r\n"
                    + "lorem ipsum dolor sit amet " * (37 * body_kb) + ("x" * 2048 if rare else "")
                    + "\r\n").encode()
            facts[n] = (*search_facts(body), body_text(body), analyse(body).to_json())
            flags = ("\\Seen" if n % 3 else "") + (" \\Flagged" if rare else "")
            rows.append(dict(folder_id=inbox.id, uid=n, guid=uuid.uuid4().hex,
                             internal_date=now - timedelta(minutes=10 * (count - n)),
                             size=len(body), flags=flags.strip(), body=body))
        conn.execute(insert(messages), rows)
        ids = conn.execute(select(messages.c.id, messages.c.uid)
                           .where(messages.c.folder_id == inbox.id)).all()
        conn.execute(insert(message_headers), [
            dict(message_id=i, search_headers=facts[uid][0], sent_at=facts[uid][1])
            for i, uid in ids])
        conn.execute(insert(message_text), [dict(message_id=i, body_text=facts[uid][2])
                                            for i, uid in ids])
        conn.execute(insert(message_structure), [dict(message_id=i, structure=facts[uid][3])
                                                 for i, uid in ids])
        conn.execute(folders.update().where(folders.c.id == inbox.id).values(uidnext=count + 1))
        # STATUS is asked of folders that are not selected: an archive with the same rows.
        archive = mailboxes.create_folder(conn, account, "Archive", now)
        conn.execute(insert(messages), [dict(r, folder_id=archive, guid=uuid.uuid4().hex)
                                        for r in rows])
    db.run_sync(bulk)
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load: statistics and the visibility map.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    db.stop()


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--db")
    parser.add_argument("--body-kb", type=int, default=2, help="size of each message")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    port = 19930
    url = args.db or f"sqlite:///{work}/big.db"
    (work / "m.toml").write_text(f'[database]\nurl = "{url}"\n[tls]\ngenerate_dev = true\n'
                                 f'[[listeners]]\nprotocol = "imap"\nport = {port}\ntls = "implicit"\n')
    config = configs.load(work / "m.toml")
    started = time.monotonic()
    fill(config, args.messages, args.body_kb)
    filled = time.monotonic() - started
    server = subprocess.Popen(["taskset", "-c", "1", str(BIN / "mailstack"), "--config",
                               str(work / "m.toml"), "serve", "--log-level", "warn"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(work / "certs" / "ca.pem"))
        client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=600)
        client.login("big@example.test", "pw-big")
        timings = {}

        def timed(name, fn):
            t = time.monotonic()
            typ, data = fn()
            timings[name] = round((time.monotonic() - t) * 1000, 1)
            assert typ == "OK", (name, data)
            return data
        timed("SELECT", lambda: client.select("INBOX"))
        timed("UID FETCH 1:* (FLAGS)", lambda: client.uid("FETCH", "1:*", "(FLAGS)"))
        first = max(1, args.messages - 99)
        timed("FETCH last 100 BODY.PEEK[]", lambda: client.fetch(f"{first}:*", "(BODY.PEEK[])"))
        found = timed("UID SEARCH UNSEEN", lambda: client.uid("SEARCH", None, "UNSEEN"))
        assert len(found[0].split()) == args.messages // 3
        found = timed("SEARCH SUBJECT needle", lambda: client.search(None, "SUBJECT", "needle"))
        assert len(found[0].split()) == args.messages // 100
        timed("SEARCH BODY needle", lambda: client.search(None, "BODY", "needle"))
        fixed = {"UID SEARCH FLAGGED": ("FLAGGED",),
                 "UID SEARCH LARGER": ("LARGER", str(2048 + 37 * 27 * args.body_kb)),
                 "UID SEARCH SINCE yesterday": ("SINCE", (datetime.now(timezone.utc) - timedelta(days=1))
                                                .strftime("%d-%b-%Y")),
                 "UID SEARCH SUBJECT rare": ("SUBJECT", '"rare one"')}
        for name, keys in fixed.items():
            found = timed(name, lambda: client.uid("SEARCH", None, *keys))
            matches = len(found[0].split())
            assert (144 <= matches <= 288) if "SINCE" in name else matches == FIXED, (name, matches)
        found = timed("STATUS (MESSAGES UNSEEN)", lambda: client.status("Archive", "(MESSAGES UNSEEN)"))
        assert f"MESSAGES {args.messages}".encode() in found[0], found
        client.logout()
        print(json.dumps({"messages": args.messages, "body_kb": args.body_kb, "fill_s": round(filled, 1),
                          "ms": timings, "server_peak_mb": round(peak_kib(server.pid) / 1024, 1)}))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
