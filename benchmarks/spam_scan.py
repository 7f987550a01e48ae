#!/usr/bin/env python3
"""Port 25 with rspamd scanning, beside rspamd's own ``rspamc`` on the same messages
(issue 18: "mailstack adds at most 20% to the time rspamd needs, and the reactor never
waits for a scan").

One rspamd (the Debian package, ``count = 1`` normal worker, pinned to core 0; its own
configuration in a temporary directory, copied from tests/support/rspamd.py: loopback
only, no redis, RBL/fuzzy/phishing/ASN off; its DNS is ``benchmarks/dns_records.py``)
and COUNT messages of 4 KB of varied English text (``corpus``: a seeded generator; some
carry a URL) written to files, then, ROUNDS times, interleaved:

  a. ``rspamc -n 10`` scans the files (10 requests in parallel), with the envelope
     mailstack sends (IP, HELO, MAIL FROM, RCPT): rspamd's rate and its CPU per message;
  b. a fresh mailstack (SQLite, pinned to core 1, ``[spam] enabled``) receives the same
     messages on port 25 from 10 asyncio senders (one message per connection) on
     127.0.0.1, made untrusted (``trusted_networks = ["::1/128"]``, no PTR required) so
     every message is scanned;
  c. the same with ``[spam]`` off.

Printed per round and as medians: messages per second, mailstack's CPU per message (from
/proc/PID/stat), rspamd's CPU per message (its main process and workers), the most scans
in flight at once during (b) (``mailstack_spam_scans_in_flight_peak`` from the metrics
listener), and the two ratios the issue asks for:

  time: ((time_on - time_off) - time_rspamc) / time_rspamc
  CPU:  (mailstack CPU per message, on - off) / rspamd CPU per message (from a)

``[authentication]`` is off in (b) and (c) (it is not what is measured).  The machine may
be shared: run several rounds and read the spread.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/spam_scan.py [COUNT] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SENDERS = 10
SIZE = 4096
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
RSPAMC = shutil.which("rspamc") or "/usr/bin/rspamc"
CLIENT_IP, HELO, SENDER = "127.0.0.1", "mail.remote.test", "sender@remote.test"
# rspamd's overrides (as tests/support/rspamd.py; without the test-only soft reject rule).
LOCAL_D = {
    "worker-normal.inc": 'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n',
    "worker-controller.inc": "enabled = false;\n",
    "worker-proxy.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    "options.inc": 'dns {{ nameserver = ["127.0.0.1:{dns}"]; timeout = 0.5s; retransmits = 1; }}\n',
    "logging.inc": 'type = "file";\nlevel = "notice";\n',
    "actions.conf": "greylist = null;\n",
    "fuzzy_check.conf": "enabled = false;\n",
    "rbl.conf": "enabled = false;\n",
    "phishing.conf": "enabled = false;\n",
    "asn.conf": "enabled = false;\n",
}
WORDS = """the of and to in is that for it as was with be by on not he this are or his from at
which but have an they you were her she there been one all we their has would when if so no
will more can out up about who them some could what into time only other new than then two
may these any like its over such our also most made after first well year work back where
way just because much through people good very day still own find long down even new want
here meeting report budget project team office customer order invoice delivery schedule
week month quarter figures attached review please thanks regards question answer idea plan
garden weekend family dinner holiday train ticket booking hotel room price offer contract
draft version change update release server network account password support service
library school lesson homework football match result club member newsletter event music
concert photo picture camera trip mountain river coffee lunch kitchen recipe""".split()
NAMES = "Anna Bruno Carla David Elena Frank Greta Hugo Ines Jonas Karin Luca Maria Nils".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants (rspamd's main and workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total


# --- the messages --------------------------------------------------------------------

def corpus(count: int, seed: int = 18) -> list[tuple[str, bytes]]:
    """(recipient, message) pairs: 4 KB of varied text, CRLF, no line starting with '.'."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        rcpt = f"user{n % 90}@example.test"
        name = rng.choice(NAMES)
        head = (f"From: {name} <{name.lower()}@remote.test>\r\nTo: <{rcpt}>\r\n"
                f"Subject: {' '.join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))}\r\n"
                f"Date: Thu, 03 Dec 2026 {n % 24:02d}:{n % 60:02d}:00 +0000\r\n"
                f"Message-ID: <bench-{n}-{rng.getrandbits(32):08x}@remote.test>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
        lines = [f"Hello {rcpt.split('@')[0]},", ""]
        while len(head) + sum(len(x) + 2 for x in lines) < SIZE - 200:
            lines.extend(_paragraph(rng))
        if n % 4 == 0:
            lines.append(f"See https://www.example.org/{rng.choice(WORDS)}/{n} for more.")
        lines.extend(["", "Best regards,", name])
        body = "\r\n".join(lines) + "\r\n"
        out.append((rcpt, (head + body).encode()))
    return out


def _paragraph(rng) -> list[str]:
    words = []
    for _ in range(rng.randint(2, 5)):
        sentence = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
        words.append(" ".join(sentence).capitalize() + rng.choice(".?!."))
    text, lines, line = " ".join(words), [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > 72:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line, ""]


# --- rspamd --------------------------------------------------------------------------

def start_rspamd(work: Path, dns_port: int):
    port = free_port()
    local = work / "rspamd"
    for sub in ("local.d", "db", "run", "log"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    for name, text in LOCAL_D.items():
        (local / "local.d" / name).write_text(text.format(port=port, dns=dns_port))
    process = subprocess.Popen(
        ["taskset", "-c", "0", RSPAMD, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
         "--var", f"LOCAL_CONFDIR={local}", "--var", f"DBDIR={local / 'db'}",
         "--var", f"RUNDIR={local / 'run'}", "--var", f"LOGDIR={local / 'log'}"],
        stdout=open(local / "stdout.log", "wb"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as a:
                if a.read().strip() == b"pong":
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("rspamd did not start: " + (local / "stdout.log").read_text()[-2000:])


def with_rspamc(files: Path, rspamd, port: int, count: int) -> dict:
    """(a): rspamc, 10 requests in parallel, the envelope mailstack would send."""
    before, start = tree_cpu(rspamd.pid), time.perf_counter()
    done = subprocess.run(
        [RSPAMC, "-h", f"127.0.0.1:{port}", "-n", str(SENDERS), "-t", "60", "-i", CLIENT_IP,
         "--helo", HELO, "-F", SENDER, "-r", "user0@example.test", str(files)],
        capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    scanned = done.stdout.count("Action:")
    if scanned != count:
        raise RuntimeError(f"rspamc scanned {scanned} of {count}: {done.stderr[-500:]}")
    return {"seconds": seconds, "rspamd_cpu": (tree_cpu(rspamd.pid) - before) / count}


# --- mailstack -----------------------------------------------------------------------

def config(work: Path, db: Path, smtp: int, metrics: int, dns: int, spam: str) -> Path:
    path = work / "mailstack.toml"
    path.write_text(
        f'[server]\nhostname = "mail.example.test"\n[database]\nurl = "sqlite:///{db}"\n'
        f'[tls]\ngenerate_dev = true\n[dns]\nnameservers = ["127.0.0.1:{dns}"]\n'
        f'[authentication]\nenabled = false\n'
        f'[antispam]\ntrusted_networks = ["::1/128"]\nrequire_ptr = false\n{spam}'
        f'[[listeners]]\nprotocol = "smtp"\nport = {smtp}\ntls = "starttls"\n'
        f'[[listeners]]\nprotocol = "metrics"\nport = {metrics}\n')
    return path


def with_mailstack(work: Path, template: Path, dns: int, rspamd, rspamd_port: int | None,
                   messages) -> dict:
    """(b) with ``rspamd_port``, (c) without: a fresh server on a copy of the database."""
    db = work / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, db)
    smtp, metrics = free_port(), free_port()
    spam = (f'[spam]\nenabled = true\nurl = "http://127.0.0.1:{rspamd_port}"\n'
            if rspamd_port else "")
    path = config(work, db, smtp, metrics, dns, spam)
    server = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "mailstack",
                               "--config", str(path), "serve", "--log-level", "warn"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_for(smtp)
        asyncio.run(send_all(smtp, messages[:50]))              # warm: imports, pools
        before, rspamd_before = cpu_seconds(server.pid), tree_cpu(rspamd.pid)
        start = time.perf_counter()
        refused = asyncio.run(send_all(smtp, messages))
        seconds = time.perf_counter() - start
        result = {"seconds": seconds, "refused": refused,
                  "cpu": (cpu_seconds(server.pid) - before) / len(messages),
                  "rspamd_cpu": (tree_cpu(rspamd.pid) - rspamd_before) / len(messages)}
        if rspamd_port:
            result.update(scrape(metrics))
        return result
    finally:
        server.terminate()
        server.wait()


def wait_for(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("mailstack did not start")


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {"peak": 0.0, "scans": {}}
    for line in text.splitlines():
        if line.startswith("mailstack_spam_scans_in_flight_peak "):
            found["peak"] = float(line.split()[1])
        elif line.startswith("mailstack_spam_scans_total{"):
            label = line.split('result="', 1)[1].split('"', 1)[0]
            found["scans"][label] = float(line.rsplit(" ", 1)[1])
    return found


async def send_all(port: int, messages) -> int:
    """The messages from SENDERS connections at a time, one per connection; the count
    of those not answered 250 after DATA."""
    todo, refused = iter(messages), [0]

    async def sender():
        for rcpt, data in todo:
            if not await send_one(port, rcpt, data):
                refused[0] += 1
    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    return refused[0]


async def send_one(port: int, rcpt: str, data: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reply(reader)
        for command in (f"EHLO {HELO}", f"MAIL FROM:<{SENDER}>", f"RCPT TO:<{rcpt}>", "DATA"):
            writer.write(command.encode() + b"\r\n")
            code = await reply(reader)
        if code != b"354":
            return False
        writer.write(data + b".\r\n")
        accepted = await reply(reader) == b"250"
        writer.write(b"QUIT\r\n")
        await reply(reader)
        return accepted
    finally:
        writer.close()


async def reply(reader) -> bytes:
    while True:
        line = await reader.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3]


# --- the run -------------------------------------------------------------------------

def main(count: int, rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="spam-bench-"))
    messages = corpus(count)
    files = work / "messages"
    files.mkdir()
    for n, (_, data) in enumerate(messages):
        (files / f"{n:05d}.eml").write_bytes(data)
    dns_port = free_port()
    dns = subprocess.Popen([sys.executable, "benchmarks/dns_records.py", str(dns_port)])
    rspamd, port = start_rspamd(work, dns_port)
    template = work / "template.db"
    subprocess.run([sys.executable, "benchmarks/prepare.py",
                    str(config(work, template, 1, 2, dns_port, ""))],
                   check=True, capture_output=True)
    rows = []
    try:
        with_rspamc(files, rspamd, port, count)                 # warm rspamd
        for n in range(rounds):
            a = with_rspamc(files, rspamd, port, count)
            b = with_mailstack(work, template, dns_port, rspamd, port, messages)
            c = with_mailstack(work, template, dns_port, rspamd, None, messages)
            rows.append(derived(a, b, c, count))
            print(json.dumps({"round": n + 1, **rows[-1]}), flush=True)
    finally:
        rspamd.terminate()
        dns.terminate()
        rspamd.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("medians:", json.dumps({k: round(statistics.median(r[k] for r in rows), 3)
                                  for k in rows[0] if isinstance(rows[0][k], (int, float))}))


def derived(a: dict, b: dict, c: dict, count: int) -> dict:
    added_cpu = b["cpu"] - c["cpu"]
    return {
        "rspamc_msg_s": round(count / a["seconds"], 1),
        "on_msg_s": round(count / b["seconds"], 1),
        "off_msg_s": round(count / c["seconds"], 1),
        "rspamd_ms_rspamc": round(a["rspamd_cpu"] * 1e3, 3),
        "rspamd_ms_on": round(b["rspamd_cpu"] * 1e3, 3),
        "mailstack_ms_on": round(b["cpu"] * 1e3, 3),
        "mailstack_ms_off": round(c["cpu"] * 1e3, 3),
        "added_ms": round(added_cpu * 1e3, 3),
        "time_ratio": round(((b["seconds"] - c["seconds"]) - a["seconds"]) / a["seconds"], 3),
        "cpu_ratio": round(added_cpu / a["rspamd_cpu"], 3),
        "peak_in_flight": b.get("peak", 0.0),
        "refused_on": b["refused"], "refused_off": c["refused"],
        "scans": b.get("scans", {}),
    }


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 3)
