"""A whole mailstack process, built by ``service.build`` and run on the real reactor thread.

Every listener binds 127.0.0.1 on port 0; tests ask ``server.port("pop3s")``.  Business time
is a ``task.Clock`` that starts at the real current time and moves only when a test calls
``server.advance(seconds)``.
"""

from __future__ import annotations

import copy
import time

from twisted.internet import defer, reactor, task

from mailstack import clock as clocks, config as configs, service
from mailstack.store import directory, watch

# Each test stops its servers; on PostgreSQL the stop waits out the LISTEN thread's current
# ``notifies`` wait (0.5 s in production, a third of a short test).  50 ms here.
watch.STOP_WAIT = 0.05

from tests.support import reactor as reactor_thread
from tests.support.dns_server import failing_nameserver

DOMAIN = "example.test"
HOSTNAME = "mx.example.test"

LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
    {"name": "pop3s", "protocol": "pop3", "port": 0, "tls": "implicit"},
    {"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
]


def base_config(db_url: str, certs, state_dir) -> dict:
    return {
        "server": {"hostname": HOSTNAME, "state_dir": str(state_dir)},
        "database": {"url": db_url, "threads": 4, "busy_timeout_ms": 2000},
        "auth": {"hash_threads": 2},
        "tls": {"certificate": str(certs.certificate), "private_key": str(certs.private_key),
                "ca_certificate": str(certs.ca)},
        "domains": {"hosted": [DOMAIN]},
        # No DNS leaves the machine: anti-spam tests start their own DNS server and turn
        # the reverse-DNS requirement back on.
        "antispam": {"require_ptr": False},
        # No DNS leaves the machine: a loopback server that fails every lookup at once
        # (port 25 checks SPF and DMARC for every message; tests that need records start
        # their own).
        "dns": {"nameservers": [failing_nameserver()], "timeout": 1},
        "listeners": copy.deepcopy(LISTENERS),
    }


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class RunningServer:
    def __init__(self, raw_config: dict, *, base_dir: str):
        raw = dict(raw_config, base_dir=base_dir)
        self.config = configs.from_dict(raw)
        self.clock = task.Clock()
        self.clock.advance(time.time())
        self.root = None
        self.built = None

    def start(self) -> "RunningServer":
        reactor_thread.call(self._start)
        return self

    @defer.inlineCallbacks
    def _start(self):
        self.root, self.built = service.build(self.config, reactor, self.clock)
        self.root.privilegedStartService()
        self.root.startService()
        yield defer.gatherResults([l.listening for l in self.built.listeners], consumeErrors=True)

    def stop(self) -> None:
        if self.root is not None:
            reactor_thread.call(self.root.stopService)
            self.root = None

    def port(self, name: str) -> int:
        for listener in self.built.listeners:
            if listener.name == name:
                return listener.port.getHost().port
        raise KeyError(name)

    def advance(self, seconds: float) -> None:
        reactor_thread.call(self.clock.advance, seconds)

    def now(self):
        return clocks.now(self.clock)

    def db(self, fn, *args, **kwargs):
        """Run a store function synchronously from the test thread (its own transaction)."""
        return self.built.db.run_sync(fn, *args, **kwargs)

    def add_account(self, address: str, password: str) -> int:
        return self.db(directory.add_account, address, self.password_hash(password), self.now())

    def password_hash(self, password: str) -> str:
        """The hash the server's own hasher makes of `password`, made once per session.

        Why cached: argon2 is tuned to cost ~40 ms on purpose (realm/hashing.py), and tests add
        about two accounts each, most with the same password: hashing alone was a third of an
        end-to-end test's time.  Logins still verify against a real argon2 hash of the server's
        own scheme; only the salt is shared between tests.
        """
        key = (self.config.auth.default_scheme, password)
        if key not in _HASHES:
            _HASHES[key] = self.built.hasher.hash(password)
        return _HASHES[key]


_HASHES: dict[tuple[str, str], str] = {}
