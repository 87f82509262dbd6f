# Shared by the load benchmarks (source it from the repository root): wrk, release binaries, a
# work folder removed on exit, child processes stopped on exit, seeding, and one wrk run.
# Expects JSON (true/false), DURATION, CONNECTIONS, THREADS and TOKENS to be set.

say() { $JSON || echo "$@" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  if ! apt-get install -y -qq wrk >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
  fi
fi

# BENCH_BIN: an auth-server binary to measure instead of this tree's (comparing two builds); a
# `hello` beside it is used too, else this tree's is built.
BIN=${BENCH_BIN:-target/release/auth-server}
HELLO=$(dirname "$BIN")/hello
[ -n "${BENCH_BIN:-}" ] && [ -x "$HELLO" ] || HELLO=target/release/examples/hello
if [ -z "${BENCH_BIN:-}" ]; then
  say "building release binaries"
  cargo build --release --quiet -p auth-server --bin auth-server --example hello
elif [ "$HELLO" = target/release/examples/hello ]; then
  cargo build --release --quiet -p auth-server --example hello
fi

WORK=$(mktemp -d)
PIDS=()
CLEANUPS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for step in "${CLEANUPS[@]}"; do eval "$step" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Seeds TOKENS tokens (max_sessions 3), and OPEN_TOKENS without a session limit for the
# admissions-only run (bench-open-<i>), through the binary into DATABASE_URL.
OPEN_TOKENS=${OPEN_TOKENS:-1000}
export OPEN_TOKENS
seed_tokens() {
  say "seeding $TOKENS tokens and $OPEN_TOKENS without a session limit"
  python3 - "$TOKENS" "$OPEN_TOKENS" > "$WORK/seed.json" <<'PY'
import json, sys
n, open_n = int(sys.argv[1]), int(sys.argv[2])
limited = [{"token": "bench-token-%05d" % i, "user_id": "viewer-%05d" % i, "max_sessions": 3} for i in range(n)]
unlimited = [{"token": "bench-open-%04d" % i, "user_id": "open-%04d" % i, "max_sessions": 0} for i in range(open_n)]
print(json.dumps(limited + unlimited))
PY
  "$BIN" seed "$WORK/seed.json" > /dev/null
}

# start_server PORT LOGFILE: starts the server on PORT (DATABASE_URL etc. from the environment),
# waits for /health; sets SERVER_PID.
start_server() {
  API_PORT=$1 LOG_LEVEL=warn ENABLE_ACCESS_LOGS=true "$BIN" serve > "$2" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  until curl -sf -o /dev/null "http://127.0.0.1:$1/health"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.001
  done
}

# Opens one live session per token through the server at PORT.
warm_up() {
  say "opening $TOKENS live sessions"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s bench/warmup.lua "http://127.0.0.1:$1" > /dev/null
}

run() { # url rate [connections [mix]] -> RESULT line (mix: see bench/mix.lua)
  local conns=${3:-$CONNECTIONS}
  MIX=${4:-mix} RATE=$2 CONNECTIONS=$conns wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --timeout 5s -s bench/mix.lua "$1" | grep '^RESULT'
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
