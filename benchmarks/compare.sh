#!/usr/bin/env bash
# mailstack beside Postfix+Dovecot, in one run, alternating: the figures issue 16 asks for.
#
# Why alternate: this machine's speed drifts by ±20 % over minutes, so a ratio counts only
# between runs made close together.  Each round runs every scenario on Postfix+Dovecot and
# then on mailstack with the same load generator arguments (../shared/bench/loadgen.py);
# the ratio of a round is mailstack / anchor, and the report gives the median of the
# rounds' ratios beside the medians of the figures themselves.
#
# Both servers are pinned to core 1 (Postfix and Dovecot restarted under taskset, their
# children inherit it), the load generator to core 0.  mailstack runs as `mailstack serve`
# at its default log level (info, one line per event, into a file), on a fresh SQLite
# database and then on a fresh PostgreSQL schema; the anchors run once per backend pass.
# Postfix+Dovecot are timed end to end (--wait-maildir: until the last message is in its
# Maildir); mailstack stores the message in the mailbox before its 250, so its accepted
# rate is its delivered rate.
#
# Usage (root, Debian; installs and configures the anchors with ../shared/bench/setup-anchors.sh
# when they are missing):
#     benchmarks/compare.sh [sqlite] [postgresql]        (default: both)
# Environment: ROUNDS (3), OUT (var/bench/compare-DATE), SCENARIOS (all: smtp4k smtp64k
# submission pop3c1 pop3c10 logins imapc1 imapc10 smtp4ksigned), LOADGEN, BENCH
# (../shared/bench), BENCH_AUTHENTICATION (false: port 25 without SPF/DKIM/DMARC, as the
# anchors run; default: on, as mailstack ships).  smtp4ksigned sends the same load with
# every message DKIM-signed by Mail::DKIM (benchmarks/signed_load.py) to both sides.
# Output: $OUT/results.jsonl (one JSON line per run, tagged), $OUT/report.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${*:-sqlite postgresql}
bench=${BENCH:-$(cd ../shared/bench && pwd)}
loadgen=${LOADGEN:-$bench/loadgen.py}
rounds=${ROUNDS:-3}
scenarios=${SCENARIOS:-smtp4k smtp64k submission pop3c1 pop3c10 logins imapc1 imapc10 smtp4ksigned}
OUT=${OUT:-$PWD/var/bench/compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
results=$OUT/results.jsonl
vmail=/var/vmail/example.test
lg() { taskset -c 0 python3 "$loadgen" "$@"; }
lg_signed() {   # the same load generator, every message signed with $work/dkim.pem first
    taskset -c 0 env PYTHONPATH=. .venv/bin/python benchmarks/signed_load.py "$work/dkim.pem" \
        bench remote.test "$loadgen" "$@"
}
load() { if [ "$1" = smtp4ksigned ]; then shift; lg_signed "$@"; else shift; lg "$@"; fi; }

# ---- the anchors: Postfix 3 + Dovecot 2.3 from Debian, as ../shared/PERFORMANCE.md set them up
if ! ss -ltn | grep -q '127.0.0.1:10025 ' || [ ! -s /etc/dovecot/users ]; then
    bash "$bench/setup-anchors.sh" > "$OUT/setup-anchors.log" 2>&1
fi
ANCHOR_CPUS=1 bash "$bench/anchors-ctl.sh" restart > "$OUT/anchors.log" 2>&1
anchor_pids() { echo "$(head -1 /var/spool/postfix/pid/master.pid | tr -d ' '),$(cat /run/dovecot/master.pid)"; }
queue_empty() {
    for _ in $(seq 600); do postqueue -p 2>/dev/null | grep -q "Mail queue is empty" && return 0; sleep 0.1; done
    echo "compare: Postfix queue not empty after 60 s" >&2
}
clean_inbound() { queue_empty; rm -rf "$vmail"/user{0..89}; sync; }
fill_anchor_boxes() {   # user90..99: 200 x 10 KB each, delivered through Postfix
    local ok=1
    for u in $(seq 90 99); do
        [ "$(ls "$vmail/user$u/Maildir/new" "$vmail/user$u/Maildir/cur" 2>/dev/null | grep -c ',S=')" = 200 ] || ok=0
    done
    if [ $ok = 0 ]; then
        rm -rf "$vmail"/user{90..99}
        lg smtp --port 10025 --count 2000 --conc 10 --size 10240 --rcpt-users 90..99 \
            --wait-maildir "$vmail" --max-secs 120 > /dev/null
        queue_empty
    fi
}

# ---- the scenarios: NAME -> loadgen arguments (the port is added per side)
declare -A args=(
    [smtp4k]="smtp --count 3000 --conc 10 --size 4096 --max-secs 90"
    [smtp64k]="smtp --count 1000 --conc 10 --size 65536 --max-secs 90"
    [submission]="smtp --count 1000 --conc 10 --size 4096 --starttls --auth user1@example.test:pw-user1 --max-secs 90"
    [pop3c1]="pop3 --conc 1 --sessions 10 --max-secs 60"
    [pop3c10]="pop3 --conc 10 --sessions 50 --max-secs 60"
    [logins]="pop3 --conc 10 --sessions 1000 --retr 0 --max-secs 60"
    [imapc1]="imap --conc 1 --sessions 10 --max-secs 60"
    [imapc10]="imap --conc 10 --sessions 50 --max-secs 60"
    [smtp4ksigned]="smtp --count 3000 --conc 10 --size 4096 --max-secs 90"
)
declare -A anchor_port=([smtp4k]=10025 [smtp64k]=10025 [submission]=10587 [pop3c1]=10110
                        [pop3c10]=10110 [logins]=10110 [imapc1]=10143 [imapc10]=10143
                        [smtp4ksigned]=10025)
declare -A protocol_of=([smtp4k]=smtp [smtp64k]=smtp [submission]=submission [pop3c1]=pop3
                        [pop3c10]=pop3 [logins]=pop3 [imapc1]=imap [imapc10]=imap
                        [smtp4ksigned]=smtp)

# record SIDE BACKEND SCENARIO ROUND: one loadgen JSON line from stdin, tagged, into $results
record() {
    python3 -c '
import json, sys
side, backend, scenario, rnd = sys.argv[1:5]
for line in sys.stdin:
    if line.startswith("{"):
        d = json.loads(line)
        d.update(side=side, backend=backend, scenario=scenario, round=int(rnd))
        print(json.dumps(d))' "$@" | tee -a "$results"
}

run_anchor() {   # run_anchor SCENARIO ROUND BACKEND
    local s=$1 extra=()
    case $s in smtp*|submission) clean_inbound; extra=(--wait-maildir "$vmail");; esac
    # shellcheck disable=SC2086
    load "$s" ${args[$s]} --port "${anchor_port[$s]}" "${extra[@]}" --watch-pids "$(anchor_pids)" \
        | record postfix+dovecot "$3" "$s" "$2"
}
run_ours() {     # run_ours SCENARIO ROUND BACKEND
    local s=$1
    # shellcheck disable=SC2086
    load "$s" ${args[$s]} --port "${ports[${protocol_of[$s]}]}" --watch-pids "$server" | record mailstack "$3" "$s" "$2"
}

work= server= dns_server=
trap 'kill $server $dns_server 2>/dev/null || true; wait $server 2>/dev/null || true; [ -z "$work" ] || rm -rf "$work"' EXIT
protocols="smtp submission pop3 imap"
for backend in $backends; do
    . benchmarks/setup.sh      # $work, $url, $first: a fresh database with the accounts
    taskset -c 1 .venv/bin/mailstack --config "$work/mailstack.toml" serve > "$OUT/mailstack-$backend.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$first) 2>/dev/null && break; sleep 0.2; done
    kill -0 "$server"
    fill_anchor_boxes
    # One unrecorded session per reader on each side: Dovecot builds its indexes, mailstack
    # fills its credential cache; neither is what a polling client meets.
    lg pop3 --port 10110 --conc 10 --sessions 10 > /dev/null; lg imap --port 10143 --conc 10 --sessions 10 > /dev/null
    lg pop3 --port "${ports[pop3]}" --conc 10 --sessions 10 > /dev/null
    lg imap --port "${ports[imap]}" --conc 10 --sessions 10 > /dev/null
    for round in $(seq "$rounds"); do
        for s in $scenarios; do
            echo "== $backend round $round: $s" >&2
            run_anchor "$s" "$round" "$backend" > /dev/null
            run_ours "$s" "$round" "$backend" > /dev/null
        done
    done
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    if [ "$backend" = postgresql ]; then
        psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA $schema CASCADE"
    fi
    rm -rf "$work"; work=
done
clean_inbound
bash "$bench/anchors-ctl.sh" restart > /dev/null 2>&1    # leave them running, unpinned
python3 benchmarks/compare.py "$results" > "$OUT/report.md"
cat "$OUT/report.md"
