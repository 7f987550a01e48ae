#!/usr/bin/env bash
# What the unit tests alone (tests/unit: no server, no sockets to our own listeners) cover
# of mailstack/policy and mailstack/protocols, and of the whole package.  Issue 14 asks for
# at least 85% of policy/ and protocols/ from unit tests alone.
# Uses .venv as ./scripts/run-tests.sh makes it (run that first); extra arguments go to pytest.
# The combined HTML report is written to var/coverage/ for reading line by line.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "no .venv: run ./scripts/run-tests.sh once first" >&2; exit 1; }
data=var/coverage
mkdir -p "$data"
export COVERAGE_FILE="$data/.coverage"
# Branch coverage; xdist workers each write their part and pytest-cov combines them.  The
# tests that time themselves are left out (-m "not heavy"): under the tracer they measure it.
"$python" -m pytest tests/unit -q -m "not heavy" --cov=mailstack --cov-branch \
    --cov-report= "$@"
for part in policy protocols; do
    echo "== mailstack/$part (unit tests alone)"
    "$python" -m coverage report --include="mailstack/$part/*" --skip-covered --sort=cover \
        | tail -n +1
done
echo "== mailstack/policy + mailstack/protocols together"
"$python" -m coverage report --include='mailstack/policy/*,mailstack/protocols/*' | tail -n 1
echo "== mailstack (all)"
"$python" -m coverage report | tail -n 1
"$python" -m coverage html -q -d "$data/html"
echo "line by line: $data/html/index.html"
