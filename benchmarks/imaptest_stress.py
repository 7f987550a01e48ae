#!/usr/bin/env python3
"""Dovecot's imaptest in stress mode against mailstack and against Dovecot, in one run.

Usage: .venv/bin/python benchmarks/imaptest_stress.py [--secs 60] [--clients 10]
           [--db URL] [--log-level info] [--only mailstack|dovecot] [--imaptest PATH]
           [--json FILE] [--keep] [--no-pin] [--qresync]
Dovecot needs root (its master runs with -F, its mail processes as `nobody`).  --keep leaves
the work directory: each server's log, imaptest's output (NAME.out, NAME.err: every error
line in full) and its per-second figures (NAME.tsv).

Both servers get the same account (bench@example.test, password pw-bench) and the same INBOX:
30 varied messages (plain text, no MIME headers at all, UTF-8 quoted-printable, HTML
alternative, a PDF attachment, a forwarded message/rfc822, inline images, a 40 KB newsletter,
a reply with address groups), appended over IMAP before the run.  imaptest then runs
`clients` concurrent sessions on that one mailbox for `secs` seconds with its default mix
(LOGIN, LIST, STATUS, SELECT, FETCH, STORE, EXPUNGE, APPEND from the same messages as an
mbox, LOGOUT) and checks every reply against what it has seen; whatever it finds wrong it
logs as an "Error:" line.  Printed for each server: commands/s over the run, each command's
count and mean latency (ms, the figures imaptest prints as "ms/cmd avg", averaged over the
whole run instead of its last ten seconds), and the error lines, grouped.

Dovecot is Debian's dovecot-imapd with a minimal config of its own in a temporary directory
(base_dir, passwd-file with SHA512-CRYPT as in ../shared/bench/setup-anchors.sh, Maildir,
no SSL, Debian's defaults otherwise).  mailstack is `python -m mailstack serve` of this
checkout on a fresh SQLite file (or --db), set up with its own CLI, argon2 as configured by
default.  Each server is pinned to core 1 and imaptest to core 0 (../shared/PERFORMANCE.md);
Dovecot runs first, then mailstack; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
USER, PASSWORD = "bench@example.test", "pw-bench"
INITIAL = 30           # imaptest keeps the mailbox near 30 messages (MESSAGE_COUNT_THRESHOLD)


# --- the messages -------------------------------------------------------------------------

def _message(headers: str, body: str) -> bytes:
    text = (headers.strip("\n") + "\n\n" + body.lstrip("\n")).replace("\n", "\r\n")
    # The one 8-bit Latin-1 part is written as such; everything else is ASCII or UTF-8.
    return text.encode("latin-1" if "charset=iso-8859-1" in text else "utf-8")


def _base64_lines(n: int, seed: str) -> str:
    raw = (seed.encode() * (n * 57 // len(seed) + 1))[: n * 57]
    return "\n".join(base64.b64encode(raw[i:i + 57]).decode() for i in range(0, len(raw), 57))


def messages() -> list[bytes]:
    """Ten kinds of message a mailbox really holds; every MIME shape imaptest will FETCH."""
    date = "Date: Tue, 24 Nov 2026 {:02d}:15:00 +0100"
    common = "To: Bench User <bench@example.test>\nMessage-ID: <{n}.bench@remote.test>\n" + date
    kinds = [
        # 1. plain text, declared
        (common + "\nFrom: Ann Other <ann@remote.test>\nSubject: Minutes of Monday\n"
         "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n",
         "Hello,\n\nthe minutes are below.\n\n" + "Item: agreed, see the wiki.\n" * 30),
        # 2. no MIME headers at all (RFC 2045 defaults: text/plain; charset=us-ascii)
        (common + "\nFrom: old-mailer@remote.test\nSubject: no mime here\n",
         "A message from a mailer that predates MIME.\n" * 12),
        # 3. UTF-8, quoted-printable, encoded-word subject
        (common + "\nFrom: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@remote.test>\n"
         "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\nMIME-Version: 1.0\n"
         "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n",
         "Sch=C3=B6ne Gr=C3=BC=C3=9Fe, bis Donnerstag.=\n Und danke f=C3=BCr alles.\n" * 10),
        # 4. multipart/alternative, folded boundary parameter
        (common + "\nFrom: news@shop.test\nSubject: Your order has shipped\nMIME-Version: 1.0\n"
         'Content-Type: multipart/alternative;\n boundary="=_alt_4"\n',
         "--=_alt_4\nContent-Type: text/plain; charset=us-ascii\n\nYour order 4711 has shipped.\n"
         '--=_alt_4\nContent-Type: text/html; charset=us-ascii\n\n<html><body><p>Your order '
         "<b>4711</b> has shipped.</p></body></html>\n--=_alt_4--\n"),
        # 5. multipart/mixed with a PDF attachment
        (common + "\nFrom: Bob <bob@remote.test>\nSubject: the report\nMIME-Version: 1.0\n"
         'Content-Type: multipart/mixed; boundary="XX5"\n',
         "This is a multi-part message in MIME format.\n--XX5\n"
         "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n"
         "Hi, the report is attached.\n--XX5\nContent-Type: application/pdf; name=\"report.pdf\"\n"
         "Content-Transfer-Encoding: base64\n"
         'Content-Disposition: attachment; filename="report.pdf"\n\n'
         + _base64_lines(120, "%PDF-1.4 report ") + "\n--XX5--\n"),
        # 6. a forwarded message (message/rfc822 holding a multipart/alternative)
        (common + "\nFrom: Carol <carol@remote.test>\nSubject: Fwd: Your order has shipped\n"
         'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="fw6"\n',
         "--fw6\nContent-Type: text/plain\n\nSee below.\n--fw6\nContent-Type: message/rfc822\n"
         'Content-Disposition: attachment; filename="fwd.eml"\n\n'
         "From: news@shop.test\nTo: carol@remote.test\nSubject: Your order has shipped\n"
         "Date: Mon, 23 Nov 2026 08:00:00 +0000\nMIME-Version: 1.0\n"
         'Content-Type: multipart/alternative; boundary="in6"\n\n'
         "--in6\nContent-Type: text/plain\n\nShipped.\n--in6\nContent-Type: text/html\n\n"
         "<p>Shipped.</p>\n--in6--\n\n--fw6--\n"),
        # 7. HTML with inline images (alternative of text and related)
        (common + "\nFrom: promo@shop.test\nSubject: Black Friday\nMIME-Version: 1.0\n"
         'Content-Type: multipart/alternative; boundary="a7"\n',
         "--a7\nContent-Type: text/plain\n\nDeals inside.\n--a7\n"
         'Content-Type: multipart/related; boundary="r7"; type="text/html"\n\n'
         '--r7\nContent-Type: text/html\n\n<img src="cid:logo@shop"> Deals inside.\n'
         "--r7\nContent-Type: image/png\nContent-ID: <logo@shop>\n"
         "Content-Transfer-Encoding: base64\n\n"
         + _base64_lines(40, "\x89PNG logo ") + "\n--r7--\n--a7--\n"),
        # 8. a 40 KB newsletter
        (common + "\nFrom: Weekly <weekly@list.test>\nSubject: This week, long edition\n"
         "List-Id: <weekly.list.test>\nMIME-Version: 1.0\n"
         "Content-Type: text/plain; charset=utf-8\n",
         "".join(f"{i:04d} Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\n"
                 for i in range(560))),
        # 9. a reply with an address group, Cc, Reply-To and threading headers
        (common + "\nFrom: Dave <dave@remote.test>\nCc: team: ann@remote.test, bob@remote.test;\n"
         "Reply-To: list@remote.test\nSubject: Re: Minutes of Monday\n"
         "In-Reply-To: <1.bench@remote.test>\nReferences: <1.bench@remote.test>\n",
         "> the minutes are below.\n\nThanks, looks right.\n"),
        # 10. 8bit Latin-1 text, a calendar invitation attached
        (common + "\nFrom: calendar@remote.test\nSubject: Invitation: review\nMIME-Version: 1.0\n"
         'Content-Type: multipart/mixed; boundary="c10"\n',
         "--c10\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
         "Besprechung um zehn, Raum M\u00f6we.\n"
         "--c10\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\n\n"
         "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:review\nEND:VEVENT\nEND:VCALENDAR\n"
         "--c10--\n"),
    ]
    return [_message(headers.format(n + 8, n=n), body)
            for n, (headers, body) in enumerate(kinds, start=1)]


def write_mbox(path: Path, items: list[bytes]) -> None:
    """imaptest appends everything between two From_ lines as it is (no blank line, no >From)."""
    with path.open("wb") as f:
        for m in items:
            body = m.replace(b"\r\n", b"\n")
            assert not re.search(rb"(?m)^From ", body)
            f.write(b"From bench@remote.test  Tue Nov 24 10:15:00 2026\n" + body)


def fill(port: int, items: list[bytes]) -> None:
    client = imaplib.IMAP4(HOST, port, timeout=30)
    client.login(USER, PASSWORD)
    for i in range(INITIAL):
        typ, data = client.append("INBOX", None, None, items[i % len(items)])
        assert typ == "OK", data
    client.logout()


# --- the servers --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(150):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} is not listening on {HOST}:{port}")


PIN = True             # --no-pin: let the scheduler place the servers and imaptest
QRESYNC = False        # --qresync: imaptest's sessions ENABLE QRESYNC and check VANISHED


def pinned(core: int) -> list[str]:
    """Server on core 1, imaptest on core 0, as ../shared/PERFORMANCE.md measures."""
    if PIN and (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


DOVECOT_CONF = """\
# Minimal Dovecot for imaptest_stress.py: Debian's defaults except what is listed.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot-info.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%d/%n/Maildir
mail_uid = nobody
mail_gid = nogroup
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%d/%n
}}
namespace inbox {{
  inbox = yes
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def start_dovecot(work: Path) -> tuple[subprocess.Popen, int]:
    if os.geteuid() != 0:
        sys.exit("Dovecot's part needs root (or --only mailstack)")
    d = work / "dovecot"
    (d / "mail").mkdir(parents=True)
    (d / "state").mkdir()
    shutil.chown(d / "mail", "nobody", "nogroup")
    os.chmod(work, 0o755)
    os.chmod(d, 0o755)
    hashed = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
                            check=True, capture_output=True, text=True).stdout.strip()
    (d / "users").write_text(f"{USER}:{hashed}\n")
    shutil.chown(d / "users", "root", "dovecot")
    os.chmod(d / "users", 0o640)
    port = free_port()
    (d / "dovecot.conf").write_text(DOVECOT_CONF.format(d=d, host=HOST, port=port))
    proc = subprocess.Popen(pinned(1) + ["dovecot", "-F", "-c", str(d / "dovecot.conf")])
    wait_for(port, proc, "dovecot")
    return proc, port


MAILSTACK_CONF = """\
[server]
hostname = "mail.example.test"
state_dir = "state"
[database]
url = "{url}"
[tls]
generate_dev = true
[domains]
hosted = ["example.test"]
[dns]
nameservers = ["127.0.0.1:9"]      # nothing leaves the machine (IMAP makes no lookups anyway)
[[listeners]]
name = "imap"
protocol = "imap"
address = "{host}"
port = {port}
tls = "none"
"""


def start_mailstack(work: Path, db_url: str | None, log_level: str) -> tuple[subprocess.Popen, int]:
    d = work / "mailstack"
    d.mkdir()
    port = free_port()
    config = d / "mailstack.toml"
    config.write_text(MAILSTACK_CONF.format(url=db_url or f"sqlite:///{d}/mailstack.db",
                                            host=HOST, port=port))
    cli = [sys.executable, "-m", "mailstack", "--config", str(config)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for command, stdin in ((["db", "upgrade"], None), (["domain", "add", "example.test"], None),
                           (["account", "add", USER, "--password-stdin"], PASSWORD)):
        subprocess.run(cli + command, input=stdin, text=True, check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL)
    log = (d / "server.log").open("wb")
    proc = subprocess.Popen(pinned(1) + cli + ["serve", "--log-level", log_level], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for(port, proc, "mailstack")
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- imaptest and its figures -------------------------------------------------------------

def locate_imaptest(given: str | None) -> Path:
    for candidate in (given, os.environ.get("MAILSTACK_IMAPTEST"),
                      Path.home() / ".cache" / "imaptest" / "src" / "imaptest"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    sys.exit("imaptest not found: bash ../shared/tools/imaptest/build.sh, or --imaptest PATH")


def stress(imaptest: Path, port: int, mbox: Path, results: Path, secs: int, clients: int) -> dict:
    command = pinned(0) + [str(imaptest), f"host={HOST}", f"port={port}", f"user={USER}",
                           f"pass={PASSWORD}", f"mbox={mbox}", f"clients={clients}",
                           f"secs={secs}", f"output={results}"] + (["qresync"] if QRESYNC else [])
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace",
                          timeout=secs + 120)
    results.with_suffix(".out").write_text(done.stdout)
    results.with_suffix(".err").write_text(done.stderr)
    figures = per_command(results.read_text(), secs)
    errors = [l for l in done.stderr.splitlines() if re.match(r"(Error|Panic|Fatal): ", l)]
    figures.update(exit_status=done.returncode, error_lines=len(errors),
                   error_kinds=dict(Counter(error_kind(l) for l in errors).most_common()),
                   error_examples=first_of_each_kind(errors))
    return figures


def per_command(text: str, secs: int) -> dict:
    """imaptest's output= file: a header, then per second count, timed count, total ms."""
    lines = text.splitlines()
    names = [c[:-len(" count")] for c in lines[0].split("\t") if c.endswith(" count")]
    rows = [[int(v) for v in line.split("\t")] for line in lines[1:] if line.strip()][:secs]
    if rows and len(rows[0]) != 3 * len(names):
        # imaptest writes the header before it turns COPY off for want of copybox=.
        names.remove("COPY")
    assert not rows or len(rows[0]) == 3 * len(names), (names, rows[0])
    counts = {n: sum(r[3 * i] for r in rows) for i, n in enumerate(names)}
    timed = {n: sum(r[3 * i + 1] for r in rows) for i, n in enumerate(names)}
    msecs = {n: sum(r[3 * i + 2] for r in rows) for i, n in enumerate(names)}
    seconds = len(rows) or 1
    return {"seconds": seconds, "commands": sum(counts.values()),
            "commands_per_s": round(sum(counts.values()) / seconds, 1), "count": counts,
            "ms": {n: round(msecs[n] / timed[n], 1) if timed[n] else None for n in names}}


def error_kind(line: str) -> str:
    """What an error line says, without who said it, about which message, and the values."""
    text = re.sub(r"^(Error|Panic|Fatal): (\S+\[\d+\]: )?", "", line)
    text = re.sub(r"^(uid=\d+ )?(\S+@\S+: )?", "", text)           # the message (Message-ID)
    text = re.split(r" '|: \* \d| \(\d+ |: \d+\.\d+ ", text)[0]     # the values quoted after it
    text = re.sub(r"\b\d+\b", "N", re.sub(r"(\$[A-Za-z]+)\d+", r"\1N", text))
    return text.rstrip(": ")[:100]


def first_of_each_kind(errors: list[str]) -> dict:
    seen = {}
    for line in errors:
        seen.setdefault(error_kind(line), line[:240])
    return seen


def report(name: str, f: dict) -> None:
    print(f"\n== {name}: {f['commands_per_s']} commands/s ({f['commands']} in {f['seconds']} s), "
          f"{f['error_lines']} error lines, imaptest exit {f['exit_status']}")
    print("   " + " ".join(f"{n:>9}" for n in f["count"]))
    print("   " + " ".join(f"{c:>9}" for c in f["count"].values()) + "  count")
    print("   " + " ".join(f"{'-' if m is None else m:>9}" for m in f["ms"].values()) + "  ms/cmd")
    for kind, n in f["error_kinds"].items():
        print(f"   {n:6d} x {kind}\n            e.g. {f['error_examples'][kind]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secs", type=int, default=60)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--db", help="mailstack database URL (default: a fresh SQLite file)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"],
                        help="mailstack's (default: its default; Dovecot logs at its own)")
    parser.add_argument("--only", choices=["mailstack", "dovecot"])
    parser.add_argument("--imaptest", help="imaptest binary (default: $MAILSTACK_IMAPTEST, "
                                            "~/.cache/imaptest/src/imaptest)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores 1 and 0")
    parser.add_argument("--qresync", action="store_true",
                        help="imaptest's qresync mode: SELECT with QRESYNC, VANISHED checked")
    args = parser.parse_args()
    global PIN, QRESYNC
    PIN, QRESYNC = not args.no_pin, args.qresync
    imaptest = locate_imaptest(args.imaptest)
    work = Path(tempfile.mkdtemp(prefix="imaptest-stress-"))
    items = messages()
    write_mbox(work / "messages.mbox", items)
    out = {"secs": args.secs, "clients": args.clients, "cpu": cpu_name(), "pinned": PIN,
           "servers": {}}
    try:
        for name, start in (("dovecot", lambda: start_dovecot(work)),
                            ("mailstack", lambda: start_mailstack(work, args.db, args.log_level))):
            if args.only and args.only != name:
                continue
            proc, port = start()
            try:
                fill(port, items)
                figures = stress(imaptest, port, work / "messages.mbox", work / f"{name}.tsv",
                                 args.secs, args.clients)
            finally:
                stop(proc)
            out["servers"][name] = figures
            report(name, figures)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    servers = out["servers"]
    if len(servers) == 2:
        ours, theirs = servers["mailstack"], servers["dovecot"]
        ratio = ours["commands_per_s"] / max(theirs["commands_per_s"], 0.1)
        met = ours["error_lines"] == 0 and ratio >= 1
        print(f"\nmailstack/dovecot commands/s: {ratio:.2f}; mailstack error lines: "
              f"{ours['error_lines']}; issue 12's bar (no error line, >= Dovecot): "
              f"{'met' if met else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    return f"x{os.cpu_count()}"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
