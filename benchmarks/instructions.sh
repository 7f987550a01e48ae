#!/usr/bin/env bash
# Instructions the server executes per message (SMTP) or per session (IMAP, POP3), counted by
# valgrind's callgrind.  Why: msg/s on this machine drifts by up to ±20% between runs of
# the same commit, so a 5% change cannot be seen in it; an instruction count is the same
# from run to run within a fraction of a percent (docs/benchmarks.md).  SQLite only: its
# work is in the server's process, PostgreSQL's is not.  The count covers the load alone
# (callgrind_control zeroes it before each section and dumps it after), all threads.
# Usage: benchmarks/instructions.sh [smtp] [imap] [pop3] [submission]   (PYTHONPATH may name another tree)
set -euo pipefail
cd "$(dirname "$0")/.."
backend=sqlite
protocols=${*:-smtp imap}
loadgen=${LOADGEN:-../shared/bench/loadgen.py}
work= server= dns_server=
trap 'kill $server $dns_server 2>/dev/null || true; rm -rf "$work"' EXIT
. benchmarks/setup.sh
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" \
    .venv/bin/mailstack --config "$work/mailstack.toml" serve \
    > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$first) 2>/dev/null && break; sleep 1; done
kill -0 "$server"     # still there: it started (valgrind makes that take about 30 s)
count() {   # count UNITS LOADGEN-ARGS...: instructions per unit over one loadgen run
    local units=$1; shift
    callgrind_control -z "$server" >/dev/null 2>&1
    python3 "$loadgen" "$@" --max-secs 3000 --op-timeout 900 | grep -q '"errors": 0,'
    callgrind_control -d "$server" >/dev/null 2>&1
    local dump; dump=$(ls -v "$work"/callgrind.*.* | tail -1)
    awk -v n="$units" '/^totals:/ {printf "instructions_per_unit=%.0f (%d units)\n", $2 / n, n}' "$dump"
}
has() { [[ " $protocols " == *" $1 "* ]]; }
# A first run is not counted: it pays for imports, threads and connections once.
if has smtp; then count 50 smtp --port ${ports[smtp]} --conc 10 --count 50 --size 4096 --rcpt-users 90..99 >/dev/null; fi
if has imap; then count 1 imap --port ${ports[imap]} --conc 1 --sessions 1 --users 90..99 >/dev/null; fi
if has pop3; then   # every reader logged in once: the sessions below hit the credential cache
    count 10 pop3 --port ${ports[pop3]} --conc 1 --sessions 10 --users 90..99 --retr 0 >/dev/null
    echo "## pop3 1 client, login only (USER, PASS, STAT, QUIT) on 200 messages"; count 10 pop3 --port ${ports[pop3]} --conc 1 --sessions 10 --users 90..99 --retr 0
    echo "## pop3 1 client, RETR all of 200 x 10 KB per session"; count 3 pop3 --port ${ports[pop3]} --conc 1 --sessions 3 --users 90..99
fi
if has imap; then   # first, while user0..89 have empty INBOXes: a session is then its login
    echo "## imap 1 client, empty INBOX (LOGIN, SELECT, FETCH, LOGOUT)"; count 10 imap --port ${ports[imap]} --conc 1 --sessions 10 --users 0..9
    echo "## imap 1 client, 200 x 10 KB per session"; count 3 imap --port ${ports[imap]} --conc 1 --sessions 3 --users 90..99
fi
if has smtp; then
    echo "## smtp 10 senders, 4 KB, 1 msg/conn";   count 300 smtp --port ${ports[smtp]} --conc 10 --count 300 --size 4096
    echo "## smtp 10 senders, 4 KB, 100 msg/conn"; count 300 smtp --port ${ports[smtp]} --conc 10 --count 300 --size 4096 --per-conn 100
    echo "## smtp 10 senders, 64 KB, 1 msg/conn";  count 100 smtp --port ${ports[smtp]} --conc 10 --count 100 --size 65536
fi
if has submission; then   # a first run fills the credential cache, as in the benchmark
    auth=(--starttls --auth user1@example.test:pw-user1)
    count 50 smtp --port ${ports[submission]} --conc 10 --count 50 --size 4096 "${auth[@]}" >/dev/null
    echo "## submission, STARTTLS + AUTH PLAIN, 10 senders, 4 KB, 1 msg/conn"
    count 200 smtp --port ${ports[submission]} --conc 10 --count 200 --size 4096 "${auth[@]}"
fi
