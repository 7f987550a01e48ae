#!/usr/bin/env python3
"""Port 25 with a 20-rule Sieve script on every account, or none: messages per second and
the server's CPU time per message (issue 19: within 15% of the figure without Sieve).

Why a script of its own: the shared load generator (../shared/bench/loadgen.py) installs
no scripts.  Here the accounts of ``prepare.py`` get ``sieve_interpreter.SCRIPT`` (the
interpreter benchmark's 20 rules: header, address, :domain, :matches, anyof, exists) as
their active script, stored as ``mailstack sieve put`` stores it, and ten smtplib senders
(core 0) send COUNT 4 KB messages, one recipient each, to a fresh server (SQLite) pinned
to core 1, after a warm-up that has compiled every account's script (the steady state:
a script is compiled once per version and process).  No rule matches, so every rule
runs and the implicit keep files each message.
Printed: messages per second and the server's CPU milliseconds per message (from /proc:
steadier than throughput on a shared machine).

Usage: PYTHONPATH=. .venv/bin/python benchmarks/sieve_port25.py [on|off] [COUNT]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.signed_port25 import cpu_seconds, free_port, message, send
from benchmarks.sieve_interpreter import SCRIPT
from mailstack import clock as clocks
from mailstack.store import directory, sieve_scripts
from mailstack.store.db import Database

LIMITS = sieve_scripts.Limits(65536, 16)


def install(url: str) -> None:
    db = Database(url, reactor=None, threads=1)
    now = clocks.now(clocks.WallClock())
    for n in range(90):
        account = db.run_sync(directory.get_account, f"user{n}@example.test")
        db.run_sync(sieve_scripts.put_script, account.id, "filters", SCRIPT, now, LIMITS)
        db.run_sync(sieve_scripts.set_active, account.id, "filters", now)
    db.stop()


def main(mode: str, count: int) -> None:
    os.sched_setaffinity(0, {0})
    work = Path(tempfile.mkdtemp())
    smtp_port = free_port()
    url = f"sqlite:///{work}/b.db"
    (work / "mailstack.toml").write_text(
        f'[server]\nhostname = "mail.example.test"\n[database]\nurl = "{url}"\n'
        f'[tls]\ngenerate_dev = true\n[dns]\nnameservers = ["127.0.0.1:9"]\ntimeout = 1\n'
        f'[authentication]\nenabled = false\n'
        f'[[listeners]]\nprotocol = "smtp"\nport = {smtp_port}\ntls = "starttls"\n')
    subprocess.run([sys.executable, "benchmarks/prepare.py", str(work / "mailstack.toml")],
                   check=True, capture_output=True)
    if mode == "on":
        install(url)
    server = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "mailstack",
                               "--config", str(work / "mailstack.toml"), "serve",
                               "--log-level", "warn"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", smtp_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        # Warm: imports, pools, and every account's compiled script (recipients rotate
        # over 90 accounts; a script is compiled once per version and process, ~2 ms).
        send(smtp_port, message(0), 180)
        before, start = cpu_seconds(server.pid), time.perf_counter()
        send(smtp_port, message(0), count)
        seconds, cpu = time.perf_counter() - start, cpu_seconds(server.pid) - before
        print(f"sieve {mode}: {count / seconds:.0f} msg/s, "
              f"server CPU {cpu / count * 1e3:.2f} ms per 4 KB message")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "on", int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
