#!/usr/bin/env bash
# Install mailstack with its test dependencies into .venv and run the whole test suite.
# Set MAILSTACK_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)
# to run every database test on PostgreSQL as well as SQLite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --config-settings editable_mode=compat -e '.[test]'
exec .venv/bin/python -m pytest "$@"
