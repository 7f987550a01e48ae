"""A real rspamd for the tests: its own configuration, database and log in a temporary
directory, its workers on loopback ports, nothing that reaches out of the machine.

Debian's ``/etc/rspamd/rspamd.conf`` is used as it ships, with ``LOCAL_CONFDIR``,
``DBDIR``, ``RUNDIR`` and ``LOGDIR`` pointed at the test's directory (``--var``), so the
overrides below are the whole difference:

- the normal worker (``/checkv2``) on a free loopback port; no proxy or fuzzy storage
  worker; the controller (``/learnspam``, ``/learnham``, ``/stat``) only with
  ``learning=True``, on a port of its own, with a password and a ``secure_ip`` that is no
  address of ours, so every request must carry the password (Debian's ``q1`` and its
  loopback ``secure_ip`` are replaced);
- its DNS resolver is the tests' loopback server that fails every lookup
  (``dns_server.failing_nameserver``): rspamd's map downloads (maps.rspamd.com), RBL, SURBL,
  SPF/DKIM/DMARC lookups all get SERVFAIL at once, nothing leaves the machine;
- the modules that would still try (fuzzy_check resolves its servers through the system
  resolver at start; rbl, phishing, asn) are disabled;
- redis only with ``learning=True``: a ``redis-server`` of the test's own on a free loopback
  port, no persistence, in the test's directory, and only the bayes classifier uses it
  (``classifier-bayes.conf``; no global ``redis.conf``, so greylisting, neural and the
  other redis modules stay off and the normal worker answers as without it); autolearn
  is off, so only the tests' learns move the counts, and ``min_tokens`` is low enough for
  a short test message to be learned;
- actions: ``add header`` from 3 (rspamd's default is 6) so that a message without Date
  and Message-ID (MISSING_DATE 1.0 + MISSING_MID 2.5) gets it; reject stays at 15 (GTUBE
  is rspamd's own reject); greylist off (no greylist module without redis); ``soft
  reject`` forced for mail to ``DEFERRED_RCPT``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.dns_server import failing_nameserver

BINARY = shutil.which("rspamd") or ("/usr/bin/rspamd" if Path("/usr/bin/rspamd").exists()
                                    else None)
REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                         if Path("/usr/bin/redis-server").exists() else None)
RSPAMC = shutil.which("rspamc") or "/usr/bin/rspamc"
MISSING = "rspamd is not installed (Debian package rspamd; .ci/run installs it)"
MISSING_REDIS = "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
PASSWORD = "controller-test-pw"

LOCAL_D = {
    "worker-normal.inc": 'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n',
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
# The controller and the classifier, with learning=True.  secure_ip is a documentation
# address (RFC 5737): no request of ours comes from it, so the password is always asked.
LEARNING_D = {
    "worker-controller.inc": 'bind_socket = "127.0.0.1:{controller}";\ncount = 1;\n'
                             'password = "{password}";\nenable_password = "{password}";\n'
                             'secure_ip = "192.0.2.1";\n',
    "classifier-bayes.conf": 'servers = "127.0.0.1:{redis}";\nbackend = "redis";\n'
                             'min_tokens = 1;\nmin_learns = 1;\nautolearn = false;\n',
}
NO_LEARNING_D = {"worker-controller.inc": "enabled = false;\n"}
DEFERRED_RCPT = "defer@example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A ``redis-server`` of the test's own: loopback, a free port, no persistence."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.port = free_port()
        self.process = None

    def start(self, wait: float = 30.0) -> "Redis":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=open(self.directory / "redis.log", "wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis exited: " + (self.directory / "redis.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis did not answer on port {self.port} within {wait} s")

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


class Rspamd:
    """``Rspamd(directory).start()``; ``url`` for ``[spam] url``; ``stop()``.

    ``learning=True`` adds the controller (``controller_url``, ``PASSWORD``) and redis for
    the bayes statistics (``learned()``); ``stop()`` and ``start()`` again keep both ports
    and redis (its counts survive an rspamd restart)."""

    def __init__(self, directory: Path, learning: bool = False):
        self.directory = Path(directory)
        self.port = free_port()
        self.learning = learning
        self.controller_port = free_port() if learning else None
        self.redis = Redis(self.directory / "redis") if learning else None
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def start(self, wait: float = 60.0) -> "Rspamd":
        if self.redis is not None and self.redis.process is None:
            self.redis.start()
        self._configure()
        d = self.directory
        self.process = subprocess.Popen(
            [BINARY, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
             "--var", f"LOCAL_CONFDIR={d}", "--var", f"DBDIR={d / 'db'}",
             "--var", f"RUNDIR={d / 'run'}", "--var", f"LOGDIR={d / 'log'}"],
            stdout=open(d / "stdout.log", "ab"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        for url in [self.url] + ([self.controller_url] if self.learning else []):
            self._wait_for(url, deadline)
        return self

    def _configure(self) -> None:
        local = self.directory / "local.d"
        for sub in ("local.d", "db", "run", "log"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        files = {**LOCAL_D, **(LEARNING_D if self.learning else NO_LEARNING_D)}
        for name, text in files.items():
            (local / name).write_text(text.format(
                port=self.port, dns=failing_nameserver(), dir=self.directory,
                controller=self.controller_port, password=PASSWORD,
                redis=self.redis.port if self.redis else 0))
        (self.directory / "defer_rcpt.map").write_text(DEFERRED_RCPT + "\n")

    def _wait_for(self, url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rspamd exited: "
                                   + (self.directory / "stdout.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1) as answer:
                    if answer.read().strip() == b"pong":
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"rspamd did not answer on {url} in time")

    def learned(self) -> dict[str, int]:
        """{"BAYES_SPAM": n, "BAYES_HAM": m}: what ``rspamc stat`` says was learned."""
        out = subprocess.run(
            [RSPAMC, "-h", f"127.0.0.1:{self.controller_port}", "-P", PASSWORD, "stat"],
            capture_output=True, text=True, timeout=30, check=True).stdout
        found = re.findall(r"Statfile: (BAYES_\w+) .*?learned: (\d+)", out)
        return {symbol: int(count) for symbol, count in found}

    def learned_eventually(self, expected: dict[str, int], wait: float = 150.0) -> dict:
        """Wait until ``learned()`` shows ``expected`` (a subset): rspamd reads the bayes
        counts from redis every 30 to 60 s, so a learn shows in ``rspamc stat`` that late."""
        deadline = time.monotonic() + wait
        while True:
            found = self.learned()
            if all(found.get(k) == v for k, v in expected.items()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"rspamc stat shows {found}, not {expected}, after {wait} s")
            time.sleep(1)

    def stat(self) -> dict:
        """The controller's ``/stat`` (``learned``: messages learned since this start)."""
        request = urllib.request.Request(self.controller_url + "/stat",
                                         headers={"Password": PASSWORD})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        """Stop rspamd (redis keeps running: ``close()`` ends both)."""
        _stop(self.process)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self.redis is not None:
            self.redis.stop()


def _stop(process) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
