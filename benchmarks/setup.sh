# Sourced by run.sh and instructions.sh: a fresh database (SQLite in a temporary
# directory, or a PostgreSQL schema of its own), a configuration with one STARTTLS
# listener per protocol, and the accounts the load generator expects (prepare.py).
# In: $backend, $protocols, BENCH_PORT_OFFSET (default: one derived from the checkout's path,
# so that two checkouts measuring at once never load each other's server).
# Out: $work (remove it when done; $work/dkim.pem: remote.test's DKIM key, selector bench),
# $url, $ports (protocol -> port), $first (a port),
# $dns_server (the loopback DNS server's pid: benchmarks/dns_records.py; the caller's EXIT
# trap kills it; sourcing this again replaces it).
# shellcheck shell=bash
work=$(mktemp -d)
if [ "$backend" = postgresql ]; then
    schema=bench_$$
    psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
    url="postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D$schema"
else
    url="sqlite:///$work/bench.db"
fi
cat > "$work/mailstack.toml" <<TOML
[server]
hostname = "mail.example.test"
[database]
url = "$url"
threads = 4
[tls]
generate_dev = true
[submission]
recipients_per_hour = 100000000   # the load generator is one account sending a lot
TOML
offset=${BENCH_PORT_OFFSET:-$(( $(pwd | cksum | cut -d' ' -f1) % 60 * 10 ))}
# Port 25 authenticates every message (SPF, DKIM, DMARC): DNS from a server on loopback.
dns_port=$((5300 + offset))
if [ -n "${dns_server:-}" ]; then kill "$dns_server" 2>/dev/null || true; wait "$dns_server" 2>/dev/null || true; fi
# remote.test's DKIM key, for compare.sh's signed scenario (benchmarks/signed_load.py).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/dkim.pem" 2>/dev/null
dkim_txt="v=DKIM1; k=rsa; p=$(openssl pkey -in "$work/dkim.pem" -pubout -outform DER | base64 -w0)"
.venv/bin/python benchmarks/dns_records.py "$dns_port" "bench._domainkey.remote.test=$dkim_txt" &
dns_server=$!
printf '[dns]\nnameservers = ["127.0.0.1:%s"]\ntimeout = 2\n' "$dns_port" >> "$work/mailstack.toml"
if [ -n "${BENCH_AUTHENTICATION:-}" ]; then      # "false": port 25 without verification
    printf '[authentication]\nenabled = %s\n' "$BENCH_AUTHENTICATION" >> "$work/mailstack.toml"
fi
declare -A ports=([smtp]=$((2525 + offset)) [submission]=$((2587 + offset))
                  [pop3]=$((1110 + offset)) [imap]=$((1143 + offset)))
for p in $protocols; do
    printf '[[listeners]]\nprotocol = "%s"\nport = %s\ntls = "starttls"\n' "$p" "${ports[$p]}" >> "$work/mailstack.toml"
done
first=${ports[${protocols%% *}]}
.venv/bin/python benchmarks/prepare.py "$work/mailstack.toml"
# The load generator sends as sender@remote.test while logged in as user1.
.venv/bin/mailstack --config "$work/mailstack.toml" account sender-rule user1@example.test any >/dev/null
