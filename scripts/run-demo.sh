#!/usr/bin/env bash
# Install mailstack into .venv and run it on the embedded defaults: an SQLite database,
# dev certificates generated on first run, unprivileged ports and the demo domain
# example.test with the account demo@example.test (its password is printed once).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --config-settings editable_mode=compat -e .
exec .venv/bin/mailstack demo --dir var/demo "$@"
