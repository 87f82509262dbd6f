#!/usr/bin/env bash
# Load benchmark: auth-server's /auth against a plain hyper "hello" server, on this machine.
#
#   bash bench/load.sh           # table
#   bash bench/load.sh --json    # JSON
#
# Builds release; seeds a temporary SQLite database with TOKENS tokens (max_sessions 3) and
# opens one live session per token; then drives /auth with wrk (90% update_session of live
# sessions, 8% new_session, 2% denied; bench/mix.lua) at full speed, then paced at half the
# throughput reached; peak RSS is read then. Then three runs of one kind of request each, at
# full speed: re-checks of live sessions only, new sessions only (tokens without a session limit, every request an admission), and
# unknown tokens only (a never-seen random token every request). Then the mix against
# examples/hello.rs. Access logs on, SQLite durable (WAL, synchronous=NORMAL). Everything
# listens on 127.0.0.1 on free ports and is stopped on exit.
#
# Settings (environment): DURATION (seconds per run, default 15), CONNECTIONS (64),
# THREADS (wrk threads, 2), TOKENS (10000), OPEN_TOKENS (tokens without a limit, 1000),
# BENCH_BIN (an auth-server binary to measure instead of building this tree's).
set -euo pipefail
cd "$(dirname "$0")/.."

JSON=false
[ "${1:-}" = "--json" ] && JSON=true
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-10000}
export TOKENS CONNECTIONS THREADS

source bench/common.sh

export DATABASE_URL="sqlite://$WORK/tokens.db"
seed_tokens

# Cold start: from spawning the process to the first answered request.
AUTH_PORT=$(free_port)
start_ns=$(date +%s%N)
start_server "$AUTH_PORT" "$WORK/server.log"
AUTH_PID=$SERVER_PID
cold_start_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

warm_up "$AUTH_PORT"

say "auth-server: full speed (${DURATION}s, $CONNECTIONS connections)"
auth_full=$(run "http://127.0.0.1:$AUTH_PORT" 0)
auth_rate=$(python3 -c "print(int(float('$(field "$auth_full" rps)') / 2))")
say "auth-server: paced at $auth_rate req/s"
auth_half=$(run "http://127.0.0.1:$AUTH_PORT" "$auth_rate")
peak_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$AUTH_PID/status")
live_sessions=$(curl -sf "http://127.0.0.1:$AUTH_PORT/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["live_sessions"])')
say "auth-server: re-checks only, full speed"
auth_recheck=$(run "http://127.0.0.1:$AUTH_PORT" 0 "$CONNECTIONS" recheck)
say "auth-server: new sessions only, full speed"
auth_new=$(run "http://127.0.0.1:$AUTH_PORT" 0 "$CONNECTIONS" new)
say "auth-server: unknown tokens only, full speed"
auth_unknown=$(run "http://127.0.0.1:$AUTH_PORT" 0 "$CONNECTIONS" unknown)

HELLO_PORT=$(free_port)
"$HELLO" "$HELLO_PORT" &
PIDS+=("$!")
until curl -s -o /dev/null "http://127.0.0.1:$HELLO_PORT/"; do sleep 0.01; done
say "hello: full speed"
hello_full=$(run "http://127.0.0.1:$HELLO_PORT" 0)
hello_rate=$(python3 -c "print(int(float('$(field "$hello_full" rps)') / 2))")
say "hello: paced at $hello_rate req/s"
hello_half=$(run "http://127.0.0.1:$HELLO_PORT" "$hello_rate")

python3 - "$JSON" "$auth_full" "$auth_half" "$auth_recheck" "$auth_new" "$auth_unknown" "$hello_full" "$hello_half" "$peak_rss_kb" "$cold_start_ms" \
  "$live_sessions" "$TOKENS" "$DURATION" "$CONNECTIONS" <<'PY'
import json, os, platform, sys
as_json, auth_full, auth_half, auth_recheck, auth_new, auth_unknown, hello_full, hello_half, rss_kb, cold_ms, live, tokens, duration, conns = sys.argv[1:]
def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
runs = {"auth_full": parse(auth_full), "auth_half_rate": parse(auth_half),
        "auth_rechecks_only": parse(auth_recheck), "auth_new_sessions_only": parse(auth_new), "auth_unknown_tokens_only": parse(auth_unknown),
        "hello_full": parse(hello_full), "hello_half_rate": parse(hello_half)}
result = {
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "settings": {"tokens": int(tokens), "duration_s": int(duration), "connections": int(conns),
                 "mix": "90% update_session, 8% new_session, 2% denied", "access_logs": True,
                 "rechecks_only": "update_session of live sessions",
                 "new_sessions_only": "new_session of tokens without a session limit",
                 "unknown_tokens_only": "a never-seen random token per request"},
    "runs": runs,
    "ratio_auth_to_hello": runs["auth_full"]["rps"] / runs["hello_full"]["rps"],
    "auth_peak_rss_mib": int(rss_kb) / 1024,
    "auth_live_sessions_at_end": int(live),
    "auth_cold_start_ms": int(cold_ms),
}
if as_json == "true":
    print(json.dumps(result, indent=2))
    sys.exit(0)
print(f"{'run':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'non-2xx':>9}{'errors':>8}")
for name, r in runs.items():
    print(f"{name:<26}{r['rps']:>10.0f}{r['p50_us']/1000:>9.2f}{r['p99_us']/1000:>9.2f}{r['p999_us']/1000:>10.2f}{r['non2xx']:>9.0f}{r['errors']:>8.0f}")
print(f"throughput auth/hello : {result['ratio_auth_to_hello']:.2f}")
print(f"auth peak RSS         : {result['auth_peak_rss_mib']:.1f} MiB ({live} live sessions, {tokens} tokens)")
print(f"auth cold start       : {cold_ms} ms to the first answered request")
print("paced runs: each connection waits a fixed gap between requests (wrk's delay hook), so latency")
print("is measured from each actual send; a stalled server would lower the achieved rate instead.")
PY
