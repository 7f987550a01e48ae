#!/usr/bin/env bash
# Measure mailstack with the shared load generator, as docs/benchmarks.md reports it.
# The server is pinned to core 1 and the load generator to core 0; each figure is the
# median of three runs.  Usage: benchmarks/run.sh [sqlite|postgresql] [smtp submission pop3 imap]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
shift || true
protocols=${*:-smtp submission pop3 imap}
loadgen=${LOADGEN:-../shared/bench/loadgen.py}
work= server= dns_server=
trap 'kill $server $dns_server 2>/dev/null || true; rm -rf "$work"' EXIT
. benchmarks/setup.sh
taskset -c 1 .venv/bin/mailstack --config "$work/mailstack.toml" serve --log-level warn > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$first) 2>/dev/null && break; sleep 0.2; done
# The server's CPU time over the three runs: steadier than throughput on a machine whose
# speed drifts (paired runs of two commits differ less in CPU per message than in msg/s).
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
run() {
    local before; before=$(cpu)
    for i in 1 2 3; do taskset -c 0 python3 "$loadgen" "$@" --watch-pids "$server"; done
    echo "server_cpu_s=$(( $(cpu) - before ))e-2"
}
has() { [[ " $protocols " == *" $1 "* ]]; }
if has smtp; then
    echo "## smtp 10 senders, 4 KB, 1 msg/conn";   run smtp --port ${ports[smtp]} --conc 10 --count 3000 --size 4096
    echo "## smtp 10 senders, 4 KB, 100 msg/conn"; run smtp --port ${ports[smtp]} --conc 10 --count 3000 --size 4096 --per-conn 100
    echo "## smtp 10 senders, 64 KB, 1 msg/conn";  run smtp --port ${ports[smtp]} --conc 10 --count 1000 --size 65536
fi
if has submission; then
    echo "## submission 587, STARTTLS + AUTH PLAIN, 10 senders, 4 KB, 1 msg/conn"
    run smtp --port ${ports[submission]} --conc 10 --count 1000 --size 4096 --starttls --auth user1@example.test:pw-user1
fi
if has pop3; then
    echo "## pop3 1 client";   run pop3 --port ${ports[pop3]} --conc 1 --sessions 20 --users 90..99
    echo "## pop3 10 clients"; run pop3 --port ${ports[pop3]} --conc 10 --sessions 50 --users 90..99
fi
if has imap; then
    echo "## imap 1 client";   run imap --port ${ports[imap]} --conc 1 --sessions 20 --users 90..99
    echo "## imap 10 clients"; run imap --port ${ports[imap]} --conc 10 --sessions 50 --users 90..99
fi
if [ "$backend" = postgresql ]; then
    psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA $schema CASCADE"
fi
