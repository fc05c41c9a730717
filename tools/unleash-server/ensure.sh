#!/usr/bin/env bash
# Idempotently installs and starts the local unleash-server used by integration tests.
# Log: /tmp/unleash-server.log, pid file: /tmp/unleash-server.pid. Honours start.mjs's env vars (UNLEASH_PORT, ...).
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${UNLEASH_PORT:-4242}"
health="http://127.0.0.1:${port}/health"
log=/tmp/unleash-server.log
pidfile=/tmp/unleash-server.pid

healthy() { curl -fsS -o /dev/null --max-time 2 "$health" 2>/dev/null; }
ours() { [ -f "$pidfile" ] && ps -p "$(cat "$pidfile")" -o args= 2>/dev/null | grep -q "start.mjs"; }

if [ ! -d "$dir/node_modules/unleash-server" ]; then
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
fi

if healthy; then
  echo "unleash-server already running on http://127.0.0.1:${port}"
  exit 0
fi

if ! ours; then
  nohup node "$dir/start.mjs" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
fi
pid="$(cat "$pidfile")"

deadline=$((SECONDS + 60))
while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
  if healthy; then
    echo "unleash-server ready on http://127.0.0.1:${port} (pid $pid, log $log)"
    exit 0
  fi
  sleep 0.5
done

echo "unleash-server did not become healthy on $health (waited up to 60 s); last log lines:" >&2
tail -n 40 "$log" >&2 || true
kill "$pid" 2>/dev/null || true
rm -f "$pidfile"
exit 1
