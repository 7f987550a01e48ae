"""A real rspamd for the tests: its own configuration, database and log in a temporary
directory, its normal worker on a loopback port, nothing that reaches out of the machine.

Debian's ``/etc/rspamd/rspamd.conf`` is used as it ships, with ``LOCAL_CONFDIR``,
``DBDIR``, ``RUNDIR`` and ``LOGDIR`` pointed at the test's directory (``--var``), so the
overrides below are the whole difference:

- only the normal worker (``/checkv2``), on a free loopback port; no controller, proxy or
  fuzzy storage worker;
- its DNS resolver is the tests' loopback server that fails every lookup
  (``dns_server.failing_nameserver``): rspamd's map downloads (maps.rspamd.com), RBL, SURBL,
  SPF/DKIM/DMARC lookups all get SERVFAIL at once, nothing leaves the machine;
- the modules that would still try (fuzzy_check resolves its servers through the system
  resolver at start; rbl, phishing, asn) are disabled;
- no redis: statistics, greylisting, neural and the other redis modules stay off
  (learning is a later slice of issue 18);
- actions: ``add header`` from 3 (rspamd's default is 6) so that a message without Date
  and Message-ID (MISSING_DATE 1.0 + MISSING_MID 2.5) gets it; reject stays at 15 (GTUBE
  is rspamd's own reject); greylist off (no greylist module without redis); ``soft
  reject`` forced for mail to ``DEFERRED_RCPT``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.dns_server import failing_nameserver

BINARY = shutil.which("rspamd") or ("/usr/bin/rspamd" if Path("/usr/bin/rspamd").exists()
                                    else None)
MISSING = "rspamd is not installed (Debian package rspamd; .ci/run installs it)"

LOCAL_D = {
    "worker-normal.inc": 'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n',
    "worker-controller.inc": "enabled = false;\n",
    "worker-proxy.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    "options.inc": 'dns {{ nameserver = ["{dns}"]; timeout = 0.5s; retransmits = 1; }}\n',
    "logging.inc": 'type = "file";\nlevel = "notice";\n',
    "actions.conf": "add_header = 3;\ngreylist = null;\nrewrite_subject = null;\n",
    "fuzzy_check.conf": "enabled = false;\n",
    "rbl.conf": "enabled = false;\n",
    "phishing.conf": "enabled = false;\n",
    "asn.conf": "enabled = false;\n",
    # rspamd's "soft reject" is no score threshold: a rule forces it (force_actions), here
    # for mail to DEFERRED_RCPT (a multimap on the Rcpt we send, so it also shows that
    # the envelope reaches rspamd).
    "multimap.conf": 'DEFER_TEST_RCPT {{ type = "rcpt"; map = "{dir}/defer_rcpt.map"; '
                     'score = 0.0; }}\n',
    "force_actions.conf": 'rules {{ DEFER_TEST {{ action = "soft reject"; '
                          'expression = "DEFER_TEST_RCPT"; message = "try later"; }} }}\n',
}
DEFERRED_RCPT = "defer@example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rspamd:
    """``Rspamd(directory).start()``; ``url`` for ``[spam] url``; ``stop()``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> "Rspamd":
        local = self.directory / "local.d"
        for sub in ("local.d", "db", "run", "log"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        for name, text in LOCAL_D.items():
            (local / name).write_text(text.format(port=self.port, dns=failing_nameserver(),
                                                   dir=self.directory))
        d = self.directory
        (d / "defer_rcpt.map").write_text(DEFERRED_RCPT + "\n")
        self.process = subprocess.Popen(
            [BINARY, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
             "--var", f"LOCAL_CONFDIR={d}", "--var", f"DBDIR={d / 'db'}",
             "--var", f"RUNDIR={d / 'run'}", "--var", f"LOGDIR={d / 'log'}"],
            stdout=open(d / "stdout.log", "wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rspamd exited: " + (d / "stdout.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as answer:
                    if answer.read().strip() == b"pong":
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"rspamd did not answer on {self.url} within {wait} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
