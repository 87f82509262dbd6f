#!/usr/bin/env bash
# Load benchmark, PostgreSQL path: auth-server's /auth on one PostgreSQL database, with one node
# and then two nodes sharing it (the same request mix as bench/load.sh: bench/mix.lua).
#
#   bash bench/load-postgres.sh           # table
#   bash bench/load-postgres.sh --json    # JSON
#
# Works in a schema of its own (auth_bench_<pid>) of BENCH_POSTGRES_URL (default: this
# machine's local server, postgres://postgres@127.0.0.1:5432/test), dropped on exit. Two nodes:
# a wrk per node, each with half the connections, run together; req/s is their sum, latency the
# worse of the two. Everything (both nodes, PostgreSQL, wrk) shares this machine's cores, so the
# two-node figure shows coordination cost, not what two machines would add.
#
# Settings (environment): DURATION (seconds per run, default 15), CONNECTIONS (64),
# THREADS (wrk threads per wrk, 2), TOKENS (10000), BENCH_POSTGRES_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

JSON=false
[ "${1:-}" = "--json" ] && JSON=true
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-10000}
PG_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
export TOKENS CONNECTIONS THREADS

source bench/common.sh

SCHEMA="auth_bench_$$"
psql -q "$PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
CLEANUPS+=("psql -q '$PG_URL' -c 'DROP SCHEMA IF EXISTS $SCHEMA CASCADE' >/dev/null 2>&1")
case "$PG_URL" in *\?*) sep='&' ;; *) sep='?' ;; esac
export DATABASE_URL="${PG_URL}${sep}options=-c%20search_path%3D${SCHEMA}"
TOKEN_HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export TOKEN_HASH_KEY
seed_tokens

A_PORT=$(free_port)
start_server "$A_PORT" "$WORK/a.log"
A_PID=$SERVER_PID
warm_up "$A_PORT"

say "one node: full speed (${DURATION}s, $CONNECTIONS connections)"
one_full=$(run "http://127.0.0.1:$A_PORT" 0)
one_rate=$(python3 -c "print(int(float('$(field "$one_full" rps)') / 2))")
say "one node: paced at $one_rate req/s"
one_half=$(run "http://127.0.0.1:$A_PORT" "$one_rate")

B_PORT=$(free_port)
start_server "$B_PORT" "$WORK/b.log"
B_PID=$SERVER_PID
half_conns=$(( CONNECTIONS / 2 ))
both() { # rate per node -> two RESULT lines
  run "http://127.0.0.1:$A_PORT" "$1" "$half_conns" > "$WORK/a.out" &
  local a=$!
  run "http://127.0.0.1:$B_PORT" "$1" "$half_conns" > "$WORK/b.out"
  wait "$a"
  cat "$WORK/a.out" "$WORK/b.out"
}
say "two nodes: full speed"
two_full=$(both 0)
two_rate=$(python3 -c "
lines = '''$two_full'''.splitlines()
print(int(sum(float(l.split('rps=')[1].split()[0]) for l in lines) / 4))")
say "two nodes: paced at $(( two_rate * 2 )) req/s in all"
two_half=$(both "$two_rate")
rss_a=$(awk '/VmHWM/ {print $2}' "/proc/$A_PID/status")
rss_b=$(awk '/VmHWM/ {print $2}' "/proc/$B_PID/status")

python3 - "$JSON" "$one_full" "$one_half" "$two_full" "$two_half" "$rss_a" "$rss_b" \
  "$TOKENS" "$DURATION" "$CONNECTIONS" <<'PY'
import json, os, platform, sys
as_json, one_full, one_half, two_full, two_half, rss_a, rss_b, tokens, duration, conns = sys.argv[1:]
def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
def combine(lines):
    runs = [parse(l) for l in lines.splitlines() if l.strip()]
    total = {k: sum(r[k] for r in runs) for k in ("requests", "rps", "errors", "non2xx")}
    worst = {k: max(r[k] for r in runs) for k in ("seconds", "p50_us", "p99_us", "p999_us", "max_us")}
    return {**total, **worst}
runs = {"pg_one_node_full": parse(one_full), "pg_one_node_half_rate": parse(one_half),
        "pg_two_nodes_full": combine(two_full), "pg_two_nodes_half_rate": combine(two_half)}
result = {
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "settings": {"tokens": int(tokens), "duration_s": int(duration), "connections": int(conns),
                 "mix": "90% update_session, 8% new_session, 2% denied", "access_logs": True,
                 "store": "postgresql"},
    "runs": runs,
    "peak_rss_mib": {"a": int(rss_a) / 1024, "b": int(rss_b) / 1024},
}
if as_json == "true":
    print(json.dumps(result, indent=2))
    sys.exit(0)
print(f"{'run':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'non-2xx':>9}{'errors':>8}")
for name, r in runs.items():
    print(f"{name:<26}{r['rps']:>10.0f}{r['p50_us']/1000:>9.2f}{r['p99_us']/1000:>9.2f}{r['p999_us']/1000:>10.2f}{r['non2xx']:>9.0f}{r['errors']:>8.0f}")
print(f"peak RSS              : node A {result['peak_rss_mib']['a']:.1f} MiB, node B {result['peak_rss_mib']['b']:.1f} MiB")
print("two nodes: one wrk per node, run together; req/s summed, latencies the worse of the two.")
PY
