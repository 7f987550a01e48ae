"""Dovecot's imaptest, an IMAP compliance suite nobody here wrote, against a running server.

Why: our own IMAP tests check what we thought of; imaptest's scripts (its ``src/tests/``)
check RFC 3501 and its extensions the way Dovecot reads them, with several concurrent
sessions.  Each script is its own test case, named after the script; a failure carries
imaptest's own report (the command, what it expected, what it got).  imaptest skips a script
whose capabilities the server does not advertise; that shows here as a pytest skip naming
them, so the scripts that run are exactly those for what we advertise.

The binary is ``$MAILSTACK_IMAPTEST`` (``.ci/run`` builds it with
``../shared/tools/imaptest/build.sh`` and sets it) or ``~/.cache/imaptest/src/imaptest``;
without either the module is skipped, so the README's test command works on a machine without
imaptest.  A ``$MAILSTACK_IMAPTEST`` that names no program is an error, never a skip.
One server for the module on each database backend the suite runs (SQLite, and PostgreSQL
when ``MAILSTACK_TEST_DATABASE_URL`` names one: about 10 s each when every script passes),
a fresh account for each script.  Standards: RFC 3501 and the extensions each script names.
"""

from __future__ import annotations

import imaplib
import os
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support import databases, reactor as reactor_thread
from tests.support.server import DOMAIN, RunningServer, base_config, merge

pytestmark = pytest.mark.e2e

SCRIPT_TIMEOUT = 120      # seconds; a script takes well under one on Dovecot
STALL_SECS = 30           # imaptest's own wait for a reply (TEST_EXEC_DELAY_TIMEOUT_SECS)
LINE = 400                # longest line of imaptest's report kept (the ID script sends 64 KB)
IMAP_ONLY = {"listeners": [{"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"}]}


def _locate() -> Path | None:
    configured = os.environ.get("MAILSTACK_IMAPTEST", "").strip()
    if configured:
        if not os.access(configured, os.X_OK):
            raise RuntimeError(f"MAILSTACK_IMAPTEST={configured} is not an executable imaptest")
        return Path(configured)
    default = Path.home() / ".cache" / "imaptest" / "src" / "imaptest"
    return default if os.access(default, os.X_OK) else None


IMAPTEST = _locate()
if IMAPTEST is None:
    pytest.skip("imaptest is not installed (set MAILSTACK_IMAPTEST or run "
                "../shared/tools/imaptest/build.sh)", allow_module_level=True)
SCRIPTS = IMAPTEST.parent / "tests"
# The scripts are the plain files there; NAME.mbox holds the messages of script NAME.
NAMES = sorted(p.name for p in SCRIPTS.iterdir() if p.is_file() and p.suffix != ".mbox")


class Run(NamedTuple):
    status: int | None      # None: killed after SCRIPT_TIMEOUT
    stdout: str             # the summary ("1 test groups: 0 failed, 0 skipped ...")
    stderr: str             # a block per failure: command, expected, got
    seconds: float


@pytest.fixture(scope="module", params=databases.backends())
def imap_server(request, certs, tmp_path_factory):
    """One server per database backend for every script (each script gets its own account)."""
    tmp = tmp_path_factory.mktemp("imaptest")
    reactor_thread.ensure_running()
    with databases.fresh_database(request.param, tmp) as url:
        raw = merge(base_config(url, certs, tmp / "state"), IMAP_ONLY)
        server = RunningServer(raw, base_dir=str(tmp)).start()
        try:
            server.capabilities = capabilities_after_login(server)
            yield server
        finally:
            server.stop()


def capabilities_after_login(server) -> set[str]:
    """What a logged-in client is told, to name what a skipped script lacked."""
    server.add_account(f"capability@{DOMAIN}", "capability password")
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=10)
    try:
        client.login(f"capability@{DOMAIN}", "capability password")
        typ, data = client.capability()
        return set(data[0].decode().upper().split())
    finally:
        client.logout()


def run_imaptest(server, user: str, password: str, script: Path) -> Run:
    command = [str(IMAPTEST), "host=127.0.0.1", f"port={server.port('imap')}", f"user={user}",
               f"pass={password}", f"test={script}"]
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=SCRIPT_TIMEOUT)
        status, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as stalled:
        status, out, err = None, stalled.stdout, stalled.stderr
    return Run(status, _text(out), _text(err), time.monotonic() - started)


def _text(data) -> str:
    return (data or b"").decode("utf-8", "replace")


def required_capabilities(script: Path) -> list[str]:
    header = script.read_text(errors="replace").split("\n\n", 1)[0]
    found = re.search(r"^capabilities:\s*(.+)$", header, re.M | re.I)
    return found.group(1).upper().split() if found else []


def failure_report(run: Run, limit: int = 12_000) -> str:
    """imaptest's summary and its stderr: per failure the command, expected and got."""
    summary = "\n".join(re.findall(r"^(?:\d+ test groups|base protocol|extensions): .*$",
                                   run.stdout, re.M))
    details = run.stderr.strip() or run.stdout.strip()
    report = f"{summary or f'exit status {run.status}'}\n{details}"
    if run.seconds >= STALL_SECS:
        report = (f"(took {run.seconds:.0f}s: imaptest gives up on a command that has no answer "
                  f"after {STALL_SECS}s and reports it as a disconnection)\n{report}")
    report = "\n".join(line if len(line) <= LINE else f"{line[:LINE]} [{len(line) - LINE} more]"
                       for line in report.splitlines())
    return report if len(report) <= limit else report[:limit] + "\n[... cut]"


@pytest.mark.parametrize("name", NAMES)
def test_imaptest_script(imap_server, name):
    user = f"imaptest-{secrets.token_hex(4)}@{DOMAIN}"
    password = secrets.token_urlsafe(12)
    imap_server.add_account(user, password)
    run = run_imaptest(imap_server, user, password, SCRIPTS / name)
    if run.status is None:
        pytest.fail(f"imaptest {name} did not finish in {SCRIPT_TIMEOUT}s\n{failure_report(run)}",
                    pytrace=False)
    groups = re.search(r"^1 test groups: (\d+) failed, (\d+) skipped", run.stdout, re.M)
    if groups and groups.group(2) == "1":
        missing = [c for c in required_capabilities(SCRIPTS / name)
                   if c not in imap_server.capabilities]
        pytest.skip(f"{name} needs {' '.join(missing) or 'a capability'}, not advertised")
    if run.status != 0 or not groups or groups.group(1) != "0":
        pytest.fail(f"imaptest {name} failed:\n{failure_report(run)}", pytrace=False)
