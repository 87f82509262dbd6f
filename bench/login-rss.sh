#!/usr/bin/env bash
# Resident memory after a burst of failed logins: starts the release server on a temporary
# SQLite file, sends N simultaneous logins for unknown usernames (each costs one Argon2id
# verification) from N loopback source addresses (so that per-address throttling does not
# serialize them), and prints the server's VmRSS and VmHWM before and after, in MiB.
#
#   bash bench/login-rss.sh          # N=150
#   N=300 bash bench/login-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-150}
cargo build --release --quiet -p auth-server --bin auth-server
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$WORK/tokens.db" API_PORT=$PORT LOG_LEVEL=warn \
  LOGIN_MAX_FAILURES_PER_IP=1000 LOGIN_MAX_FAILURES_PER_USER=1000 \
  target/release/auth-server serve > "$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break
  kill -0 $PID || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.05
done
python3 - "$PORT" "$PID" "$N" <<'PY'
import http.client, json, sys, threading
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
statuses = []
def login(i):
    source = ("127.0.%d.%d" % (1 + i // 250, 2 + i % 250), 0)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300, source_address=source)
    body = json.dumps({"username": "nobody%d" % i, "password": "wrong password %d" % i})
    connection.request("POST", "/api/login", body, {"Content-Type": "application/json"})
    statuses.append(connection.getresponse().status)
def memory():
    fields = {}
    for line in open("/proc/%d/status" % pid):
        key, value = line.split(":", 1)
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024
    return fields
before = memory()
threads = [threading.Thread(target=login, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"logins": n, "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                  "mib_before": before, "mib_after": memory()}))
PY
