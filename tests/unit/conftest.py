"""Fixtures of the session unit tests: a real SQLite store, migrated once per module."""

from __future__ import annotations

import pytest

from tests.support import sessions


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The module's migrated SQLite file; each test's ``Stack`` works on a copy of it."""
    return sessions.migrated_template(tmp_path_factory)


@pytest.fixture
def stack(template, tmp_path):
    """The store, realm and clock a session is built with (``tests/support/sessions.py``);
    a module that needs other settings defines its own."""
    stack = sessions.Stack(template, tmp_path)
    yield stack
    stack.close()
