"""Fixtures of the end-to-end tests: the admin command line against the test's database."""

from __future__ import annotations

import pytest

from tests.support.cli import Cli, database_config


@pytest.fixture
def cli(db_url, tmp_path) -> Cli:
    """``mailstack`` as a subprocess, with a configuration naming the test's database."""
    return Cli(database_config(tmp_path / "mailstack.toml", db_url))


@pytest.fixture
def cli_in_process(cli) -> Cli:
    """The same commands through ``cli.main.main`` in this process: for tables of cases
    (``tests/support/cli.py`` says when)."""
    return Cli(cli.config, in_process=True)
