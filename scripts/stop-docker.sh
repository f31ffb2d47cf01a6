#!/usr/bin/env bash
# Stops the dockerd that scripts/setup.sh started (pid in $AGC_STATE_DIR/dockerd.pid), and only that one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${AGC_STATE_DIR:-$ROOT/.agc}"
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac
PIDFILE="$STATE/dockerd.pid"

if [[ ! -f $PIDFILE ]]; then
  echo "no $PIDFILE: scripts/setup.sh did not start a dockerd here; nothing to stop"
  exit 0
fi
pid="$(cat "$PIDFILE")"
if ! kill -0 "$pid" 2>/dev/null || [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]]; then
  echo "dockerd pid $pid is not running (stale pid file removed)"
  rm -f "$PIDFILE"
  exit 0
fi
echo "stopping dockerd pid $pid (containers keep their state; running ones are stopped by dockerd)"
kill -TERM "$pid"
for _ in $(seq 1 30); do
  kill -0 "$pid" 2>/dev/null || {
    rm -f "$PIDFILE"
    echo "dockerd stopped"
    exit 0
  }
  sleep 1
done
echo "ERROR: dockerd pid $pid still running after 30 s" >&2
exit 1
