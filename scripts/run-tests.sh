#!/usr/bin/env bash
# Install mailstack with its test dependencies into .venv and run the whole test suite.
# Set MAILSTACK_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)
# to run every database test on PostgreSQL as well as SQLite (without it the PostgreSQL variants
# show as skipped). Extra arguments go to pytest; setup.cfg adds -n 3 (three workers): pass -n 0
# for one process. Coverage of the unit tests alone: scripts/coverage.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --config-settings editable_mode=compat -e '.[test]'
# The tests start mailstack again and again (the CLI, `mailstack serve`): keep the package's
# compiled bytecode between those starts, under var/ (some machines set
# PYTHONDONTWRITEBYTECODE, which made every start compile the package anew: 0.2 s each).
export PYTHONPYCACHEPREFIX="$PWD/var/pycache"
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest "$@"
