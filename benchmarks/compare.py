#!/usr/bin/env python3
"""The report of a ``benchmarks/compare.sh`` run: ``compare.py RESULTS.jsonl``.

One table per backend: for each path, the anchor's median (range) over the rounds,
mailstack's, and the ratio -- the median of the per-round ratios, each round's two figures
having been measured minutes apart -- with the target issue 16 set.  The header names the
date, the machine and the commit, so that a figure can be traced to what produced it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

# scenario -> (what, unit, the anchor's metric, mailstack's metric, target ratio)
# The anchors are timed until the message is in its Maildir (e2e); mailstack answers 250
# only once the message is committed to the mailbox, so its accepted rate is the same thing.
PATHS = {
    "smtp4k": ("port 25, 4 KB, 10 senders, 1 msg/conn", "msg/s", "e2e_msgs_s", "msgs_s", 3.0),
    "smtp64k": ("port 25, 64 KB, 10 senders, 1 msg/conn", "msg/s", "e2e_msgs_s", "msgs_s", 2.5),
    "submission": ("submission 587, STARTTLS + AUTH PLAIN, 4 KB, 1 msg/conn", "msg/s",
                   "e2e_msgs_s", "msgs_s", 2.0),
    "pop3c1": ("POP3 RETR 200 × 10 KB, 1 client", "MB/s", "MB_s", "MB_s", 1.25),
    "pop3c10": ("POP3 RETR 200 × 10 KB, 10 clients", "MB/s", "MB_s", "MB_s", 1.5),
    "logins": ("POP3 logins (USER/PASS/STAT/QUIT), 10 clients", "logins/s", "sessions_s",
               "sessions_s", 4.0),
    "imapc1": ("IMAP UID FETCH 1:* 200 × 10 KB, 1 client", "MB/s", "MB_s", "MB_s", 1.5),
    "imapc10": ("IMAP UID FETCH 1:* 200 × 10 KB, 10 clients", "MB/s", "MB_s", "MB_s", 1.5),
    # Issue 17: mailstack verifies SPF, DKIM and DMARC (the anchors do not), yet stays 2x.
    "smtp4ksigned": ("port 25, 4 KB DKIM-signed, 10 senders, 1 msg/conn", "msg/s",
                     "e2e_msgs_s", "msgs_s", 2.0),
}
MEMORY_TARGET_MB = 60


def fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def spread(values: list[float]) -> str:
    if not values:
        return "–"
    middle = fmt(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return middle
    return f"{middle} ({fmt(min(values))}–{fmt(max(values))})"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(int(line.split()[1]) for line in open("/proc/meminfo")
                      if line.startswith("MemTotal")) / 2**20
    except (OSError, StopIteration):
        memory = 0
    return (f"{os.cpu_count()} × {model}, {memory:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def output(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def report(path: str) -> str:
    runs = [json.loads(line) for line in open(path) if line.startswith("{")]
    # (backend, scenario, side) -> {round: run}
    table: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for run in runs:
        table[run["backend"], run["scenario"], run["side"]][run["round"]] = run
    lines = [header(path), ""]
    for backend in dict.fromkeys(r["backend"] for r in runs):
        lines += [f"### mailstack on {backend}", "",
                  "| path | Postfix+Dovecot | mailstack | ratio (range) | target | errors |",
                  "|---|---|---|---|---|---|"]
        for scenario, (what, unit, anchor_key, our_key, target) in PATHS.items():
            anchor = table.get((backend, scenario, "postfix+dovecot"), {})
            ours = table.get((backend, scenario, "mailstack"), {})
            if not anchor and not ours:
                continue
            ratios = [ours[r][our_key] / anchor[r][anchor_key] for r in sorted(ours)
                      if r in anchor and anchor[r].get(anchor_key) and ours[r].get(our_key)]
            errors = sum(run.get("errors", 0) or 0 for run in [*anchor.values(), *ours.values()])
            ratio = (f"**{statistics.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f})"
                     if ratios else "–")
            lines.append(f"| {what} | {spread([r.get(anchor_key) for r in anchor.values() if r.get(anchor_key)])} {unit} "
                         f"| {spread([r.get(our_key) for r in ours.values() if r.get(our_key)])} {unit} "
                         f"| {ratio} | ≥ {target}× | {errors} |")
        anchor = table.get((backend, "smtp4k", "postfix+dovecot"), {})
        ours = table.get((backend, "smtp4k", "mailstack"), {})
        if anchor or ours:
            def pss(side):
                return spread([r["peak_pss_mb"] for r in side.values() if r.get("peak_pss_mb")])
            procs = [r.get("peak_procs") for r in anchor.values() if r.get("peak_procs")]
            lines.append(f"| peak memory under the port 25 load (PSS, whole process tree) "
                         f"| {pss(anchor)} MB, ~{fmt(statistics.median(procs)) if procs else '?'} processes "
                         f"| {pss(ours)} MB, 1 process | | ≤ {MEMORY_TARGET_MB} MB | |")
        lines.append("")
    return "\n".join(lines)


def header(path: str) -> str:
    """When, on what, and which code: the run's date, the machine, the commit, the anchors."""
    stamp = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    commit = output("git", "rev-parse", "--short", "HEAD")
    if output("git", "status", "--porcelain", "--untracked-files=no", "mailstack"):
        commit += " with uncommitted changes to mailstack/"
    dovecot = (output("dovecot", "--version") or "?").split()[0]
    return (f"Run of {stamp:%Y-%m-%d %H:%M} UTC on {machine()}; mailstack {commit}; "
            f"Postfix {output('postconf', '-h', 'mail_version') or '?'} + Dovecot {dovecot}. "
            "Servers pinned to core 1, the load generator to core 0; ratio = median of the "
            "rounds' ratios (each round runs the anchor, then mailstack).")


if __name__ == "__main__":
    print(report(sys.argv[1]))
