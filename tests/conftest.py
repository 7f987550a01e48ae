"""Shared fixtures: databases on every configured backend, dev certificates, a running server."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailstack import tls
from mailstack.store.db import Database
from tests.support import databases, reactor as reactor_thread
from tests.support.server import RunningServer, base_config, merge
from twisted.internet import reactor


@dataclass(frozen=True)
class Certs:
    certificate: Path
    private_key: Path
    ca: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    c = Certs(d / "server.pem", d / "server.key", d / "ca.pem")
    tls.ensure_dev_certificates(c.certificate, c.private_key, c.ca, ["mx.example.test"])
    return c


# Tests that measure memory (RSS of the worker or a child process) or wall time against a
# limit.  Under pytest-xdist (``-n 3 --dist loadgroup``, setup.cfg) each kind is one group:
# one worker runs the group's tests one after another, so no two memory tests (25 MB
# messages ten at once, 10 MB floods) and no two timed tests ever run side by side.  RSS is
# per process and each worker is one process, so the other worker's tests never count in a
# measurement.  A prefix of a node id: a file, or a file and the start of a test's name.
MEMORY = (
    "tests/e2e/test_append_memory.py",
    "tests/e2e/test_message_memory.py",
    "tests/e2e/test_large_message_reads.py",
    "tests/e2e/test_backpressure.py",
    "tests/e2e/test_idle_connections.py",              # RSS of a child, and its setup time
    "tests/e2e/test_imap_compliance.py::test_a_60_mb_non_synchronising_append",
)
TIMING = (
    "tests/e2e/test_auth_throttle.py::test_password_guessing_does_not_lock_out_neighbours",
    "tests/e2e/test_connection_limits.py::test_a_flood_of_one_protocol_leaves_room",
    "tests/e2e/test_imap_extensions.py::test_idle_",
    "tests/unit/test_imap_fetch_items.py::test_a_64kb_command_of_hostile_shapes",
    "tests/unit/test_imap_fetch_items.py::test_fetch_of_1730_ranges",
    "tests/unit/test_imap_sequence.py::test_1730_ranges_parse_and_resolve_fast",
    "tests/unit/test_message_structure.py::test_a_huge_address_field",
    "tests/unit/test_message_structure.py::test_hostile_structure_is_bounded_and_fast",
    "tests/unit/test_message_structure.py::test_twenty_megabytes_analyse",
    "tests/unit/test_sieve_limits.py::test_hostile_",
    "tests/unit/test_sieve_matching.py::test_hostile_",
)
HEAVY = MEMORY + TIMING
# Modules whose tests share one server (a module-scoped fixture): one worker runs the whole
# module, so the server is started once, not once per worker.
SHARED_SERVER = (
    "tests/e2e/test_imaptest.py",
    "tests/e2e/test_roundcube.py",
)


def group_of(nodeid: str) -> str:
    """The unit of work an xdist worker is sent: a group name, or the test itself."""
    if nodeid.startswith(MEMORY):
        return "memory"
    if nodeid.startswith(TIMING):
        return "timing"
    if nodeid.startswith(SHARED_SERVER):
        return nodeid.split("::", 1)[0]
    return nodeid


def pytest_collection_modifyitems(items):
    """Mark HEAVY tests ``heavy``: ``-m "not heavy"`` leaves them out where time is not
    what it seems (scripts/coverage.sh: the tracer makes everything several times slower)."""
    for item in items:
        if item.nodeid.startswith(HEAVY):
            item.add_marker(pytest.mark.heavy)


@pytest.hookimpl(optionalhook=True)      # an xdist hook: -p no:xdist still works
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above.  Why not ``xdist_group`` marks: on pytest
    9.2 xdist 3.8 no longer sees them (pytest-dev/pytest-xdist#1386), tests are then spread
    as if unmarked, silently; the group is decided here from the node id instead."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Groups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            marked = super()._split_scope(nodeid)     # an xdist_group mark, where it works
            return marked if marked != nodeid else group_of(nodeid)

    return Groups(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every skipped PostgreSQL variant under one line of the summary, with its count."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and \
            report.longrepr[2].endswith(databases.SKIP_POSTGRES):
        where = databases.require_postgresql.__code__
        report.longrepr = (where.co_filename, where.co_firstlineno + 2, report.longrepr[2])


@pytest.fixture(scope="session", autouse=True)
def database_templates():
    """The migrated template of each backend is built on first use and removed at the end."""
    yield
    databases.close_templates()


@pytest.fixture(params=databases.backends())
def db_url(request, tmp_path):
    """A copy of the session's migrated template: SQLite, and PostgreSQL (skipped if not set)."""
    with databases.fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db(db_url):
    """The store on the test's fresh database, as the server runs it (a thread pool)."""
    database = Database(db_url, reactor=reactor, threads=4)
    yield database
    database.stop()


@pytest.fixture
def make_server(db_url, certs, tmp_path):
    """``make_server(**overrides)`` starts a server; all are stopped after the test."""
    started = []
    reactor_thread.ensure_running()

    def make(**overrides) -> RunningServer:
        raw = merge(base_config(db_url, certs, tmp_path / "state"), overrides)
        server = RunningServer(raw, base_dir=str(tmp_path)).start()
        # What a client that trusts the dev CA uses for STARTTLS and implicit TLS.
        server.context = ssl.create_default_context(cafile=str(certs.ca))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server) -> RunningServer:
    return make_server()
