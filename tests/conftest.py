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


@pytest.fixture(params=databases.backends())
def db_url(request, tmp_path):
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
